/**
 * The contract between the JIT (jit/), the interpreter (src/interp) and the runtime
 * (runtime/): linear-memory layout, call-table layout, the names a compiled module imports
 * and exports, the codes generated code uses to report errors, and the facts fixed when a
 * program is linked into a Vm. Nothing here executes; everything is a number or a type.
 *
 * Memory, low to high (DESIGN.md §2):
 *
 * ```
 * 0x00000  null guard (64 KiB, never handed out)
 * 0x10000  control block: header, then one CTRL_SLOT_SIZE slot per worker
 * 0x20000  worker areas, WORKER_AREA_SIZE each: stack | ctx | scratch | packet
 * heapBase global data, map storage, frame allocator heap (grows with memory.grow)
 * ```
 *
 * A BPF pointer is an i64 whose value is a 32-bit linear address.
 */

import { MAX_BPF_STACK, MAX_CALL_FRAMES } from './isa/opcodes.js';

/** Wasm page size. */
export const WASM_PAGE = 0x10000;

/** Addresses below this are never valid: NULL and small offsets from it fault. */
export const NULL_GUARD_END = 0x10000;

/** Start of the control block. */
export const CTRL_BASE = 0x10000;
/** Bytes of the control block header (Vm-wide fields). */
export const CTRL_HEADER_SIZE = 0x100;
/**
 * Vm-wide coroutine words in the control block header (runtime/wasm/coro.ts), at
 * CTRL_BASE + CORO_CTL_OFF: queues the kfuncs push to, the token limit, counters.
 */
export const CORO_CTL_OFF = 0x40;
export const CORO_CTL = {
  /** u32: the ready queue map (bpf_coro_yield). */
  readyQueue: 0x00,
  /** u32: the cancelled queue map (bpf_coro_take_cancelled). */
  cancelQueue: 0x04,
  /** u32: one past the highest function token; resume/destroy tokens are checked against it. */
  tokenLimit: 0x08,
  /** u32: 1: bpf_coro_defer yields to the ready queue instead of resuming at the end of the run. */
  deferToReady: 0x0c,
  /** u64 counters: frames resumed by the runtime, deferred, pushed to queues, destroyed when done. */
  resumed: 0x10,
  deferred: 0x18,
  queued: 0x20,
  reaped: 0x28,
  /** u64: bad handles passed to coroutine kfuncs (ignored). */
  badHandles: 0x30,
  /** u64 counters kept by bpf_coro_frame_alloc/free: frames made, freed once done, freed before. */
  created: 0x38,
  completed: 0x40,
  destroyed: 0x48,
  /**
   * u32: address of the entry map (runtime/coroutines.ts): a u32 count of token bits, then one
   * bit per function token from FUNC_TOKEN_BASE, set for verified token entries (`coroEntries`).
   * `coro_entry_check` (CORO_ENTRY_CHECK_SLOT) reads it; 0 until a program has entries.
   */
  entryMap: 0x50,
  /**
   * u32: the sleep queue map (16-byte values: a tagged handle, then the delay in ns) that
   * bpf_coro_sleep on a worker thread pushes to; the host sets the timers when the worker's
   * request completes (runtime/coroutines.ts). 0 in a Vm without workers.
   */
  sleepQueue: 0x54,
  /**
   * Task references (runtime/wasm/task-ref.ts): u32 address of the Vm's task_struct (0 until
   * made), u32 references held (bpf_task_acquire, not yet released), u32 releases of a pointer
   * that held none. Vm-wide, so a reference may be released on another thread.
   */
  taskStruct: 0x58,
  taskHeld: 0x5c,
  taskBadReleases: 0x60,
} as const;
/** Bytes of one worker's control slot. */
export const CTRL_SLOT_SIZE = 0x100;
/** Most workers a Vm can have. */
export const MAX_WORKERS = 64;

