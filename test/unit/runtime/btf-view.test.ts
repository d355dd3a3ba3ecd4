/**
 * Typed views (runtime/btf-view.ts, `LoadedObject.typedMap`, `ObjectGlobals.get/set`): on
 * xdp_count.o after a run, on hand-built objects with struct keys and values (a percpu hash,
 * an array, a struct global), on a 2-CPU stand-in map for the per-CPU split, and the
 * UsageErrors for maps and globals that BTF does not describe.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { insn } from '../../../src/isa/insn.js';
import { BTF_INT_SIGNED, parseBtf } from '../../../src/loader/btf.js';
import type { BtfStruct } from '../../../src/loader/btf-value.js';
import { TypedMap, type TypedMapTarget } from '../../../runtime/btf-view.js';
import { BPF_MAP_TYPE_PERCPU_HASH } from '../../../runtime/maps/map-type.js';
import { Vm } from '../../../runtime/vm.js';
import { BtfBuilder, buildElf, u32s } from '../src/loader/elf-builder.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../../fixtures/elf/${name}`, import.meta.url)));

const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const usage = (message: string | RegExp): unknown =>
  expect.objectContaining({
    name: 'UsageError',
    message: typeof message === 'string' ? message : expect.stringMatching(message),
  });

describe('xdp_count.o through its BTF', () => {
  for (const engine of ['jit', 'interp'] as const) {
    it(`reads the packet count and the globals as values after a run on the ${engine}`, async () => {
      const vm = Vm.create();
      const obj = await vm.loadObject(fixture('xdp/xdp_count.o'), { engine, verify: false });
      obj.program('xdp_count').run(new Uint8Array(100));
      const counts = obj.typedMap('pkt_count');
      expect(counts.lookup(1)).toBe(1n);
      expect(counts.lookup(2)).toBeUndefined();
      expect([...counts.keys()]).toEqual([1]);
      expect([...counts.entries()]).toEqual([[1, 1n]]);
      expect(obj.globals.get('total_packets')).toBe(1n);
      expect(obj.globals.get('max_frame')).toBe(1514);
      expect(obj.globals.get('sample_every')).toBe(4);
    });
  }

  it('writes map entries the program then counts on', async () => {
    const vm = Vm.create();
    const obj = await vm.loadObject(fixture('xdp/xdp_count.o'), { verify: false });
    const counts = obj.typedMap<number, bigint>('pkt_count');
    counts.update(1, 41n);
    obj.program('xdp_count').run(new Uint8Array(100));
    expect(counts.lookup(1)).toBe(42n);
    expect(obj.map('pkt_count').lookup(u32(1))).toEqual(new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0]));
    counts.update(7, 0xffffffffffffffffn);
    expect(counts.lookup(7)).toBe(0xffffffffffffffffn);
    counts.delete(7);
    expect(counts.lookup(7)).toBeUndefined();
    expect(() => counts.delete(7)).toThrowError(
      expect.objectContaining({ name: 'MapError', code: 'ENOENT' }),
    );
    expect(() => counts.update(-1, 0n)).toThrowError(usage('key: -1 does not fit u32'));
    expect(() => counts.update(1, -1n)).toThrowError(usage('value: -1 does not fit u64'));
  });

  it('sets globals by value and keeps the byte-level view in step', async () => {
    const vm = Vm.create();
    // .rodata takes its image before load (as a skeleton sets it) and is frozen afterwards
    const obj = await vm.loadObject(fixture('xdp/xdp_count.o'), {
      verify: false,
      globals: { '.rodata': new Uint8Array([50, 0, 0, 0]) },
    });
    expect(() => obj.globals.set('max_frame', 60)).toThrowError(/EPERM/);
    obj.globals.set('total_packets', 5n);
    obj.globals.set('sample_every', 8);
    expect(obj.globals.get('total_packets')).toBe(5n);
    expect(obj.globals.readUint('total_packets')).toBe(5n);
    expect(obj.globals.get('sample_every')).toBe(8);
    expect(obj.globals.read('max_frame')).toEqual(new Uint8Array([50, 0, 0, 0]));
    obj.program('xdp_count').run(new Uint8Array(100));
    expect(obj.globals.get('total_packets')).toBe(6n);
    expect(obj.typedMap('pkt_count').lookup(255)).toBe(1n); // 100 > max_frame: bucket 255
    expect(() => obj.globals.set('sample_every', -1)).toThrowError(
      usage('sample_every: -1 does not fit u32'),
    );
    expect(() => obj.globals.set('total_packets', 'many')).toThrowError(
      usage("total_packets: expected an integer, got a string 'many'"),
    );
    expect(() => obj.globals.get('nope')).toThrowError(usage(/no global variable 'nope'/));
  });

  it('refuses a typed view of a global data map, pointing to globals', async () => {
    const vm = Vm.create();
    const obj = await vm.loadObject(fixture('xdp/xdp_count.o'), { verify: false });
    expect(() => obj.typedMap('.bss')).toThrowError(
      usage("map '.bss' holds global data: use obj.globals.get(name) / set(name, value)"),
    );
    expect(() => obj.typedMap('nope')).toThrowError(usage(/no map 'nope' in the object/));
  });
});

const MOV_R0_0 = insn(0xb7, 0, 0, 0, 0);
const EXIT = insn(0x95, 0, 0, 0, 0);

/**
 * An object with struct keys and values: `stats` (percpu_hash, struct flow_key →
 * struct counters of 12 bytes), `cfg` (array, u32 → struct config), `jobs` (queue),
 * `sized` (hash with key_size), and `.data` holding `struct config settings`.
 */
