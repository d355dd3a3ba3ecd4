/**
 * The destroy path, fuzzed (src/verifier/check-coro.ts suspendFrame): generated coroutines
 * take ringbuf records and task references, keep them in frame slots, suspend (defer, detach or
 * yield) and release them (or not, or from the wrong slot, or at the wrong suspend index) in
 * their resume and destroy functions; a resume function may suspend again instead. Every program the verifier accepts is run on the JIT and
 * each frame it leaves is then resumed or destroyed: afterwards no task reference may be held,
 * no record may stay reserved and nothing may have failed. A mix of accepted and rejected
 * programs shows the generator reaches both sides.
 */

import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { isBpfError } from '../../src/errors.js';
import { Vm } from '../../runtime/vm.js';
import { allocFrameAsm, kfuncCalls, TOKENS_ASM } from '../helpers/coro-asm.js';
import { ringbufMap } from '../helpers/maps.js';

const KFUNCS = [
  'bpf_coro_frame_alloc', // 0
  'bpf_coro_frame_free', // 1
  'bpf_coro_defer', // 2
  'bpf_coro_detach', // 3
  'bpf_coro_yield', // 4
  'bpf_task_acquire', // 5
  'bpf_task_release', // 6
];

const SEED = 0xc0de;
const COUNT = 400;
const OFFSETS = [16, 24, 32, 40];

/** xorshift32 over `seed`: an integer in [0, n). */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

type Kind = 'rec' | 'task';

interface Gen {
  readonly asm: string;
  readonly drive: readonly ('resume' | 'destroy')[];
}

/** Releases the `kind` resource in register `r` (`commit`: submit instead of discard). */
function release(kind: Kind, r: string, commit = false): string {
  return kind === 'rec'
    ? `mov %r1, ${r}\nmov %r2, 0\ncall ${commit ? 132 : 133}`
    : `mov %r1, ${r}\ncall kfunc 6`;
}

function generate(rand: (n: number) => number): Gen {
  const kinds: Kind[] = Array.from({ length: 1 + rand(2) }, () => (rand(2) === 0 ? 'rec' : 'task'));
  const offs = kinds.map(() => OFFSETS[rand(OFFSETS.length)] as number);
  // mostly where they were stored; sometimes a wrong slot or a wrong release
  const reload = (i: number): number =>
    rand(10) === 0 ? (OFFSETS[rand(4)] as number) : (offs[i] as number);
  const wrongKind = (k: Kind): Kind => (rand(12) === 0 ? (k === 'rec' ? 'task' : 'rec') : k);
  const index = rand(6) === 0 ? 2 : 1;
  const suspend = (['defer', 'detach', 'yield'] as const)[rand(3)];
  const destroyToken = rand(10) !== 0;
  // the resume function suspends again (index 2, deferred) instead of releasing
  const again = rand(4) === 0;
  // the destroy function releases at suspend index 1 only, or at any index
  const anyIndex = rand(2) === 0;
  const held = (upto: number): string =>
    kinds
      .slice(0, upto)
      .map((k, i) => release(k, `%r${7 + i}`))
      .join('\n');
  const take = kinds
    .map((k, i) => {
      const get =
        k === 'rec'
          ? 'lddw %r1, map_fd 1\nmov %r2, 8\nmov %r3, 0\ncall 131'
          : 'call 158\nmov %r1, %r0\ncall kfunc 5';
      return `${get}
        jne %r0, 0, got${i}
        ${held(i)}
        mov %r1, %r6
        call kfunc 1
        mov %r0, 1
        exit
      got${i}:
        mov %r${7 + i}, %r0
        stxdw [%r6+${offs[i]}], %r0`;
    })
    .join('\n');
  const tail =
    suspend === 'defer'
      ? 'call kfunc 2\nmov %r0, 0\nexit'
      : suspend === 'detach'
        ? 'call kfunc 3\nmov %r0, 0\nexit'
        : `call kfunc 4
          jeq %r0, 0, queued
          ${held(kinds.length)}
          mov %r1, %r6
          call kfunc 1
          mov %r0, 2
          exit
        queued:
          mov %r0, 0
          exit`;
  const releases = (fn: string, commit: boolean): string =>
    kinds
      .map((k, i) =>
        rand(8) === 0
          ? ''
          : `ldxdw %r1, [%r6+${reload(i)}]
            jeq %r1, 0, ${fn}${i}
            ${release(wrongKind(k), '%r1', commit)}
          ${fn}${i}:
            mov %r0, 0`,
      )
      .join('\n');
  const asm = `${allocFrameAsm(64, 3)}
      ${TOKENS_ASM}
      ${destroyToken ? '' : 'stdw [%r6+8], 0'}
      ${take}
      stb [%r6+48], ${index}
      mov %r1, %r6
      ${tail}
    resume:
      mov %r6, %r1
      ${
        again
          ? `stb [%r6+48], 2
            mov %r1, %r6
            call kfunc 2
            mov %r0, 0
            exit`
          : `${releases('rs', true)}
            stdw [%r6], 0
            mov %r1, %r6
            call kfunc 1
            mov %r0, 0
            exit`
      }
    destroy:
      mov %r6, %r1
      ldxdw %r1, [%r6]
      jeq %r1, 0, dfree
      ldxb %r2, [%r6+48]
      ${anyIndex ? '' : 'jne %r2, 1, dfree'}
      ${releases('ds', false)}
    dfree:
      mov %r1, %r6
      call kfunc 1
      mov %r0, 0
      exit`;
  return { asm, drive: [rand(2) === 0 ? 'resume' : 'destroy'] };
}

