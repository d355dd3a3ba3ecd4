/**
 * The machine: one `Vm` owns a Wasm linear memory laid out as src/abi.ts says, the call table,
 * the per-worker globals (stack pointer, control slot, ctx), the helper registry and the
 * function-token namespace. `Vm.load` links a program (helper block, tokens, pseudo lddw
 * values), compiles it with the JIT or prepares the interpreter, and returns a
 * `LoadedProgram`, whose `run*` methods are the hot path. Both engines run on this same
 * memory, so they can be compared on identical state.
 *
 * `Vm.create({ workers: n })` with n ≥ 1 makes the memory shared and starts n worker threads
 * (runtime/worker-pool.ts), each a "CPU" that instantiates every loaded program over the same
 * memory with its own call table, globals and runtime-module instance; `prog.runOn(i, input)`
 * runs on worker i. The host thread then has its own area (`workerLayout(n)`) and runs as CPU 0.
 * With `workers: 0` (the default) nothing of this exists: the memory is private and the Vm is
 * single-threaded.
 */

import {
  CORO_HDR_SIZE,
  CTRL_CORO_DEPTH,
  CTRL_PROG,
  programOwner,
  CTRL_ERR_CODE,
  CTRL_LOCK_HELD,
  CTRL_TERMINATE,
  FUNC_TOKEN_BASE,
  CORO_ENTRY_CHECK_SLOT,
  CORO_FRAME_CHECK_SLOT,
  HELPER_BLOCK_SIZE,
  INLINE_KFUNCS,
  type InlineKfunc,
  KFUNC_SLOT_BASE,
  MAX_KFUNCS,
  IMPORT_CTRL,
  IMPORT_CTX,
  IMPORT_CORO_DRAIN,
  IMPORT_MEMORY,
  IMPORT_MODULE,
  IMPORT_SP,
  IMPORT_STACK_LIMIT,
  IMPORT_TABLE,
  PACKET_CAPACITY,
  WASM_PAGE,
  MAX_WORKERS,
  TERM_CHECK_SLOT,
  TERM_REASON_REQUEST,
  heapBase,
  workerLayout,
  type ProgLinks,
  type WorkerLayout,
} from '../src/abi.js';
import { ExecError, LinkError, UsageError, type WorkerError } from '../src/errors.js';
import { isLdImm64, type Insn } from '../src/isa/insn.js';
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from '../src/isa/opcodes.js';
import type { HelperArgs, MemRegion, TokenTarget } from '../src/interp/env.js';
import { jumpTarget, subprogIndexOf, type Program, type ProgType } from '../src/program.js';
import { adaptHelpers, compileHelperAdapter } from '../jit/adapter.js';
import {
  compileProgram,
  directHelperIds,
  directHelperImport,
  type CompiledModule,
  type CompileTimings,
  type HelperCallMode,
} from '../jit/compile.js';
import {
  FRAME_ALLOC_KFUNCS,
  FRAME_HEAP_DEFAULT,
  type FrameAllocator,
  frameAllocKfuncs,
  initFrameAlloc,
} from './frame-alloc.js';
import { HeapArena } from './heap.js';
import {
  allHelpers,
  HelperRegistry,
  HelperServices,
  type HelperHost,
  type HelperOptions,
  type HelperProto,
  type KfuncProto,
} from './helpers.js';
import { runtimeModuleHelpers } from './maps/helpers.js';
import { BpfMap, type MapSpec } from './maps/map.js';
import { BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG } from './maps/map-type.js';
import type { MapInfo } from '../src/verifier/reg-state.js';
import { verifyProgram, type KfuncSig, type LdMap } from '../src/verifier/verifier.js';
import { BPF_THROW, kfuncProto } from '../src/kfunc-protos.js';
import { CoroEntryMap } from './coro-entries.js';
import type { VerifiedProgram } from '../src/verifier/verified-program.js';
import { instantiateRt, type RtExports } from './rt.js';
import { WORKER_KFUNC_EXPORTS, Coroutines, type CoroutineOptions } from './coroutines.js';
import { TaskRefs } from './helpers/task-ref.js';
import { taskStackHelper } from './helpers/stack.js';
import type { TaskInfo } from './helpers/task.js';
import { xorshift32 } from './helpers/random.js';
import { processTask } from './helpers/task.js';
import { workerHelpers, type WorkerHelperConfig } from './worker-helpers.js';
import { WorkerPool } from './worker-pool.js';
import { loadObjectInto, type LoadedObject, type ObjectOptions } from './object.js';
import { LoadedProgram, type Engine } from './loaded-program.js';
import { Termination, type TermKfunc, type TermProg } from './termination.js';
import { trapToError } from './trap.js';
import { interpTokenFunction } from './interp-token.js';
import { resSpinLockKfuncs } from './helpers/spinlock.js';
import { fastPathFn, helperFastPath, kfuncTermClass } from './fast-path.js';
import {
  ringbufReservations,
  sumResources,
  type ResourceCounts,
  type ResourceSource,
} from './resources.js';
import { BPF_MAP_TYPE_RINGBUF } from './maps/map-type.js';

/** Options of `Vm.create`. */
export interface VmOptions extends HelperOptions {
  /** Monotonic clock in ns for time helpers (default: process.hrtime). */
  readonly clock?: () => bigint;
  /** u32 source for bpf_get_prandom_u32 (default: a seeded xorshift). */
  readonly random?: () => number;
  /** Seed of the default random source. */
  readonly seed?: number;
  /** Extra helpers (host-defined or replacing built-ins). */
  readonly helpers?: readonly HelperProto[];
  /**
   * Called with every module the JIT emits, before it is instantiated (tests use it to have
   * wabt validate each one; tools can save them).
   */
  readonly onCompiled?: (wasm: Uint8Array, prog: Program) => void | Promise<void>;
  /**
   * Worker threads ("CPUs") to start, 0 (the default) for a single-threaded Vm. With workers the
   * memory is shared, `nCpus` is the worker count, and programs run on a worker with `runOn`;
   * the `clock` and `random` options cannot cross threads and are refused.
   */
  readonly workers?: number;
  /** Called when a worker thread died and was replaced (its pending run failed with the error). */
  readonly onWorkerExit?: (e: WorkerError) => void;
  /** How often (ms) an idle worker bumps its heartbeat (default 100). */
  readonly heartbeatMs?: number;
  /** Coroutine policies: deadlines, sweeps, where deferred frames go (runtime/coroutines.ts). */
  readonly coroutines?: CoroutineOptions;
  /**
   * Bytes of the frame allocator's region (coroutine frames, bpf_obj_new objects,
   * `vm.allocator.alloc`): default 8 MiB, at most 1 GiB, rounded up to 64 KiB. The region is
   * made when the first program that calls an allocator kfunc is loaded (or the host first
   * allocates); an allocation that finds it exhausted returns 0.
   */
  readonly frameHeap?: number;
  /**
   * What each loaded program may hold in the frame allocator at once (coroutine frames and
   * bpf_obj_new objects, counted in allocator slots): beyond it bpf_coro_frame_alloc and
   * bpf_obj_new return NULL, and the program takes its verified NULL path. Default: no cap.
   */
  readonly programAllocCap?: { readonly objects?: number; readonly bytes?: number };
  /**
   * A run or batch on a worker that has not finished after this many ms, while the worker's
   * heartbeat has not moved either, fails with a WorkerError naming the worker and the program,
   * and the thread is terminated and replaced (`onWorkerExit` is told). Default: no limit.
   */
  readonly workerTimeoutMs?: number;
}

