/**
 * The verifier on coroutine frames, handles, `callx`, token entry points and `bpf_throw`
 * (src/verifier/check-coro.ts), with the built-in kfunc signatures (src/kfunc-protos.ts):
 * each rule as a rejected program and its accepted twin that differ only where the rule looks.
 */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { isBpfError } from '../../src/errors.js';
import { BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD } from '../../src/isa/opcodes.js';
import { KFUNC_PROTOS } from '../../src/kfunc-protos.js';
import { createProgram, type ProgType } from '../../src/program.js';
import type { VerifiedProgram } from '../../src/verifier/verified-program.js';
import { verifyProgram, type KfuncSig, type LdMap } from '../../src/verifier/verifier.js';
import { keptRecordAsm } from '../helpers/coro-asm.js';

/** `call kfunc N` calls KFUNCS[N]. */
const KFUNCS = [
  'bpf_coro_frame_alloc', // 0
  'bpf_coro_frame_free', // 1
  'bpf_coro_defer', // 2
  'bpf_throw', // 3
  'bpf_coro_take_cancelled', // 4
  'bpf_task_acquire', // 5
  'bpf_task_release', // 6
  'bpf_coro_enqueue', // 7
  'bpf_obj_new_impl', // 8
  'bpf_obj_drop_impl', // 9
  'bpf_coro_sleep', // 10
  'bpf_coro_detach', // 11
] as const;

/** `lddw %rX, map_fd 1` is a ringbuf, `map_fd 2` a queue of u64, `map_fd 3` a queue of u32. */
const MAPS: ReadonlyMap<number, LdMap> = new Map([
  [
    1,
    { map: { keySize: 0, valueSize: 0, maxEntries: 4096, type: 27, id: 1 }, value: false, off: 0 },
  ],
  [2, { map: { keySize: 0, valueSize: 8, maxEntries: 8, type: 22, id: 2 }, value: false, off: 0 }],
  [3, { map: { keySize: 0, valueSize: 4, maxEntries: 8, type: 22, id: 3 }, value: false, off: 0 }],
]);

/** The program BTF's sized types: type 3 is a 24-byte struct, 4 a 8192-byte one, 5 48 bytes. */
const BTF_SIZES = new Map([
  [3, 24],
  [4, 8192],
  [5, 48],
]);

function verify(asm: string, type: ProgType = 'perf_event', logLevel = 0): VerifiedProgram {
  const insns = assemble(asm);
  const kfuncs = new Map<number, KfuncSig>();
  const maps = new Map<number, LdMap>();
  insns.forEach((i, idx) => {
    const name = KFUNCS[i.imm];
    if (i.code === 0x85 && i.src === BPF_PSEUDO_KFUNC_CALL && name !== undefined) {
      kfuncs.set(idx, KFUNC_PROTOS.get(name) as KfuncSig);
    }
    const m = MAPS.get(i.imm);
    if (i.code === 0x18 && i.src === BPF_PSEUDO_MAP_FD && m !== undefined) maps.set(idx, m);
  });
  return verifyProgram(createProgram(insns, { type }), {
    kfuncs,
    maps,
    btfTypeSize: (id) => BTF_SIZES.get(id),
    logLevel,
  });
}

/** 'accept' or the reason of the VerifierError. */
function verdict(asm: string, type: ProgType = 'perf_event'): string {
  try {
    verify(asm, type);
    return 'accept';
  } catch (e) {
    if (isBpfError(e) && e.name === 'VerifierError')
      return (e as unknown as { reason: string }).reason;
    throw e;
  }
}

/** r6 = a frame of `size` bytes; the NULL branch throws ENOMEM (no exit after bpf_throw). */
const ALLOC = (size: number | string = 32): string => `mov %r1, ${size}
  mov %r2, 0
  call kfunc 0
  mov %r6, %r0
  jne %r6, 0, +2
  mov %r1, 12
  call kfunc 3`;

/** Ends a path that holds frame r6: frees it and returns 0. */
const FREE = `mov %r1, %r6
  call kfunc 1
  mov %r0, 0
  exit`;