// Fields of a worker's control slot (byte offsets within the slot).
/** u32: non-zero when termination of the running program is requested. */
export const CTRL_TERMINATE = 0x00;
/** u32: an `ExecCode` stored by generated code just before it traps. */
export const CTRL_ERR_CODE = 0x04;
/** u32: the insn index of that error. */
export const CTRL_ERR_INSN = 0x08;
/** u32: id of the program running on this worker (0 when idle). */
export const CTRL_PROG = 0x0c;
/** u64: remaining may_goto budget of the current run. */
export const CTRL_MAY_GOTO = 0x10;
/** u64: full 64-bit r0 of the last run (the i32 entry returns only the low half). */
export const CTRL_R0 = 0x18;
/** u64: heartbeat counter, bumped by the worker. */
export const CTRL_HEARTBEAT = 0x20;
/** u64: detail of the last error (the faulting address, the bad call target). */
export const CTRL_ERR_AUX = 0x28;
/** u32 (two words): the packet legacy ld_abs/ld_ind read in this run (address, length). */
export const CTRL_PKT_ADDR = 0x30;
export const CTRL_PKT_LEN = 0x34;
/** u32: tail calls taken in this run (at most MAX_TAIL_CALL_CNT). */
export const CTRL_TAIL_CALL_CNT = 0x38;
// Dispatch to a worker thread (runtime/worker-pool.ts, runtime/worker-main.ts); all i32 words
// accessed with Atomics.
/** i32: request counter; the host bumps it and notifies, the worker waits on it. */
export const CTRL_DOORBELL = 0x40;
/** i32: the request counter the worker finished last; the host waits on it. */
export const CTRL_DONE = 0x44;
/** u32: what the request asks (WORKER_CMD_*). */
export const CTRL_CMD = 0x48;
/** u32: id of the loaded program the request runs. */
export const CTRL_CMD_PROG = 0x4c;
/** u32 (three words): the request's arguments (run: addr, len; batch: desc, count, results). */
export const CTRL_ARG0 = 0x50;
export const CTRL_ARG1 = 0x54;
export const CTRL_ARG2 = 0x58;
/** u32: outcome of the last request (WORKER_STATUS_*). */
export const CTRL_STATUS = 0x5c;
/** u32: length of the UTF-8 error message the worker left in its scratch area. */
export const CTRL_ERR_LEN = 0x60;

// Ranges of the control slot reserved per subsystem (each defines its own fields inside):
/** 0x64..0x7f: coroutines (runtime/wasm/coro.ts): the deferred ring of the current run. */
export const CTRL_CORO = 0x64;
/** u32: ring index of the next deferred frame to resume (bpf_coro_defer). */
export const CTRL_DEFER_HEAD = 0x64;
/** u32: ring index after the last deferred frame; head == tail: nothing deferred. */
export const CTRL_DEFER_TAIL = 0x68;
/**
 * u32: how many runtime resumes (`coro_resume`) are running on this worker; non-zero means the
 * code runs at a deferred point ("task context": bpf_get_stack may walk the user stack).
 */
export const CTRL_CORO_DEPTH = 0x6c;
/** u32: the frame the runtime's resume loop is running on this worker (0: none). */
export const CTRL_CORO_CURRENT = 0x70;
/** u32: address of this worker's deferred ring (set when the runtime module attaches). */
export const CTRL_DEFER_RING = 0x74;
/** u64: scratch word of the coroutine kfuncs (a handle on its way into a queue map). */
export const CTRL_CORO_SCRATCH = 0x78;
/** 0x80..0x9f: the frame allocator's per-worker words (runtime/wasm/frame-alloc.ts). */
export const CTRL_ALLOC = 0x80;
/** u32: address of this worker's allocator cache (set when the runtime module attaches). */
export const CTRL_ALLOC_CACHE = 0x80;
/** u32: address of the owner accounts (OWNER_ACCT_SIZE bytes per owner). */
export const CTRL_ALLOC_OWNERS = 0x84;
/** u32: number of owner accounts. */
export const CTRL_ALLOC_MAX_OWNERS = 0x88;
/** u32: address of the allocator's state block. */
export const CTRL_ALLOC_STATE = 0x8c;
/** u32: this worker's index in the allocator (the cache it owns). */
export const CTRL_ALLOC_WORKER = 0x90;
/**
 * The frame allocator's layout that generated code reads for its inline fast paths
 * (jit/inline-kfunc.ts); runtime/wasm/frame-alloc.ts defines the same numbers (a test checks).
 */
