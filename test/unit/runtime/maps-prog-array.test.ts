/**
 * BPF_MAP_TYPE_PROG_ARRAY: slots hold entry function tokens set from loaded programs,
 * `prog_array_get` (what bpf_tail_call reads) agrees with the host, fd array flags and errno,
 * and BPF programs cannot reach the slots through the map helpers.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_PROG_ARRAY,
  BPF_NOEXIST,
} from '../../../runtime/maps/map-type.js';
import { loadBoth, outcome } from '../../helpers/engines.js';
import { asU32, errno, mapVm, spec, u32 } from '../../helpers/maps.js';

const progArray = (vm: ReturnType<typeof mapVm>, maxEntries = 4) =>
  vm.createMap(spec({ name: 'jmp', type: BPF_MAP_TYPE_PROG_ARRAY, valueSize: 4, maxEntries }));
const ret = (n: number) => assembleProgram(`mov %r0, ${n}\nexit`);

describe('prog_array maps', () => {
  it('hold the entry token of the programs put in them', async () => {
    const vm = mapVm();
    const m = progArray(vm);
    const a = await vm.load(ret(1), { verify: false });
    const b = await vm.load(assembleProgram('call local f\nexit\nf:\nmov %r0, 2\nexit'), {
      verify: false,
    });
    m.setProg(0, a);
    m.setProg(3, b);
    expect(m.progToken(0)).toBe(a.links.funcTokenBase);
    expect(m.progToken(3)).toBe(b.links.funcTokenBase);
    expect(m.progToken(1)).toBeUndefined();
    expect(asU32(m.lookup(u32(3)))).toBe(b.links.funcTokenBase);
    expect(vm.rt.prog_array_get(m.addr, 0)).toBe(a.links.funcTokenBase);
    expect(vm.rt.prog_array_get(m.addr, 3)).toBe(b.links.funcTokenBase);
    expect(vm.rt.prog_array_get(m.addr, 1)).toBe(0);
    expect(vm.rt.prog_array_get(m.addr, 4)).toBe(0);
    expect(vm.rt.prog_array_get(m.addr, 0xffffffff)).toBe(0);
    m.delete(u32(0));
    expect(vm.rt.prog_array_get(m.addr, 0)).toBe(0);
    expect([...m.keys()].map(asU32)).toEqual([0, 1, 2, 3]);
    expect([...m.entries()].map(([k]) => asU32(k))).toEqual([3]);
  });

  it('follow the fd array rules and accept only entry tokens of this Vm', async () => {
    const vm = mapVm();
    const m = progArray(vm);
    const a = await vm.load(assembleProgram('call local f\nexit\nf:\nmov %r0, 2\nexit'), {
      verify: false,
    });
    const elsewhere = await mapVm().load(ret(1), { verify: false });
    expect(errno(() => m.update(u32(0), u32(a.links.funcTokenBase), BPF_NOEXIST))).toBe('EINVAL');
    expect(errno(() => m.update(u32(4), u32(a.links.funcTokenBase)))).toBe('E2BIG');
    expect(errno(() => m.update(u32(0), u32(a.links.funcTokenBase + 1)))).toBe('EINVAL');
    expect(errno(() => m.update(u32(0), u32(12345)))).toBe('EINVAL');
    expect(errno(() => m.setProg(0, elsewhere))).toBe('EINVAL');
    expect(errno(() => m.setProg(9, a))).toBe('E2BIG');
    m.update(u32(1), u32(a.links.funcTokenBase));
    expect(errno(() => m.delete(u32(0)))).toBe('ENOENT');
    expect(errno(() => m.delete(u32(4)))).toBe('E2BIG');
    m.delete(u32(1));
    expect(m.progToken(1)).toBeUndefined();
  });

  it('check sizes at creation, and prog_array_get refuses other maps', () => {
    const vm = mapVm();
    const base = spec({ name: 'p', type: BPF_MAP_TYPE_PROG_ARRAY, valueSize: 4 });
    expect(errno(() => vm.createMap({ ...base, valueSize: 8 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, keySize: 8 }))).toBe('EINVAL');
    const arr = vm.createMap({ ...base, type: BPF_MAP_TYPE_ARRAY });
    arr.update(u32(0), u32(0x10000));
    expect(vm.rt.prog_array_get(arr.addr, 0)).toBe(0);
    expect(vm.rt.prog_array_get(0, 0)).toBe(0);
    expect(
      errno(() =>
        arr.setProg(0, {
          links: { helperBase: 0, funcTokenBase: 0, ldImm64: new Map(), kfuncSlots: new Map() },
        }),
      ),
    ).toBe('EINVAL');
    const p = vm.createMap(base);
    expect(p.valueRegion.end - p.valueRegion.start).toBe(0);
  });

  it('is out of reach of lookup, update and delete from BPF', async () => {
    const vm = mapVm();
    const m = progArray(vm);
    const target = await vm.load(ret(7), { verify: false });
    m.setProg(0, target);
    const { jit, interp } = await loadBoth(
      vm,
      assembleProgram(`
        stw [%r10-4], 0
        stw [%r10-8], ${target.links.funcTokenBase}
        lddw %r1, map_fd ${m.id}
        mov %r2, %r10
        add %r2, -4
        call 1
        mov %r6, %r0
        lddw %r1, map_fd ${m.id}
        mov %r2, %r10
        add %r2, -4
        mov %r3, %r10
        add %r3, -8
        mov %r4, 0
        call 2
        add %r6, %r0
        lddw %r1, map_fd ${m.id}
        mov %r2, %r10
        add %r2, -4
        call 3
        add %r0, %r6
        exit`),
    );
    expect(outcome(() => jit.run())).toBe('r0=ffffffffffffffd4');
    expect(outcome(() => interp.run())).toBe('r0=ffffffffffffffd4');
    expect(m.progToken(0)).toBe(target.links.funcTokenBase);
  });
});
