/**
 * What the engines check at run time for the verifier's coroutine rules
 * (src/verifier/check-coro.ts), on the JIT and the interpreter alike: `bpf_throw` unwinds to
 * the entry with r0 = the cookie; accesses through coroutine handles and the entry of resume /
 * destroy functions call the runtime's `coro_frame_check` (call-table slot
 * CORO_FRAME_CHECK_SLOT), stubbed here over an array map value standing for a frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { assemble } from '../../../src/asm/assembler.js';
import { CORO_CHECK_RECORD, CORO_FRAME_CHECK_SLOT } from '../../../src/abi.js';
import { isBpfError, isExecError } from '../../../src/errors.js';
import { BPF_PSEUDO_KFUNC_CALL } from '../../../src/isa/opcodes.js';
import { createProgram } from '../../../src/program.js';
import type { LoadedProgram } from '../../../runtime/loaded-program.js';
import { Vm } from '../../../runtime/vm.js';
import { makeTestVm } from '../../helpers/engines.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((vm) => vm.close()));
});

/**
 * `(module (import "e" "f" (func (param i32 i32) (result i32))) (export "f" (func 0)))`: makes
 * a JS function a Wasm function a call table can hold.
 */
const SHIM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01,
  0x7f, 0x02, 0x07, 0x01, 0x01, 0x65, 0x01, 0x66, 0x00, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00,
  0x00,
]);

/**
 * `coro_frame_check` stub: `frame` is the only live frame, of `size` bytes. Records each call's
 * frame and `need` (with CORO_CHECK_RECORD for accesses through a handle: `access(n)`).
 */
function stubFrameCheck(vm: Vm, frame: () => number, size: number, calls: number[][]): void {
  const f = (a: number, need: number): number => {
    calls.push([a >>> 0, need >>> 0]);
    return a >>> 0 === frame() && (need & ~CORO_CHECK_RECORD) <= size ? 1 : 0;
  };
  const inst = new WebAssembly.Instance(new WebAssembly.Module(SHIM), { e: { f } });
  vm.table.set(CORO_FRAME_CHECK_SLOT, inst.exports['f'] as WebAssembly.ExportValue);
}

/** `need` of a check before an access through a handle of `n` bytes. */
const access = (n: number): number => (n | CORO_CHECK_RECORD) >>> 0;

/** `call kfunc N` calls NAMES[N]. */
const NAMES = [
  'bpf_throw',
  'bpf_coro_take_cancelled',
  'bpf_coro_frame_alloc',
  'bpf_coro_frame_free',
];

async function loadBoth(
  vm: Vm,
  asm: string,
): Promise<{ jit: LoadedProgram; interp: LoadedProgram }> {
  const insns = assemble(asm);
  const kfuncs = new Map<number, { name: string; weak: boolean }>();
  insns.forEach((i, idx) => {
    const name = NAMES[i.imm];
    if (i.code === 0x85 && i.src === BPF_PSEUDO_KFUNC_CALL && name !== undefined)
      kfuncs.set(idx, { name, weak: false });
  });
  const jit = await vm.load(createProgram(insns, { type: 'mem' }), { kfuncs });
  return { jit, interp: await jit.withEngine('interp') };
}

/** r0 and `thrown`, or the error kind and insn. */
function outcome(p: LoadedProgram, input?: Uint8Array): string {
  try {
    const r0 = p.run(input);
    return `r0=${r0} thrown=${p.thrown}`;
  } catch (e) {
    if (isExecError(e)) return `${e.kind} at insn ${String(e.insnIdx)}`;
    if (isBpfError(e)) return `${e.name}: ${e.message}`;
    throw e;
  }
}