function structObject(): Uint8Array {
  const b = new BtfBuilder();
  const int = b.int('int', 4, BTF_INT_SIGNED);
  const u8 = b.int('unsigned char', 1);
  const u16 = b.int('unsigned short', 2);
  const u32t = b.int('unsigned int', 4);
  const char = b.int('char', 1, BTF_INT_SIGNED);
  const proto = b.enum('proto', 1, [
    ['TCP', 6],
    ['UDP', 17],
  ]);
  const flowKey = b.struct('flow_key', 8, [
    ['saddr', u32t, 0],
    ['dport', u16, 32],
    ['proto', proto, 48],
    ['pad', u8, 56],
  ]);
  const counters = b.struct('counters', 12, [
    ['packets', u32t, 0],
    ['bytes', u32t, 32],
    ['drops', u32t, 64],
  ]);
  const config = b.struct('config', 16, [
    ['port', u16, 0],
    ['verbose', u8, 16, 1],
    ['level', u8, 17, 3],
    ['iface', b.array(char, int, 8), 32],
    ['limit', u32t, 96],
  ]);
  const field = (n: number): number => b.ptr(b.array(int, int, n));
  const stats = b.struct('stats_def', 32, [
    ['type', field(5), 0],
    ['max_entries', field(16), 64],
    ['key', b.ptr(flowKey), 128],
    ['value', b.ptr(counters), 192],
  ]);
  const cfg = b.struct('cfg_def', 32, [
    ['type', field(2), 0],
    ['max_entries', field(2), 64],
    ['key', b.ptr(u32t), 128],
    ['value', b.ptr(config), 192],
  ]);
  const jobs = b.struct('jobs_def', 24, [
    ['type', field(22), 0],
    ['max_entries', field(4), 64],
    ['value', b.ptr(u32t), 128],
  ]);
  const sized = b.struct('sized_def', 32, [
    ['type', field(1), 0],
    ['max_entries', field(4), 64],
    ['key_size', field(4), 128],
    ['value', b.ptr(u32t), 192],
  ]);
  const vars = [
    b.variable('stats', stats),
    b.variable('cfg', cfg),
    b.variable('jobs', jobs),
    b.variable('sized', sized),
  ];
  b.datasec('.maps', 120, [
    [vars[0] as number, 0, 32],
    [vars[1] as number, 32, 32],
    [vars[2] as number, 64, 24],
    [vars[3] as number, 88, 32],
  ]);
  b.datasec('.data', 16, [[b.variable('settings', config), 0, 16]]);
  const settings = new Uint8Array(16);
  settings.set([0x50, 0, 0b101 << 1], 0); // port 80, verbose 0, level 5
  settings.set(new TextEncoder().encode('eth0'), 4);
  return buildElf({
    sections: [
      { name: 'xdp', insns: [MOV_R0_0, EXIT] },
      { name: '.maps', data: new Uint8Array(120) },
      { name: '.data', data: settings },
      { name: '.BTF', data: b.build(), flags: 0 },
    ],
    symbols: [
      { name: 'prog', section: 'xdp' },
      { name: 'stats', section: '.maps', value: 0, size: 32 },
      { name: 'cfg', section: '.maps', value: 32, size: 32 },
      { name: 'jobs', section: '.maps', value: 64, size: 24 },
      { name: 'sized', section: '.maps', value: 88, size: 32 },
      { name: 'settings', section: '.data', value: 0, size: 16 },
    ],
  });
}

