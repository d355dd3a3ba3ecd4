/**
 * A program linked into a Vm and ready to run on one engine. The run methods are the hot
 * path: with the JIT, `runU32(n)` on a packet already written into `input` is one JS→Wasm
 * call and no copy; `runBatch` runs many inputs in one call (the loop is inside Wasm).
 *
 * Inputs: for `mem` programs r1 = the input's address and r2 = its length (r1 = 0 and r2 = 0
 * for an empty input, as uBPF's conformance plugin does); for `xdp` programs the entry builds
 * `struct xdp_md` over the packet and passes its address.
 */

import type { VerifiedProgram } from '../src/verifier/verified-program.js';
import {
  CTRL_PROG,
  programOwner,
  CTRL_DEFER_HEAD,
  CTRL_DEFER_TAIL,
  CTRL_R0,
  CTRL_TERM_ACK,
  CTRL_TERM_DEADLINE,
  STACK_OFF,
  TERM_REASON_TIMEOUT,
  WORKER_CMD_RUN,
  WORKER_CMD_RUN_BATCH,
  workerLayout,
  EXPORT_RUN,
  EXPORT_RUN_BATCH,
  EXPORT_RUN_CTX,
  PACKET_CAPACITY,
  PERF_EVENT_DATA,
  SK_BUFF,
  XDP_MD,
  XDP_PACKET_HEADROOM,
  type ProgLinks,
} from '../src/abi.js';
import { BPF_MAX_LOOPS } from '../src/isa/opcodes.js';
import { TerminationError, UsageError } from '../src/errors.js';
import { DEFAULT_INSN_BUDGET, type ExecEnv, type MemRegion } from '../src/interp/env.js';
import { interpret } from '../src/interp/interpreter.js';
import type { Program, ProgType } from '../src/program.js';
import type { CompiledModule, CompileTimings } from '../jit/compile.js';
import { testRun, type TestRunOptions, type TestRunResult } from './test-run.js';
import { trapToError } from './trap.js';
import type { Vm } from './vm.js';
import type { WorkerPool } from './worker-pool.js';
import { terminatedRun, type TermProg } from './termination.js';

/** Execution backend: the JIT (Wasm) or the reference interpreter. */
export type Engine = 'jit' | 'interp';

/** A run input: bytes to copy into the packet area, or the length of what is already there. */
export type RunInput = Uint8Array | number | undefined;

/** Options of one run. */
export interface RunOptions {
  /**
   * Watchdog: terminate the run this many ns (on the Vm's clock) after it starts. The run then
   * stops at its next checkpoint (may_goto, an iterator callback, a JS helper call), runs down
   * its verified paths with fast-path helpers and throws `TerminationError` ('timeout').
   */
  readonly deadlineNs?: number | bigint;
}

/** Inputs laid out once in Vm memory, to be run many times by `runBatch`. */
export interface Batch {
  readonly count: number;
  /** Address of `count` (addr u32, len u32) descriptors. */
  readonly descAddr: number;
  /** Address of `count` u32 results. */
  readonly resultsAddr: number;
  /** Address of the input bytes. */
  readonly dataAddr: number;
}

/** What `Vm.load` hands over. */
export interface LoadedProgramInit {
  readonly id: number;
  readonly prog: Program;
  readonly type: ProgType;
  readonly engine: Engine;
  readonly links: ProgLinks;
  readonly exports: WebAssembly.Exports | undefined;
  readonly timings: CompileTimings | undefined;
  readonly compileMs: number;
  readonly compiled: CompiledModule | undefined;
  readonly insnBudget: number | undefined;
  /** The verifier's result; undefined when loaded with `verify: false`. */
  readonly verified: VerifiedProgram | undefined;
}

type RunFn = (a: number, b: number) => number;
type RunCtxFn = (ctx: number, pkt: number, len: number) => number;
type BatchFn = (desc: number, count: number, results: number) => number;