/** Options of `Vm.load`. */
export interface LoadOptions {
  /** 'jit' (default) or 'interp'. */
  readonly engine?: Engine;
  /** Program type when `prog` is not already a Program with one. */
  readonly type?: ProgType;
  /**
   * Verify before running (the default). `false` is the explicit opt-out: the program runs
   * unverified, the JIT checking every memory access against the null guard instead.
   */
  readonly verify?: boolean;
  /** Verifier log level (`BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2 | BPF_LOG_STATS`); 0 by default. */
  readonly logLevel?: number;
  /** Verifier log size, as the kernel's `log_size`. */
  readonly logSize?: number;
  /** C source lines for the verifier log, by insn index (from BTF.ext line info). */
  readonly lineInfo?: (insnIdx: number) => string | undefined;
  /** Sizes of the program BTF's types, by id (`bpf_obj_new_impl`; src/loader `btfTypeSizes`). */
  readonly btfTypeSize?: (id: number) => number | undefined;
  /**
   * The maps a program's BPF_PSEUDO_MAP_IDX / _IDX_VALUE loads index (an object's maps, in
   * order). BPF_PSEUDO_MAP_FD / _VALUE loads name maps by their Vm id instead.
   */
  readonly maps?: readonly BpfMap[];
  /**
   * The kfunc each kfunc call (call src 2) names, by insn index (the ELF loader's object API
   * fills it from relocations). Raw bytecode without it cannot call kfuncs.
   */
  readonly kfuncs?: ReadonlyMap<number, { readonly name: string; readonly weak: boolean }>;
  /** Values of extern ksym loads (lddw src 3), by slot; the ELF loader's object API fills it. */
  readonly ksyms?: ReadonlyMap<number, bigint>;
  /** Interpreter instruction budget per run (default 1,000,000). */
  readonly insnBudget?: number;
  /** Keep names in the Wasm binary (stack traces name BPF functions). */
  readonly debugNames?: boolean;
  /** Compile with instruction markers and keep the module (for `bpfwasm jit --wat`). */
  readonly annotate?: boolean;
  /**
   * How the JIT calls helpers (jit/compile.ts `HelperCallMode`): 'flag-check' (the default)
   * and 'patchable' are terminable; 'direct' (not terminable by slot swaps, only on a Vm
   * without workers) is there to measure what termination costs.
   */
  readonly helperCalls?: HelperCallMode;
}

const MAX_PAGES = 65536;
/** Seed of the default random source. */
const DEFAULT_SEED = 0x2545f491;

/** Options of `Vm.terminate`. */
export interface TerminateOptions {
  /**
   * 'invocation' (default): stop the current run only; the program's slots are restored when
   * it exits. 'program': also refuse every later run of the program (it is dead for good).
   */
  readonly mode?: 'invocation' | 'program';
  /**
   * Terminate what runs on worker thread `worker` (a Vm with workers): the request is stored in
   * that worker's control slot and acted on at its next checkpoint.
   */
  readonly worker?: number;
}

/** Program types whose context the runtime can build. */
const RUNNABLE_TYPES: readonly ProgType[] = [
  'mem',
  'perf_event',
  'xdp',
  'socket_filter',
  'sched_cls',
  'sched_act',
  'cgroup_skb',
];

/** An execution machine for BPF programs. */
export class Vm {
  readonly memory: WebAssembly.Memory;
  readonly table: WebAssembly.Table;
  readonly helpers: HelperRegistry;
  /** State of the built-in helpers: trace log, task, timers, callbacks into BPF. */
  readonly services: HelperServices;
  readonly worker: WorkerLayout;
  readonly heap: HeapArena;
  /** Fast-path termination of programs running on the host thread (runtime/termination.ts). */
  readonly termination: Termination;
  /** The runtime module instance of worker 0 (map operations). */
  readonly rt: RtExports;
  /** The frame allocator (coroutine frames, bpf_obj_new objects): accounts, caps, live objects. */
  readonly allocator: FrameAllocator;
  /** CPUs (workers) percpu maps keep values for: the worker count, 1 without workers. */
  readonly nCpus: number;
  /** Worker threads of this Vm (0: single-threaded). */
  readonly workerCount: number;
  /** The worker threads; undefined without workers. */
  readonly workers: WorkerPool | undefined;
  /** Helpers a worker runs itself, by id (empty without workers). */
  private readonly workerHelperIds: ReadonlySet<number>;
  /** The built-in helper of each id, to tell a host-registered replacement apart. */
  private readonly builtinHelpers = new Map<number, HelperProto>();
  private readonly maps: BpfMap[] = [];
  private readonly kfuncs = new Map<
    string,
    { readonly slot: number; readonly proto: KfuncProto }
  >();
  private readonly kfuncBySlot = new Map<number, KfuncProto>();
  private readonly resourceSources: ResourceSource[] = [];
  /** The kfuncs the runtime module implements, by name: worker threads run them too. */
  private readonly builtinKfuncs = new Map<string, KfuncProto>();
  /**
   * The coroutine kfuncs the host thread runs as JS (bpf_coro_sleep) and their worker-thread
   * versions in the runtime module (WORKER_KFUNC_EXPORTS).
   */
  private readonly hostCoroKfuncs = new Map<string, KfuncProto>();
  private kfuncsFilled = 0;
  /** Globals shared by every module instantiated for worker 0. */
  readonly globals: {
    readonly sp: WebAssembly.Global;
    readonly stackLimit: WebAssembly.Global;
    readonly ctrl: WebAssembly.Global;
    readonly ctx: WebAssembly.Global;
  };
  /** The coroutine scheduler: queues, resume/destroy, drains, deadlines, statistics. */
  readonly coroutines: Coroutines;
  /** The task_struct programs see and the references they hold on it. */
  readonly taskRefs: TaskRefs;
  private nextProgram = 0;
  private nextToken = FUNC_TOKEN_BASE;
  private readonly tokens = new Map<number, TokenTarget>();
  /** Verified token entries, for `coro_entry_check` (CORO_ENTRY_CHECK_SLOT). */
  private readonly entryMap: CoroEntryMap;
  private adapters: Map<number, WebAssembly.ExportValue> | undefined;
  private view: DataView;
  private bytes: Uint8Array;
  private closed = false;
  private readonly onCompiled: VmOptions['onCompiled'];
  private readonly programAllocCap: VmOptions['programAllocCap'];