describe('maps and globals with struct types', () => {
  const load = async () => Vm.create().loadObject(structObject(), { verify: false });

  it('looks up a percpu hash by struct key and gives one struct per CPU', async () => {
    const obj = await load();
    const stats = obj.typedMap('stats');
    expect(stats.nCpus).toBe(1);
    const key = { saddr: 0x0a000001, dport: 443, proto: 'TCP' };
    stats.update(key, [{ packets: 3, bytes: 1500 }]);
    expect(stats.lookup(key)).toEqual([{ packets: 3, bytes: 1500, drops: 0 }]);
    expect(stats.lookup({ ...key, proto: 'UDP' })).toBeUndefined();
    expect([...stats.entries()]).toEqual([
      [
        { saddr: 0x0a000001, dport: 443, proto: 6, pad: 0 },
        [{ packets: 3, bytes: 1500, drops: 0 }],
      ],
    ]);
    expect(obj.map('stats').lookup(new Uint8Array([1, 0, 0, 10, 0xbb, 1, 6, 0]))).toEqual(
      new Uint8Array([3, 0, 0, 0, 0xdc, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    expect(() => stats.update(key, { packets: 1 })).toThrowError(
      usage("map 'stats' is percpu_hash: the value is an array of 1 per-CPU values"),
    );
    expect(() => stats.update({ ...key, dport: 65536 }, [{}])).toThrowError(
      usage('key.dport: 65536 does not fit u16'),
    );
    expect(() => stats.update(key, [{ packets: -1 }])).toThrowError(
      usage('value[0].packets: -1 does not fit u32'),
    );
  });

  it('reads an array map of structs with bitfields, and char arrays as strings on request', async () => {
    const obj = await load();
    const cfg = obj.typedMap('cfg');
    expect(cfg.lookup(1)).toEqual({
      port: 0,
      verbose: 0,
      level: 0,
      iface: [0, 0, 0, 0, 0, 0, 0, 0],
      limit: 0,
    });
    cfg.update(1, { port: 8080, verbose: 1, level: 7, iface: 'wlan0', limit: 100 });
    const named = obj.typedMap('cfg', { asString: true });
    expect(named.lookup(1)).toEqual({
      port: 8080,
      verbose: 1,
      level: 7,
      iface: 'wlan0',
      limit: 100,
    });
    expect([...named.keys()]).toEqual([0, 1]);
    expect(() => cfg.update(1, { level: 8 })).toThrowError(usage('value.level: 8 does not fit u3'));
    expect(() => cfg.update(2, {})).toThrowError(
      expect.objectContaining({ name: 'MapError', code: 'E2BIG' }),
    );
  });

  it('gets and sets a struct global', async () => {
    const obj = await load();
    expect(obj.globals.get('settings', { asString: true })).toEqual({
      port: 80,
      verbose: 0,
      level: 5,
      iface: 'eth0',
      limit: 0,
    });
    obj.globals.set('settings', { port: 443, iface: 'lo' });
    const v = obj.globals.get<BtfStruct>('settings');
    expect(v['port']).toBe(443);
    expect(v['level']).toBe(0);
    expect(v['iface']).toEqual([108, 111, 0, 0, 0, 0, 0, 0]);
    expect(() => obj.globals.set('settings', { prot: 1 })).toThrowError(
      usage(/^settings: struct config has no member 'prot'/),
    );
  });

  it('refuses maps whose keys or values BTF does not describe', async () => {
    const obj = await load();
    expect(() => obj.typedMap('jobs')).toThrowError(
      usage("map 'jobs' (queue) has no keys to look values up by"),
    );
    expect(() => obj.typedMap('sized')).toThrowError(
      usage("map 'sized' (hash) has no BTF key type (declare it with __type(key, ...))"),
    );
  });
});

describe('objects without BTF', () => {
  const bytes = buildElf({
    sections: [
      { name: 'socket', insns: [MOV_R0_0, EXIT] },
      { name: 'maps', data: u32s(1, 4, 8, 128, 0) },
      { name: '.data', data: new Uint8Array(8) },
    ],
    symbols: [
      { name: 'prog', section: 'socket' },
      { name: 'counter', section: 'maps', value: 0, size: 20 },
      { name: 'seen', section: '.data', value: 0, size: 8 },
    ],
  });

  it('refuses typed maps and typed globals, naming the fix', async () => {
    const obj = await Vm.create().loadObject(bytes, { verify: false });
    expect(() => obj.typedMap('counter')).toThrowError(
      usage("map 'counter': the object has no BTF (build it with -g) to type its keys and values"),
    );
    expect(() => obj.globals.get('seen')).toThrowError(
      usage("global 'seen' has no BTF type (build the object with -g), use read() / write()"),
    );
    expect(obj.globals.readUint('seen')).toBe(0n);
  });
});

describe('TypedMap on a host map', () => {
  const b = new BtfBuilder();
  const u32t = b.int('unsigned int', 4);
  const val = b.struct('val', 12, [
    ['a', u32t, 0],
    ['b', u32t, 32],
    ['c', u32t, 64],
  ]);
  const btf = parseBtf(b.build());

  /** A percpu hash on 2 CPUs held in a JS Map (the Vm has 1 CPU). */
  function twoCpuMap(): TypedMapTarget & { readonly store: Map<string, Uint8Array> } {
    const store = new Map<string, Uint8Array>();
    const id = (k: Uint8Array): string => k.join(',');
    return {
      store,
      name: 'pc',
      type: BPF_MAP_TYPE_PERCPU_HASH,
      typeName: 'percpu_hash',
      keySize: 4,
      valueSize: 12,
      hostValueSize: 32,
      lookup: (k) => store.get(id(k))?.slice(),
      update: (k, v) => void store.set(id(k), v.slice()),
      delete: (k) => void store.delete(id(k)),
      *keys() {
        for (const k of store.keys()) yield new Uint8Array(k.split(',').map(Number));
      },
    };
  }

  it('splits percpu values at 8-byte-rounded strides, one decoded value per CPU', () => {
    const m = twoCpuMap();
    const pc = new TypedMap(m, { btf, keyTypeId: u32t, valueTypeId: val });
    expect(pc.nCpus).toBe(2);
    pc.update(9, [{ a: 1, b: 2, c: 3 }, { c: 0xffffffff }]);
    const raw = m.store.get('9,0,0,0');
    expect(raw).toEqual(
      new Uint8Array([
        1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
        0, 0, 0, 0,
      ]),
    );
    expect(pc.lookup(9)).toEqual([
      { a: 1, b: 2, c: 3 },
      { a: 0, b: 0, c: 0xffffffff },
    ]);
    expect(() => pc.update(9, [{}])).toThrowError(usage(/an array of 2 per-CPU values/));
    expect(() => pc.update(9, [{}, { a: 1.5 }])).toThrowError(
      usage('value[1].a: expected an integer, got 1.5'),
    );
  });

  it('pairs a Vm map with BTF types of its sizes only', () => {
    const vm = Vm.create();
    const m = vm.createMap({ name: 'h', type: 1, keySize: 4, valueSize: 12, maxEntries: 4 });
    const h = new TypedMap(m, { btf, keyTypeId: u32t, valueTypeId: val });
    h.update(1, { b: 7 });
    expect(h.lookup(1)).toEqual({ a: 0, b: 7, c: 0 });
    expect(() => new TypedMap(m, { btf, keyTypeId: val, valueTypeId: val })).toThrowError(
      usage("map 'h': key type [2] has 12 bytes, the map's key 4"),
    );
  });
});