describe('coroutine frames', () => {
  it('are memory of the size passed to bpf_coro_frame_alloc', () => {
    expect(verdict(`${ALLOC(32)}\nstdw [%r6+24], 1\n${FREE}`)).toBe('accept');
    expect(verdict(`${ALLOC(32)}\nstdw [%r6+32], 1\n${FREE}`)).toBe(
      'R6 min value is outside of the allowed memory range',
    );
  });

  it('need a frame size that is a known constant', () => {
    const size = (v: string): string => `call 5\n${v}\n${ALLOC('%r7')}\n${FREE}`;
    expect(verdict(size('mov %r7, 64'))).toBe('accept');
    expect(verdict(size('mov %r7, %r0'))).toBe('R1 frame size is not a known constant');
    expect(verdict(size('mov %r7, 8'))).toBe('R1 frame size 8 is outside [16, 65536]');
  });

  it('must be NULL-checked before use', () => {
    const asm = (check: string): string => `mov %r1, 32
      mov %r2, 0
      call kfunc 0
      mov %r6, %r0
      ${check}
      stdw [%r6+0], 0
      ${FREE}`;
    expect(verdict(asm('jne %r6, 0, +2\nmov %r0, 0\nexit'))).toBe('accept');
    expect(verdict(asm(''))).toBe("R6 invalid mem access 'coro_mem_or_null'");
  });

  it('may hold pointers, but not stack pointers', () => {
    const store = (reg: string): string => `${ALLOC()}\n${reg}\nstxdw [%r6+16], %r2\n${FREE}`;
    expect(verdict(store('mov %r2, %r6'))).toBe('accept');
    expect(verdict(store('lddw %r2, map_fd 1'))).toBe('accept');
    expect(verdict(store('mov %r2, %r10\nadd %r2, -8'))).toBe(
      'R6 cannot store a stack pointer into a coroutine frame',
    );
  });

  it('are what the frame kfuncs take: not a stack address, not an offset into a frame', () => {
    const defer = (arg: string): string => `${ALLOC()}\n${arg}\ncall kfunc 2\n${FREE}`;
    expect(verdict(defer('mov %r1, %r6'))).toBe('accept');
    expect(verdict(defer('mov %r1, %r10\nadd %r1, -32'))).toBe('R1 type=fp expected=coro_mem');
    expect(verdict(defer('mov %r1, %r6\nadd %r1, 8'))).toBe(
      'R1 must point to the start of a coroutine frame',
    );
  });

  it('are enqueued only into a queue of 8-byte values', () => {
    const enq = (fd: number): string =>
      `${ALLOC()}\nlddw %r1, map_fd ${fd}\nmov %r2, %r6\ncall kfunc 7\n${FREE}`;
    expect(verdict(enq(2))).toBe('accept');
    expect(verdict(enq(3))).toBe(
      'R1 map_type 22 value_size 4: expected map_type 22 with 8-byte values',
    );
  });

  it('serve as map keys (a pointer into the frame, as clang passes &cpu)', () => {
    const asm = `${ALLOC(48)}
      stw [%r6+40], 0
      lddw %r1, map_fd 2
      mov %r2, %r6
      add %r2, 40
      call 1
      ${FREE}`;
    // a queue has no lookup: the map key check itself passed when the map check refuses
    expect(verdict(asm)).toBe('cannot pass map_type 22 into func bpf_map_lookup_elem#1');
  });
});

describe('frames that may have been freed', () => {
  const after = (call: string, use: string): string => `${ALLOC()}
    mov %r7, %r6
    add %r7, 16
    ${call}
    ${use}
    ${FREE}`;

  it('become handles after a free, a suspension to another worker or a callx', () => {
    for (const call of [
      'mov %r1, %r6\ncall kfunc 1',
      'lddw %r1, map_fd 2\nmov %r2, %r6\ncall kfunc 7',
      'ldxdw %r2, [%r6+8]\nmov %r1, %r6\ncallx %r2',
    ]) {
      const v = verify(after(call, 'stdw [%r6+8], 0'));
      const store = v.prog.insns.findIndex((i) => i.code === 0x7a && i.off === 8);
      expect([call, [...(v.frameChecks ?? [])]]).toEqual([call, [[store, 16]]]);
      expect(verdict(after(call, 'stdw [%r7+0], 0'))).toBe("R7 invalid mem access 'scalar'");
    }
  });

  it('stay frames after bpf_coro_defer (resumed once this run is over)', () => {
    const v = verify(after('mov %r1, %r6\ncall kfunc 2', 'stdw [%r7+0], 0'));
    expect(v.frameChecks?.size).toBe(0);
  });

  it('may meet their handle at one access: the run-time check accepts a live frame', () => {
    const asm = `${ALLOC()}
      jeq %r0, 0, +3
      ldxdw %r2, [%r6+8]
      mov %r1, %r6
      callx %r2
      stdw [%r6+24], 0
      ${FREE}`;
    expect(verdict(asm)).toBe('accept');
  });
});