  private constructor(opts: VmOptions) {
    const n = opts.workers ?? 0;
    if (!Number.isInteger(n) || n < 0 || n >= MAX_WORKERS)
      throw new UsageError(`workers must be an integer in 0..${MAX_WORKERS - 1}, not ${n}`);
    if (n > 0 && (opts.clock !== undefined || opts.random !== undefined))
      throw new UsageError(
        'the clock and random options cannot cross to worker threads: a Vm with workers uses process.hrtime and a seeded xorshift per worker',
      );
    const limit = opts.workerTimeoutMs;
    if (limit !== undefined && !(Number.isFinite(limit) && limit > 0))
      throw new UsageError(`workerTimeoutMs must be a positive number of ms, not ${limit}`);
    this.workerCount = n;
    this.nCpus = Math.max(1, n);
    const host = defaultHost(opts);
    this.onCompiled = opts.onCompiled;
    this.programAllocCap = opts.programAllocCap;
    this.helpers = new HelperRegistry();
    this.services = new HelperServices(this, host, opts);
    for (const h of allHelpers(this.services)) this.helpers.register(h);
    // with workers, the host thread has the area after theirs
    this.worker = workerLayout(n);
    const base = heapBase(n + 1);
    this.memory = new WebAssembly.Memory({
      initial: base / WASM_PAGE + 16,
      maximum: MAX_PAGES,
      shared: n > 0,
    });
    this.table = new WebAssembly.Table({ element: 'anyfunc', initial: FUNC_TOKEN_BASE });
    this.globals = {
      sp: new WebAssembly.Global({ value: 'i32', mutable: true }, this.worker.stackTop),
      stackLimit: new WebAssembly.Global(
        { value: 'i32', mutable: false },
        this.worker.progStackLimit,
      ),
      ctrl: new WebAssembly.Global({ value: 'i32', mutable: false }, this.worker.ctrl),
      ctx: new WebAssembly.Global({ value: 'i32', mutable: false }, this.worker.ctx),
    };
    this.view = new DataView(this.memory.buffer);
    this.bytes = new Uint8Array(this.memory.buffer);
    this.termination = new Termination({
      table: this.table,
      worker: this.worker,
      clock: host.clock,
      memory: this.memory,
      u8: () => this.u8(),
      dataView: () => this.dataView(),
    });
    this.resourceSources.push(() => ({
      reservations: this.maps
        .filter((m) => m.type === BPF_MAP_TYPE_RINGBUF)
        .reduce((n, m) => n + ringbufReservations(this, m.addr, m.maxEntries), 0),
      // the host thread's locks (both kinds), and the bpf_spin_lock each worker holds
      locks_held:
        this.services.spinLocks.held +
        Array.from({ length: this.workerCount }, (_, i) => workerLayout(i).ctrl).filter(
          (ctrl) => this.dataView().getUint32(ctrl + CTRL_LOCK_HELD, true) !== 0,
        ).length,
    }));
    this.heap = new HeapArena(base, this.memory.buffer.byteLength, (more) => {
      this.memory.grow(Math.ceil(more / WASM_PAGE));
      return this.memory.buffer.byteLength;
    });
    // generic lookup on a family without one finds nothing; update/delete are refused
    this.rt = instantiateRt(this.memory, 0, (op) => (op === 1 ? 0n : -22n), {
      table: this.table,
      layout: this.worker,
    });
    for (const h of runtimeModuleHelpers(this.rt)) this.helpers.register(h);
    this.taskRefs = new TaskRefs({
      rt: this.rt,
      dataView: () => this.dataView(),
      alloc: (bytes) => this.heap.alloc(bytes),
      write: (addr, t) => writeTaskStruct(this, addr, t),
      task: this.services.task,
    });
    for (const h of this.taskRefs.helpers()) this.helpers.register(h);
    this.helpers.register(
      taskStackHelper(this, this.services.stacks, (t) => t !== 0n && t === this.taskRefs.address),
    );
    // the frame allocator's check, for accesses through coroutine handles (src/abi.ts)
    const frameCheck = (this.rt as unknown as Record<string, unknown>)['coro_frame_check'];
    if (typeof frameCheck === 'function') this.table.set(CORO_FRAME_CHECK_SLOT, frameCheck);
    // which tokens callx may reach through a frame, a handle or .rodata: the entry map
    this.entryMap = new CoroEntryMap({
      alloc: (bytes) => this.heap.alloc(bytes),
      dataView: () => this.dataView(),
      u8: () => this.u8(),
    });
    this.table.set(CORO_ENTRY_CHECK_SLOT, this.rt.coro_entry_check);
    for (const h of this.helpers.all()) this.builtinHelpers.set(h.id, h);
    this.allocator = initFrameAlloc(
      this.rt,
      { alloc: (bytes) => this.heap.alloc(bytes), frameHeap: opts.frameHeap ?? FRAME_HEAP_DEFAULT },
      n + 1,
      n,
      this.worker.ctrl,
    );
    // the runtime module's kfuncs (frame allocator, coroutines, task references): every
    // worker runs its own
    for (const k of [
      ...frameAllocKfuncs(this.rt),
      ...Coroutines.rtKfuncs(this.rt),
      ...this.taskRefs.kfuncs(),
    ]) {
      this.registerKfunc(k);
      this.builtinKfuncs.set(k.name, k);
    }
    for (const k of resSpinLockKfuncs(this, this.services.spinLocks)) this.registerKfunc(k);
    this.resourceSources.push(() => {
      const a = this.allocator.stats();
      return { live_objects: a.liveObjects, live_bytes: a.liveBytes };
    });
    for (const h of opts.helpers ?? []) this.helpers.register(h);
    const cfg: WorkerHelperConfig = {
      seed: opts.seed ?? DEFAULT_SEED,
      task: typeof opts.task === 'function' ? undefined : { ...processTask(), ...opts.task },
    };
    this.workerHelperIds = new Set(
      n === 0
        ? []
        : [...workerHelpers(this, 0, cfg), ...runtimeModuleHelpers(this.rt)].map((h) => h.id),
    );
    this.coroutines = new Coroutines(
      {
        rt: this.rt,
        dataView: () => this.dataView(),
        createMap: (spec) => this.createMap(spec),
        allMaps: () => this.maps,
        liveFrames: () => this.liveCoroutineFrames(),
        tokenLimit: () => this.nextToken,
        loadInternal: (prog, kfuncs) => this.load(prog, { verify: false, kfuncs }),
        clock: host.clock,
        scheduleTimer: opts.scheduleTimer,
        workersIdle: () => this.workers?.whenIdle(),
        enter: (run) => {
          try {
            return run();
          } catch (e) {
            // generated code trapped (a failed run-time check in a resumed frame): a typed error
            const err = trapToError(e, this.dataView(), this.worker.ctrl);
            this.resetWorker();
            throw err;
          }
        },
      },
      opts.coroutines,
    );
    for (const k of this.coroutines.hostKfuncs()) {
      this.registerKfunc(k);
      this.hostCoroKfuncs.set(k.name, k);
    }
    // a fixed task: its task_struct now, for the workers' bpf_get_current_task_btf
    if (n > 0 && cfg.task !== undefined) this.taskRefs.current();
    // after the kfuncs: the workers fill the same slots
    this.workers = n === 0 ? undefined : this.startWorkers(n, cfg, opts);
    // nothing runs yet, so these change nothing: V8 compiles them now rather than inside the
    // first terminated run (`terminate` ≈ 40 µs, an abandoned run's reset ≈ 80 µs of lazy
    // compilation; bench "first")
    this.terminate();
    this.resetWorker();
  }