export const FRAME_ALLOC = {
  /** log2 of the span size; spans are aligned to it. */
  spanShift: 16,
  /** Bytes of a span header before its owner table (u16 per slot: 0 free, else owner + 1). */
  spanHdr: 64,
  /** Largest request a size class serves. */
  maxSmall: 4096,
  /** Span header fields (u32). */
  spClass: 4,
  spWorker: 8,
  spSize: 12,
  spNslots: 16,
  spData: 20,
  spRecip: 40,
  /** Span table kind of a small span. */
  kindSmall: 1,
  /** State block fields (u32). */
  stHeapStart: 0,
  stHeapEnd: 4,
  stSeq: 16,
  stDouble: 24,
  stSpanTable: 40,
  /** A worker cache's class entry: bytes, free list head, count. */
  ceSize: 16,
  ceHead: 0,
  ceCount: 4,
  /** An owner account: bytes; live (u64 objects << 32 | bytes), caps (u32). */
  ownerAcctSize: 16,
  oaCapObjects: 8,
  oaCapBytes: 12,
  /** Bytes of other workers' objects a cache keeps per class, and its spill bound. */
  cacheForeignBytes: 32768,
  cacheSpillBytes: 65536,
} as const;
/** 0xa0..0xbf: termination (runtime/termination.ts, notes/fast-path-termination.md §10.1). */
export const CTRL_TERM = 0xa0;
/**
 * u32: the acknowledgement. The running worker writes the TERM_REASON_* it acted on when it
 * swapped the running program's helper block for the fast-path versions, and clears it when
 * the block is restored; a runner that finds it set after the run reports the run terminated.
 * A request itself is CTRL_TERMINATE (any thread stores a TERM_REASON_* there with Atomics).
 */
export const CTRL_TERM_ACK = 0xa0;
/** u32: the helper block (helperBase + 1) that holds fast-path versions now; 0 when none. */
export const CTRL_TERM_BLOCK = 0xa4;
/** u64: process.hrtime ns after which the current run is terminated (watchdog); 0: none. */
export const CTRL_TERM_DEADLINE = 0xa8;
/** u32: termination checkpoints taken on this worker (may_goto refills, entry checks). */
export const CTRL_TERM_CHECKS = 0xb0;

/** CTRL_TERMINATE / CTRL_TERM_ACK values: why a run is stopped. */
export const TERM_REASON_REQUEST = 1;
export const TERM_REASON_TIMEOUT = 2;
/**
 * Slot of each program's helper block (an offset from its helperBase) that holds the
 * termination checkpoint instead of a helper: the last one, id 255, which the kernel does not
 * use and the helper registry refuses (id 0 of the first two blocks holds the coroutine
 * checks, CORO_FRAME_CHECK_SLOT). `(r1 = helperBase, r2 = may_goto budget, ...) -> budget`, 0
 * once the run is being terminated. Generated code calls it at every MAY_GOTO_CHECK_PERIOD-th
 * may_goto.
 */
export const TERM_CHECK_SLOT = 0xff;
/** may_goto checks for termination when its budget is a multiple of this (the kernel's refill). */
export const MAY_GOTO_CHECK_PERIOD = 0x10000;
/** 0xc0..0xdf: workers and their pool (runtime/worker-pool.ts, runtime/helpers/spinlock.ts). */
export const CTRL_WORKERS = 0xc0;
/**
 * u32: address of the bpf_spin_lock the program running on this worker holds, 0 when none (a
 * program holds at most one, as the verifier requires). The pool releases it when it replaces
 * a dead or hung worker.
 */