/** A loaded program. */
export class LoadedProgram {
  readonly vm: Vm;
  readonly id: number;
  readonly program: Program;
  readonly type: ProgType;
  readonly engine: Engine;
  readonly links: ProgLinks;
  /** Per-phase compile timings in ms (JIT only). */
  readonly timings: CompileTimings | undefined;
  /** Total ms from `load` start to an instantiated module (JIT only). */
  readonly compileMs: number;
  /** The compiled module, when loaded with `annotate`. */
  readonly compiled: CompiledModule | undefined;
  /** What the verifier proved and learned; undefined when loaded with `verify: false`. */
  readonly verified: VerifiedProgram | undefined;
  private readonly runFn: RunFn | undefined;
  private readonly batchFn: BatchFn | undefined;
  private readonly runCtxFn: RunCtxFn | undefined;
  private readonly insnBudget: number;
  private lastThrown = false;
  private inputView: Uint8Array;
  /** The slots termination swaps for this program. */
  private readonly termProg: TermProg;
  /** Killed for good (`Vm.terminate(prog, { mode: 'program' })`): every run is refused. */
  private killed = false;

  constructor(vm: Vm, init: LoadedProgramInit) {
    this.vm = vm;
    this.id = init.id;
    this.program = init.prog;
    this.type = init.type;
    this.engine = init.engine;
    this.links = init.links;
    this.timings = init.timings;
    this.compileMs = init.compileMs;
    this.compiled = init.compiled;
    this.verified = init.verified;
    this.runFn = init.exports?.[EXPORT_RUN] as RunFn | undefined;
    this.batchFn = init.exports?.[EXPORT_RUN_BATCH] as BatchFn | undefined;
    this.runCtxFn = init.exports?.[EXPORT_RUN_CTX] as RunCtxFn | undefined;
    this.insnBudget = init.insnBudget ?? DEFAULT_INSN_BUDGET;
    this.inputView = new Uint8Array(vm.memory.buffer, vm.worker.packet, PACKET_CAPACITY);
    this.termProg = vm.termProg(init.prog, init.links, init.verified);
    vm.termination.register(programOwner(init.links.helperBase), this.termProg);
  }

  /** Marks the program dead: later runs throw `TerminationError` without running. */
  kill(): void {
    this.killed = true;
  }

  /** True once the program was killed for good. */
  get isKilled(): boolean {
    return this.killed;
  }

  /** The frame allocator owner this program's allocations are charged to (id + 1). */
  get owner(): number {
    return programOwner(this.links.helperBase);
  }

  /**
   * The packet area of this Vm's worker, in Wasm memory: write a packet here and pass its
   * length to `run`/`runU32` to run without a copy.
   */
  get input(): Uint8Array {
    if (this.inputView.buffer !== this.vm.memory.buffer) {
      this.inputView = new Uint8Array(
        this.vm.memory.buffer,
        this.vm.worker.packet,
        PACKET_CAPACITY,
      );
    }
    return this.inputView;
  }

  /**
   * Whether the last run (`run`, `runU32`, `runWithCtx`) ended in `bpf_throw`: it unwound to
   * the entry and its r0 is the cookie (the kernel's default exception callback).
   * @example
   * const r0 = prog.run();
   * if (prog.thrown) console.log(`threw ${r0}`);
   */
  get thrown(): boolean {
    return this.lastThrown;
  }

  /**
   * Runs once and returns r0 as an unsigned 64-bit bigint. A run that was terminated (a
   * deadline, `Vm.terminate`) throws `TerminationError` after it has run down and its helper
   * slots are restored.
   * @example
   * const r0 = prog.run(new Uint8Array([0xaa, 0xbb]));
   * prog.run(packet, { deadlineNs: 1_000_000 }); // at most about 1 ms
   */
  run(input?: RunInput, opts?: RunOptions): bigint {
    this.runU32(input, opts);
    return this.vm.dataView().getBigUint64(this.vm.worker.ctrl + CTRL_R0, true);
  }