  /** Addresses of live coroutine frames, for the coroutine sweep (from the frame allocator). */
  private liveCoroutineFrames(): number[] {
    return this.allocator
      .liveObjects()
      .map((o) => o.addr + CORO_HDR_SIZE)
      .filter((f) => this.allocator.isCoroFrame(f));
  }

  /** Starts the worker threads once the adapter of their JS helpers is compiled. */
  private startWorkers(n: number, cfg: WorkerHelperConfig, opts: VmOptions): WorkerPool {
    const count = workerHelpers(this, 0, cfg).length;
    const adapter = compileHelperAdapter(count).then((wasm) => WebAssembly.compile(wasm));
    return new WorkerPool({
      memory: this.memory,
      count: n,
      adapter,
      helpers: cfg,
      alloc: {
        state: this.allocator.layout.state,
        kfuncs: [
          ...[...this.builtinKfuncs.keys()].map((name) => ({
            name,
            slot: this.kfuncSlot(name) as number,
          })),
          ...[...this.hostCoroKfuncs.keys()].map((name) => ({
            name,
            slot: this.kfuncSlot(name) as number,
            export: WORKER_KFUNC_EXPORTS[name] as string,
          })),
        ],
      },
      // the coroutines a worker's run put to sleep get their host timers
      onRequestDone: () => this.coroutines.takeWorkerSleepers(),
      ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
      ...(opts.onWorkerExit !== undefined ? { onWorkerExit: opts.onWorkerExit } : {}),
      ...(opts.workerTimeoutMs !== undefined ? { requestTimeoutMs: opts.workerTimeoutMs } : {}),
    });
  }

  /**
   * Creates a Vm.
   * @example
   * const vm = Vm.create();
   * const prog = await vm.load(program, { verify: false });
   * prog.run(new Uint8Array([1, 2, 3]));
   */
  static create(opts: VmOptions = {}): Vm {
    return new Vm(opts);
  }

  /** The whole linear memory as bytes (re-created after memory.grow). */
  u8(): Uint8Array {
    if (this.bytes.buffer !== this.memory.buffer) this.bytes = new Uint8Array(this.memory.buffer);
    return this.bytes;
  }

  /** A DataView over the whole memory (re-created after memory.grow). */
  dataView(): DataView {
    if (this.view.buffer !== this.memory.buffer) this.view = new DataView(this.memory.buffer);
    return this.view;
  }

  /**
   * Creates a map in this Vm's memory. Its id is the fd raw bytecode uses with
   * BPF_PSEUDO_MAP_FD (ids start at 1).
   * @example
   * const counts = vm.createMap({ name: 'counts', type: 2, keySize: 4, valueSize: 8, maxEntries: 16 });
   */
  createMap(spec: MapSpec): BpfMap {
    if (this.closed) throw new UsageError('the Vm is closed');
    const map = new BpfMap(this, spec, this.maps.length + 1);
    this.maps.push(map);
    return map;
  }

  /**
   * Loads an ELF object compiled by `clang --target=bpf`: creates its maps and global data,
   * links and loads every program.
   * @example
   * const obj = await vm.loadObject(readFileSync('xdp_count.o'), { verify: false });
   * obj.program('xdp_count').run(packet);
   */
  loadObject(bytes: Uint8Array, opts: ObjectOptions = {}): Promise<LoadedObject> {
    return loadObjectInto(this, bytes, opts);
  }

  /**
   * Value regions of every map, and the frame allocator's region (coroutine frames and
   * bpf_obj_new objects live there), for the interpreter's memory checks.
   */
  mapRegions(): MemRegion[] {
    const { heapStart, heapEnd } = this.allocator.layout;
    const regions = this.maps.map((m) => m.valueRegion);
    if (heapEnd !== 0)
      regions.push({ start: heapStart, end: heapEnd, writable: true, name: 'frame heap' });
    return regions;
  }

  /** The map with id (fd) `id`, or undefined. */
  mapById(id: number): BpfMap | undefined {
    return this.maps[id - 1];
  }

  /**
   * Registers a kfunc by name (the symbol a BPF object declares `extern ... __ksym`); programs
   * loaded afterwards can call it. It gets a Vm-wide call-table slot; registering a name again
   * replaces its implementation for programs loaded later.
   * @example
   * vm.registerKfunc({ name: 'bpf_answer', fn: () => 42n });
   */
  registerKfunc(proto: KfuncProto): void {
    const known = this.kfuncs.get(proto.name);
    if (known !== undefined) {
      this.kfuncs.set(proto.name, { slot: known.slot, proto });
      this.kfuncBySlot.set(known.slot, proto);
      this.kfuncsFilled = Math.min(this.kfuncsFilled, known.slot - KFUNC_SLOT_BASE);
      return;
    }
    if (this.kfuncs.size >= MAX_KFUNCS)
      throw new UsageError(`too many kfuncs (limit ${MAX_KFUNCS})`);
    const slot = KFUNC_SLOT_BASE + this.kfuncs.size;
    this.kfuncs.set(proto.name, { slot, proto });
    this.kfuncBySlot.set(slot, proto);
  }

  /** The call-table slot of kfunc `name`, or undefined when the Vm has none by that name. */
  kfuncSlot(name: string): number | undefined {
    return this.kfuncs.get(name)?.slot;
  }

  /** Calls the kfunc in `slot` for the interpreter. */
  callKfunc(slot: number, args: HelperArgs): bigint {
    const k = this.kfuncBySlot.get(slot);
    if (k === undefined) throw new ExecError(null, 'call', `no kfunc in slot ${slot}`);
    const fast = this.termination.engaged ? this.termination.interpKfunc(k.name, k.sig) : undefined;
    return BigInt.asUintN(64, (fast ?? k.fn)(args));
  }

  /** Registers a host helper; programs loaded afterwards can call it. */
  registerHelper(proto: HelperProto): void {
    this.helpers.register(proto);
    this.adapters = undefined;
  }

