/**
 * BPF_MAP_TYPE_LPM_TRIE: longest-prefix match on IPv4 and IPv6 keys (including /0 and full
 * length), exact-prefix update and delete with the kernel's flags and errno, postorder
 * iteration (also while deleting), stable value addresses, a randomized check against a
 * brute-force model, and lookups from BPF on both engines.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import { lpmKey } from '../../../runtime/maps/lpm-trie.js';
import type { BpfMap } from '../../../runtime/maps/map.js';
import {
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY,
  BPF_F_ZERO_SEED,
  BPF_MAP_TYPE_LPM_TRIE,
  BPF_NOEXIST,
} from '../../../runtime/maps/map-type.js';
import type { Vm } from '../../../runtime/vm.js';
import { loadBoth, outcome } from '../../helpers/engines.js';
import { asU32, errno, mapVm, u32 } from '../../helpers/maps.js';
import { createPrng, type Prng } from '../../helpers/prng.js';

const trie = (vm: Vm, dataSize: number, maxEntries = 64): BpfMap =>
  vm.createMap({
    name: 'lpm',
    type: BPF_MAP_TYPE_LPM_TRIE,
    keySize: 4 + dataSize,
    valueSize: 4,
    maxEntries,
    flags: BPF_F_NO_PREALLOC,
  });

/** `a.b.c.d/len` (or `a.b.c.d`, meaning /32) as an 8-byte key. */
const v4 = (cidr: string): Uint8Array => {
  const [ip = '', len = '32'] = cidr.split('/');
  return lpmKey(8, Number(len), ip.split('.').map(Number));
};

