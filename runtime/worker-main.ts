/**
 * The entry of a worker thread of a Vm (DESIGN.md §2-3): one "CPU". It instantiates the
 * runtime module and every loaded program against the Vm's shared memory with its own call
 * table (the same slot numbers as the host's: helper blocks, kfunc slots, function tokens), its
 * own globals (stack pointer, control slot, ctx: `workerLayout(index)`) and its own helpers
 * (runtime/worker-helpers.ts), then serves requests rung on its doorbell (worker-protocol.ts)
 * until the host terminates it. After a request it polls the doorbell for WORKER_SPIN_US, then
 * sleeps; while idle it wakes every `heartbeatMs` to bump its heartbeat.
 *
 * Called from: runtime/worker-pool.ts (`new Worker`). Never imported by host code.
 */

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  CORO_ENTRY_CHECK_SLOT,
  CORO_FRAME_CHECK_SLOT,
  CTRL_ARG0,
  CTRL_ARG1,
  CTRL_ARG2,
  CTRL_CMD,
  CTRL_CMD_PROG,
  CTRL_CORO_DEPTH,
  CTRL_DONE,
  CTRL_DOORBELL,
  CTRL_ERR_CODE,
  CTRL_ERR_LEN,
  CTRL_HEARTBEAT,
  CTRL_PROG,
  CTRL_SLOT_SIZE,
  CTRL_STATUS,
  EXPORT_FUNC_PREFIX,
  EXPORT_RUN,
  EXPORT_RUN_BATCH,
  FUNC_TOKEN_BASE,
  IMPORT_CTRL,
  IMPORT_CTX,
  IMPORT_CORO_DRAIN,
  IMPORT_MEMORY,
  IMPORT_MODULE,
  IMPORT_SP,
  IMPORT_STACK_LIMIT,
  IMPORT_TABLE,
  SCRATCH_SIZE,
  WORKER_CMD_RUN,
  WORKER_CMD_RUN_BATCH,
  WORKER_STATUS_ERROR,
  WORKER_STATUS_OK,
  workerLayout,
} from '../src/abi.js';
import { InternalError, isExecError } from '../src/errors.js';
import { helperFastPath } from '../src/helper-protos.js';
import { instantiateHelperAdapter } from '../jit/adapter.js';
import { runtimeModuleHelpers } from './maps/helpers.js';
import { instantiateRt } from './rt.js';
import { trapToError } from './trap.js';
import { workerHelpers } from './worker-helpers.js';
import { WorkerTermination } from './termination-worker.js';
import { fastPathFn } from './fast-path.js';
import {
  WORKER_CMD_LOAD,
  WORKER_SPIN_US,
  type WorkerFailure,
  type WorkerInit,
  type WorkerProgram,
} from './worker-protocol.js';

type RunFn = (a: number, b: number) => number;
type BatchFn = (desc: number, count: number, results: number) => number;

const init = workerData as WorkerInit;
const layout = workerLayout(init.index);
const memory = init.memory;
// The control block sits in the first pages: a view of the initial buffer stays valid (a
// shared buffer is never detached by memory.grow).
const ctrl32 = new Int32Array(memory.buffer, layout.ctrl, CTRL_SLOT_SIZE / 4);
const w32 = (off: number): number => off / 4;
let view = new DataView(memory.buffer);
let bytes = new Uint8Array(memory.buffer);
const host = {
  memory,
  worker: layout,
  u8(): Uint8Array {
    if (bytes.buffer.byteLength !== memory.buffer.byteLength) bytes = new Uint8Array(memory.buffer);
    return bytes;
  },
  dataView(): DataView {
    if (view.buffer.byteLength !== memory.buffer.byteLength) view = new DataView(memory.buffer);
    return view;
  },
};