export const CTRL_LOCK_HELD = 0xc0;
/** u32: locks this worker's bpf_spin_lock took over from another owner that never released them. */
export const CTRL_LOCK_BREAKS = 0xc4;

/**
 * 0xe0..0xef: u64 × 2, a tagged handle and its delay on their way into the sleep queue
 * (bpf_coro_sleep on a worker thread, runtime/wasm/coro.ts).
 */
export const CTRL_CORO_SLEEP = 0xe0;

/** Worker requests (CTRL_CMD). */
export const WORKER_CMD_RUN = 1;
export const WORKER_CMD_RUN_BATCH = 2;
/** Worker outcomes (CTRL_STATUS). */
export const WORKER_STATUS_OK = 0;
/** Generated code trapped; the error code is in CTRL_ERR_CODE as on the host. */
export const WORKER_STATUS_TRAP = 1;
/** A BpfError or other exception; its name and message are in the scratch area. */
export const WORKER_STATUS_ERROR = 2;

/** Start of the first worker area. */
export const WORKER_BASE = 0x20000;
/** Bytes of one worker area. */
export const WORKER_AREA_SIZE = 0x20000;

// Layout inside a worker area (byte offsets from its start).
/** Stack: callback frames at the bottom, the program's MAX_CALL_FRAMES frames at the top. */
export const STACK_OFF = 0x0000;
/** Bytes of stack per worker. */
export const STACK_SIZE = 0x4000;
/** Bytes of stack the program and its local calls may use: 8 frames of 512 bytes. */
export const PROG_STACK_SIZE = MAX_CALL_FRAMES * MAX_BPF_STACK;
/** Context structure (xdp_md, __sk_buff, ...). */
export const CTX_OFF = 0x4000;
/** Bytes reserved for the context. */
export const CTX_SIZE = 0x1000;
/** Scratch space for adapters and entry points. */
export const SCRATCH_OFF = 0x5000;
/** Bytes of scratch. */
export const SCRATCH_SIZE = 0x1000;
/** Packet buffer: XDP headroom, then the data, then tailroom. */
export const PACKET_OFF = 0x6000;
/** XDP_PACKET_HEADROOM: bytes before the packet data that adjust_head may claim. */
export const XDP_PACKET_HEADROOM = 256;
/** Most packet bytes one run can take. */
export const PACKET_CAPACITY = 0x10000;
/** Ring of frames deferred in the current run: (frame u32, seq u32) entries. */
export const DEFER_RING_OFF = 0x18000;
/** Entries of the deferred ring (a power of two); when full, bpf_coro_defer yields instead. */
export const DEFER_RING_CAP = 2048;
/** Where the packet data starts, from the worker area's start. */
export const PACKET_DATA_OFF = PACKET_OFF + XDP_PACKET_HEADROOM;

/** Addresses of one worker's areas. */
export interface WorkerLayout {
  readonly index: number;
  readonly ctrl: number;
  readonly stackBottom: number;
  /** Frame pointer (r10) of the entry function. */
  readonly stackTop: number;
  /** Lowest address a program frame may use; below it lies callback stack. */
  readonly progStackLimit: number;
  readonly ctx: number;
  readonly scratch: number;
  readonly packet: number;
}

/** The layout of worker `index`. */
export function workerLayout(index: number): WorkerLayout {
  const base = WORKER_BASE + index * WORKER_AREA_SIZE;
  const stackTop = base + STACK_OFF + STACK_SIZE;
  return {
    index,
    ctrl: CTRL_BASE + CTRL_HEADER_SIZE + index * CTRL_SLOT_SIZE,
    stackBottom: base + STACK_OFF,
    stackTop,
    progStackLimit: stackTop - PROG_STACK_SIZE,
    ctx: base + CTX_OFF,
    scratch: base + SCRATCH_OFF,
    packet: base + PACKET_DATA_OFF,
  };
}