describe('bpf_throw', () => {
  /** Throws `cookie` from a subprog two calls deep when the input's first byte is 1. */
  const THROWER = `ldxb %r1, [%r1+0]
    call local f
    add %r0, 1
    exit
    f:
    stdw [%r10-8], 5
    call local g
    ldxdw %r1, [%r10-8]
    add %r0, %r1
    exit
    g:
    jne %r1, 1, +3
    lddw %r1, 0x1122334455667788
    call kfunc 0
    mov %r0, 10
    exit`;

  it('unwinds to the entry with r0 = the cookie, on both engines', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const { jit, interp } = await loadBoth(vm, THROWER);
    for (const p of [jit, interp]) {
      expect(outcome(p, new Uint8Array([1]))).toBe(`r0=${0x1122334455667788n} thrown=true`);
      // the stack pointer was restored: the next run (two calls deep again) is normal
      expect(outcome(p, new Uint8Array([0]))).toBe('r0=16 thrown=false');
      expect(outcome(p, new Uint8Array([1]))).toBe(`r0=${0x1122334455667788n} thrown=true`);
    }
  });

  it('ends a batch with a TerminationError on both engines', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const { jit, interp } = await loadBoth(vm, THROWER);
    for (const p of [jit, interp]) {
      expect(() => p.runBatch([new Uint8Array([0]), new Uint8Array([1])])).toThrow(
        'terminated: throw',
      );
      expect([...p.runBatch([new Uint8Array([0]), new Uint8Array([0])])]).toEqual([16, 16]);
    }
  });
});

describe('coroutine handles', () => {
  /**
   * A frame stand-in: the value of a one-entry array map (64 bytes), holding `value` at +16
   * and the token of `destroy` at +8; bpf_coro_take_cancelled returns its address + `shift`.
   */
  async function setup(
    asm: string,
    frameSize: number,
    shift = 0,
    token = (base: number): number => base + 1,
  ): Promise<{ jit: LoadedProgram; interp: LoadedProgram; calls: number[][]; frame: number }> {
    const vm = makeTestVm();
    vms.push(vm);
    const map = vm.createMap({ name: 'f', type: 2, keySize: 4, valueSize: 64, maxEntries: 1 });
    const frame = map.valueRegion.start;
    const calls: number[][] = [];
    stubFrameCheck(vm, () => frame, frameSize, calls);
    vm.registerKfunc({ name: 'bpf_coro_take_cancelled', fn: () => BigInt(frame + shift) });
    vm.registerKfunc({ name: 'bpf_coro_frame_alloc', fn: () => 0n });
    vm.registerKfunc({ name: 'bpf_coro_frame_free', fn: () => 0n });
    const { jit, interp } = await loadBoth(vm, asm);
    const value = new Uint8Array(64);
    const view = new DataView(value.buffer);
    view.setBigUint64(16, 0xabcdn, true);
    view.setBigUint64(8, BigInt(token(jit.links.funcTokenBase)), true);
    map.update(new Uint8Array(4), value);
    return { jit, interp, calls, frame };
  }

  /** Reads +16 of the cancelled frame. */
  const READ = `mov %r1, 0
    call kfunc 1
    jne %r0, 0, +2
    mov %r0, 0
    exit
    ldxdw %r0, [%r0+16]
    exit`;

  it('are checked with coro_frame_check before each access', async () => {
    const { jit, interp, calls, frame } = await setup(READ, 64);
    expect([outcome(jit), outcome(interp)]).toEqual([
      `r0=${0xabcd} thrown=false`,
      `r0=${0xabcd} thrown=false`,
    ]);
    expect(calls).toEqual([
      [frame, access(24)],
      [frame, access(24)],
    ]);
  });

  it('need no NULL check: coro_frame_check refuses NULL', async () => {
    const unchecked = `mov %r1, 0
      call kfunc 1
      ldxdw %r0, [%r0+16]
      exit`;
    const live = await setup(unchecked, 64);
    expect([outcome(live.jit), outcome(live.interp)]).toEqual([
      `r0=${0xabcd} thrown=false`,
      `r0=${0xabcd} thrown=false`,
    ]);
    const none = await setup(unchecked, 64, -live.frame);
    expect([outcome(none.jit), outcome(none.interp)]).toEqual([
      'frame at insn 2',
      'frame at insn 2',
    ]);
  });

  it('fail the run when the handle is not a live frame that large', async () => {
    const small = await setup(READ, 16);
    expect([outcome(small.jit), outcome(small.interp)]).toEqual([
      'frame at insn 5',
      'frame at insn 5',
    ]);
    const moved = await setup(READ, 64, 8);
    expect([outcome(moved.jit), outcome(moved.interp)]).toEqual([
      'frame at insn 5',
      'frame at insn 5',
    ]);
  });

  /**
   * `destroy` is verified with r1 = a frame of 40 bytes (its token is stored at +8 of one);
   * main calls it through the cancelled frame's +8 with callx.
   */
  const CALLX = `mov %r1, 40
    mov %r2, 0
    call kfunc 2
    jeq %r0, 0, +6
    mov %r6, %r0
    lddw %r1, func destroy
    stxdw [%r6+8], %r1
    mov %r1, %r6
    call kfunc 3
    mov %r1, 0
    call kfunc 1
    jne %r0, 0, +2
    mov %r0, 0
    exit
    ldxdw %r2, [%r0+8]
    mov %r1, %r0
    callx %r2
    exit
    destroy:
    ldxdw %r0, [%r1+16]
    add %r0, 1
    exit`;

  it('reach resume / destroy functions that check their frame at entry', async () => {
    const ok = await setup(CALLX, 64);
    expect(ok.jit.verified?.coroEntries).toEqual(new Map([[1, 40]]));
    expect([outcome(ok.jit), outcome(ok.interp)]).toEqual([
      `r0=${0xabce} thrown=false`,
      `r0=${0xabce} thrown=false`,
    ]);
    // the handle access may also reach a reserved record, the entry check only a frame
    expect(ok.calls).toEqual([
      [ok.frame, access(16)],
      [ok.frame, 40],
      [ok.frame, access(16)],
      [ok.frame, 40],
    ]);
    const small = await setup(CALLX, 32);
    const entry = small.jit.program.subprogs[1]?.start;
    expect([outcome(small.jit), outcome(small.interp)]).toEqual([
      `frame at insn ${entry}`,
      `frame at insn ${entry}`,
    ]);
  });
});

