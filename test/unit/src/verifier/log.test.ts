/**
 * The verifier log (src/verifier/log.ts): levels, instruction lines identical to the kernel's
 * `print_bpf_insn` (kernel/bpf/disasm.c), the `; R1_w=0` alignment of `print_insn_state`,
 * the rotating size limit that keeps the tail, `reset(pos)`, the stats line of
 * `print_verification_stats`, and `fail`.
 */

import { describe, expect, it } from 'vitest';
import { assemble } from '../../../../src/asm/assembler.js';
import { isVerifierError, UsageError } from '../../../../src/errors.js';
import {
  BPF_LOG_DEFAULT_SIZE,
  BPF_LOG_LEVEL1,
  BPF_LOG_LEVEL2,
  BPF_LOG_STATS,
  VerifierLog,
} from '../../../../src/verifier/log.js';

/** Assembly line → the kernel's log line for it at insn 0 (format strings of disasm.c). */
const KERNEL_LINES: readonly [string, string][] = [
  ['mov %r1, 0', '0: (b7) r1 = 0'],
  ['mov %r1, %r10', '0: (bf) r1 = r10'],
  ['add %r1, -8', '0: (07) r1 += -8'],
  ['add32 %r1, 1', '0: (04) w1 += 1'],
  ['mov32 %r1, %r2', '0: (bc) w1 = w2'],
  ['neg %r1', '0: (87) r1 = -r1'],
  ['arsh %r1, 3', '0: (c7) r1 s>>= 3'],
  ['sdiv %r1, %r2', '0: (3f) r1 s/= r2'],
  ['movsx864 %r1, %r2', '0: (bf) r1 = (s8)r2'],
  ['ldxw %r0, [%r1+4]', '0: (61) r0 = *(u32 *)(r1 +4)'],
  ['ldxsb %r0, [%r1+0]', '0: (91) r0 = *(s8 *)(r1 +0)'],
  ['stxdw [%r10-8], %r1', '0: (7b) *(u64 *)(r10 -8) = r1'],
  ['stw [%r10-4], 0', '0: (62) *(u32 *)(r10 -4) = 0'],
  ['lddw %r1, 0x1234', '0: (18) r1 = 0x1234'],
  ['call 1', '0: (85) call bpf_map_lookup_elem#1'],
  ['call local +2', '0: (85) call pc+2'],
  ['exit', '0: (95) exit'],
  ['ja +3', '0: (05) goto pc+3'],
  ['ja32 +3', '0: (06) gotol pc+3'],
  ['jeq %r1, 0, +1', '0: (15) if r1 == 0x0 goto pc+1'],
  ['jsgt32 %r1, -1, -2', '0: (66) if w1 s> 0xffffffff goto pc-2'],
  ['jeq %r1, %r2, +1', '0: (1d) if r1 == r2 goto pc+1'],
  ['lock add32 [%r10-8], %r1', '0: (c3) lock *(u32 *)(r10 -8) += r1'],
  ['lock fetch add [%r10-8], %r1', '0: (db) r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)'],
  ['lock cmpxchg [%r10-8], %r1', '0: (db) r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r1)'],
  ['be16 %r1', '0: (dc) r1 = be16 r1'],
  ['bswap64 %r1', '0: (d7) r1 = bswap64 r1'],
  ['ldabsw 4', '0: (20) r0 = *(u32 *)skb[4]'],
  ['may_goto +2', '0: (e5) may_goto pc+2'],
  ['gotox %r1', '0: (0d) gotox r1'],
];