/** First byte after the worker areas of a Vm with `workers` workers (at least one). */
export function heapBase(workers: number): number {
  return WORKER_BASE + Math.max(1, workers) * WORKER_AREA_SIZE;
}

// Context layouts.
/** `struct xdp_md` field offsets (all u32). */
export const XDP_MD = {
  data: 0,
  data_end: 4,
  data_meta: 8,
  ingress_ifindex: 12,
  rx_queue_index: 16,
  egress_ifindex: 20,
  size: 24,
} as const;

/**
 * `struct bpf_perf_event_data` (x86-64): `struct pt_regs regs` (21 u64), `u64 sample_period`,
 * `u64 addr`. A perf_event run's input bytes are the context itself.
 */
export const PERF_EVENT_DATA = {
  regs: 0,
  sample_period: 168,
  addr: 176,
  size: 184,
} as const;

/**
 * `struct __sk_buff` field offsets (uapi layout, 192 bytes), for socket filter, tc and
 * cgroup_skb programs. data, data_end and data_meta hold 32-bit linear addresses.
 */
export const SK_BUFF = {
  len: 0,
  pkt_type: 4,
  mark: 8,
  queue_mapping: 12,
  protocol: 16,
  vlan_present: 20,
  vlan_tci: 24,
  vlan_proto: 28,
  priority: 32,
  ingress_ifindex: 36,
  ifindex: 40,
  tc_index: 44,
  cb: 48,
  hash: 68,
  tc_classid: 72,
  data: 76,
  data_end: 80,
  napi_id: 84,
  family: 88,
  remote_ip4: 92,
  local_ip4: 96,
  remote_ip6: 100,
  local_ip6: 116,
  remote_port: 132,
  local_port: 136,
  data_meta: 140,
  flow_keys: 144,
  tstamp: 152,
  wire_len: 160,
  gso_segs: 164,
  sk: 168,
  gso_size: 176,
  tstamp_type: 180,
  hwtstamp: 184,
  size: 192,
} as const;

// Call table.
/** Table slots per program for helpers: slot = helperBase + helper id. */
export const HELPER_BLOCK_SIZE = 0x100;
/**
 * The allocator owner a program's allocations are charged to (its id + 1; 0 is the host), from
 * its helper block; the run's entry stores it at ctrl + CTRL_PROG.
 */
export function programOwner(helperBase: number): number {
  return helperBase / HELPER_BLOCK_SIZE + 1;
}
/** Function tokens start here: a token is the table slot of its function. */
export const FUNC_TOKEN_BASE = 0x10000;
/** Most kfuncs one Vm can register; their slots sit just below FUNC_TOKEN_BASE. */
export const MAX_KFUNCS = 0x400;
/** Table slot of the first kfunc. */
export const KFUNC_SLOT_BASE = FUNC_TOKEN_BASE - MAX_KFUNCS;

// Names a compiled program module imports (all from module "env") and exports.
export const IMPORT_MODULE = 'env';
export const IMPORT_MEMORY = 'memory';
export const IMPORT_TABLE = 'table';
/** Mutable i32 global: the stack pointer (r10 of the next frame), shared by a worker's modules. */
export const IMPORT_SP = 'sp';
/** i32 global: lowest address a program frame may reach. */
export const IMPORT_STACK_LIMIT = 'stack_limit';
/** i32 global: address of this worker's control slot. */
export const IMPORT_CTRL = 'ctrl';
/** i32 global: address of this worker's ctx area. */
export const IMPORT_CTX = 'ctx';
/**
 * Function `(limit: i32) -> i32` (the runtime module's coro_drain_deferred): resumes the frames
 * deferred in this run. Imported by modules whose programs can suspend (kfunc calls or callx):
 * their entry drains the ring itself (jit/coro-drain.ts) and hands the rest of it to this one
 * at an entry it does not resume itself.
 */