/** `x:y::z/len` (or no length, meaning /128) as a 20-byte key. */
const v6 = (cidr: string): Uint8Array => {
  const [ip = '', len = '128'] = cidr.split('/');
  const [head = '', tail = ''] = ip.split('::');
  const groups = (s: string): number[] =>
    s === '' ? [] : s.split(':').map((g) => parseInt(g, 16));
  const h = groups(head);
  const t = groups(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  return lpmKey(
    20,
    Number(len),
    all.flatMap((g) => [g >> 8, g & 0xff]),
  );
};

/** The value stored for the longest prefix of `key`, as a number (undefined: no match). */
const match = (m: BpfMap, key: Uint8Array): number | undefined => asU32(m.lookup(key));

/** Keys in iteration order, as `data/len` strings of the first data bytes. */
const order = (m: BpfMap): string[] =>
  [...m.keys()].map((k) => `${[...k.slice(4, 8)].join('.')}/${asU32(k) ?? -1}`);

describe('LPM trie maps: IPv4', () => {
  const vm = mapVm();
  const m = trie(vm, 4);
  const routes: [string, number][] = [
    ['0.0.0.0/0', 1],
    ['10.0.0.0/8', 2],
    ['10.1.0.0/16', 3],
    ['10.1.2.0/24', 4],
    ['10.1.2.3/32', 5],
    ['192.168.0.0/16', 6],
    ['192.168.255.255/32', 7],
  ];
  for (const [cidr, v] of routes) m.update(v4(cidr), u32(v));

  it('find the longest stored prefix of an address', () => {
    expect(match(m, v4('10.1.2.3'))).toBe(5);
    expect(match(m, v4('10.1.2.4'))).toBe(4);
    expect(match(m, v4('10.1.3.1'))).toBe(3);
    expect(match(m, v4('10.2.0.0'))).toBe(2);
    expect(match(m, v4('11.0.0.0'))).toBe(1);
    expect(match(m, v4('192.168.7.1'))).toBe(6);
    expect(match(m, v4('192.168.255.255'))).toBe(7);
    expect(match(m, v4('192.168.255.254'))).toBe(6);
    expect(match(m, v4('255.255.255.255'))).toBe(1);
  });

  it('bound the match by the prefixlen of the looked-up key', () => {
    expect(match(m, v4('10.1.2.3/31'))).toBe(4);
    expect(match(m, v4('10.1.2.3/16'))).toBe(3);
    expect(match(m, v4('10.1.2.3/15'))).toBe(2);
    expect(match(m, v4('10.1.2.3/0'))).toBe(1);
  });

  it('find nothing without a /0 route once it is deleted', () => {
    const n = trie(mapVm(), 4);
    n.update(v4('0.0.0.0/0'), u32(1));
    n.update(v4('10.0.0.0/8'), u32(2));
    expect(match(n, v4('8.8.8.8'))).toBe(1);
    n.delete(v4('0.0.0.0/0'));
    expect(match(n, v4('8.8.8.8'))).toBeUndefined();
    expect(match(n, v4('10.9.9.9'))).toBe(2);
  });

  it('ignore data bits past the prefix length', () => {
    const n = trie(mapVm(), 4);
    n.update(v4('10.1.2.3/8'), u32(8));
    expect(match(n, v4('10.200.0.1'))).toBe(8);
    n.update(v4('10.0.0.0/8'), u32(9), BPF_EXIST);
    expect(match(n, v4('10.200.0.1'))).toBe(9);
    n.delete(v4('10.255.255.255/8'));
    expect(match(n, v4('10.200.0.1'))).toBeUndefined();
  });

  it('iterate in postorder: more specific prefixes before the ones that contain them', () => {
    const n = trie(mapVm(), 4);
    for (const c of ['192.168.0.0/16', '192.168.0.0/24', '192.168.1.0/24', '192.168.128.0/24'])
      n.update(v4(c), u32(1));
    expect(order(n)).toEqual([
      '192.168.0.0/24',
      '192.168.1.0/24',
      '192.168.128.0/24',
      '192.168.0.0/16',
    ]);
    expect(order(m)).toHaveLength(routes.length);
    expect(order(m).at(-1)).toBe('0.0.0.0/0');
  });
});

describe('LPM trie maps: IPv6', () => {
  it('find the longest prefix among /0, /32, /48, /64 and /128 routes', () => {
    const m = trie(mapVm(), 16);
    for (const [cidr, v] of [
      ['::/0', 1],
      ['2001:db8::/32', 2],
      ['2001:db8:1::/48', 3],
      ['2001:db8:1:2::/64', 4],
      ['2001:db8:1:2::1/128', 5],
      ['fe80::/10', 6],
    ] as const)
      m.update(v6(cidr), u32(v));
    expect(match(m, v6('2001:db8:1:2::1'))).toBe(5);
    expect(match(m, v6('2001:db8:1:2::2'))).toBe(4);
    expect(match(m, v6('2001:db8:1:3::1'))).toBe(3);
    expect(match(m, v6('2001:db8:2::1'))).toBe(2);
    expect(match(m, v6('2001:db9::1'))).toBe(1);
    expect(match(m, v6('febf::1'))).toBe(6);
    expect(match(m, v6('fec0::1'))).toBe(1);
    expect(match(m, v6('2001:db8:1:2::1/60'))).toBe(3);
    m.delete(v6('2001:db8:1::/48'));
    expect(match(m, v6('2001:db8:1:3::1'))).toBe(2);
    expect(match(m, v6('2001:db8:1:2::2'))).toBe(4);
    expect([...m.keys()]).toHaveLength(5);
  });
});

describe('LPM trie maps: flags and errno', () => {
  it('follow BPF_NOEXIST and BPF_EXIST on exact prefixes', () => {
    const m = trie(mapVm(), 4);
    expect(errno(() => m.update(v4('10.0.0.0/8'), u32(1), BPF_EXIST))).toBe('ENOENT');
    m.update(v4('10.0.0.0/8'), u32(1), BPF_NOEXIST);
    expect(errno(() => m.update(v4('10.0.0.0/8'), u32(2), BPF_NOEXIST))).toBe('EEXIST');
    m.update(v4('10.0.0.0/8'), u32(3), BPF_EXIST);
    expect(match(m, v4('10.0.0.1'))).toBe(3);
    // a prefix that is only an intermediate node (10.0.0.0/14 joins /16s) does not exist yet
    m.update(v4('10.1.0.0/16'), u32(4));
    m.update(v4('10.2.0.0/16'), u32(5));
    expect(errno(() => m.update(v4('10.0.0.0/14'), u32(6), BPF_EXIST))).toBe('ENOENT');
    expect(errno(() => m.delete(v4('10.0.0.0/14')))).toBe('ENOENT');
    expect(match(m, v4('10.3.0.0'))).toBe(3);
    m.update(v4('10.0.0.0/14'), u32(6), BPF_NOEXIST);
    expect(match(m, v4('10.3.0.0'))).toBe(6);
    expect(match(m, v4('10.2.0.0'))).toBe(5);
  });

  it('refuse bad prefix lengths and flags with EINVAL', () => {
    const m = trie(mapVm(), 4);
    expect(errno(() => m.update(v4('10.0.0.0/33'), u32(1)))).toBe('EINVAL');
    expect(errno(() => m.delete(v4('10.0.0.0/33')))).toBe('EINVAL');
    expect(errno(() => m.update(v4('10.0.0.0/8'), u32(1), 4))).toBe('EINVAL');
    expect(errno(() => m.delete(v4('10.0.0.0/8')))).toBe('ENOENT');
    expect(match(m, v4('10.0.0.0/33'))).toBeUndefined();
  });

  it('refuse new prefixes when full (ENOSPC) but still replace existing ones', () => {
    const m = trie(mapVm(), 4, 3);
    for (const c of ['1.0.0.0/8', '2.0.0.0/8', '3.0.0.0/8']) m.update(v4(c), u32(1));
    expect(errno(() => m.update(v4('4.0.0.0/8'), u32(1)))).toBe('ENOSPC');
    m.update(v4('3.0.0.0/8'), u32(9));
    expect(match(m, v4('3.3.3.3'))).toBe(9);
    m.delete(v4('1.0.0.0/8'));
    m.update(v4('4.0.0.0/8'), u32(4));
    expect(match(m, v4('4.4.4.4'))).toBe(4);
  });

  it('check BPF_F_NO_PREALLOC, key size and flags at creation', () => {
    const vm = mapVm();
    const base = {
      name: 'l',
      type: BPF_MAP_TYPE_LPM_TRIE,
      keySize: 8,
      valueSize: 4,
      maxEntries: 4,
      flags: BPF_F_NO_PREALLOC,
    };
    expect(errno(() => vm.createMap(base))).toBe('ok');
    expect(errno(() => vm.createMap({ ...base, flags: BPF_F_NO_PREALLOC | BPF_F_RDONLY }))).toBe(
      'ok',
    );
    expect(errno(() => vm.createMap({ ...base, keySize: 4 + 256 }))).toBe('ok');
    expect(errno(() => vm.createMap({ ...base, flags: 0 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, flags: BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED }))).toBe(
      'EINVAL',
    );
    expect(errno(() => vm.createMap({ ...base, keySize: 4 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, keySize: 4 + 257 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, valueSize: 0 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, maxEntries: 0 }))).toBe('EINVAL');
  });
});

/** A random IPv4 prefix biased towards a few /8s so that prefixes nest. */
const randomPrefix = (rng: Prng): [number, number[]] => {
  const len = rng.pick([0, 1, 7, 8, 9, 12, 16, 16, 20, 24, 24, 28, 31, 32]);
  return [len, [rng.pick([10, 11, 192]), rng.int(4), rng.pick([0, 1, 2, 128, 255]), rng.int(256)]];
};

/** Brute-force longest-prefix match over a model of stored prefixes. */
const modelMatch = (model: Map<string, number>, addr: number[]): number | undefined => {
  let best: [number, number] | undefined;
  for (const [k, v] of model) {
    const [len, ...bytes] = k.split('.').map(Number);
    let ok = true;
    for (let b = 0; b < (len ?? 0) && ok; b++) {
      const bit = (x: number | undefined): number => ((x ?? 0) >> (7 - (b % 8))) & 1;
      ok = bit(bytes[b >> 3]) === bit(addr[b >> 3]);
    }
    if (ok && (best === undefined || (len ?? 0) > best[0])) best = [len ?? 0, v];
  }
  return best?.[1];
};

/** The model's key: the prefix with bits past its length cleared. */
const canonical = (len: number, data: number[]): string => {
  const out = data.map((x, i) => {
    const keep = Math.max(0, Math.min(8, len - 8 * i));
    return x & ((0xff << (8 - keep)) & 0xff);
  });
  return [len, ...out].join('.');
};

/** The prefix of a model key. */
const parseName = (name: string): [number, number[]] => {
  const [len = 0, ...data] = name.split('.').map(Number);
  return [len, data];
};

describe('LPM trie maps: against a brute-force model', () => {
  it('agree on every lookup through random inserts and deletes', () => {
    const rng = createPrng(2024);
    const m = trie(mapVm(), 4, 40);
    const model = new Map<string, number>();
    for (let step = 0; step < 3000; step++) {
      const deleting = rng.int(40) < model.size * 0.6;
      // deletes name a stored prefix half of the time
      const [len, data] =
        deleting && rng.bool() ? parseName(rng.pick([...model.keys()])) : randomPrefix(rng);
      const key = lpmKey(8, len, data);
      const name = canonical(len, data);
      if (deleting) {
        expect(errno(() => m.delete(key))).toBe(model.delete(name) ? 'ok' : 'ENOENT');
      } else {
        const full = model.size === 40 && !model.has(name);
        expect(errno(() => m.update(key, u32(step)))).toBe(full ? 'ENOSPC' : 'ok');
        if (!full) model.set(name, step);
      }
      // an address near a stored prefix half of the time, so that most lookups hit something
      const addr = randomPrefix(rng)[1];
      if (rng.bool()) addr[3] = data[3] ?? 0;
      if (rng.bool()) addr.splice(0, 3, ...data.slice(0, 3));
      expect(match(m, lpmKey(8, 32, addr))).toBe(modelMatch(model, addr));
      if (step % 100 === 0) {
        const keys = [...m.keys()].map((k) => canonical(asU32(k) ?? 0, [...k.slice(4)]));
        expect(keys.sort()).toEqual([...model.keys()].sort());
      }
    }
  });

  it('never runs out of nodes before max_entries prefixes are stored', () => {
    const rng = createPrng(5);
    for (let round = 0; round < 20; round++) {
      const m = trie(mapVm(), 4, 32);
      const names = new Set<string>();
      while (names.size < 32) {
        const [len, data] = randomPrefix(rng);
        m.update(lpmKey(8, len, data), u32(1));
        names.add(canonical(len, data));
      }
      expect([...m.keys()]).toHaveLength(32);
    }
  });
});

describe('LPM trie maps: iteration and addresses', () => {
  const fill = (m: BpfMap, rng: Prng, n: number): void => {
    while ([...m.keys()].length < n) {
      const [len, data] = randomPrefix(rng);
      m.update(lpmKey(8, len, data), u32(len));
    }
  };

  it('can be emptied while iterating, deleting each key after reading the next', () => {
    const m = trie(mapVm(), 4, 100);
    fill(m, createPrng(11), 100);
    let seen = 0;
    let key = m.nextKey();
    while (key !== undefined) {
      const next = m.nextKey(key);
      m.delete(key);
      seen++;
      key = next;
    }
    expect(seen).toBe(100);
    expect(m.nextKey()).toBeUndefined();
  });

  it('can be emptied by deleting each key before asking for the next (restarting from the first)', () => {
    const m = trie(mapVm(), 4, 100);
    fill(m, createPrng(12), 100);
    let seen = 0;
    for (let key = m.nextKey(); key !== undefined; seen++) {
      m.delete(key);
      key = m.nextKey(key);
    }
    expect(seen).toBe(100);
  });

  it('keep a looked-up value at a stable address while other prefixes come and go', () => {
    const vm = mapVm();
    const m = trie(vm, 4, 64);
    const kept = v4('10.1.0.0/16');
    m.update(kept, u32(77));
    const key = vm.heap.alloc(16);
    vm.u8().set(kept, key);
    const addr = vm.rt.host_lookup(m.addr, key);
    const rng = createPrng(3);
    for (let k = 0; k < 300; k++) {
      const [len, data] = randomPrefix(rng);
      const other = lpmKey(8, len, data);
      if (canonical(len, data) === canonical(16, [10, 1, 0, 0])) continue;
      if (rng.bool()) errno(() => m.update(other, u32(k)));
      else errno(() => m.delete(other));
    }
    m.update(kept, u32(78), BPF_EXIST);
    vm.u8().set(kept, key);
    expect(vm.rt.host_lookup(m.addr, key)).toBe(addr);
    expect(vm.dataView().getUint32(addr, true)).toBe(78);
  });
});

describe('LPM trie maps from BPF', () => {
  // input: an IPv4 address (4 bytes); r0 = the value of its longest prefix, or 0xffff
  const lookup = (fd: number): string => `
    ldxw %r2, [%r1]
    stxw [%r10-4], %r2
    stw [%r10-8], 32
    lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -8
    call 1
    jeq %r0, 0, miss
    ldxw %r0, [%r0]
    exit
  miss:
    mov %r0, 0xffff
    exit`;

  it('looks up the longest prefix the same way on both engines', async () => {
    const vm = mapVm();
    const m = trie(vm, 4);
    m.update(v4('10.0.0.0/8'), u32(8));
    m.update(v4('10.1.0.0/16'), u32(16));
    m.update(v4('10.1.2.3/32'), u32(32));
    const { jit, interp } = await loadBoth(vm, assembleProgram(lookup(m.id)));
    for (const [ip, want] of [
      [[10, 1, 2, 3], 32],
      [[10, 1, 2, 4], 16],
      [[10, 9, 9, 9], 8],
      [[11, 0, 0, 0], 0xffff],
    ] as const) {
      const input = new Uint8Array(ip);
      expect(outcome(() => jit.run(input))).toBe(`r0=${want.toString(16)}`);
      expect(outcome(() => interp.run(input))).toBe(`r0=${want.toString(16)}`);
    }
    m.update(v4('0.0.0.0/0'), u32(0));
    expect(outcome(() => interp.run(new Uint8Array([11, 0, 0, 0])))).toBe('r0=0');
  });

  // input: an IPv4 address, a prefixlen and an op byte (0 update with value = len, 1 delete)
  const write = (fd: number): string => `
    ldxw %r2, [%r1]
    stxw [%r10-4], %r2
    ldxb %r3, [%r1+4]
    stxw [%r10-8], %r3
    stxw [%r10-12], %r3
    ldxb %r6, [%r1+5]
    lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -8
    jne %r6, 0, del
    mov %r3, %r10
    add %r3, -12
    mov %r4, 1
    call 2
    exit
  del:
    call 3
    exit`;

  it('updates and deletes exact prefixes the same way on both engines', async () => {
    const vm = mapVm();
    const m = trie(vm, 4, 2);
    const { jit, interp } = await loadBoth(vm, assembleProgram(write(m.id)));
    const op = (ip: number[], len: number, del: number) => new Uint8Array([...ip, len, del]);
    expect(outcome(() => jit.run(op([10, 0, 0, 0], 8, 0)))).toBe('r0=0');
    expect(outcome(() => interp.run(op([10, 0, 0, 0], 8, 0)))).toBe('r0=ffffffffffffffef'); // -EEXIST
    expect(outcome(() => interp.run(op([10, 1, 0, 0], 16, 0)))).toBe('r0=0');
    expect(outcome(() => jit.run(op([10, 2, 0, 0], 16, 0)))).toBe('r0=ffffffffffffffe4'); // -ENOSPC
    expect(outcome(() => jit.run(op([10, 0, 0, 0], 40, 0)))).toBe('r0=ffffffffffffffea'); // -EINVAL
    expect(match(m, v4('10.1.9.9'))).toBe(16);
    expect(outcome(() => jit.run(op([10, 1, 0, 0], 16, 1)))).toBe('r0=0');
    expect(outcome(() => interp.run(op([10, 1, 0, 0], 16, 1)))).toBe('r0=fffffffffffffffe'); // -ENOENT
    expect(match(m, v4('10.1.9.9'))).toBe(8);
  });
});