interface Outcome {
  accepted: number;
  rejected: number;
  violations: string[];
}

/** Programs one Vm loads before the fuzz makes the next (a Vm links at most 252). */
const PER_VM = 100;

async function fuzz(seed: number, count: number): Promise<Outcome> {
  const rand = rng(seed);
  const out: Outcome = { accepted: 0, rejected: 0, violations: [] };
  for (let n = 0; n < count && out.violations.length === 0; n += PER_VM)
    await fuzzVm(rand, n, Math.min(PER_VM, count - n), out);
  return out;
}

/** Programs `first` .. `first + count - 1` in one Vm. */
async function fuzzVm(
  rand: (n: number) => number,
  first: number,
  count: number,
  out: Outcome,
): Promise<void> {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0, defer: 'ready-queue' } });
  try {
    const ring = ringbufMap(vm, 1 << 16);
    for (let n = first; n < first + count; n++) {
      const g = generate(rand);
      const prog = assembleProgram(g.asm.replace('map_fd 1', `map_fd ${ring.id}`));
      let p;
      try {
        p = await vm.load(prog, { kfuncs: kfuncCalls(prog, KFUNCS), type: 'perf_event' });
      } catch (e) {
        if (isBpfError(e) && e.name === 'VerifierError') {
          out.rejected++;
          continue;
        }
        throw e;
      }
      out.accepted++;
      try {
        p.run(new Uint8Array(8));
        for (const f of vm.coroutines.liveFrames()) {
          if (g.drive[0] === 'resume') vm.coroutines.resume(f);
          else vm.coroutines.destroy(f);
        }
        // what suspended again: resumed once more, then whatever is left destroyed
        for (const f of vm.coroutines.liveFrames()) vm.coroutines.resume(f);
        for (const f of vm.coroutines.liveFrames()) vm.coroutines.destroy(f);
        vm.coroutines.run();
      } catch (e) {
        out.violations.push(`program ${n}: ${String(e)}\n${g.asm}`);
        return;
      }
      ring.ringbuf().consume(() => {});
      const pending = ring.ringbuf().pending;
      if (vm.taskRefs.held !== 0 || pending !== 0) {
        out.violations.push(
          `program ${n} (${g.drive[0]}): ${vm.taskRefs.held} task references held, ${pending} ringbuf bytes reserved\n${g.asm}`,
        );
        return;
      }
    }
  } finally {
    await vm.close();
  }
}

describe('the destroy path (fuzzed)', () => {
  it(`leaves nothing held after any accepted coroutine is resumed or destroyed (${COUNT} programs, seed ${SEED})`, async () => {
    const o = await fuzz(SEED, COUNT);
    const totals = `accepted ${o.accepted}, rejected ${o.rejected}`;
    expect(o.violations.slice(0, 2).join('\n\n'), totals).toBe('');
    expect(o.accepted, totals).toBeGreaterThan(COUNT / 10);
    expect(o.rejected, totals).toBeGreaterThan(COUNT / 10);
  }, 120_000);
});