export const IMPORT_CORO_DRAIN = 'coro_drain';
/** Most deferred frames one run's drain resumes; the rest wait for the next run. */
export const CORO_DRAIN_LIMIT = 1 << 16;
/** Export: `(r1: i32, r2: i32) -> i32`; for xdp `(data: i32, len: i32)`. Stores full r0 at ctrl + CTRL_R0. */
export const EXPORT_RUN = 'run';
/** Export: `(desc: i32, count: i32, results: i32) -> i32`: runs over `count` 8-byte (a, b) descriptors. */
export const EXPORT_RUN_BATCH = 'run_batch';
/** Export: `(ctx: i32, pkt: i32, len: i32) -> i32`: r1 = a context the host built; pkt/len for ld_abs. */
export const EXPORT_RUN_CTX = 'run_ctx';
/** Export prefix of function `k` (subprog index): `f0`, `f1`, ... */
export const EXPORT_FUNC_PREFIX = 'f';

/** Error codes generated code stores at ctrl + CTRL_ERR_CODE before it traps. */
export const EXEC_CODE = {
  mem: 1,
  align: 2,
  stack: 3,
  'call-depth': 4,
  call: 5,
  jump: 6,
  'insn-budget': 7,
  'fall-off': 8,
  helper: 9,
  /** An access through a coroutine handle, or a token entry's r1, failed `coro_frame_check`. */
  frame: 10,
  /** `bpf_throw`: not an error; the host returns the cookie (aux) as r0. */
  throw: 11,
} as const;

/**
 * Call-table slot of the runtime's `coro_frame_check(frame: i32, need: i32) -> i32` (1 when
 * `frame` is a live coroutine frame of at least `need` bytes; never traps), which generated
 * code calls before every access through a coroutine handle and at the entry of a resume /
 * destroy function (src/verifier/check-coro.ts). Slot 0 is helper id 0 of the first
 * program's block, which never holds a helper.
 */
export const CORO_FRAME_CHECK_SLOT = 0;
/**
 * Or'ed into `coro_frame_check`'s `need` for an access through a coroutine handle (not a
 * function entry): the data of a reserved, not yet committed ring buffer record of at least
 * that many bytes passes too (a record kept in a frame across a suspension, check-coro.ts).
 */
export const CORO_CHECK_RECORD = 0x8000_0000;
/**
 * Call-table slot of the runtime module's `coro_entry_check(token: i32) -> i32`: 1 when `token`
 * names a function the verifier verified as a token entry (resume / destroy, `coroEntries`;
 * the entry map at CORO_CTL.entryMap, runtime/coro-entries.ts). The JIT reads the entry map
 * inline (jit/inline-kfunc.ts inlineEntryCheck), the same check. Generated
 * code calls it before a `callx` whose target came from a frame, a handle or `.rodata`
 * (`callxChecks`). Helper id 0 of the second program's block, which never holds a helper.
 */
export const CORO_ENTRY_CHECK_SLOT = HELPER_BLOCK_SIZE;

/**
 * What the Vm fixed when it linked a program: where its helper slots and function tokens
 * are, and the value of every pseudo lddw (maps, globals, functions). Both engines use it.
 */