const table = new WebAssembly.Table({ element: 'anyfunc', initial: FUNC_TOKEN_BASE });
const globals = {
  sp: new WebAssembly.Global({ value: 'i32', mutable: true }, layout.stackTop),
  stackLimit: new WebAssembly.Global({ value: 'i32', mutable: false }, layout.progStackLimit),
  ctrl: new WebAssembly.Global({ value: 'i32', mutable: false }, layout.ctrl),
  ctx: new WebAssembly.Global({ value: 'i32', mutable: false }, layout.ctx),
};
const rt = instantiateRt(memory, init.index, (op) => (op === 1 ? 0n : -22n), { table, layout });
rt.alloc_attach(init.alloc.state, init.index, layout.ctrl);
// the runtime module's kfuncs (the frame allocator): Vm-wide slots, this worker's instance
for (const k of init.alloc.kfuncs) {
  const fn = (rt as unknown as Record<string, WebAssembly.ExportValue>)[k.export ?? k.name];
  table.set(k.slot, fn ?? null);
}
// the frame allocator's check, for accesses through coroutine handles (src/abi.ts)
const frameCheck = (rt as unknown as Record<string, unknown>)['coro_frame_check'];
if (typeof frameCheck === 'function') table.set(CORO_FRAME_CHECK_SLOT, frameCheck);
// tokens a checked callx may reach: the Vm's entry map, read in Wasm (runtime/coro-entries.ts)
table.set(CORO_ENTRY_CHECK_SLOT, rt.coro_entry_check);
const jsHelpers = workerHelpers(host, init.index, init.helpers);
const rtHelpers = runtimeModuleHelpers(rt);
const termination = new WorkerTermination(
  host,
  table,
  [...jsHelpers, ...rtHelpers].map((h) => h.id),
  init.alloc.kfuncs,
);
// every JS helper call is a termination checkpoint; once the run is being terminated a helper
// still called through its adapter (the swap replaces only helpers with a fast path) runs
// its fast path if it has one
const adapted =
  init.adapter === undefined
    ? []
    : instantiateHelperAdapter(
        init.adapter,
        jsHelpers.map((h) => termination.watched(h.fn, fastPathFn(host, helperFastPath(h.id)))),
      );
const helperSlots: [number, WebAssembly.ExportValue][] = [
  ...jsHelpers.map((h, k): [number, WebAssembly.ExportValue] => [
    h.id,
    adapted[k] as WebAssembly.ExportValue,
  ]),
  ...rtHelpers.map((h): [number, WebAssembly.ExportValue] => [
    h.id,
    h.wasm as WebAssembly.ExportValue,
  ]),
];
const programs = new Map<
  number,
  {
    readonly run: RunFn;
    readonly batch: BatchFn;
    readonly helperBase: number;
    readonly unwindable: boolean;
  }
>();

/** Instantiates `p` and puts its helpers and functions in this worker's table. */
function loadProgram(p: WorkerProgram): void {
  const inst = new WebAssembly.Instance(p.module, {
    [IMPORT_MODULE]: {
      [IMPORT_MEMORY]: memory,
      [IMPORT_TABLE]: table,
      [IMPORT_SP]: globals.sp,
      [IMPORT_STACK_LIMIT]: globals.stackLimit,
      [IMPORT_CTRL]: globals.ctrl,
      [IMPORT_CTX]: globals.ctx,
      [IMPORT_CORO_DRAIN]: rt.coro_drain_deferred,
    },
  });
  const end = p.funcTokenBase + p.subprogs;
  if (end > table.length) table.grow(end - table.length + 64);
  for (const [id, fn] of helperSlots) table.set(p.helperBase + id, fn);
  termination.install(p.helperBase);
  for (let k = 0; k < p.subprogs; k++) {
    table.set(
      p.funcTokenBase + k,
      inst.exports[`${EXPORT_FUNC_PREFIX}${k}`] as WebAssembly.ExportValue,
    );
  }
  programs.set(p.id, {
    run: inst.exports[EXPORT_RUN] as RunFn,
    batch: inst.exports[EXPORT_RUN_BATCH] as BatchFn,
    helperBase: p.helperBase,
    unwindable: p.unwindable === true,
  });
}