  /** Links and prepares `prog` to run on engine `opts.engine` ('jit' by default). */
  async load(prog: Program, opts: LoadOptions = {}): Promise<LoadedProgram> {
    if (this.closed) throw new UsageError('the Vm is closed');
    const engine = opts.engine ?? 'jit';
    if (engine !== 'jit' && engine !== 'interp')
      throw new UsageError(`unknown engine '${String(engine)}'`);
    const type = opts.type ?? prog.type;
    if (!RUNNABLE_TYPES.includes(type)) {
      throw new UsageError(
        `program type '${type}' cannot run yet (supported: ${RUNNABLE_TYPES.join(', ')})`,
      );
    }
    if (this.workerCount > 0 && opts.helperCalls === 'direct')
      throw new UsageError("helperCalls 'direct' needs a Vm without workers");
    const verified = opts.verify === false ? undefined : this.verify(prog, { ...opts, type });
    if (this.workerCount > 0) {
      // bpf_loop calls the JIT inlines call no helper: they run in workers too
      const inlined = new Set(engine === 'jit' ? (verified?.loopInlines?.keys() ?? []) : []);
      this.checkWorkerCalls(prog, opts.kfuncs ?? new Map(), inlined);
    }
    // a program that calls the frame allocator: make its region now, while nothing runs
    const names = [...(opts.kfuncs?.values() ?? [])].map((k) => k.name);
    if (this.workerCount > 0 && names.includes('bpf_coro_sleep'))
      this.coroutines.prepareSleepQueue();
    if (FRAME_ALLOC_KFUNCS.some((k) => names.includes(k))) this.allocator.ensureRegion();
    const links = this.link(
      prog,
      opts.maps ?? [],
      opts.ksyms ?? new Map(),
      opts.kfuncs ?? new Map(),
      verified,
    );
    const id = this.nextProgram++;
    if (this.programAllocCap !== undefined)
      this.allocator.setCap(programOwner(links.helperBase), this.programAllocCap);
    prog.subprogs.forEach((_, k) =>
      this.tokens.set(links.funcTokenBase + k, { prog, links, subprog: k }),
    );
    if (links.coroEntries !== undefined)
      this.entryMap.add([...links.coroEntries.keys()].map((k) => links.funcTokenBase + k));
    return this.prepare({ id, prog, type, links, verified }, engine, opts);
  }

  /**
   * Verifies `prog` against this Vm's maps, helpers and kfuncs without loading it (what `load`
   * does first). Throws `VerifierError` with the kernel-format log when it is unsafe.
   * @example
   * const v = vm.verify(program, { type: 'xdp', logLevel: 1 });
   * v.processedInsns
   */
  verify(
    prog: Program,
    opts: Pick<
      LoadOptions,
      'type' | 'maps' | 'kfuncs' | 'logLevel' | 'logSize' | 'lineInfo' | 'btfTypeSize'
    > = {},
  ): VerifiedProgram {
    const objMaps = opts.maps ?? [];
    const maps = new Map<number, LdMap>();
    prog.insns.forEach((i, idx) => {
      if (!isLdImm64(i) || prog.ops[idx] === undefined) return;
      if (i.src === 0 || i.src === BPF_PSEUDO_FUNC || i.src === BPF_PSEUDO_BTF_ID) return;
      const map = this.resolveMapLoad(prog, idx, objMaps);
      maps.set(idx, map);
    });
    const kfuncs = new Map<number, KfuncSig>();
    for (const [idx, k] of opts.kfuncs ?? []) {
      const known = this.kfuncs.get(k.name);
      // A registered kfunc without a signature of its own: the built-in one of its name
      // (src/kfunc-protos.ts), else initialised arguments and an unknown scalar back.
      // bpf_throw is built into both engines.
      const builtin = known !== undefined || k.name === BPF_THROW ? kfuncProto(k.name) : undefined;
      const sig = known?.proto.sig ?? builtin;
      kfuncs.set(
        idx,
        sig ?? { name: k.name, args: [], ret: { kind: 'scalar' }, missing: known === undefined },
      );
    }
    return verifyProgram(prog, {
      type: opts.type ?? prog.type,
      maps,
      kfuncs,
      hasHelper: (h) => this.helpers.has(h),
      ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
      ...(opts.logSize !== undefined ? { logSize: opts.logSize } : {}),
      ...(opts.lineInfo !== undefined ? { lineInfo: opts.lineInfo } : {}),
      ...(opts.btfTypeSize !== undefined ? { btfTypeSize: opts.btfTypeSize } : {}),
    });
  }

  /**
   * Makes a linked program runnable on `engine`: compiles and instantiates it for the JIT and
   * puts its functions in the call table, or readies the interpreter. `LoadedProgram.withEngine`
   * uses this to run the same linked program (same tokens, same helper block) on another engine.
   */
  async prepare(
    linked: {
      readonly id: number;
      readonly prog: Program;
      readonly type: ProgType;
      readonly links: ProgLinks;
      /** The verifier's result; undefined for a program loaded with `verify: false`. */
      readonly verified: VerifiedProgram | undefined;
    },
    engine: Engine,
    opts: LoadOptions = {},
  ): Promise<LoadedProgram> {
    const { prog, type, links } = linked;
    let exports: WebAssembly.Exports | undefined;
    let timings: CompileTimings | undefined;
    let compileMs = 0;
    let kept: CompiledModule | undefined;
    if (engine === 'jit') {
      const t0 = performance.now();
      const compiled = await compileProgram(prog, {
        links,
        memory: { initial: 1, maximum: MAX_PAGES, shared: this.workerCount > 0 },
        // A verified program's accesses are proven in bounds; an unverified one is guarded.
        memCheck: linked.verified === undefined,
        ...(linked.verified !== undefined ? { verified: linked.verified } : {}),
        entry: type === 'xdp' ? 'xdp' : 'mem',
        hasHelper: (h) => this.helpers.has(h),
        debugNames: opts.debugNames ?? false,
        annotate: opts.annotate ?? false,
        ...(opts.helperCalls !== undefined ? { helperCalls: opts.helperCalls } : {}),
      });
      if (opts.annotate === true) kept = compiled;
      await this.onCompiled?.(compiled.wasm, prog);
      const mod = await WebAssembly.compile(compiled.wasm);
      await this.fillHelperSlots(links.helperBase);
      await this.fillKfuncSlots();
      const direct: Record<string, WebAssembly.ExportValue> = {};
      if (opts.helperCalls === 'direct') {
        for (const id of directHelperIds(prog, { hasHelper: (h) => this.helpers.has(h) }))
          direct[directHelperImport(id)] = this.table.get(
            links.helperBase + id,
          ) as WebAssembly.ExportValue;
      }
      exports = this.instantiate(mod, direct);
      timings = compiled.timings;
      compileMs = performance.now() - t0;
      prog.subprogs.forEach((_, k) => {
        this.table.set(links.funcTokenBase + k, exports?.[`f${k}`] as WebAssembly.ExportValue);
      });
      await this.workers?.load({
        id: linked.id,
        name: prog.name,
        module: mod,
        helperBase: links.helperBase,
        funcTokenBase: links.funcTokenBase,
        subprogs: prog.subprogs.length,
        unwindable: this.termProg(prog, links, linked.verified).unwindable,
      });
    }
    if (engine === 'interp') {
      // the runtime module and JIT code reach the functions through their tokens' slots
      prog.subprogs.forEach((_, k) => {
        const token = links.funcTokenBase + k;
        if (this.table.get(token) !== null) return;
        this.table.set(
          token,
          interpTokenFunction((args) =>
            this.services.callBpf(BigInt(token), args, { engine: 'interp' }),
          ),
        );
      });
    }
    return new LoadedProgram(this, {
      ...linked,
      engine,
      exports,
      timings,
      compileMs,
      compiled: kept,
      insnBudget: opts.insnBudget,
    });
  }