describe('handles (8-byte words loaded from a frame)', () => {
  const CHECK = 'jne %r0, 0, +2\nmov %r0, 0\nexit';
  const take = (check: string, off = 8): string => `mov %r1, 0
    call kfunc 4
    ${check}
    ldxdw %r2, [%r0${off < 0 ? '' : '+'}${off}]
    mov %r0, 0
    exit`;

  it('are dereferenced with or without a NULL check, and checked at run time', () => {
    // coro_frame_check refuses NULL: no NULL check is required (clang omits it where it knows
    // the slot is set, as coro_loop's child handle)
    const v = verify(take(CHECK));
    expect([...(v.frameChecks ?? [])]).toEqual([[5, 16]]);
    const unchecked = verify(take(''));
    expect([...(unchecked.frameChecks ?? [])]).toEqual([[2, 16]]);
    // a word that is not a handle still needs its type
    expect(verdict(take('mov %r0, 0'))).toBe("R0 invalid mem access 'scalar'");
  });

  it('are dereferenced at offsets within a frame', () => {
    expect(verdict(take(CHECK, 32760))).toBe('accept');
    expect(verdict(take(CHECK, -8))).toBe(
      'R0 invalid access to coroutine frame, off=-8 size=8 (frames are at most 65536 bytes)',
    );
  });

  it('lose their kind in arithmetic', () => {
    const asm = `mov %r1, 0
      call kfunc 4
      jeq %r0, 0, out
      add %r0, 8
      ldxdw %r2, [%r0+0]
      out:
      mov %r0, 0
      exit`;
    expect(verdict(asm)).toBe("R0 invalid mem access 'scalar'");
  });

  it('may not meet a pointer other than a frame at the same access', () => {
    // the run-time check refuses the ctx; a live frame passes it
    const asm = (other: string): string => `mov %r9, %r1
      ${ALLOC()}
      ldxdw %r1, [%r6+16]
      jne %r1, 0, +1
      ${other}
      ldxdw %r2, [%r1+0]
      ${FREE}`;
    expect(verdict(asm('mov %r1, %r9'))).toBe(
      'R1 is a coroutine handle on one path and a verified pointer on another; the run-time frame check of insn 11 would refuse the pointer',
    );
    expect(verdict(asm('mov %r1, %r6'))).toBe('accept');
  });
});