export interface ProgLinks {
  /** Table slot of helper id 0 for this program. */
  readonly helperBase: number;
  /** Token of subprog 0; subprog k has token funcTokenBase + k. */
  readonly funcTokenBase: number;
  /** Resolved value of each lddw with src != 0, by slot index. */
  readonly ldImm64: ReadonlyMap<number, bigint>;
  /**
   * Call-table slot of the kfunc each kfunc call (call src 2) calls, by insn index; a call
   * without an entry names a weak kfunc the Vm does not have, and fails if it runs.
   */
  readonly kfuncSlots: ReadonlyMap<number, number>;
  /** `bpf_throw` calls (insn indexes): both engines unwind to the entry with r0 = r1. */
  readonly throwInsns?: ReadonlySet<number>;
  /**
   * From the verifier (`VerifiedProgram.frameChecks`): accesses through coroutine handles,
   * insn → bytes the handle must be a live frame of, checked with `coro_frame_check`.
   */
  readonly frameChecks?: ReadonlyMap<number, number>;
  /**
   * From the verifier (`VerifiedProgram.regionChecks`, map ids resolved): insn → the
   * `[start, end)` linear ranges of the read-only map values it may load from. With a
   * `frameChecks` entry the access may lie in one of them instead of a frame; without one it
   * must lie in one of them.
   */
  readonly regionChecks?: ReadonlyMap<number, readonly (readonly [number, number])[]>;
  /** From the verifier: token entry subprog → frame size r1 is checked against (0: none). */
  readonly coroEntries?: ReadonlyMap<number, number>;
  /** From the verifier: `callx` insns whose target must be a verified entry's token. */
  readonly callxChecks?: ReadonlySet<number>;
  /** From the verifier: `bpf_obj_new_impl` calls, insn → object size passed in r1. */
  readonly objNewSizes?: ReadonlyMap<number, number>;
  /** From the verifier: `bpf_coro_frame_alloc` calls, insn → their constant size. */
  readonly frameAllocSizes?: ReadonlyMap<number, number>;
  /** From the verifier: `bpf_coro_frame_free` calls that always get a live frame. */
  readonly liveFrameFrees?: ReadonlySet<number>;
  /** From the verifier: `bpf_loop` calls the JIT inlines, insn → callback subprog. */
  readonly loopInlines?: ReadonlyMap<number, number>;
  /**
   * Kfunc calls to the runtime module's own allocator and coroutine kfuncs (not replaced by the
   * embedder), insn → which: the JIT emits their fast path inline and calls the slot on a miss
   * (jit/inline-kfunc.ts). The interpreter calls the slot's kfunc as for any other.
   */
  readonly inlineKfuncs?: ReadonlyMap<number, InlineKfunc>;
}

/** The runtime kfuncs whose fast path the JIT emits inline (`ProgLinks.inlineKfuncs`). */
export type InlineKfunc =
  | 'bpf_obj_new_impl'
  | 'bpf_obj_drop_impl'
  | 'bpf_coro_frame_alloc'
  | 'bpf_coro_frame_free'
  | 'bpf_coro_defer'
  | 'bpf_coro_detach'
  | 'bpf_coro_done';

/** Names of the kfuncs `InlineKfunc` lists. */
export const INLINE_KFUNCS: ReadonlySet<string> = new Set<InlineKfunc>([
  'bpf_obj_new_impl',
  'bpf_obj_drop_impl',
  'bpf_coro_frame_alloc',
  'bpf_coro_frame_free',
  'bpf_coro_defer',
  'bpf_coro_detach',
  'bpf_coro_done',
]);

// Coroutine frames (notes/coroutines.md, DESIGN.md §5). `bpf_coro_frame_alloc(size, ctx)`
// takes an object of CORO_HDR_SIZE + size bytes from the frame allocator and returns
// frame = object + CORO_HDR_SIZE; the header before the frame belongs to the runtime, the
// frame (resume token at +0, destroy token at +8, then the promise) to the program.
/** Bytes of the runtime's header before every coroutine frame. */
export const CORO_HDR_SIZE = 32;
/** Header fields, as (negative) offsets from the frame address. */
export const CORO_HDR = {
  /** u64: Vm-clock ns after which a suspended frame is destroyed; 0: no deadline. */
  deadline: -32,
  /** u32: allocation sequence number (never 0): tells a frame from a later one at the same address. */
  seq: -24,
  /** u32: CORO_F_* bits. */
  flags: -20,
  /** u32: id of the owner the frame is charged to (the loaded program that allocated it). */
  owner: -16,
  /** u32: the frame that awaits this one (bpf_coro_await), 0 when none: the parent owns it. */
  parent: -12,
  /** u32: frame bytes the program asked for. */
  size: -8,
  /** u32: CORO_MAGIC while the frame is live; cleared when it is freed. */
  magic: -4,
} as const;
/** Marks a live coroutine frame header ("CORO"). */
export const CORO_MAGIC = 0x4f524f43;
/** The runtime owns the frame (Task::detach): it destroys it when it is done. */
export const CORO_F_DETACHED = 1;
/** In a coroutine queue map. */
export const CORO_F_QUEUED = 4;
/** Waiting for a host timer. */
export const CORO_F_SLEEPING = 8;
/** Cancelled: handed back to BPF by bpf_coro_take_cancelled or destroyed by the runtime. */
export const CORO_F_CANCELLED = 16;
/**
 * The host's sweep is destroying the frame (runtime/coroutines.ts `sweep`): every resume path
 * takes it for stale (coro_resume, the deferred drains, bpf_coro_handle_frame).
 */