describe('VerifierLog instruction lines', () => {
  it.each(KERNEL_LINES)('prints %s as the kernel does', (asm, line) => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1 });
    log.insn(0, assemble(asm));
    expect(log.text()).toBe(`${line}\n`);
  });

  it('prints the slot index of each insn, an lddw taking two slots', () => {
    const insns = assemble('lddw %r0, 1\ncall 181\nexit');
    const log = new VerifierLog({ level: BPF_LOG_LEVEL2 });
    log.insn(0, insns);
    log.insn(2, insns);
    log.insn(3, insns);
    expect(log.text()).toBe('0: (18) r0 = 0x1\n2: (85) call bpf_loop#181\n3: (95) exit\n');
  });

  it('uses the helper and kfunc names it is given', () => {
    const log = new VerifierLog({
      level: BPF_LOG_LEVEL1,
      helperName: (id) => (id === 7 ? 'my_helper' : undefined),
      kfuncName: (id) => (id === 9 ? 'bpf_obj_new_impl' : undefined),
    });
    log.insn(0, assemble('call 7'));
    log.insn(0, assemble('call kfunc 9'));
    expect(log.text()).toBe('0: (85) call my_helper#7\n0: (85) call bpf_obj_new_impl#9\n');
  });

  it('prints no insn lines at level 0 or at the stats level alone', () => {
    for (const level of [0, BPF_LOG_STATS]) {
      const log = new VerifierLog({ level });
      log.insn(0, assemble('exit'));
      expect(log.text()).toBe('');
    }
  });
});

describe('VerifierLog state comments', () => {
  it('aligns the state after the insn line at column 38 as print_insn_state does', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL2 });
    log.insnState(0, ' R1=ctx() R10=fp0');
    log.insn(0, assemble('mov %r1, 0'));
    log.insnState(0, ' R1_w=0');
    expect(log.text()).toBe(
      '0: R1=ctx() R10=fp0\n0: (b7) r1 = 0                        ; R1_w=0\n',
    );
    expect(log.text().split('\n')[1]?.indexOf(';')).toBe(38);
  });

  it('aligns a long insn line to the next multiple of 8 columns', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL2 });
    log.insn(10, assemble(`${'mov %r1, 0\n'.repeat(10)}lock fetch add [%r10-8], %r1`));
    log.insnState(10, ' R1_w=0');
    const line = log.text().split('\n')[0] ?? '';
    // The line is 53 characters: bpf_vlog_alignment(54) rounds 53 + 1 + 4 up to 64, so the
    // ';' lands in column 64 - 2.
    expect(line.indexOf(';')).toBe(62);
  });

  it('prints the state on its own line when something was logged after the insn', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL2 });
    log.insn(0, assemble('exit'));
    log.verbose('from 0 to 5: ');
    log.insnState(5, ' R0=1');
    expect(log.text()).toBe('0: (95) exit\nfrom 0 to 5: 5: R0=1\n');
  });
});

describe('VerifierLog size limit', () => {
  it('keeps the tail when the log exceeds its size, as the rotating kernel log does', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1, size: 128 });
    for (let i = 0; i < 100; i++) log.verbose(`line ${i}\n`);
    const text = log.text();
    expect(text.length).toBe(127);
    expect(text.endsWith('line 98\nline 99\n')).toBe(true);
    expect(log.truncated).toBe(true);
    expect(log.trueSize).toBe(log.pos() + 1);
  });

  it('keeps the head with fixed: true, as BPF_LOG_FIXED does', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1, size: 128, fixed: true });
    for (let i = 0; i < 100; i++) log.verbose(`line ${i}\n`);
    expect(log.text().startsWith('line 0\nline 1\n')).toBe(true);
    expect(log.text().length).toBe(127);
    expect(log.truncated).toBe(true);
  });

  it('is not truncated while the text fits', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1, size: 128 });
    log.verbose('x'.repeat(127));
    expect(log.truncated).toBe(false);
    log.verbose('y');
    expect(log.truncated).toBe(true);
    expect(log.text()).toBe(`${'x'.repeat(126)}y`);
  });

  it('defaults to 16 MiB and refuses sizes the kernel refuses', () => {
    expect(new VerifierLog().size).toBe(BPF_LOG_DEFAULT_SIZE);
    expect(BPF_LOG_DEFAULT_SIZE).toBe(16 * 1024 * 1024 - 1);
    expect(() => new VerifierLog({ size: 127 })).toThrow(UsageError);
  });

  it('stays correct over many appends far beyond the limit', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1, size: 1000 });
    let all = '';
    for (let i = 0; i < 5000; i++) {
      const s = `${i},`;
      log.verbose(s);
      all += s;
    }
    expect(log.text()).toBe(all.slice(all.length - 999));
  });
});