describe('callx through a handle', () => {
  it('reaches only functions verified as token entries', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const asm = `mov %r1, 0
      call kfunc 1
      jne %r0, 0, +2
      mov %r0, 0
      exit
      ldxdw %r2, [%r0+8]
      mov %r1, 0
      callx %r2
      exit
      entry:
      mov %r0, 7
      exit`;
    // entry's token sits in .rodata-like global data: an entry with r1 unknown
    const map = vm.createMap({ name: 'f', type: 2, keySize: 4, valueSize: 16, maxEntries: 1 });
    const frame = map.valueRegion.start;
    stubFrameCheck(vm, () => frame, 16, []);
    vm.registerKfunc({ name: 'bpf_coro_take_cancelled', fn: () => BigInt(frame) });
    const insns = assemble(asm);
    const prog = createProgram(insns, { type: 'mem', dataFuncs: [9] });
    const kfuncs = new Map([[1, { name: 'bpf_coro_take_cancelled', weak: false }]]);
    const jit = await vm.load(prog, { kfuncs });
    const interp = await jit.withEngine('interp');
    expect(jit.verified?.callxChecks).toEqual(new Set([7]));
    expect(jit.verified?.coroEntries).toEqual(new Map([[1, 0]]));
    const put = (token: number): void => {
      const v = new Uint8Array(16);
      new DataView(v.buffer).setBigUint64(8, BigInt(token), true);
      map.update(new Uint8Array(4), v);
    };
    put(jit.links.funcTokenBase + 1);
    expect([outcome(jit), outcome(interp)]).toEqual(['r0=7 thrown=false', 'r0=7 thrown=false']);
    for (const bad of [jit.links.funcTokenBase, 5, 0]) {
      put(bad);
      expect([outcome(jit), outcome(interp)]).toEqual(['call at insn 7', 'call at insn 7']);
    }
  });
});