export const CORO_F_DYING = 32;

// Maps. A map lives in linear memory as a descriptor (the kernel's struct bpf_map) whose
// address is what lddw with BPF_PSEUDO_MAP_FD/IDX loads; its storage follows in the heap.
// runtime/wasm/abi.ts repeats these numbers for the AssemblyScript runtime module, and a test
// checks that both agree.
/** `n` rounded up to a multiple of 8: map values, percpu copies and elements are 8-byte aligned. */
export function round8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes of a map descriptor. */
export const MAP_DESC_SIZE = 128;
/** u32 fields of a map descriptor (byte offsets). */
export const MAP_DESC = {
  type: 0,
  keySize: 4,
  valueSize: 8,
  maxEntries: 12,
  flags: 16,
  id: 20,
  /**
   * array: bytes per element; hash: bytes per element including its header and key;
   * queue/stack: bytes per ring slot; lpm_trie: bytes per node.
   */
  elemSize: 24,
  /** array: first value; hash: bucket array; queue/stack: the ring; bloom_filter: the bit array. */
  data: 28,
  nBuckets: 32,
  /** hash: elements in use; lpm_trie: prefixes stored (not counting intermediate nodes). */
  count: 36,
  /** hash: head of the free element list; lpm_trie: head of the free node list. */
  freeList: 40,
  /** hash: first preallocated element; lpm_trie: first preallocated node. */
  elems: 44,
  /** spin lock word for writers. */
  lock: 48,
  /** percpu maps: number of CPUs (value copies). */
  nCpus: 52,
  /** lru: clock hand (element index). */
  lruHand: 56,
  /** MAP_MAGIC, so that helpers can reject pointers that are not maps. */
  magic: 60,
  /** map_extra, low 32 bits (bloom_filter: the number of hash functions in bits 0-3). */
  mapExtra: 64,
  /** queue/stack: the ring slot the next push writes. */
  head: 68,
  /** queue/stack: the ring slot of the oldest element (head == tail: empty). */
  tail: 72,
  /** bloom_filter: hash functions per value (1..15). */
  nHashFuncs: 76,
  /** bloom_filter: bits in the bit array minus one (a power of two minus one). */
  bitsetMask: 80,
  /** lpm_trie: the root node, 0 when empty. */
  root: 84,
  /**
   * Storage after the elements. lpm_trie: the node stack of next_key; array_of_maps and
   * hash_of_maps: the inner map template, a descriptor without MAP_MAGIC.
   */
  aux: 88,
} as const;
/** Marks a live map descriptor. */
export const MAP_MAGIC = 0x4d504642;
/** Hash element header: next (u32), hash (u32), flags (u32: bit 0 used, bit 1 referenced), pad; then key, then value. */
export const HTAB_ELEM_HEADER = 16;
/**
 * LPM trie node header: child[0] (u32), child[1] (u32), prefixlen (u32), flags (u32: bit 0
 * intermediate); then the key's data bytes (rounded to 8), then the value.
 */
export const LPM_NODE_HEADER = 16;