describe('VerifierLog reset', () => {
  it('discards what a pruned path wrote after pos()', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1 });
    log.verbose('0: (b7) r0 = 0\n');
    const pos = log.pos();
    log.verbose('1: (95) exit\n');
    log.reset(pos);
    expect(log.text()).toBe('0: (b7) r0 = 0\n');
    expect(log.pos()).toBe(pos);
  });

  it('keeps positions valid after the size limit dropped the head', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1, size: 128 });
    log.verbose('a'.repeat(200));
    const pos = log.pos();
    log.verbose('b'.repeat(50));
    log.reset(pos);
    expect(log.pos()).toBe(200);
    // As in the kernel, what rotated out is gone: the window is [250 - 127, 200).
    expect(log.text()).toBe('a'.repeat(77));
  });

  it('empties the log when the reset position is before the kept window', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1, size: 128 });
    log.verbose('a'.repeat(10));
    log.verbose('b'.repeat(300));
    log.reset(10);
    expect(log.text()).toBe('');
    log.verbose('c\n');
    expect(log.text()).toBe('c\n');
  });

  it('ignores positions past the end, as bpf_vlog_reset does', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1 });
    log.verbose('abc');
    log.reset(10);
    expect(log.text()).toBe('abc');
  });
});

describe('VerifierLog stats and failures', () => {
  const stats = {
    insnProcessed: 2,
    maxStatesPerInsn: 0,
    totalStates: 0,
    peakStates: 0,
    markRead: 0,
  };

  it('prints the stats line exactly like print_verification_stats', () => {
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1 });
    log.stats({
      insnProcessed: 520,
      maxStatesPerInsn: 1,
      totalStates: 46,
      peakStates: 46,
      markRead: 7,
    });
    expect(log.text()).toBe(
      'processed 520 insns (limit 1000000) max_states_per_insn 1 total_states 46 peak_states 46 mark_read 7\n',
    );
  });

  it('adds the verification time and stack depths at the stats level', () => {
    const log = new VerifierLog({ level: BPF_LOG_STATS });
    log.stats({ ...stats, verificationTimeUsec: 355.7, stackDepths: [8, 0, 16] });
    expect(log.text()).toBe(
      'verification time 355 usec\nstack depth 8+0+16\n' +
        'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n',
    );
  });

  it('builds a VerifierError whose reason is the last line of its log', () => {
    const insns = assemble('mov %r1, 0\nldxdw %r0, [%r1+0]\nexit');
    const log = new VerifierLog({ level: BPF_LOG_LEVEL1 });
    log.verbose('func#0 @0\n0: R1=ctx() R10=fp0\n');
    log.insn(0, insns);
    log.insnState(0, ' R1_w=0');
    log.insn(1, insns);
    const err = log.fail(1, "R1 invalid mem access 'scalar'", undefined, 'check the pointer');
    log.stats(stats);
    const full = log.withLog(err);
    expect(isVerifierError(full)).toBe(true);
    expect(full.message).toBe("insn 1: R1 invalid mem access 'scalar'");
    expect(full.code).toBe('EACCES');
    expect(full.hint).toBe('check the pointer');
    expect(full.log).toBe(
      [
        'func#0 @0',
        '0: R1=ctx() R10=fp0',
        '0: (b7) r1 = 0                        ; R1_w=0',
        '1: (79) r0 = *(u64 *)(r1 +0)',
        "R1 invalid mem access 'scalar'",
        'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
        '',
      ].join('\n'),
    );
    expect(err.log.endsWith("R1 invalid mem access 'scalar'\n")).toBe(true);
  });

  it('keeps an empty log at level 0 but still names the reason', () => {
    const log = new VerifierLog();
    log.verbose('anything\n');
    const err = log.fail(3, 'unreachable insn 3', 'EINVAL');
    expect(err.log).toBe('');
    expect(err.reason).toBe('unreachable insn 3');
    expect(err.code).toBe('EINVAL');
  });
});
