// AssemblyScript: the layout numbers of src/abi.ts that the runtime module needs.
// test/unit/runtime/rt-abi.test.ts checks that they agree with src/abi.ts.

export const NULL_GUARD_END: u32 = 0x10000;
export const MAP_DESC_SIZE: u32 = 128;
export const MAP_MAGIC: u32 = 0x4d504642;
export const HTAB_ELEM_HEADER: u32 = 16;
export const LPM_NODE_HEADER: u32 = 16;

// struct bpf_map descriptor fields
export const MAP_TYPE: u32 = 0;
export const MAP_KEY_SIZE: u32 = 4;
export const MAP_VALUE_SIZE: u32 = 8;
export const MAP_MAX_ENTRIES: u32 = 12;
export const MAP_FLAGS: u32 = 16;
export const MAP_ID: u32 = 20;
export const MAP_ELEM_SIZE: u32 = 24;
export const MAP_DATA: u32 = 28;
export const MAP_N_BUCKETS: u32 = 32;
export const MAP_COUNT: u32 = 36;
export const MAP_FREE_LIST: u32 = 40;
export const MAP_ELEMS: u32 = 44;
export const MAP_LOCK: u32 = 48;
export const MAP_N_CPUS: u32 = 52;
export const MAP_LRU_HAND: u32 = 56;
export const MAP_MAGIC_FIELD: u32 = 60;
export const MAP_EXTRA: u32 = 64;
export const MAP_HEAD: u32 = 68;
export const MAP_TAIL: u32 = 72;
export const MAP_N_HASH_FUNCS: u32 = 76;
export const MAP_BITSET_MASK: u32 = 80;
export const MAP_ROOT: u32 = 84;
export const MAP_AUX: u32 = 88;

// hash element header fields
export const ELEM_NEXT: u32 = 0;
export const ELEM_HASH: u32 = 4;
export const ELEM_FLAGS: u32 = 8;
/** Free-list link; ELEM_NEXT keeps the chain link of a deleted element for lock-free walkers. */
export const ELEM_FREE: u32 = 12;
export const ELEM_USED: u32 = 1;
export const ELEM_REF: u32 = 2;

// lpm trie node header fields
export const LPM_CHILD: u32 = 0;
export const LPM_PREFIXLEN: u32 = 8;
export const LPM_FLAGS: u32 = 12;
export const LPM_IM: u32 = 1;

// BPF_MAP_TYPE_* (uapi enum bpf_map_type)
export const BPF_MAP_TYPE_HASH: u32 = 1;
export const BPF_MAP_TYPE_ARRAY: u32 = 2;
export const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;
export const BPF_MAP_TYPE_RINGBUF: u32 = 27;
export const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
export const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
export const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
export const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
export const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
export const BPF_MAP_TYPE_HASH_OF_MAPS: u32 = 13;
export const BPF_MAP_TYPE_QUEUE: u32 = 22;
export const BPF_MAP_TYPE_STACK: u32 = 23;
export const BPF_MAP_TYPE_BLOOM_FILTER: u32 = 30;

// update flags
export const BPF_ANY: u64 = 0;
export const BPF_NOEXIST: u64 = 1;
export const BPF_EXIST: u64 = 2;
export const BPF_F_LOCK: u64 = 4;

// map_flags
export const BPF_F_INNER_MAP: u32 = 0x1000;

// errno
export const EPERM: i64 = 1;
export const ENOENT: i64 = 2;
export const E2BIG: i64 = 7;
export const ENOMEM: i64 = 12;
export const EBUSY: i64 = 16;
export const EEXIST: i64 = 17;
export const EINVAL: i64 = 22;
export const ENOSPC: i64 = 28;
export const EOPNOTSUPP: i64 = 95;