describe('callx', () => {
  const callx = (target: string, args = 'mov %r1, %r6'): string => `${ALLOC()}
    ${target}
    ${args}
    callx %r2
    ${FREE}`;

  it('takes a word loaded from a frame (resume at +0, destroy at +8)', () => {
    expect(verdict(callx('ldxdw %r2, [%r6+8]'))).toBe('accept');
    expect(verdict(callx('mov %r2, 5'))).toBe('R2 type=scalar expected=func or coro_handle');
  });

  it('passes no stack pointer to its target', () => {
    expect(verdict(callx('ldxdw %r2, [%r6+8]', 'mov %r3, %r10'))).toBe(
      'R3 stack pointer cannot be passed through callx',
    );
  });

  it('holds no reference and runs in no callback (its target may bpf_throw)', () => {
    const held = (release: string): string =>
      callx('ldxdw %r2, [%r6+8]').replace(
        'mov %r1, %r6\n    callx %r2',
        `call 158
        mov %r1, %r0
        call kfunc 5
        jeq %r0, 0, +2
        mov %r1, %r0
        ${release}
        ldxdw %r2, [%r6+8]
        mov %r1, %r6
        callx %r2`,
      );
    expect(verdict(held('call kfunc 6'))).toBe('accept');
    expect(verdict(held('mov %r1, 0'))).toBe(
      'callx through a coroutine handle while holding reference id=2 alloc_insn=10 (the callee may bpf_throw)',
    );
    const inCb = (body: string): string => `mov %r1, 2
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      mov %r0, 0
      exit
      cb:
      mov %r1, 0
      call kfunc 4
      jeq %r0, 0, +3
      ${body}
      mov %r0, 0
      exit`;
    expect(verdict(inCb('ldxdw %r2, [%r0+8]\nmov %r1, %r0\nmov %r3, 0'))).toBe('accept');
    expect(verdict(inCb('ldxdw %r2, [%r0+8]\nmov %r1, %r0\ncallx %r2'))).toBe(
      'callx through a coroutine handle (insn 13) cannot be called from callback subprog 1',
    );
  });

  it('clobbers r1-r5, keeps r6-r9 and returns an unknown scalar', () => {
    const after = (use: string): string =>
      callx('ldxdw %r2, [%r6+8]').replace('callx %r2', `callx %r2\n${use}`);
    expect(verdict(after('mov %r7, %r0\nstxdw [%r6+16], %r7'))).toBe('accept');
    expect(verdict(after('mov %r7, %r1'))).toBe('R1 !read_ok');
    expect(verdict(after('ldxdw %r7, [%r0+0]'))).toBe("R0 invalid mem access 'scalar'");
  });
});

describe('functions entered through their tokens (resume / destroy)', () => {
  /** main stores `destroy`'s token at +8 of a frame of `size` bytes; destroy reads `off`. */
  const tied = (size: number, off: number, at = 8): string => `${ALLOC(size)}
    lddw %r1, func destroy
    stxdw [%r6+${at}], %r1
    ${FREE}
    destroy:
    ldxdw %r0, [%r1+${off}]
    exit`;

  it('are verified with r1 = the frame their token is stored in', () => {
    const v = verify(tied(40, 32));
    expect([...(v.coroEntries ?? [])]).toEqual([[1, 40]]);
    expect(verdict(tied(40, 40))).toBe('R1 min value is outside of the allowed memory range');
  });

  it('are named in the log with the r1 they are verified with', () => {
    try {
      verify(tied(40, 40), 'perf_event', 1);
      expect.unreachable();
    } catch (e) {
      const log = (e as { log: string }).log;
      expect(log).toContain('token entry func#1: R1=coro_mem(sz=40)\n');
      expect(log).toContain('invalid access to memory, mem_size=40 off=40 size=8\n');
    }
  });

  it('take the smallest frame their token is stored in', () => {
    const two = tied(40, 24).replace(
      'lddw %r1, func destroy',
      `lddw %r1, func destroy\nmov %r1, 24\nmov %r2, 0\ncall kfunc 0\njeq %r0, 0, +3\nlddw %r1, func destroy\nstxdw [%r0+0], %r1\nlddw %r1, func destroy`,
    );
    expect(verdict(two)).toBe('R1 min value is outside of the allowed memory range');
    expect([...(verify(tied(40, 16)).coroEntries ?? [])]).toEqual([[1, 40]]);
  });

  it('get an unknown scalar in r1 when their token is not at +0 / +8 of a frame', () => {
    expect(verdict(tied(40, 0, 16))).toBe("R1 invalid mem access 'scalar'");
    const noop = tied(40, 0, 16).replace('ldxdw %r0, [%r1+0]', 'mov %r0, 0');
    expect([...(verify(noop).coroEntries ?? [])]).toEqual([[1, 0]]);
  });

  it('may return without setting r0, but must release what they acquire', () => {
    const body = (code: string): string =>
      tied(40, 0).replace('ldxdw %r0, [%r1+0]\n    exit', `${code}\nexit`);
    expect(verdict(body('mov %r6, %r1'))).toBe('accept');
    expect(
      verdict(
        body(`lddw %r1, map_fd 1
          mov %r2, 8
          mov %r3, 0
          call 131
          jeq %r0, 0, +0`),
      ),
    ).toMatch(/^Unreleased reference id=\d+ alloc_insn=\d+$/);
  });
});