  /** The function behind a token (any program of this Vm), for the interpreter's callx. */
  resolveToken(token: bigint): TokenTarget | undefined {
    return token >= BigInt(FUNC_TOKEN_BASE) && token < BigInt(this.nextToken)
      ? this.tokens.get(Number(token))
      : undefined;
  }

  /** Calls helper `id` for the interpreter. */
  callHelper(id: number, args: HelperArgs): bigint {
    const h = this.helpers.get(id);
    if (h === undefined) throw new ExecError(null, 'call', `unknown helper #${id}`);
    const fast = this.termination.engaged ? this.termination.interpHelper(id) : undefined;
    return BigInt.asUintN(64, (fast ?? h.fn)(args));
  }

  /** Packet capacity of one run. */
  get packetCapacity(): number {
    return PACKET_CAPACITY;
  }

  /**
   * Terminates a run (notes/fast-path-termination.md §10): the program running on the host
   * thread (`prog`, or whichever runs when omitted) has its helpers swapped for their fast-path
   * versions at once and runs down to its exit, releasing what it holds; its run then throws
   * `TerminationError` ('request'). Call it from a helper, a kfunc or a callback of the run.
   * A program the verifier proved never to hold a reference or lock is abandoned instead: this
   * call then throws through the run to its entry and does not return to its caller.
   * With `worker`, the request goes to that worker thread's control slot. With mode 'program'
   * every later run of `prog` is refused too. Returns whether a run was stopped or requested.
   * @example
   * vm.registerKfunc({ name: 'stop_me', fn: () => (vm.terminate(), 0n) });
   */
  terminate(prog?: LoadedProgram, opts: TerminateOptions = {}): boolean {
    if (opts.mode === 'program') {
      if (prog === undefined) throw new UsageError("mode 'program' needs the program to kill");
      prog.kill();
    }
    if (opts.worker !== undefined) {
      if (!Number.isInteger(opts.worker) || opts.worker < 0 || opts.worker >= this.workerCount)
        throw new UsageError(`no worker ${opts.worker} (the Vm has ${this.workerCount})`);
      const ctrl = new Int32Array(this.memory.buffer, workerLayout(opts.worker).ctrl, 1);
      Atomics.store(ctrl, CTRL_TERMINATE / 4, TERM_REASON_REQUEST);
      return true;
    }
    return this.termination.request(prog?.links.helperBase);
  }

  /** What the checkpoints of iterator helpers call (runtime/helpers/loop.ts). */
  pollTermination(): boolean {
    return this.termination.poll();
  }

  /**
   * Resources programs hold right now: ring-buffer reservations, spin locks held (host thread),
   * and what added sources (the frame allocator) report. All 0 when nothing leaked.
   * @example
   * expect(vm.resources()).toEqual({ live_objects: 0, live_bytes: 0, reservations: 0, locks_held: 0 });
   */
  resources(): ResourceCounts {
    return sumResources(this.resourceSources);
  }

  /** Adds a source of resource counts (e.g. the frame allocator's live objects and bytes). */
  addResourceSource(source: ResourceSource): void {
    this.resourceSources.push(source);
  }

  /** The call-table slots termination swaps for `prog` (its helper ids and kfuncs). */
  termProg(prog: Program, links: ProgLinks, verified?: VerifiedProgram): TermProg {
    const ids = new Set<number>();
    let callx = false;
    prog.insns.forEach((i, idx) => {
      const kind = prog.ops[idx]?.kind;
      if (kind === 'callx') callx = true;
      if (kind === 'call' && i.src === 0) ids.add(i.imm);
    });
    const all = this.helpers.all().map((h) => h.id);
    const helperIds = (callx ? all : [...ids]).filter((id) => id > 0 && this.helpers.has(id));
    const kfuncs: TermKfunc[] = [...new Set(links.kfuncSlots.values())].flatMap((slot) => {
      const k = this.kfuncBySlot.get(slot);
      return k === undefined ? [] : [{ slot, name: k.name, sig: k.sig }];
    });
    // abandoning a run is safe when it can hold nothing: no reference or lock (the verifier's
    // fact) and no kfunc that hands out memory the verifier does not track as a reference
    // (coroutine frames)
    const unwindable =
      verified !== undefined &&
      verified.holdsResources === false &&
      kfuncs.every((k) => kfuncTermClass(k.name, k.sig).helperClass !== 'acquire');
    return { helperBase: links.helperBase, helperIds, kfuncs, unwindable };
  }

  /** After a failed JIT run: reset the worker's stack pointer and error slot. */
  resetWorker(): void {
    this.globals.sp.value = this.worker.stackTop;
    this.dataView().setUint32(this.worker.ctrl + CTRL_ERR_CODE, 0, true);
    // a trap inside a runtime resume skipped its decrement, and the entry's clearing of the
    // running program
    this.dataView().setUint32(this.worker.ctrl + CTRL_CORO_DEPTH, 0, true);
    this.dataView().setUint32(this.worker.ctrl + CTRL_PROG, 0, true);
  }

  /** What bpf_trace_printk wrote, oldest first (VmOptions.onTrace also receives it). */
  get traceLog(): readonly string[] {
    return this.services.trace.lines;
  }

  /**
   * Calls the BPF function behind function token `token` with r1..r5 = `args` from a helper,
   * on the engine running the program (runtime/helpers/call-bpf.ts); returns r0.
   */
  callBpf(token: bigint, args: readonly bigint[]): bigint {
    return this.services.callBpf(token, args);
  }

  /**
   * Refuses, in a Vm with workers, a program that calls what a worker thread cannot run: a
   * kfunc other than the runtime module's, or a helper that needs host state
   * (runtime/worker-helpers.ts lists what workers run). Map helpers need no check by map type:
   * every family the runtime module implements, the LPM trie included, may be written from
   * several workers at once (rt-shared.wasm, runtime/wasm/sync.ts), and a worker refuses writes
   * to the families it does not implement (-EINVAL). The helper calls at `inlined` (bpf_loop
   * calls the JIT inlines) are not calls.
   */
  private checkWorkerCalls(
    prog: Program,
    kfuncs: ReadonlyMap<number, { readonly name: string; readonly weak: boolean }>,
    inlined: ReadonlySet<number>,
  ): void {
    prog.insns.forEach((i, idx) => {
      if (prog.ops[idx]?.kind !== 'call') return;
      if (i.src === BPF_PSEUDO_KFUNC_CALL) {
        const name = kfuncs.get(idx)?.name ?? `kfunc#${i.imm}`;
        if (name === BPF_THROW) return; // compiled inline: the JIT unwinds to the entry
        const builtin = this.builtinKfuncs.get(name) ?? this.hostCoroKfuncs.get(name);
        if (builtin !== undefined && this.kfuncs.get(name)?.proto === builtin) return;
        throw new UsageError(
          `insn ${idx}: kfunc '${name}' cannot run in a worker thread (host kfuncs are JS functions of the host thread; ` +
            'workers run the kfuncs of the runtime module: the frame allocator and coroutines)',
        );
      }
      if (i.src !== 0 || inlined.has(idx)) return;
      const proto = this.helpers.get(i.imm);
      if (proto === undefined) return; // the verifier or the link step reports it
      if (!this.workerHelperIds.has(i.imm) || proto !== this.builtinHelpers.get(i.imm)) {
        throw new UsageError(
          `insn ${idx}: helper ${proto.name}#${i.imm} cannot run in a worker thread: it needs state of the host thread ` +
            '(workers run clocks, random, the CPU id, pointer-only helpers and the map and ringbuf helpers)',
        );
      }
    });
  }

