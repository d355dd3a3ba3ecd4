/**
 * A ringbuf record kept in a coroutine frame across a suspension, on both engines: the
 * verifier moves the reference into the frame and verifies the resume and destroy functions
 * holding it (src/verifier/check-coro.ts suspendFrame); where a function reloads the record
 * as a handle, the run-time check of the access accepts a reserved record
 * (CORO_CHECK_RECORD, runtime/wasm/rt.ts coro_frame_check).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { CORO_CHECK_RECORD } from '../../src/abi.js';
import { Vm, type VmOptions } from '../../runtime/vm.js';
import { keptRecordAsm, kfuncCalls } from '../helpers/coro-asm.js';
import { ringbufMap } from '../helpers/maps.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

const KFUNCS = ['bpf_coro_frame_alloc', 'bpf_coro_frame_free', 'bpf_coro_defer'];

async function setup(engine: 'jit' | 'interp', opts: VmOptions = {}) {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 }, ...opts });
  vms.push(vm);
  const ring = ringbufMap(vm);
  const prog = assembleProgram(keptRecordAsm().replace('map_fd 1', `map_fd ${ring.id}`));
  const p = await vm.load(prog, { kfuncs: kfuncCalls(prog, KFUNCS), type: 'perf_event', engine });
  const records = (): bigint[] => {
    const out: bigint[] = [];
    ring
      .ringbuf()
      .consume((r) => out.push(new DataView(r.buffer, r.byteOffset).getBigUint64(0, true)));
    return out;
  };
  return { vm, p, records };
}

const READY = { coroutines: { sweepIntervalMs: 0, defer: 'ready-queue' as const } };

describe.each(['jit', 'interp'] as const)('a record kept in a frame (%s)', (engine) => {
  it('is written through the reloaded word and submitted when the frame resumes', async () => {
    const { vm, p, records } = await setup(engine);
    expect(p.run(new Uint8Array(8))).toBe(0n);
    expect(records()).toEqual([7n]);
    expect(vm.coroutines.stats()).toMatchObject({ created: 1, live: 0 });
  });

  // the host resumes and destroys frames through the functions' tokens (call-table slots)

  it('is discarded when the suspended frame is destroyed', async () => {
    const { vm, p, records } = await setup(engine, READY);
    p.run(new Uint8Array(8));
    const [frame] = vm.coroutines.liveFrames();
    expect(vm.coroutines.destroy(frame as number)).toBe(true);
    expect(records()).toEqual([]);
    expect(vm.coroutines.stats()).toMatchObject({ created: 1, destroyed: 1, live: 0 });
    // the ring is free again: the next run's record is submitted
    expect(p.run(new Uint8Array(8))).toBe(0n);
    expect(vm.coroutines.run()).toBe(1);
    expect(records()).toEqual([7n]);
  });

  it('passes the run-time check of a handle access only while reserved', async () => {
    const { vm, p } = await setup(engine, READY);
    p.run(new Uint8Array(8));
    const frame = vm.coroutines.liveFrames()[0] as number;
    const rec = Number(vm.dataView().getBigUint64(frame + 16, true));
    const check = (addr: number, need: number): boolean => vm.coroFrameCheck(addr, need);
    expect(check(rec, 8 | CORO_CHECK_RECORD)).toBe(true);
    // a function entry (no flag) takes frames only; not past the record, nor inside it
    expect(check(rec, 8)).toBe(false);
    expect(check(rec, 9 | CORO_CHECK_RECORD)).toBe(false);
    expect(check(rec + 8, 1 | CORO_CHECK_RECORD)).toBe(false);
    expect(check(frame, 32 | CORO_CHECK_RECORD)).toBe(true);
    expect(vm.coroutines.destroy(frame)).toBe(true);
    expect(check(rec, 8 | CORO_CHECK_RECORD)).toBe(false);
  });

  it('fails the run when the word no longer names a reserved record', async () => {
    const { vm, p, records } = await setup(engine, READY);
    p.run(new Uint8Array(8));
    const frame = vm.coroutines.liveFrames()[0] as number;
    const rec = vm.dataView().getBigUint64(frame + 16, true);
    // the host points the kept word past the record: the resume's store is refused
    vm.dataView().setBigUint64(frame + 16, rec + 8n, true);
    expect(() => vm.coroutines.run()).toThrow(
      expect.objectContaining({ name: 'ExecError', kind: 'frame' }),
    );
    expect(records()).toEqual([]);
  });
});