  /** Runs once and returns the low 32 bits of r0 (the verdict path). */
  runU32(input?: RunInput, opts?: RunOptions): number {
    if (this.killed) throw new TerminationError('request');
    const term = this.vm.termination;
    const prev = term.running;
    if (prev === undefined && opts?.deadlineNs === undefined && !term.shared) {
      // the common run: no deadline to arm, no other thread to hear from. The run's entry
      // stores the program at ctrl + CTRL_PROG, where a request made during the run
      // (vm.terminate from a helper) finds it and engages `term`, acted on here.
      let r: number;
      try {
        r = this.runOnce(input);
      } catch (e) {
        if (term.engaged) {
          const reason = term.exit(undefined);
          if (reason !== undefined) throw terminatedRun(reason);
        }
        throw e;
      }
      if (term.engaged) {
        const reason = term.exit(undefined);
        if (reason !== undefined) throw terminatedRun(reason);
      }
      return r;
    }
    let out: number;
    try {
      term.enter(this.termProg, opts?.deadlineNs);
      out = this.runOnce(input);
    } finally {
      const reason = term.exit(prev);
      // eslint-disable-next-line no-unsafe-finally
      if (reason !== undefined) throw terminatedRun(reason);
    }
    return out;
  }

  private runOnce(input: RunInput): number {
    const len = this.place(input);
    const addr = len === 0 ? 0 : this.vm.worker.packet;
    if (this.type === 'perf_event') return this.runPerfEvent(len);
    if (this.type !== 'mem' && this.type !== 'xdp') return this.runSkb(this.vm.worker.packet, len);
    this.lastThrown = false;
    if (this.engine === 'jit') {
      try {
        return (this.runFn as RunFn)(addr, len) >>> 0;
      } catch (e) {
        // an abandoned run (Termination.engage): runU32 reports it, without another throw
        if (this.vm.termination.isUnwind(e)) {
          this.vm.resetWorker();
          return 0;
        }
        return this.caught(this.fail(e));
      }
    }
    return Number(this.interpretOnce(addr, len, true) & 0xffffffffn);
  }

  /**
   * The same linked program (same function tokens, helper block and pseudo lddw values) on
   * another engine, so that both engines can be compared on identical state.
   * @example
   * const jit = await vm.load(prog);
   * const interp = await jit.withEngine('interp');
   */
  withEngine(engine: Engine): Promise<LoadedProgram> {
    if (engine === this.engine) return Promise.resolve(this);
    return this.vm.prepare(
      {
        id: this.id,
        prog: this.program,
        type: this.type,
        links: this.links,
        verified: this.verified,
      },
      engine,
      { insnBudget: this.insnBudget },
    );
  }

  /** Lays out inputs in Vm memory once, for `runBatch`. Free it with `releaseBatch`. */
  prepareBatch(inputs: readonly Uint8Array[]): Batch {
    const count = inputs.length;
    // A verified mem program may read up to memInputSize bytes of its input: each input gets
    // that much room, zero-padded (the verifier's model of R1).
    const room = this.memInputRoom();
    const slot = (x: Uint8Array): number => Math.max(x.length, room);
    const dataBytes = inputs.reduce((n, x) => n + slot(x), 0);
    const descAddr = this.vm.heap.alloc(Math.max(16, count * 8 + count * 4 + dataBytes));
    const resultsAddr = descAddr + count * 8;
    const dataAddr = resultsAddr + count * 4;
    const view = this.vm.dataView();
    const u8 = this.vm.u8();
    let at = dataAddr;
    inputs.forEach((x, k) => {
      u8.set(x, at);
      if (slot(x) > x.length) u8.fill(0, at + x.length, at + slot(x));
      view.setUint32(descAddr + k * 8, slot(x) === 0 ? 0 : at, true);
      view.setUint32(descAddr + k * 8 + 4, x.length, true);
      at += slot(x);
    });
    return { count, descAddr, resultsAddr, dataAddr };
  }