  /**
   * Releases the Vm; loaded programs can no longer run. Terminates the worker threads (the
   * returned promise settles when they have exited).
   */
  close(): Promise<void> {
    this.closed = true;
    const exited = this.workers?.close() ?? Promise.resolve();
    this.coroutines.close();
    this.services.close();
    this.tokens.clear();
    return exited;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The runtime's `coro_frame_check(frame, need)` (the call table's CORO_FRAME_CHECK_SLOT, as
   * generated code calls it): whether `frame` is a live coroutine frame of at least `need`
   * bytes. False while the slot is empty (no frame allocator).
   */
  coroFrameCheck(frame: number, need: number): boolean {
    const fn = this.table.get(CORO_FRAME_CHECK_SLOT) as ((f: number, n: number) => number) | null;
    return fn !== null && fn(frame >>> 0, need >>> 0) !== 0;
  }

  /**
   * Whether `token` names a function the verifier verified as a token entry (a coroutine
   * resume / destroy function: `VerifiedProgram.coroEntries`), which a `callx` through a frame,
   * a handle or `.rodata` may call (CORO_ENTRY_CHECK_SLOT).
   */
  isCoroEntry(token: bigint): boolean {
    const t = this.tokens.get(Number(token));
    return t !== undefined && t.links.coroEntries?.has(t.subprog) === true;
  }

  /**
   * Kfunc slots of a program's kfunc calls; a strong kfunc the Vm lacks is a LinkError.
   * `bpf_throw` needs no slot: both engines unwind themselves (`throwInsns`).
   */
  private linkKfuncs(
    prog: Program,
    names: ReadonlyMap<number, { readonly name: string; readonly weak: boolean }>,
  ): { slots: Map<number, number>; throwInsns: Set<number>; inline: Map<number, InlineKfunc> } {
    const slots = new Map<number, number>();
    const throwInsns = new Set<number>();
    const inline = new Map<number, InlineKfunc>();
    prog.insns.forEach((i, idx) => {
      if (prog.ops[idx]?.kind !== 'call' || i.src !== BPF_PSEUDO_KFUNC_CALL) return;
      const k = names.get(idx);
      if (k === undefined)
        throw new LinkError(`kfunc#${i.imm}`, `insn ${idx}: kfunc call #${i.imm} names no kfunc`);
      if (k.name === BPF_THROW) {
        throwInsns.add(idx);
        return;
      }
      const slot = this.kfuncSlot(k.name);
      if (slot !== undefined) slots.set(idx, slot);
      else if (!k.weak) throw new LinkError(k.name, `insn ${idx}: unknown kfunc '${k.name}'`);
      // the runtime module's own allocator / coroutine kfunc (not one the embedder replaced):
      // the JIT may emit its fast path inline
      const builtin = this.builtinKfuncs.get(k.name);
      if (
        slot !== undefined &&
        INLINE_KFUNCS.has(k.name) &&
        builtin !== undefined &&
        this.kfuncs.get(k.name)?.proto === builtin
      )
        inline.set(idx, k.name as InlineKfunc);
    });
    return { slots, throwInsns, inline };
  }

  private link(
    prog: Program,
    objMaps: readonly BpfMap[],
    ksyms: ReadonlyMap<number, bigint>,
    kfuncs: ReadonlyMap<number, { readonly name: string; readonly weak: boolean }>,
    verified: VerifiedProgram | undefined,
  ): ProgLinks {
    if (this.nextProgram >= KFUNC_SLOT_BASE / HELPER_BLOCK_SIZE) {
      throw new LinkError(
        'program',
        `too many programs in one Vm (limit ${KFUNC_SLOT_BASE / HELPER_BLOCK_SIZE})`,
      );
    }
    const { slots: kfuncSlots, throwInsns, inline } = this.linkKfuncs(prog, kfuncs);
    if ([...kfuncs.values()].some((k) => k.name.startsWith('bpf_coro_'))) this.coroutines.prepare();
    const helperBase = this.nextProgram * HELPER_BLOCK_SIZE;
    const funcTokenBase = this.nextToken;
    this.nextToken += prog.subprogs.length;
    if (this.nextToken > this.table.length)
      this.table.grow(this.nextToken - this.table.length + 64);
    this.coroutines.updateTokenLimit();
    const ldImm64 = new Map<number, bigint>();
    prog.insns.forEach((i, idx) => {
      if (!isLdImm64(i) || prog.ops[idx] === undefined || i.src === 0) return;
      if (i.src === BPF_PSEUDO_FUNC) {
        const t = jumpTarget(i, idx, prog.ops[idx]);
        ldImm64.set(idx, BigInt(funcTokenBase + subprogIndexOf(prog, t)));
        return;
      }
      if (i.src === BPF_PSEUDO_BTF_ID) {
        const v = ksyms.get(idx);
        if (v === undefined)
          throw new LinkError(
            `ksym#${i.imm}`,
            `insn ${idx}: extern ksym #${i.imm} is not resolved`,
          );
        ldImm64.set(idx, v);
        return;
      }
      ldImm64.set(idx, BigInt(this.mapLoadAddr(prog, idx, objMaps)));
    });
    return {
      helperBase,
      funcTokenBase,
      ldImm64,
      kfuncSlots,
      ...(throwInsns.size > 0 ? { throwInsns } : {}),
      ...(inline.size > 0 ? { inlineKfuncs: inline } : {}),
      // what the engines check at run time (src/verifier/check-coro.ts)
      ...(verified?.frameChecks !== undefined && verified.frameChecks.size > 0
        ? { frameChecks: verified.frameChecks }
        : {}),
      ...(verified?.regionChecks !== undefined && verified.regionChecks.size > 0
        ? { regionChecks: this.regionRanges(verified.regionChecks) }
        : {}),
      ...(verified?.coroEntries !== undefined && verified.coroEntries.size > 0
        ? { coroEntries: verified.coroEntries }
        : {}),
      ...(verified?.callxChecks !== undefined && verified.callxChecks.size > 0
        ? { callxChecks: verified.callxChecks }
        : {}),
      ...(verified?.frameAllocSizes !== undefined && verified.frameAllocSizes.size > 0
        ? { frameAllocSizes: verified.frameAllocSizes }
        : {}),
      ...(verified?.liveFrameFrees !== undefined && verified.liveFrameFrees.size > 0
        ? { liveFrameFrees: verified.liveFrameFrees }
        : {}),
      ...(verified?.objNewSizes !== undefined && verified.objNewSizes.size > 0
        ? { objNewSizes: verified.objNewSizes }
        : {}),
      ...(verified?.loopInlines !== undefined && verified.loopInlines.size > 0
        ? { loopInlines: verified.loopInlines }
        : {}),
    };
  }