describe('references kept in a frame across a suspension (the destroy path)', () => {
  const kept = keptRecordAsm;
  const unreleased =
    /^Unreleased reference id=\d+ alloc_insn=17 \(kept in the frame suspended at insn 23\)$/;

  it('move into the frame: its resume and destroy functions must release them', () => {
    expect(verdict(kept())).toBe('accept');
    expect(verdict(kept({ destroy: 'mov %r2, 0' }))).toMatch(unreleased);
    expect(verdict(kept({ resume: 'mov %r2, 0' }))).toMatch(unreleased);
  });

  it('are explored with the frame as the path left it (the suspend index byte)', () => {
    // destroy releases only at suspend index 1: the index stored before the suspension
    expect(verdict(kept().replace('stb [%r6+24], 1', 'stb [%r6+24], 2'))).toMatch(unreleased);
  });

  it('are named in the log with the suspension and what the frame holds', () => {
    const log = verify(kept(), 'perf_event', 2).log ?? '';
    expect(log).toMatch(
      /frame suspended at insn 23 keeps reference id=\d+: its resume \(func#1\) and destroy \(func#2\) must release it/,
    );
    expect(log).toMatch(/destroy \(func#2\) of the frame suspended at insn 23, holding id=\d+/);
  });

  it('leave the path: a register that held one is invalid after the suspension', () => {
    expect(verdict(kept({ after: 'stdw [%r7], 1' }))).toBe('R7 !read_ok');
    expect(verdict(kept({ after: 'ldxdw %r1, [%r6+16]\nstdw [%r1], 1' }))).toMatch(
      /^R1 invalid mem access/,
    );
  });

  it('stay on the path without a resume and a destroy token in the frame', () => {
    const noDestroy =
      'lddw %r1, func resume\nstxdw [%r6], %r1\nlddw %r1, func destroy\nstxdw [%r6+8], %r1\nstdw [%r6+8], 0';
    expect(verdict(kept({ tokens: noDestroy }))).toMatch(
      /^Unreleased reference id=\d+ alloc_insn=18$/,
    );
    expect(verdict(kept({ suspend: 'mov %r1, 0' }))).toMatch(
      /^Unreleased reference id=\d+ alloc_insn=17$/,
    );
  });

  it('move at bpf_coro_detach too: the runtime resumes or destroys what it owns', () => {
    expect(verdict(kept({ suspend: 'call kfunc 11' }))).toBe('accept');
    expect(verdict(kept({ suspend: 'call kfunc 11', destroy: 'mov %r2, 0' }))).toMatch(unreleased);
  });

  it('move only when bpf_coro_sleep scheduled the frame (r0 == 0)', () => {
    const sleep = 'mov %r2, 1000\ncall kfunc 10\njeq %r0, 0, +6';
    // r0 != 0: nothing was scheduled, the path still holds the record and must let it go
    const release = 'mov %r1, %r7\nmov %r2, 0\ncall 133\nmov %r1, %r6\ncall kfunc 1';
    expect(verdict(kept({ suspend: sleep, after: release }))).toBe('accept');
    expect(
      verdict(
        kept({
          suspend: sleep,
          after: 'mov %r0, 0\nmov %r0, 0\nmov %r0, 0\nmov %r0, 0\nmov %r0, 0',
        }),
      ),
    ).toMatch(/^Unreleased reference id=\d+ alloc_insn=17$/);
  });

  it('may be released through a handle where the frame is not known (checked at run time)', () => {
    // a function entered with any frame: the record word is a handle, which the helper checks
    const any = `${ALLOC(32)}
      lddw %r1, func destroy
      stxdw [%r6+8], %r1
      ${FREE}
    destroy:
      mov %r6, %r1
      ldxdw %r1, [%r6+16]
      stdw [%r1+8], 1
      mov %r2, 0
      call 133
      ldxdw %r1, [%r6+24]
      call kfunc 6
      mov %r0, 0
      exit`;
    const v = verify(any);
    // the store through the word is checked at run time (a frame or a reserved record)
    expect(v.frameChecks?.get(16)).toBe(16);
    // bpf_obj_drop_impl does not take handles: the allocator would free any live object
    expect(verdict(any.replace('call kfunc 6', 'mov %r2, 0\ncall kfunc 9'))).toBe(
      'R1 must be referenced or trusted',
    );
  });
});

describe('bpf_throw', () => {
  it('never returns: the insn after it is reached only by the other branch', () => {
    // as clang emits it: r6 is NULL on the fall-through of the check only until the throw
    expect(verdict(`${ALLOC()}\nstdw [%r6+0], 0\n${FREE}`)).toBe('accept');
    expect(verdict('mov %r1, 1\ncall kfunc 3\nstdw [%r6+0], 0\nexit')).toBe('accept');
  });

  it('is refused while a ringbuf record is held', () => {
    const asm = (release: string): string => `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, out
      mov %r1, %r0
      ${release}
      mov %r1, 7
      call kfunc 3
      out:
      mov %r0, 0
      exit`;
    expect(verdict(asm('mov %r2, 0\ncall 133'))).toBe('accept');
    expect(verdict(asm(''))).toBe('Unreleased reference id=2 alloc_insn=4');
  });

  it('is refused while a task reference is held', () => {
    const asm = (release: string): string => `call 158
      mov %r1, %r0
      call kfunc 5
      jeq %r0, 0, out
      mov %r1, %r0
      ${release}
      mov %r1, 7
      call kfunc 3
      out:
      mov %r0, 0
      exit`;
    expect(verdict(asm('call kfunc 6'))).toBe('accept');
    expect(verdict(asm(''))).toBe('Unreleased reference id=1 alloc_insn=2');
  });

  it('is refused in callbacks', () => {
    const asm = (body: string): string => `mov %r1, 2
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      mov %r0, 0
      exit
      cb:
      ${body}
      mov %r0, 0
      exit`;
    expect(verdict(asm('mov %r1, 1'))).toBe('accept');
    expect(verdict(asm('mov %r1, 1\ncall kfunc 3'))).toBe(
      'bpf_throw kfunc (insn 9) cannot be called from callback subprog 1',
    );
  });

  it('is recorded for the backends', () => {
    const v = verify('mov %r1, 1\ncall kfunc 3\nmov %r0, 0\nexit');
    expect([...(v.throwInsns ?? [])]).toEqual([1]);
    expect(v.reachable.slice(0, 4)).toEqual([true, true, false, false]);
  });
});

describe('task references', () => {
  it('need a trusted non-NULL task and must be released', () => {
    const asm = (arg: string, release = 'mov %r1, %r0\ncall kfunc 6'): string => `${arg}
      call kfunc 5
      jeq %r0, 0, +2
      ${release}
      mov %r0, 0
      exit`;
    expect(verdict(asm('call 158\nmov %r1, %r0'))).toBe('accept');
    expect(verdict(asm('mov %r1, 0'))).toBe('R1 type=scalar expected=ptr_task_struct');
    expect(verdict(asm('call 158\nmov %r1, %r0', 'mov %r1, 0\nmov %r1, 0'))).toMatch(
      /^Unreleased reference/,
    );
  });

  it('are released only by bpf_task_release, which releases nothing else', () => {
    // a ringbuf record is not a task: KF_RELEASE checks the argument's type
    const record = `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +3
      mov %r1, %r0
      ${'$'}{release}
      mov %r0, 0
      exit`;
    const discard = 'mov %r2, 0\ncall 133';
    expect(
      verdict(record.replace('${release}', discard).replace('jeq %r0, 0, +3', 'jeq %r0, 0, +4')),
    ).toBe('accept');
    expect(verdict(record.replace('${release}', 'call kfunc 6'))).toBe(
      'R1 type=ringbuf_mem expected=ptr_task_struct',
    );
    // nor is a task an object of bpf_obj_new
    const task = `call 158
      mov %r1, %r0
      call kfunc 5
      jeq %r0, 0, +3
      mov %r1, %r0
      ${'$'}{release}
      mov %r0, 0
      exit`;
    expect(verdict(task.replace('${release}', 'call kfunc 6'))).toBe('accept');
    expect(
      verdict(task.replace('${release}', 'mov %r2, 0\ncall kfunc 9').replace('+3', '+4')),
    ).toBe('R1 type=ptr_task_struct expected=an object of bpf_obj_new');
  });
});

describe('bpf_obj_new_impl', () => {
  const obj = (
    type: string,
    off: number,
    drop = 'mov %r1, %r6\nmov %r2, 0\ncall kfunc 9',
  ): string =>
    `${type}
    mov %r2, 0
    call kfunc 8
    mov %r6, %r0
    jne %r6, 0, +2
    mov %r0, 0
    exit
    stdw [%r6+${off}], 1
    ${drop}
    mov %r0, 0
    exit`;

  it('gives an object of the size of its BTF type, recorded for the backends', () => {
    const v = verify(obj('mov %r1, 3', 16));
    expect([...(v.objNewSizes ?? [])]).toEqual([[2, 24]]);
    expect(verdict(obj('mov %r1, 3', 24))).toBe(
      'R6 min value is outside of the allowed memory range',
    );
  });

  it('needs a constant id of a sized type of at most 4 KiB', () => {
    expect(verdict(obj('call 5\nmov %r1, %r0', 0))).toBe('R1 BTF type id is not a known constant');
    expect(verdict(obj('mov %r1, 7', 0))).toBe(
      "R1 type id 7 names no sized type of the program's BTF",
    );
    expect(verdict(obj('mov %r1, 4', 0))).toBe('bpf_obj_new type size 8192 is not in [1, 4096]');
  });

  it('must be dropped', () => {
    expect(verdict(obj('mov %r1, 3', 0, 'mov %r1, 0'))).toMatch(
      /^Unreleased reference id=\d+ alloc_insn=2$/,
    );
  });
});

describe('frame slots (constant offsets of a frame, per path)', () => {
  /** A loop whose counter lives at +56 and that bpf_coro_sleep's non-zero result repeats. */
  const loop = (extra: string): string => `${ALLOC(64)}
    ldxdw %r9, [%r6+16]
    stdw [%r6+56], 0
    again:
    ldxdw %r8, [%r6+56]
    jgt %r8, 14, done
    add %r8, 1
    stxdw [%r6+56], %r8
    ${extra}
    mov %r1, %r6
    mov %r2, 1000
    call kfunc 10
    jne %r0, 0, again
    mov %r0, 0
    exit
    done:
    ${FREE}`;

  it('bound a loop whose counter is stored in the frame and reloaded', () => {
    expect(verdict(loop(''))).toBe('accept');
    expect(verdict(loop('stw [%r6+48], 7'))).toBe('accept');
  });

  // Without the counter the loop never ends: the checkpoint heuristic decides whether that is
  // seen as an infinite loop or runs into the insn limit.
  it('are forgotten by a store through a handle, a partial overwrite or a callx', () => {
    for (const extra of [
      'stdw [%r9+24], 0',
      'stb [%r6+60], 0',
      'ldxdw %r2, [%r6+8]\nmov %r1, %r6\ncallx %r2',
    ]) {
      expect([extra, verdict(loop(extra))]).toEqual([
        extra,
        expect.stringMatching(/^(infinite loop|BPF program is too large)/),
      ]);
    }
  });

  /** cgroup_skb programs return 0 or 1: r0 loaded from +56 must be known. */
  const ret = (body: string): string =>
    verdict(
      `${ALLOC(64)}
    ${body}
    ldxdw %r0, [%r6+56]
    exit`,
      'cgroup_skb',
    );
  const UNKNOWN =
    'At program exit the register R0 has unknown scalar value should have been in [0, 1]';

  it('give back what a store left, through copies of the frame pointer and spills', () => {
    expect(ret('stdw [%r6+56], 1')).toBe('accept');
    expect(ret('')).toBe(UNKNOWN);
    expect(ret('mov %r7, %r6\nstxdw [%r10-8], %r7\nldxdw %r8, [%r10-8]\nstdw [%r8+56], 1')).toBe(
      'accept',
    );
    // another frame is another identity
    expect(ret(`mov %r7, %r6\n${ALLOC(64)}\nstdw [%r7+56], 1`)).toBe(UNKNOWN);
    // a variable offset may hit the slot
    expect(
      ret('stdw [%r6+56], 1\ncall 7\nand %r0, 8\nmov %r1, %r6\nadd %r1, %r0\nstdw [%r1+48], 5'),
    ).toBe(UNKNOWN);
  });

  it('of narrow stores hold the value truncated to their size', () => {
    const narrow = (store: string, load: string): string =>
      verdict(
        `${ALLOC(64)}
      lddw %r1, 0x100000001
      ${store}
      ${load}
      exit`,
        'cgroup_skb',
      );
    expect(narrow('stxw [%r6+56], %r1', 'ldxw %r0, [%r6+56]')).toBe('accept');
    expect(narrow('stxdw [%r6+56], %r1', 'ldxdw %r0, [%r6+56]')).toMatch(/^At program exit/);
    // a load of another size than the store's is not matched
    expect(narrow('stxw [%r6+56], %r1', 'ldxh %r0, [%r6+56]')).toMatch(/^At program exit/);
  });

  it("survive bpf_coro_sleep's non-zero result, not its zero result", () => {
    const sleep = (branch: string): string =>
      ret(`stdw [%r6+56], 1
      mov %r1, %r6
      mov %r2, 1000
      call kfunc 10
      ${branch}
      mov %r0, 0
      exit
      on:`);
    expect(sleep('jne %r0, 0, on')).toBe('accept');
    expect(sleep('jeq %r0, 0, on')).toBe(UNKNOWN);
  });

  /** A ringbuf record stored at +16 and reloaded into r1, written; `between` runs after. */
  const record = (between: string): string => `${ALLOC(64)}
    lddw %r1, map_fd 1
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    stxdw [%r6+16], %r0
    mov %r7, %r0
    ${between}
    ldxdw %r1, [%r6+16]
    stw [%r1+0], 1
    mov %r1, %r7
    mov %r2, 0
    call 133
    out:
    mov %r0, 0
    exit`;

  it('keep a pointer type while the pointer is valid, not after its release', () => {
    expect(verdict(record(''))).toBe('accept');
    const released = `${ALLOC(64)}
      lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, out
      stxdw [%r6+16], %r0
      mov %r1, %r0
      mov %r2, 0
      call 133
      ldxdw %r1, [%r6+16]
      stw [%r1+0], 1
      out:
      mov %r0, 0
      exit`;
    expect(verdict(released)).toBe("R1 invalid mem access 'scalar'");
  });
});

describe('what the verifier tells the JIT about allocations', () => {
  it('records a frame size that is the same constant on every path, and not one that differs', () => {
    const same = verify(`${ALLOC(48)}\n${FREE}`);
    expect([...(same.frameAllocSizes ?? [])]).toEqual([[2, 48]]);
    // r1 = 32 or 64 on two paths into the same call
    const mixed = verify(`
      call 7
      mov %r1, 32
      jeq %r0, 0, +1
      mov %r1, 64
      mov %r2, 0
      call kfunc 0
      mov %r6, %r0
      jne %r6, 0, +2
      mov %r1, 12
      call kfunc 3
      ${FREE}`);
    expect(mixed.frameAllocSizes?.has(5)).toBe(false);
  });

  it('marks a bpf_coro_frame_free live when every path passes a frame pointer, not a handle', () => {
    const live = verify(`${ALLOC(32)}\n${FREE}`);
    expect([...(live.liveFrameFrees ?? [])]).toEqual([8]);
    // the same free insn reached with a handle on another path (a cancelled frame)
    const handle = verify(`${ALLOC(32)}
      mov %r1, 0
      call kfunc 4
      mov %r1, %r6
      jeq %r0, 0, +1
      mov %r1, %r0
      call kfunc 1
      mov %r0, 0
      exit`);
    expect(handle.liveFrameFrees?.size ?? 0).toBe(0);
  });

  it('refuses a bpf_obj_new call that allocates different types on different paths', () => {
    expect(
      verdict(`
      call 7
      mov %r1, 3
      jeq %r0, 0, +1
      mov %r1, 5
      mov %r2, 0
      call kfunc 8
      jeq %r0, 0, +3
      mov %r1, %r0
      mov %r2, 0
      call kfunc 9
      mov %r0, 0
      exit`),
    ).toMatch(/^bpf_obj_new of \d+ bytes here, of \d+ on another path$/);
  });
});