  /**
   * Lays out `count` runs for `runBatch`/`runBatchOn` over a few inputs: run k gets input
   * k mod n, each input laid out once (a program that writes its input sees its earlier runs'
   * writes, as with repeated `run` calls). A stream of n packets replayed `count` times costs
   * n packets of memory. For throughput runs over many workers, give each its own batch.
   * Free it with `releaseBatch`.
   * @example
   * const b = prog.prepareRepeatBatch(packet, 100_000);
   * await prog.runBatchOn(0, b);
   */
  prepareRepeatBatch(inputs: Uint8Array | readonly Uint8Array[], count: number): Batch {
    const list = inputs instanceof Uint8Array ? [inputs] : inputs;
    if (!Number.isInteger(count) || count < 1 || list.length === 0)
      throw new UsageError(`a repeat batch needs inputs and a positive count, not ${count}`);
    const room = this.memInputRoom();
    const slot = (x: Uint8Array): number => Math.max(this.checkInput(x), room);
    const dataBytes = list.reduce((n, x) => n + slot(x), 0);
    const descAddr = this.vm.heap.alloc(count * 12 + dataBytes + 8);
    const resultsAddr = descAddr + count * 8;
    const dataAddr = resultsAddr + count * 4;
    const u8 = this.vm.u8();
    const at: number[] = [];
    let next = dataAddr;
    for (const x of list) {
      u8.set(x, next);
      u8.fill(0, next + x.length, next + slot(x));
      at.push(slot(x) === 0 ? 0 : next);
      next += slot(x);
    }
    const desc = new Uint32Array(this.vm.memory.buffer, descAddr, count * 2);
    for (let k = 0; k < count; k++) {
      const i = k % list.length;
      desc[2 * k] = at[i] as number;
      desc[2 * k + 1] = (list[i] as Uint8Array).length;
    }
    return { count, descAddr, resultsAddr, dataAddr };
  }

  /** Bytes a verified mem program may access after R1 (0 for other programs). */
  private memInputRoom(): number {
    return this.type === 'mem' ? (this.verified?.memInputSize ?? 0) : 0;
  }

  /** Frees a batch made by `prepareBatch`. */
  releaseBatch(batch: Batch): void {
    this.vm.heap.release(batch.descAddr);
  }

  /**
   * Runs the program once per input of `batch` in one call and returns the low 32 bits of each
   * r0: for a prepared Batch a view into Vm memory, valid until its next run or memory growth;
   * for an array of inputs a copy.
   */
  runBatch(batch: Batch | readonly Uint8Array[]): Uint32Array {
    const b = Array.isArray(batch)
      ? this.prepareBatch(batch as readonly Uint8Array[])
      : (batch as Batch);
    if (this.killed) throw new TerminationError('request');
    const term = this.vm.termination;
    const prev = term.running;
    try {
      term.enter(this.termProg, undefined);
      if (this.engine === 'jit') {
        try {
          (this.batchFn as BatchFn)(b.descAddr, b.count, b.resultsAddr);
        } catch (e) {
          throw this.fail(e);
        }
      } else {
        const view = this.vm.dataView();
        for (let k = 0; k < b.count; k++) {
          const addr = view.getUint32(b.descAddr + k * 8, true);
          const len = view.getUint32(b.descAddr + k * 8 + 4, true);
          // as on the JIT, a bpf_throw ends the whole batch (TerminationError)
          const r0 = this.interpretOnce(addr, len, false);
          this.vm.dataView().setUint32(b.resultsAddr + k * 4, Number(r0 & 0xffffffffn), true);
        }
      }
      const view = new Uint32Array(this.vm.memory.buffer, b.resultsAddr, b.count);
      // a temporary batch is freed below: its results must be copied out
      return Array.isArray(batch) ? view.slice() : view;
    } finally {
      if (Array.isArray(batch)) this.releaseBatch(b);
      const reason = term.exit(prev);
      // eslint-disable-next-line no-unsafe-finally
      if (reason !== undefined) throw terminatedRun(reason);
    }
  }

