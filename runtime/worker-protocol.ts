/**
 * What the host (runtime/worker-pool.ts) and a worker thread (runtime/worker-main.ts) exchange.
 * Runs never use messages: the host writes a request into the worker's control slot (src/abi.ts
 * CTRL_CMD..CTRL_ARG2), bumps CTRL_DOORBELL and notifies; the worker runs it, writes
 * CTRL_STATUS (and r0 at CTRL_R0, or an encoded error in its scratch area), stores the request
 * number in CTRL_DONE and notifies. Messages carry only what cannot live in linear memory:
 * compiled modules at start-up and at program load (through a private MessagePort that the
 * worker reads synchronously when the doorbell says WORKER_CMD_LOAD), and the one 'ready'
 * message of each thread.
 */

import type { MessagePort } from 'node:worker_threads';
import type { WorkerHelperConfig } from './worker-helpers.js';

/**
 * How long (µs) a worker polls its doorbell after a request before it sleeps in Atomics.wait.
 * Waking a sleeping thread costs 25-60 µs on a loaded 2-core machine; a request that arrives
 * while the worker polls costs ≈2 µs round trip (measured: notes in the workers commit).
 */
export const WORKER_SPIN_US = 50;

/** Worker request: instantiate the program the port carries (a `WorkerProgram`). */
export const WORKER_CMD_LOAD = 3;

/** A program as a worker instantiates it: the same module and call-table slots as the host. */
export interface WorkerProgram {
  readonly id: number;
  /** The program's name, for reports (a hung worker names what it ran). */
  readonly name: string;
  readonly module: WebAssembly.Module;
  /** Table slot of helper id 0 for this program. */
  readonly helperBase: number;
  /** Token (table slot) of subprog 0; the others follow. */
  readonly funcTokenBase: number;
  readonly subprogs: number;
  /** A terminated run is abandoned, not run down (`TermProg.unwindable`). */
  readonly unwindable?: boolean;
}

/** `workerData` of a worker thread. */
export interface WorkerInit {
  readonly index: number;
  readonly memory: WebAssembly.Memory;
  /** The helper adapter module for `workerHelpers(...)`, in their order. */
  readonly adapter: WebAssembly.Module | undefined;
  readonly helpers: WorkerHelperConfig;
  /** Programs loaded before this thread started (a replacement re-instantiates them). */
  readonly programs: readonly WorkerProgram[];
  /** The worker end of the load channel. */
  readonly port: MessagePort;
  /** How often (ms) an idle worker wakes to bump its heartbeat. */
  readonly heartbeatMs: number;
  readonly alloc: WorkerAllocInit;
}

/**
 * The frame allocator as a worker joins it: the state block its runtime instance attaches to,
 * and the call-table slots of the kfuncs the runtime module implements, which the worker fills
 * from its own instance: export `name`, or `export` where the worker's version of a kfunc is
 * another function than the host thread's (bpf_coro_sleep: bpf_coro_sleep_queued).
 */
export interface WorkerAllocInit {
  readonly state: number;
  readonly kfuncs: readonly {
    readonly name: string;
    readonly slot: number;
    readonly export?: string;
  }[];
}

/** A run's failure as the worker encodes it in its scratch area (JSON, UTF-8). */
export interface WorkerFailure {
  readonly name: string;
  readonly message: string;
  /** For an ExecError: where and what. */
  readonly insnIdx?: number | null;
  readonly kind?: string;
  readonly reason?: string;
}