/** Leaves `e` encoded in the scratch area for the host (worker-pool.ts decodes it). */
function recordFailure(e: unknown): void {
  const err = trapToError(e, host.dataView(), layout.ctrl);
  const failure: WorkerFailure = isExecError(err)
    ? {
        name: err.name,
        message: err.message,
        insnIdx: err.insnIdx,
        kind: err.kind,
        reason: err.reason,
      }
    : { name: err.name, message: err.message };
  let text = new TextEncoder().encode(JSON.stringify(failure));
  if (text.length > SCRATCH_SIZE) {
    const short: WorkerFailure = {
      name: err.name,
      message: err.message.slice(0, SCRATCH_SIZE / 2),
    };
    text = new TextEncoder().encode(JSON.stringify(short));
  }
  host.u8().set(text, layout.scratch);
  ctrl32[w32(CTRL_ERR_LEN)] = text.length;
  ctrl32[w32(CTRL_ERR_CODE)] = 0;
  globals.sp.value = layout.stackTop;
}

/** After an abandoned run: what its entry would have reset on the way out. */
function abandoned(): void {
  globals.sp.value = layout.stackTop;
  ctrl32[w32(CTRL_ERR_CODE)] = 0;
  ctrl32[w32(CTRL_CORO_DEPTH)] = 0;
  ctrl32[w32(CTRL_PROG)] = 0;
}

/** Serves one request; returns its status. */
function serve(cmd: number): number {
  if (cmd === WORKER_CMD_LOAD) {
    const msg = receiveMessageOnPort(init.port);
    if (msg === undefined) throw new InternalError(`worker ${init.index}: load without a program`);
    try {
      loadProgram(msg.message as WorkerProgram);
      return WORKER_STATUS_OK;
    } catch (e) {
      recordFailure(e);
      return WORKER_STATUS_ERROR;
    }
  }
  const prog = programs.get(ctrl32[w32(CTRL_CMD_PROG)] as number);
  const a0 = ctrl32[w32(CTRL_ARG0)] as number;
  const a1 = ctrl32[w32(CTRL_ARG1)] as number;
  const a2 = ctrl32[w32(CTRL_ARG2)] as number;
  try {
    if (prog === undefined) throw new InternalError(`worker ${init.index}: unknown program`);
    termination.beforeRun(prog.helperBase, prog.unwindable);
    if (cmd === WORKER_CMD_RUN) prog.run(a0, a1);
    else if (cmd === WORKER_CMD_RUN_BATCH) prog.batch(a0, a1, a2);
    else throw new InternalError(`worker ${init.index}: unknown request ${cmd}`);
    return WORKER_STATUS_OK;
  } catch (e) {
    if (e === termination.unwind) {
      // an abandoned run: the ack tells the host it was terminated (LoadedProgram.runOn)
      abandoned();
      return WORKER_STATUS_OK;
    }
    recordFailure(e);
    return WORKER_STATUS_ERROR;
  } finally {
    termination.afterRun();
  }
}

for (const p of init.programs) loadProgram(p);
let seen = Atomics.load(ctrl32, w32(CTRL_DOORBELL));
parentPort?.postMessage({ type: 'ready' });
for (;;) {
  const spinUntil = performance.now() + WORKER_SPIN_US / 1000;
  while (Atomics.load(ctrl32, w32(CTRL_DOORBELL)) === seen && performance.now() < spinUntil);
  Atomics.wait(ctrl32, w32(CTRL_DOORBELL), seen, init.heartbeatMs);
  // the heartbeat is a u64; its low word is enough to see progress
  Atomics.add(ctrl32, w32(CTRL_HEARTBEAT), 1);
  const bell = Atomics.load(ctrl32, w32(CTRL_DOORBELL));
  if (bell === seen) continue;
  seen = bell;
  const status = serve(Atomics.load(ctrl32, w32(CTRL_CMD)));
  Atomics.store(ctrl32, w32(CTRL_STATUS), status);
  Atomics.add(ctrl32, w32(CTRL_HEARTBEAT), 1);
  Atomics.store(ctrl32, w32(CTRL_DONE), bell);
  Atomics.notify(ctrl32, w32(CTRL_DONE));
}
