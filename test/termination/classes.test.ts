/**
 * Helper classes (notes/fast-path-termination.md §10.2-10.3): the hand-written class of every
 * prototype is the one §10.3 derives from it unless it is a listed override, and the fast
 * path of each class does what the note's table says.
 */
import { describe, expect, it } from 'vitest';
import {
  BPF_FUNC_loop,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_map_pop_elem,
  BPF_FUNC_map_update_elem,
  BPF_FUNC_probe_read_kernel,
  BPF_FUNC_ringbuf_reserve,
  BPF_FUNC_ringbuf_submit,
  BPF_FUNC_spin_lock,
  BPF_FUNC_tail_call,
  FUNC_PROTO_LIST,
  TERM_CLASS_OVERRIDES,
  deriveHelperClass,
  negErrno,
} from '../../src/helper-protos.js';
import { fastPathFn, helperFastPath, kfuncFastPath } from '../../runtime/fast-path.js';
import { BPF_MAP_TYPE_QUEUE } from '../../runtime/maps/map-type.js';
import { Vm } from '../../runtime/vm.js';

describe('helper classes', () => {
  it.each(FUNC_PROTO_LIST.map((p) => [p.name, p] as const))(
    '%s has the class §10.3 derives, or a listed override',
    (_, p) => {
      expect(p.helperClass).toBe(TERM_CLASS_OVERRIDES.get(p.id) ?? deriveHelperClass(p));
    },
  );

  it('give the fast paths of the note: NULL, an error, no iteration, or the original', () => {
    expect(helperFastPath(BPF_FUNC_map_lookup_elem)).toEqual({ kind: 'const', ret: 0n });
    expect(helperFastPath(BPF_FUNC_ringbuf_reserve)).toEqual({ kind: 'const', ret: 0n });
    expect(helperFastPath(BPF_FUNC_map_update_elem)).toEqual({ kind: 'const', ret: negErrno(16) });
    expect(helperFastPath(BPF_FUNC_loop)).toEqual({ kind: 'const', ret: 0n });
    expect(helperFastPath(BPF_FUNC_tail_call)).toEqual({ kind: 'const', ret: 0n });
    expect(helperFastPath(BPF_FUNC_ringbuf_submit)).toEqual({ kind: 'keep' });
    expect(helperFastPath(BPF_FUNC_spin_lock)).toEqual({ kind: 'keep' });
    expect(helperFastPath(5)).toEqual({ kind: 'keep' }); // ktime_get_ns: pure
    expect(helperFastPath(250)).toEqual({ kind: 'keep' }); // no prototype: a host helper
    expect(kfuncFastPath('bpf_obj_new_impl', undefined)).toEqual({ kind: 'const', ret: 0n });
    expect(kfuncFastPath('bpf_obj_drop_impl', undefined)).toEqual({ kind: 'keep' });
    expect(kfuncFastPath('bpf_res_spin_lock', undefined)).toEqual({
      kind: 'const',
      ret: negErrno(110),
    });
    const acquires = { name: 'k', args: [], ret: { kind: 'mem', size: 8, acquire: true } } as const;
    expect(kfuncFastPath('my_get', acquires)).toEqual({ kind: 'const', ret: 0n });
    expect(kfuncFastPath('my_op', { name: 'k', args: [], ret: { kind: 'scalar' } })).toEqual({
      kind: 'keep',
    });
  });

  it('zero the output buffer the verifier marks initialised (probe_read, map_pop)', () => {
    const vm = Vm.create();
    const buf = vm.heap.alloc(16);
    vm.u8().fill(0xaa, buf, buf + 16);
    const read = fastPathFn(vm, helperFastPath(BPF_FUNC_probe_read_kernel));
    expect(read?.([BigInt(buf), 12n, 0x10000n, 0n, 0n])).toBe(negErrno(14));
    expect([...vm.u8().subarray(buf, buf + 16)]).toEqual([
      ...Array(12).fill(0),
      0xaa,
      0xaa,
      0xaa,
      0xaa,
    ]);
    const q = vm.createMap({
      name: 'q',
      type: BPF_MAP_TYPE_QUEUE,
      keySize: 0,
      valueSize: 8,
      maxEntries: 4,
    });
    vm.u8().fill(0xbb, buf, buf + 16);
    const pop = fastPathFn(vm, helperFastPath(BPF_FUNC_map_pop_elem));
    expect(pop?.([BigInt(q.addr), BigInt(buf), 0n, 0n, 0n])).toBe(negErrno(2));
    expect([...vm.u8().subarray(buf, buf + 9)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0xbb]);
    void vm.close();
  });
});