// control block (src/abi.ts)
export const CTRL_BASE: u32 = 0x10000;
export const CTRL_HEADER_SIZE: u32 = 0x100;
export const CTRL_SLOT_SIZE: u32 = 0x100;
export const WORKER_BASE: u32 = 0x20000;
export const WORKER_AREA_SIZE: u32 = 0x20000;
export const FUNC_TOKEN_BASE: u64 = 0x10000;

// coroutines: control slot fields, the deferred ring, Vm-wide words, the frame header
export const CTRL_DEFER_HEAD: u32 = 0x64;
export const CTRL_DEFER_TAIL: u32 = 0x68;
export const CTRL_CORO_DEPTH: u32 = 0x6c;
export const CTRL_CORO_CURRENT: u32 = 0x70;
export const CTRL_CORO_SCRATCH: u32 = 0x78;
export const CTRL_CORO_SLEEP: u32 = 0xe0;
export const CTRL_DEFER_RING: u32 = 0x74;
export const DEFER_RING_OFF: u32 = 0x18000;
export const DEFER_RING_CAP: u32 = 2048;
// coro_frame_check's `need`: an access through a handle, which a reserved ring buffer record
// of at least `need` bytes also passes (src/abi.ts CORO_CHECK_RECORD)
export const CORO_CHECK_RECORD: u32 = 0x80000000;
export const CORO_CTL_OFF: u32 = 0x40;
export const CORO_CTL_READY_QUEUE: u32 = 0x00;
export const CORO_CTL_CANCEL_QUEUE: u32 = 0x04;
export const CORO_CTL_TOKEN_LIMIT: u32 = 0x08;
export const CORO_CTL_DEFER_TO_READY: u32 = 0x0c;
export const CORO_CTL_RESUMED: u32 = 0x10;
export const CORO_CTL_DEFERRED: u32 = 0x18;
export const CORO_CTL_QUEUED: u32 = 0x20;
export const CORO_CTL_REAPED: u32 = 0x28;
export const CORO_CTL_BAD: u32 = 0x30;
export const CORO_CTL_CREATED: u32 = 0x38;
export const CORO_CTL_COMPLETED: u32 = 0x40;
export const CORO_CTL_DESTROYED: u32 = 0x48;
export const CORO_CTL_ENTRY_MAP: u32 = 0x50;
export const CORO_CTL_SLEEP_QUEUE: u32 = 0x54;
export const CORO_CTL_TASK_STRUCT: u32 = 0x58;
export const CORO_CTL_TASK_HELD: u32 = 0x5c;
export const CORO_CTL_TASK_BAD_RELEASES: u32 = 0x60;
export const CORO_HDR_SIZE: u32 = 32;
// header fields as offsets from the frame (two's complement: frame + field wraps backwards)
export const CORO_HDR_DEADLINE: usize = <usize>-32;
export const CORO_HDR_SEQ: usize = <usize>-24;
export const CORO_HDR_FLAGS: usize = <usize>-20;
export const CORO_HDR_OWNER: usize = <usize>-16;
export const CORO_HDR_PARENT: usize = <usize>-12;
export const CORO_HDR_SIZE_FIELD: usize = <usize>-8;
export const CORO_HDR_MAGIC: usize = <usize>-4;
export const CORO_MAGIC: u32 = 0x4f524f43;
export const CORO_F_DETACHED: u32 = 1;
export const CORO_F_QUEUED: u32 = 4;
export const CORO_F_SLEEPING: u32 = 8;
export const CORO_F_CANCELLED: u32 = 16;
export const CORO_F_DYING: u32 = 32;

// control slot fields (per worker)
export const CTRL_PROG: u32 = 0x0c;
export const CTRL_ALLOC_CACHE: u32 = 0x80;
export const CTRL_ALLOC_OWNERS: u32 = 0x84;
export const CTRL_ALLOC_MAX_OWNERS: u32 = 0x88;
export const CTRL_ALLOC_STATE: u32 = 0x8c;
export const CTRL_ALLOC_WORKER: u32 = 0x90;

// coroutine frame header (offsets from the frame are negative: frame - CORO_HDR_SIZE is the object)