  /**
   * Runs once on worker thread `worker` of a Vm with workers and resolves with r0 (u64). The
   * input is copied into that worker's packet area when the worker is free; r0 comes back
   * through its control slot. Runs on one worker happen in call order.
   * @example
   * const vm = Vm.create({ workers: 2 });
   * const prog = await vm.load(program);
   * const [a, b] = await Promise.all([prog.runOn(0, pkt), prog.runOn(1, pkt)]);
   */
  runOn(worker: number, input?: Uint8Array, opts?: RunOptions): Promise<bigint> {
    const pool = this.pool();
    const w = workerLayout(worker);
    const len = this.checkInput(input);
    if (this.killed) return Promise.reject(new TerminationError('request'));
    return pool.request(worker, {
      cmd: WORKER_CMD_RUN,
      prog: this.id,
      args: [len === 0 ? 0 : w.packet, len, 0],
      before: () => {
        if (input !== undefined && input.length > 0) this.vm.u8().set(input, w.packet);
        // the worker's clock is process.hrtime, the same monotonic clock in every thread
        const deadline =
          opts?.deadlineNs === undefined ? 0n : process.hrtime.bigint() + BigInt(opts.deadlineNs);
        this.vm.dataView().setBigUint64(w.ctrl + CTRL_TERM_DEADLINE, deadline, true);
      },
      after: () => {
        const v = this.vm.dataView();
        const ack = Atomics.exchange(
          new Int32Array(this.vm.memory.buffer),
          (w.ctrl + CTRL_TERM_ACK) / 4,
          0,
        );
        v.setBigUint64(w.ctrl + CTRL_TERM_DEADLINE, 0n, true);
        if (ack !== 0)
          throw new TerminationError(ack === TERM_REASON_TIMEOUT ? 'timeout' : 'request');
        return v.getBigUint64(w.ctrl + CTRL_R0, true);
      },
    });
  }

  /**
   * Runs `batch` (from `prepareBatch`; its memory is shared with the workers) on worker thread
   * `worker`; resolves with the view of its u32 results in Vm memory.
   */
  runBatchOn(worker: number, batch: Batch): Promise<Uint32Array> {
    return this.pool().request(worker, {
      cmd: WORKER_CMD_RUN_BATCH,
      prog: this.id,
      args: [batch.descAddr, batch.count, batch.resultsAddr],
      after: () => new Uint32Array(this.vm.memory.buffer, batch.resultsAddr, batch.count),
    });
  }

  /**
   * Spreads `inputs` over all worker threads in contiguous shares (one batch per worker, run
   * in parallel) and resolves with the low 32 bits of every r0, in input order.
   * @example
   * const verdicts = await prog.runBatchParallel(packets);
   */
  async runBatchParallel(inputs: readonly Uint8Array[]): Promise<Uint32Array> {
    const pool = this.pool();
    const n = pool.count;
    const share = Math.ceil(inputs.length / n);
    const out = new Uint32Array(inputs.length);
    const batches: Batch[] = [];
    try {
      for (let i = 0; i < n && i * share < inputs.length; i++) {
        batches.push(this.prepareBatch(inputs.slice(i * share, (i + 1) * share)));
      }
      await Promise.all(
        batches.map(async (b, i) => out.set(await this.runBatchOn(i, b), i * share)),
      );
      return out;
    } finally {
      for (const b of batches) this.releaseBatch(b);
    }
  }

  /** The Vm's worker threads, for a program they can run. */
  private pool(): WorkerPool {
    const pool = this.vm.workers;
    if (pool === undefined)
      throw new UsageError('the Vm has no workers (create it with Vm.create({ workers: n }))');
    if (this.vm.isClosed) throw new UsageError('the Vm is closed');
    if (this.engine !== 'jit') throw new UsageError('workers run JIT-compiled programs only');
    if (this.type !== 'mem' && this.type !== 'xdp')
      throw new UsageError(`workers do not run '${this.type}' programs yet (mem and xdp only)`);
    return pool;
  }

  /** The length of a run input, checked against the packet capacity. */
  private checkInput(input: Uint8Array | undefined): number {
    const len = input?.length ?? 0;
    if (len > PACKET_CAPACITY) {
      throw new UsageError(
        `input of ${len} bytes exceeds the packet capacity of ${PACKET_CAPACITY}`,
      );
    }
    return len;
  }