  /** `VerifiedProgram.regionChecks` with each map id turned into its value's linear range. */
  private regionRanges(
    checks: ReadonlyMap<number, readonly number[]>,
  ): Map<number, (readonly [number, number])[]> {
    const out = new Map<number, (readonly [number, number])[]>();
    for (const [idx, ids] of checks) {
      const ranges = ids.map((id): readonly [number, number] => {
        const map = this.mapById(id);
        if (map === undefined)
          throw new LinkError(`map id ${id}`, `insn ${idx}: map id ${id} is gone`);
        const start = map.valueAddr(0);
        return [start, start + map.valueSize];
      });
      out.set(idx, ranges);
    }
    return out;
  }

  /** The map (and value offset) a map pseudo lddw at `idx` loads. */
  private resolveMapLoad(
    prog: Program,
    idx: number,
    objMaps: readonly BpfMap[],
  ): LdMap & {
    readonly bpfMap: BpfMap;
  } {
    const i = prog.insns[idx] as Insn;
    const next = prog.insns[idx + 1] as Insn;
    const byFd = i.src === BPF_PSEUDO_MAP_FD || i.src === BPF_PSEUDO_MAP_VALUE;
    const byIdx = i.src === BPF_PSEUDO_MAP_IDX || i.src === BPF_PSEUDO_MAP_IDX_VALUE;
    if (!byFd && !byIdx) {
      throw new LinkError(
        `lddw src=${i.src}`,
        `insn ${idx}: lddw with src=${i.src} is not supported`,
      );
    }
    const map = byFd ? this.mapById(i.imm) : objMaps[i.imm];
    if (map === undefined) {
      throw new LinkError(
        byFd ? `map fd ${i.imm}` : `map #${i.imm}`,
        `insn ${idx}: ${byFd ? `fd ${i.imm} is not a map of this Vm` : `map index ${i.imm} is out of range (${objMaps.length} maps)`}`,
      );
    }
    const info: MapInfo = {
      keySize: map.keySize,
      valueSize: map.valueSize,
      maxEntries: map.maxEntries,
      type: map.type,
      id: map.id,
      name: map.name,
      rdonlyProg: (map.flags & BPF_F_RDONLY_PROG) !== 0,
      wronlyProg: (map.flags & BPF_F_WRONLY_PROG) !== 0,
    };
    if (i.src === BPF_PSEUDO_MAP_FD || i.src === BPF_PSEUDO_MAP_IDX) {
      return { map: info, value: false, off: 0, bpfMap: map };
    }
    const off = next.imm;
    if (off < 0 || off >= map.valueSize) {
      throw new LinkError(
        map.name,
        `insn ${idx}: offset ${off} is outside the value of map '${map.name}' (${map.valueSize} bytes)`,
      );
    }
    return { map: info, value: true, off, bpfMap: map };
  }

  /** The address a map pseudo lddw at `idx` loads. */
  private mapLoadAddr(prog: Program, idx: number, objMaps: readonly BpfMap[]): number {
    const { bpfMap, value, off } = this.resolveMapLoad(prog, idx, objMaps);
    return value ? bpfMap.valueAddr(0) + off : bpfMap.addr;
  }

  private instantiate(
    mod: WebAssembly.Module,
    extra: Record<string, WebAssembly.ExportValue> = {},
  ): WebAssembly.Exports {
    const inst = new WebAssembly.Instance(mod, {
      [IMPORT_MODULE]: {
        ...extra,
        [IMPORT_MEMORY]: this.memory,
        [IMPORT_TABLE]: this.table,
        [IMPORT_SP]: this.globals.sp,
        [IMPORT_STACK_LIMIT]: this.globals.stackLimit,
        [IMPORT_CTRL]: this.globals.ctrl,
        [IMPORT_CTX]: this.globals.ctx,
        [IMPORT_CORO_DRAIN]: this.rt.coro_drain_deferred,
      },
    });
    return inst.exports;
  }

  /** Puts every kfunc registered since the last call into its table slot. */
  private async fillKfuncSlots(): Promise<void> {
    const todo = [...this.kfuncs.values()].filter(
      (k) => k.slot - KFUNC_SLOT_BASE >= this.kfuncsFilled,
    );
    if (todo.length === 0) return;
    const js = todo.filter((k) => k.proto.wasm === undefined);
    const adapted = await adaptHelpers(js.map((k) => k.proto.fn));
    js.forEach((k, n) => this.table.set(k.slot, adapted[n]));
    for (const k of todo) if (k.proto.wasm !== undefined) this.table.set(k.slot, k.proto.wasm);
    this.kfuncsFilled = this.kfuncs.size;
  }

  private async fillHelperSlots(base: number): Promise<void> {
    if (this.adapters === undefined) {
      const protos = this.helpers.all().filter((h) => h.wasm === undefined);
      // every JS helper call is a termination checkpoint while a deadline is armed
      const term = this.termination;
      const adapted = await adaptHelpers(
        protos.map((p) => term.watched(p.fn, fastPathFn(this, helperFastPath(p.id)))),
      );
      this.adapters = new Map(protos.map((p, k) => [p.id, adapted[k] as WebAssembly.ExportValue]));
    }
    this.table.set(base + TERM_CHECK_SLOT, this.termination.checkpointFn());
    for (const [id, fn] of this.adapters) this.table.set(base + id, fn);
    for (const h of this.helpers.all())
      if (h.wasm !== undefined) this.table.set(base + h.id, h.wasm);
  }
}

/** Writes the task_struct programs see: pid, tgid, comm. */
function writeTaskStruct(vm: Vm, addr: number, t: TaskInfo): void {
  const v = vm.dataView();
  v.setUint32(addr, t.pid, true);
  v.setUint32(addr + 4, t.tgid, true);
  const comm = new TextEncoder().encode(t.comm).subarray(0, 15);
  vm.u8().fill(0, addr + 8, addr + 24);
  vm.u8().set(comm, addr + 8);
}

function defaultHost(opts: VmOptions): HelperHost {
  return {
    clock: opts.clock ?? (() => process.hrtime.bigint()),
    random: opts.random ?? xorshift32(opts.seed ?? DEFAULT_SEED),
    cpu: () => 0,
  };
}