describe('bpf_obj_new_impl', () => {
  it('gets the object size of its BTF type in r1 on both engines', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const map = vm.createMap({ name: 'o', type: 2, keySize: 4, valueSize: 32, maxEntries: 1 });
    const sizes: bigint[] = [];
    vm.registerKfunc({
      name: 'bpf_obj_new_impl',
      fn: (a) => {
        sizes.push(a[0]);
        return BigInt(map.valueRegion.start);
      },
    });
    vm.registerKfunc({ name: 'bpf_obj_drop_impl', fn: () => 0n });
    const insns = assemble(`mov %r1, 3
      mov %r2, 0
      call kfunc 0
      jne %r0, 0, +1
      exit
      mov %r6, %r0
      stdw [%r6+16], 9
      ldxdw %r7, [%r6+16]
      mov %r1, %r6
      mov %r2, 0
      call kfunc 1
      mov %r0, %r7
      exit`);
    const kfuncs = new Map([
      [2, { name: 'bpf_obj_new_impl', weak: false }],
      [10, { name: 'bpf_obj_drop_impl', weak: false }],
    ]);
    const prog = createProgram(insns, { type: 'mem' });
    const jit = await vm.load(prog, { kfuncs, btfTypeSize: (id) => (id === 3 ? 24 : undefined) });
    const interp = await jit.withEngine('interp');
    expect([outcome(jit), outcome(interp)]).toEqual(['r0=9 thrown=false', 'r0=9 thrown=false']);
    expect(sizes).toEqual([24n, 24n]);
  });
});

describe('callx through a handle on a worker thread', () => {
  it('reaches the verified entries of the programs loaded there, nothing else', async () => {
    // Vm.create: the test Vm's wabt validation does not take shared memories
    const vm = Vm.create({ workers: 1 });
    vms.push(vm);
    // BPF_F_RDONLY_PROG: 8-byte loads from its value are handles, as from .rodata
    const map = vm.createMap({
      name: 'ro',
      type: 2,
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
      flags: 0x80,
    });
    const insns = assemble(`lddw %r1, map_value ${map.id}, 0
      ldxdw %r2, [%r1+0]
      mov %r1, 0
      callx %r2
      exit
      entry:
      mov %r0, 7
      exit`);
    const jit = await vm.load(createProgram(insns, { type: 'mem', dataFuncs: [6] }));
    expect([jit.verified?.callxChecks, jit.verified?.coroEntries]).toEqual([
      new Set([4]),
      new Map([[1, 0]]),
    ]);
    const put = (token: number): void => {
      const v = new Uint8Array(8);
      new DataView(v.buffer).setBigUint64(0, BigInt(token), true);
      map.update(new Uint8Array(4), v);
    };
    put(jit.links.funcTokenBase + 1);
    expect(await jit.runOn(0)).toBe(7n);
    put(jit.links.funcTokenBase);
    await expect(jit.runOn(0)).rejects.toThrow(/call/);
  });
});