  /** Copies `input` into the packet area; returns the input length. */
  private place(input: RunInput): number {
    if (this.vm.isClosed) throw new UsageError('the Vm is closed');
    if (input === undefined) return 0;
    if (typeof input === 'number') {
      if (!Number.isInteger(input) || input < 0 || input > PACKET_CAPACITY) {
        throw new UsageError(`input length ${input} is outside 0..${PACKET_CAPACITY}`);
      }
      return input;
    }
    if (input.length > PACKET_CAPACITY) {
      throw new UsageError(
        `input of ${input.length} bytes exceeds the packet capacity of ${PACKET_CAPACITY}`,
      );
    }
    this.input.set(input);
    return input.length;
  }

  private fail(e: unknown): Error {
    const err = trapToError(e, this.vm.dataView(), this.vm.worker.ctrl);
    this.vm.resetWorker();
    return err;
  }

  /**
   * A run that ended with `err`: `bpf_throw` (TerminationError 'throw') becomes a normal return
   * with r0 = the cookie and `thrown` set (the stack pointer was reset by `fail`); anything
   * else is thrown.
   */
  private caught(err: Error): number {
    if (!(err instanceof TerminationError) || err.reason !== 'throw') throw err;
    const cookie = BigInt.asUintN(64, err.cookie ?? 0n);
    this.vm.dataView().setBigUint64(this.vm.worker.ctrl + CTRL_R0, cookie, true);
    this.lastThrown = true;
    return Number(cookie & 0xffffffffn);
  }

  /**
   * Runs once with r1 = the context the host built at `ctx`; `pkt`/`len` is the packet that
   * ld_abs reads and, for the interpreter, the packet memory the program may touch. Used by
   * test runs, whose repeats keep what the program did to the context.
   */
  runWithCtx(ctx: number, pkt: number, len: number): number {
    this.lastThrown = false;
    if (this.engine === 'jit') {
      try {
        return (this.runCtxFn as RunCtxFn)(ctx, pkt, len) >>> 0;
      } catch (e) {
        return this.caught(this.fail(e));
      }
    }
    return Number(this.interpretWith(BigInt(ctx), 0n, pkt, len, ctx, true) & 0xffffffffn);
  }

  /**
   * BPF_PROG_TEST_RUN: runs with the kernel's test-run semantics for the program type.
   * @example
   * const { retval, dataOut } = prog.testRun({ dataIn: packet, repeat: 100 });
   */
  testRun(opts: TestRunOptions): TestRunResult {
    return testRun(this, opts);
  }

  /**
   * perf_event: the input (at most PERF_EVENT_DATA.size bytes, zero-padded) is the
   * `struct bpf_perf_event_data` the program gets in r1.
   */
  private runPerfEvent(len: number): number {
    const w = this.vm.worker;
    if (len > PERF_EVENT_DATA.size) {
      throw new UsageError(
        `a perf_event input is its bpf_perf_event_data: at most ${PERF_EVENT_DATA.size} bytes, not ${len}`,
      );
    }
    const u8 = this.vm.u8();
    u8.copyWithin(w.ctx, w.packet, w.packet + len);
    u8.fill(0, w.ctx + len, w.ctx + PERF_EVENT_DATA.size);
    return this.runWithCtx(w.ctx, 0, 0);
  }

  /** Builds a minimal __sk_buff over the packet (len, protocol, data, data_end) and runs. */
  private runSkb(addr: number, len: number): number {
    const w = this.vm.worker;
    const u8 = this.vm.u8();
    u8.fill(0, w.ctx, w.ctx + SK_BUFF.size);
    const v = this.vm.dataView();
    v.setUint32(w.ctx + SK_BUFF.len, len, true);
    v.setUint32(w.ctx + SK_BUFF.ifindex, 1, true);
    v.setUint32(w.ctx + SK_BUFF.data, addr, true);
    v.setUint32(w.ctx + SK_BUFF.data_end, addr + len, true);
    v.setUint32(w.ctx + SK_BUFF.data_meta, addr, true);
    v.setUint32(w.ctx + SK_BUFF.wire_len, len, true);
    return this.runWithCtx(w.ctx, addr, len);
  }

