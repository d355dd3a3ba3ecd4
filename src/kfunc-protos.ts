/**
 * The verifier signatures of the kfuncs bpfwasm knows by name (the kernel's kfunc BTF
 * prototypes and `KF_*` flags, as data): the coroutine kfuncs of issue 7, `bpf_throw`, the task
 * references and `bpf_obj_new_impl` / `bpf_obj_drop_impl`. The runtime implements them
 * (runtime/); a Vm that registers a kfunc of one of these names without a `sig` of its own is
 * verified against the signature here (runtime/vm.ts `verify`).
 *
 * Called from: runtime/vm.ts (`Vm.verify`), the tests.
 *
 * Coroutine frames are `u64` linear addresses: the resume token at +0 (0 once done), the
 * destroy token at +8, the promise from +0x10 (notes/coroutines.md §4). What the verifier
 * proves about them is written in src/verifier/check-coro.ts.
 */

import type { KfuncSig } from './verifier/verifier.js';

/** The exception kfunc, built into both engines (no call-table slot). */
export const BPF_THROW = 'bpf_throw';

/** `BPF_MAP_TYPE_QUEUE`. */
const BPF_MAP_TYPE_QUEUE = 22;

/** The built-in signatures, by kfunc name. */
export const KFUNC_PROTOS: ReadonlyMap<string, KfuncSig> = new Map<string, KfuncSig>(
  (
    [
      /** `void *bpf_coro_frame_alloc(u64 size, void *ctx)`: a frame of `size` bytes or NULL. */
      {
        name: 'bpf_coro_frame_alloc',
        args: [{ kind: 'frame_size' }, { kind: 'any' }],
        ret: { kind: 'frame' },
        keepsFrameData: true,
      },
      /** `void bpf_coro_frame_free(void *frame)`. */
      {
        name: 'bpf_coro_frame_free',
        args: [{ kind: 'frame' }],
        ret: { kind: 'void' },
        mayFreeFrames: true,
      },
      /** `void bpf_coro_defer(void *frame)`: resume at the end of the current run. */
      {
        name: 'bpf_coro_defer',
        args: [{ kind: 'frame' }],
        ret: { kind: 'void' },
        suspends: true,
        keepsFrameData: true,
      },
      /** `long bpf_coro_enqueue(void *queue_map, void *frame)`: 0 or -errno. */
      {
        name: 'bpf_coro_enqueue',
        args: [{ kind: 'map', mapType: BPF_MAP_TYPE_QUEUE, valueSize: 8 }, { kind: 'frame' }],
        ret: { kind: 'scalar' },
        suspends: true,
        handsOffOnZero: true,
        mayFreeFrames: true,
      },
      /** `long bpf_coro_yield(void *frame)`: to the Vm's ready queue; 0 or -errno. */
      {
        name: 'bpf_coro_yield',
        args: [{ kind: 'frame' }],
        ret: { kind: 'scalar' },
        suspends: true,
        handsOffOnZero: true,
        mayFreeFrames: true,
      },
      /** `long bpf_coro_sleep(void *frame, u64 ns)`: resume after a host timer. */
      {
        name: 'bpf_coro_sleep',
        args: [{ kind: 'frame' }, { kind: 'scalar' }],
        ret: { kind: 'scalar' },
        suspends: true,
        handsOffOnZero: true,
        mayFreeFrames: true,
      },
      /** `void bpf_coro_detach(void *frame)`: the runtime owns the frame from now on. */
      {
        name: 'bpf_coro_detach',
        args: [{ kind: 'frame' }],
        ret: { kind: 'void' },
        suspends: true,
        mayFreeFrames: true,
      },
      /** `void bpf_coro_await(void *child, void *parent)`: the parent owns the child. */
      {
        name: 'bpf_coro_await',
        // handles clang reloads from the awaiting frame: the runtime checks both (frameOk)
        args: [{ kind: 'any' }, { kind: 'any' }],
        ret: { kind: 'void' },
        keepsFrameData: true,
      },
      /**
       * `void bpf_coro_done(void *frame)`: a Task's final suspend; the runtime frees a detached
       * frame nobody awaits (at once when it is resuming that frame, else at the end of the run).
       */
      {
        name: 'bpf_coro_done',
        // any value: a frame that CoroElide put on the stack is passed too, and ignored
        args: [{ kind: 'any' }],
        ret: { kind: 'void' },
        mayFreeFrames: true,
      },
      /** `void *bpf_coro_handle_frame(u64 handle)`: the frame of a queued handle, or NULL. */
      {
        name: 'bpf_coro_handle_frame',
        args: [{ kind: 'scalar' }],
        ret: { kind: 'handle' },
        keepsFrameData: true,
      },
      /** `long bpf_coro_reap(u64 handle)`: destroys the handle's frame if done and unowned. */
      {
        name: 'bpf_coro_reap',
        args: [{ kind: 'scalar' }],
        ret: { kind: 'scalar' },
        mayFreeFrames: true,
      },
      /** `long bpf_coro_drain(void *queue_map, u32 batch)`: resumes queued handles here. */
      {
        name: 'bpf_coro_drain',
        args: [{ kind: 'map', mapType: BPF_MAP_TYPE_QUEUE, valueSize: 8 }, { kind: 'scalar' }],
        ret: { kind: 'scalar' },
        mayFreeFrames: true,
      },
      /** `void *bpf_coro_take_cancelled(void *ctx)`: a cancelled frame to destroy, or NULL. */
      {
        name: 'bpf_coro_take_cancelled',
        args: [{ kind: 'any' }],
        ret: { kind: 'handle' },
        keepsFrameData: true,
      },
      /** `void bpf_throw(u64 cookie)`: unwinds to the program's entry; r0 = cookie. */
      { name: 'bpf_throw', args: [{ kind: 'scalar' }], ret: { kind: 'void' }, noreturn: true },
      /** `struct task_struct *bpf_task_acquire(struct task_struct *p)` (KF_ACQUIRE | KF_RET_NULL). */
      {
        name: 'bpf_task_acquire',
        args: [{ kind: 'btf_id', btfName: 'task_struct' }],
        ret: { kind: 'btf_id', btfName: 'task_struct', acquire: true },
        keepsFrameData: true,
      },
      /** `void bpf_task_release(struct task_struct *p)` (KF_RELEASE). */
      {
        name: 'bpf_task_release',
        args: [{ kind: 'release', handleOk: true, btfName: 'task_struct' }],
        ret: { kind: 'void' },
        keepsFrameData: true,
      },
      /**
       * `void *bpf_obj_new_impl(u64 local_type_id, void *meta)`: a zeroed object of the
       * program BTF's type `local_type_id` (a constant), acquired, or NULL. The verifier
       * records the size at each call; both engines pass it in r1 (the kernel's fixup).
       */
      {
        name: 'bpf_obj_new_impl',
        args: [{ kind: 'obj_type' }, { kind: 'any' }],
        ret: { kind: 'obj' },
        keepsFrameData: true,
      },
      /** `void bpf_obj_drop_impl(void *p, void *meta)` (KF_RELEASE). */
      {
        name: 'bpf_obj_drop_impl',
        args: [{ kind: 'release', obj: true }, { kind: 'any' }],
        ret: { kind: 'void' },
        keepsFrameData: true,
      },
    ] satisfies KfuncSig[]
  ).map((s) => [s.name, s]),
);

/**
 * The built-in signature of kfunc `name`, if bpfwasm knows it.
 *
 * @example
 * kfuncProto('bpf_throw')?.noreturn // true
 */
export function kfuncProto(name: string): KfuncSig | undefined {
  return KFUNC_PROTOS.get(name);
}