describe('loads from read-only global data (BPF_F_RDONLY_PROG) checked at run time', () => {
  /** A 16-byte array map holding 0x11 at +0 and 0x22 at +8; read-only to programs with `ro`. */
  function dataMap(vm: Vm, ro: boolean): { id: number; start: number } {
    const map = vm.createMap({
      name: 'ro',
      type: 2,
      keySize: 4,
      valueSize: 16,
      maxEntries: 1,
      flags: ro ? 0x80 : 0,
    });
    const v = new Uint8Array(16);
    new DataView(v.buffer).setBigUint64(0, 0x11n, true);
    new DataView(v.buffer).setBigUint64(8, 0x22n, true);
    map.update(new Uint8Array(4), v);
    return { id: map.id, start: map.valueRegion.start };
  }

  /** A verifier rejection's reason, or 'accept'. */
  async function verdict(vm: Vm, asm: string): Promise<string> {
    try {
      await loadBoth(vm, asm);
      return 'accept';
    } catch (e) {
      if (isBpfError(e) && e.name === 'VerifierError')
        return (e as unknown as { reason: string }).reason;
      throw e;
    }
  }

  /** Index = the input's first byte (0..255), as clang's gotox dispatch on a suspend index. */
  const TABLE = (id: number): string => `ldxb %r2, [%r1+0]
    lsh %r2, 3
    lddw %r3, map_value ${id}, 0
    add %r3, %r2
    ldxdw %r0, [%r3+0]
    exit`;

  it('accept a table load whose index the verifier cannot bound, failing the run past the table', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const ro = dataMap(vm, true);
    const { jit, interp } = await loadBoth(vm, TABLE(ro.id));
    expect(jit.verified?.regionChecks).toEqual(new Map([[5, [ro.id]]]));
    for (const p of [jit, interp]) {
      expect(outcome(p, new Uint8Array([0]))).toBe(`r0=${0x11} thrown=false`);
      expect(outcome(p, new Uint8Array([1]))).toBe(`r0=${0x22} thrown=false`);
      expect(outcome(p, new Uint8Array([2]))).toBe('mem at insn 5');
      expect(outcome(p, new Uint8Array([255]))).toBe('mem at insn 5');
    }
  });

  it('keep the kernel rule for writable maps: the offset must be bounded', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const rw = dataMap(vm, false);
    expect(await verdict(vm, TABLE(rw.id))).toBe(
      'R3 max value is outside of the allowed memory range',
    );
  });

  /**
   * As coro_symmetric's final suspend: one load through either the read-only noop frame (no
   * continuation) or the continuation handle.
   */
  const EITHER = (id: number): string => `mov %r1, 0
    call kfunc 1
    lddw %r1, map_value ${id}, 0
    jeq %r0, 0, +1
    mov %r1, %r0
    ldxdw %r0, [%r1+8]
    exit`;

  it('let one load go through read-only global data or a handle', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    const ro = dataMap(vm, true);
    const frame = vm.createMap({ name: 'f', type: 2, keySize: 4, valueSize: 64, maxEntries: 1 });
    const v = new Uint8Array(64);
    new DataView(v.buffer).setBigUint64(8, 0x33n, true);
    frame.update(new Uint8Array(4), v);
    let cancelled = 0;
    stubFrameCheck(vm, () => frame.valueRegion.start, 64, []);
    vm.registerKfunc({ name: 'bpf_coro_take_cancelled', fn: () => BigInt(cancelled) });
    const { jit, interp } = await loadBoth(vm, EITHER(ro.id));
    expect([jit.verified?.frameChecks, jit.verified?.regionChecks]).toEqual([
      new Map([[6, 16]]),
      new Map([[6, [ro.id]]]),
    ]);
    for (const p of [jit, interp]) {
      cancelled = 0;
      expect(outcome(p)).toBe(`r0=${0x22} thrown=false`);
      cancelled = frame.valueRegion.start;
      expect(outcome(p)).toBe(`r0=${0x33} thrown=false`);
      // a handle that is neither a live frame nor inside the read-only value
      cancelled = frame.valueRegion.start + 8;
      expect(outcome(p)).toBe('frame at insn 6');
      cancelled = ro.start + 8;
      expect(outcome(p)).toBe('frame at insn 6');
    }
  });

  it('but not through writable global data and a handle', async () => {
    const vm = makeTestVm();
    vms.push(vm);
    vm.registerKfunc({ name: 'bpf_coro_take_cancelled', fn: () => 0n });
    const rw = dataMap(vm, false);
    expect(await verdict(vm, EITHER(rw.id))).toBe(
      'R1 is a coroutine handle on one path and a verified pointer on another; the run-time frame check of insn 6 would refuse the pointer',
    );
  });
});