  private interpretOnce(addr: number, len: number, catchThrow: boolean): bigint {
    const vm = this.vm;
    const w = vm.worker;
    if (this.type !== 'xdp')
      return this.interpretWith(BigInt(addr), BigInt(len), addr, len, undefined, catchThrow);
    const view = vm.dataView();
    view.setUint32(w.ctx + XDP_MD.data, addr, true);
    view.setUint32(w.ctx + XDP_MD.data_end, addr + len, true);
    view.setUint32(w.ctx + XDP_MD.data_meta, addr, true);
    view.setUint32(w.ctx + XDP_MD.ingress_ifindex, 1, true);
    view.setUint32(w.ctx + XDP_MD.rx_queue_index, 0, true);
    view.setUint32(w.ctx + XDP_MD.egress_ifindex, 0, true);
    return this.interpretWith(BigInt(w.ctx), 0n, addr, len, w.ctx, catchThrow);
  }

  /**
   * Interprets with r1, r2; the packet and (when given) the context at `ctx` are accessible.
   * With `catchThrow`, a bpf_throw is a normal return of its cookie (see `caught`).
   */
  private interpretWith(
    r1: bigint,
    r2: bigint,
    pkt: number,
    len: number,
    ctx: number | undefined,
    catchThrow: boolean,
  ): bigint {
    const vm = this.vm;
    const w = vm.worker;
    const regions: MemRegion[] = vm.mapRegions();
    if (ctx !== undefined) {
      // adjust_head/tail/meta may move the packet within the whole packet area
      regions.push({
        start: w.packet - XDP_PACKET_HEADROOM,
        end: w.packet + PACKET_CAPACITY,
        writable: true,
        name: 'packet',
      });
      const size =
        this.type === 'xdp'
          ? XDP_MD.size
          : this.type === 'perf_event'
            ? PERF_EVENT_DATA.size
            : SK_BUFF.size;
      const writable = this.type !== 'xdp' && this.type !== 'perf_event';
      regions.push({ start: ctx, end: ctx + size, writable, name: 'ctx' });
    } else if (Math.max(len, this.memInputRoom()) > 0) {
      const end = pkt + Math.max(len, this.memInputRoom());
      regions.push({ start: pkt, end, writable: true, name: 'packet' });
    }
    const env: ExecEnv = {
      memory: () => vm.u8(),
      regions,
      stackTop: w.stackTop,
      stackLimit: w.progStackLimit,
      links: this.links,
      callHelper: (id, args) => vm.callHelper(id, args),
      callKfunc: (slot, args) => vm.callKfunc(slot, args),
      resolveToken: (token) => vm.resolveToken(token),
      coroFrameCheck: (frame, need) => vm.coroFrameCheck(frame, need),
      isCoroEntry: (token) => vm.isCoroEntry(token),
      insnBudget: this.insnBudget,
      mayGotoBudget: BPF_MAX_LOOPS,
      mayGotoCheck: (budget) => vm.termination.interpMayGoto(budget),
      packet: len > 0 ? { addr: pkt, len } : undefined,
    };
    vm.dataView().setUint32(w.ctrl + CTRL_PROG, this.owner, true);
    let r0: bigint;
    try {
      r0 = interpret(this.program, env, r1, r2);
    } catch (e) {
      vm.dataView().setUint32(w.ctrl + CTRL_PROG, 0, true);
      if (!catchThrow || !(e instanceof Error)) throw e;
      this.caught(e);
      return vm.dataView().getBigUint64(w.ctrl + CTRL_R0, true);
    }
    // what the run deferred continues now, on the interpreter too (the JIT's entry does this)
    const v = vm.dataView();
    if (v.getUint32(w.ctrl + CTRL_DEFER_HEAD, true) !== v.getUint32(w.ctrl + CTRL_DEFER_TAIL, true))
      vm.coroutines.drainDeferredWith(w.ctrl, w.stackBottom - STACK_OFF, (token, frame) => {
        vm.services.callBpf(token, [BigInt(frame)], { engine: 'interp', regions: env.regions });
      });
    v.setUint32(w.ctrl + CTRL_PROG, 0, true);
    vm.dataView().setBigUint64(w.ctrl + CTRL_R0, r0, true);
    return r0;
  }
}
