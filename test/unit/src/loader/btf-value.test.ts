/**
 * Unit tests of src/loader/btf-value.ts on hand-built BTF: every data kind (ints of each
 * width and signedness, bool, floats, pointers, enums, arrays, structs, unions, modifiers),
 * both bitfield encodings, nested structs and arrays of structs, char arrays as strings,
 * the range and shape errors with their member paths, malformed layouts, and seeded
 * decode/encode round trips.
 */

import { describe, expect, it } from 'vitest';
import { BTF_INT_BOOL, BTF_INT_SIGNED, parseBtf, type Btf } from '../../../../src/loader/btf.js';
import {
  decodeBtf,
  encodeBtf,
  enumName,
  type BtfStruct,
} from '../../../../src/loader/btf-value.js';
import { BtfBuilder } from './elf-builder.js';

const S = BTF_INT_SIGNED;

/** The types the tests use, by name. */
function buildTypes(): { btf: Btf; id: Record<string, number> } {
  const b = new BtfBuilder();
  const id: Record<string, number> = {};
  id['u8'] = b.int('unsigned char', 1);
  id['s8'] = b.int('signed char', 1, S);
  id['char'] = b.int('char', 1, S);
  id['u16'] = b.int('unsigned short', 2);
  id['s16'] = b.int('short', 2, S);
  id['u32'] = b.int('unsigned int', 4);
  id['s32'] = b.int('int', 4, S);
  id['u64'] = b.int('unsigned long long', 8);
  id['s64'] = b.int('long long', 8, S);
  id['u128'] = b.int('unsigned __int128', 16);
  id['bool'] = b.int('_Bool', 1, BTF_INT_BOOL);
  id['__u16'] = b.modifier(8, '__u16', id['u16']);
  id['cvu32'] = b.modifier(10, '', b.modifier(9, '', b.modifier(8, '__u32', id['u32'])));
  id['tagged'] = b.modifier(18, 'user', id['s32']);
  id['float'] = b.float('float', 4);
  id['double'] = b.float('double', 8);
  id['ptr'] = b.modifier(11, '', b.ptr(id['s32']));
  id['proto'] = b.enum('proto', 4, [
    ['IPPROTO_ICMP', 1],
    ['IPPROTO_TCP', 6],
    ['IPPROTO_UDP', 17],
    ['IPPROTO_MAX', -1],
  ]);
  id['verdict'] = b.enum(
    'verdict',
    1,
    [
      ['DROP', -1],
      ['PASS', 1],
    ],
    true,
  );
  id['big'] = b.enum64('big', [
    ['SMALL', 1n],
    ['HUGE', 0xfedcba9876543210n],
  ]);
  id['hdr'] = b.struct('hdr', 4, [
    ['len', id['__u16'], 0],
    ['ttl', id['u8'], 16],
    ['delta', id['s8'], 24],
  ]);
  id['hdrs'] = b.array(id['hdr'], id['u32'], 3);
  id['name'] = b.array(id['char'], id['u32'], 8);
  id['mac'] = b.array(id['u8'], id['u32'], 6);
  id['row'] = b.array(id['u16'], id['u32'], 3);
  id['grid'] = b.array(id['row'], id['u32'], 2);
  id['pkt'] = b.struct('pkt', 36, [
    ['hdr', id['hdr'], 0],
    ['proto', id['proto'], 32],
    ['hdrs', id['hdrs'], 64],
    ['name', id['name'], 160],
    ['addr', id['ptr'], 224],
  ]);
  id['bits'] = b.struct('bits', 16, [
    ['lo', id['u32'], 0, 3],
    ['mid', id['s32'], 3, 5],
    ['hi', id['u32'], 8, 24],
    ['on', id['bool'], 32, 1],
    ['big', id['u64'], 33, 40],
    ['p', id['proto'], 73, 5],
  ]);
  const nibble = b.int('unsigned int', 4, 0, 4);
  id['old'] = b.struct('old', 4, [
    ['a', nibble, 0],
    ['b', nibble, 4],
    ['rest', id['u16'], 16],
  ]);
  id['word'] = b.struct(
    'word',
    4,
    [
      ['v', id['u32'], 0],
      ['half', id['u16'], 0],
      ['bytes', b.array(id['u8'], id['u32'], 4), 0],
    ],
    true,
  );
  const anon = b.struct(
    '',
    4,
    [
      ['a', id['u32'], 0],
      ['b', id['u16'], 0],
    ],
    true,
  );
  id['tagged_u'] = b.struct('tagged_u', 8, [
    ['kind', id['u32'], 0],
    ['', anon, 32],
  ]);
  id['padded'] = b.struct('padded', 8, [
    ['a', id['u8'], 0],
    ['b', id['u32'], 32],
  ]);
  id['flex'] = b.struct('flex', 4, [
    ['n', id['u32'], 0],
    ['data', b.array(id['u8'], id['u32'], 0), 32],
  ]);
  id['nums'] = b.struct('nums', 16, [
    ['f', id['float'], 0],
    ['d', id['double'], 64],
  ]);
  id['func'] = b.func('f', b.funcProto(id['s32'], []));
  id['fwd'] = b.fwd('opaque');
  id['outside'] = b.struct('outside', 4, [['x', id['u64'], 0]]);
  return { btf: parseBtf(b.build()), id };
}

const { btf, id } = buildTypes();
const T = (name: string): number => {
  const v = id[name];
  if (v === undefined) throw new Error(`no type ${name}`);
  return v;
};
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const dec = (type: string, b: Uint8Array, asString = false): unknown =>
  decodeBtf(btf, T(type), b, { asString });
const enc = (type: string, v: unknown): Uint8Array => encodeBtf(btf, T(type), v);

describe('integers', () => {
  it.each([
    ['u8', bytes(0xff), 255],
    ['s8', bytes(0xff), -1],
    ['s8', bytes(0x80), -128],
    ['u16', bytes(0xff, 0xff), 65535],
    ['s16', bytes(0x00, 0x80), -32768],
    ['u32', bytes(0xff, 0xff, 0xff, 0xff), 4294967295],
    ['s32', bytes(0xff, 0xff, 0xff, 0x7f), 2147483647],
    ['s32', bytes(0, 0, 0, 0x80), -2147483648],
    ['u64', new Uint8Array(8).fill(0xff), 0xffffffffffffffffn],
    ['s64', new Uint8Array(8).fill(0xff), -1n],
    ['s64', bytes(0, 0, 0, 0, 0, 0, 0, 0x80), -(1n << 63n)],
    ['u128', new Uint8Array(16).fill(0xff), (1n << 128n) - 1n],
  ] as const)('decodes %s %j as %s, and encodes it back', (type, b, v) => {
    expect(dec(type, b)).toBe(v);
    expect(enc(type, v)).toEqual(b);
  });

  it('gives numbers up to 32 bits and bigints beyond', () => {
    expect(typeof dec('u32', new Uint8Array(4))).toBe('number');
    expect(typeof dec('u64', new Uint8Array(8))).toBe('bigint');
  });

  it('takes a bigint for a narrow int and a number for a wide one', () => {
    expect(enc('u16', 258n)).toEqual(bytes(2, 1));
    expect(enc('s64', -2)).toEqual(new Uint8Array(8).fill(0xff).fill(0xfe, 0, 1));
  });

  it.each([
    ['u8', 256, 'value: 256 does not fit u8'],
    ['u8', -1, 'value: -1 does not fit u8'],
    ['s8', 128, 'value: 128 does not fit s8'],
    ['s8', -129, 'value: -129 does not fit s8'],
    ['u16', 70000, 'value: 70000 does not fit u16'],
    ['u64', -1n, 'value: -1 does not fit u64'],
    ['u64', 1n << 64n, 'value: 18446744073709551616 does not fit u64'],
    ['s64', 1n << 63n, 'value: 9223372036854775808 does not fit s64'],
    ['u32', 1.5, 'value: expected an integer, got 1.5'],
    ['u32', '7', "value: expected an integer, got a string '7'"],
    ['u32', true, 'value: expected an integer, got true'],
  ] as const)('refuses %s %s', (type, v, msg) => {
    expect(() => enc(type, v)).toThrowError(
      expect.objectContaining({ name: 'UsageError', message: msg }),
    );
  });

  it('decodes and encodes a bool', () => {
    expect(dec('bool', bytes(1))).toBe(true);
    expect(dec('bool', bytes(0))).toBe(false);
    expect(enc('bool', true)).toEqual(bytes(1));
    expect(enc('bool', 0)).toEqual(bytes(0));
  });

  it('sees through typedef, const, volatile, restrict and type_tag', () => {
    expect(dec('__u16', bytes(0x34, 0x12))).toBe(0x1234);
    expect(dec('cvu32', bytes(1, 0, 0, 0))).toBe(1);
    expect(dec('tagged', bytes(0xfe, 0xff, 0xff, 0xff))).toBe(-2);
    expect(enc('cvu32', 0x01020304)).toEqual(bytes(4, 3, 2, 1));
  });
});

describe('floats and pointers', () => {
  it('decodes a float and a double', () => {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setFloat32(0, 1.5, true);
    v.setFloat64(8, -0.1, true);
    expect(dec('nums', b)).toEqual({ f: 1.5, d: -0.1 });
    expect(enc('nums', { f: 1.5, d: -0.1 })).toEqual(b);
  });

  it('rounds a number to float precision', () => {
    expect(dec('float', enc('float', 0.1))).toBe(Math.fround(0.1));
  });

  it('gives a pointer as a bigint address', () => {
    expect(dec('ptr', bytes(0x10, 0x20, 0, 0, 0, 0, 0, 0))).toBe(0x2010n);
    expect(enc('ptr', 0x2010)).toEqual(bytes(0x10, 0x20, 0, 0, 0, 0, 0, 0));
    expect(() => enc('ptr', -1)).toThrowError('value: -1 does not fit u64');
  });
});

describe('enums', () => {
  it('decodes an enum as its number and names it with enumName', () => {
    expect(dec('proto', bytes(6, 0, 0, 0))).toBe(6);
    expect(enumName(btf, T('proto'), 6)).toBe('IPPROTO_TCP');
    expect(enumName(btf, T('proto'), 99)).toBeUndefined();
  });

  it('matches an unsigned enumerator written as a negative number', () => {
    expect(dec('proto', bytes(0xff, 0xff, 0xff, 0xff))).toBe(0xffffffff);
    expect(enumName(btf, T('proto'), 0xffffffff)).toBe('IPPROTO_MAX');
  });

  it('decodes a signed 1-byte enum', () => {
    expect(dec('verdict', bytes(0xff))).toBe(-1);
    expect(enumName(btf, T('verdict'), -1)).toBe('DROP');
    expect(enc('verdict', 'DROP')).toEqual(bytes(0xff));
  });

  it('decodes an enum64 as a bigint', () => {
    const b = enc('big', 'HUGE');
    expect(dec('big', b)).toBe(0xfedcba9876543210n);
    expect(enumName(btf, T('big'), 0xfedcba9876543210n)).toBe('HUGE');
  });

  it('encodes an enumerator by name and refuses an unknown name', () => {
    expect(enc('proto', 'IPPROTO_UDP')).toEqual(bytes(17, 0, 0, 0));
    expect(() => enc('proto', 'IPPROTO_SCTP')).toThrowError(
      "value: 'IPPROTO_SCTP' is not an enumerator of enum proto",
    );
  });

  it('refuses enumName on a type that is not an enum', () => {
    expect(() => enumName(btf, T('u32'), 1)).toThrowError('unsigned int is not an enum');
  });
});

describe('structs, arrays and unions', () => {
  const pkt = {
    hdr: { len: 1500, ttl: 64, delta: -3 },
    proto: 6,
    hdrs: [
      { len: 1, ttl: 2, delta: 3 },
      { len: 4, ttl: 5, delta: -6 },
      { len: 0, ttl: 0, delta: 0 },
    ],
    name: [101, 116, 104, 48, 0, 0, 0, 0],
    addr: 0x1000n,
  };

  it('round-trips a struct with a nested struct, an enum, an array of structs and a pointer', () => {
    const b = enc('pkt', pkt);
    expect(b.length).toBe(36);
    expect([...b.subarray(0, 4)]).toEqual([0xdc, 0x05, 64, 0xfd]);
    expect(dec('pkt', b)).toEqual(pkt);
  });

  it('gives char arrays as strings with asString, up to the first NUL', () => {
    const v = dec('pkt', enc('pkt', pkt), true) as BtfStruct;
    expect(v['name']).toBe('eth0');
    expect(dec('mac', enc('mac', [1, 2, 3]), true)).toEqual([1, 2, 3, 0, 0, 0]);
  });

  it('encodes a string into a char array and refuses one too long', () => {
    expect(enc('name', 'lo')).toEqual(bytes(108, 111, 0, 0, 0, 0, 0, 0));
    expect(enc('name', '12345678')).toEqual(new TextEncoder().encode('12345678'));
    expect(() => enc('pkt', { name: 'enp0s31f6' })).toThrowError(
      'value.name: string of 9 bytes does not fit char[8]',
    );
  });

  it('leaves missing members and array elements zero', () => {
    const b = enc('pkt', { hdrs: [{}, { ttl: 9 }] });
    expect(dec('pkt', b)).toEqual({
      hdr: { len: 0, ttl: 0, delta: 0 },
      proto: 0,
      hdrs: [
        { len: 0, ttl: 0, delta: 0 },
        { len: 0, ttl: 9, delta: 0 },
        { len: 0, ttl: 0, delta: 0 },
      ],
      name: [0, 0, 0, 0, 0, 0, 0, 0],
      addr: 0n,
    });
  });

  it('names the member path of a value that does not fit', () => {
    expect(() => enc('pkt', { hdr: { len: 70000 } })).toThrowError(
      expect.objectContaining({
        name: 'UsageError',
        message: 'value.hdr.len: 70000 does not fit u16',
      }),
    );
    expect(() => enc('pkt', { hdrs: [{}, { delta: 200 }] })).toThrowError(
      'value.hdrs[1].delta: 200 does not fit s8',
    );
    expect(() => encodeBtf(btf, T('pkt'), { proto: 'X' }, { path: 'key' })).toThrowError(
      "key.proto: 'X' is not an enumerator of enum proto",
    );
  });

  it('refuses unknown members and values of the wrong shape', () => {
    expect(() => enc('hdr', { len: 1, lenght: 2 })).toThrowError(
      "value: struct hdr has no member 'lenght' (have: len, ttl, delta)",
    );
    expect(() => enc('pkt', { hdr: 5 })).toThrowError(
      'value.hdr: expected an object for struct hdr, got 5',
    );
    expect(() => enc('hdr', [1, 2])).toThrowError(
      'expected an object for struct hdr, got an array',
    );
    expect(() => enc('pkt', { hdrs: {} })).toThrowError(
      'value.hdrs: expected an array of up to 3 elements, got an object',
    );
    expect(() => enc('row', [1, 2, 3, 4])).toThrowError('value: 4 elements do not fit [3]');
  });

  it('zeroes padding', () => {
    expect(enc('padded', { a: 1, b: 2 })).toEqual(bytes(1, 0, 0, 0, 2, 0, 0, 0));
    expect(dec('padded', new Uint8Array(8).fill(0xff))).toEqual({ a: 255, b: 0xffffffff });
  });

  it('decodes a two-dimensional array as nested arrays', () => {
    const b = enc('grid', [[1, 2, 3], [4]]);
    expect(dec('grid', b)).toEqual([
      [1, 2, 3],
      [4, 0, 0],
    ]);
  });

  it('gives a flexible array member as an empty array', () => {
    expect(dec('flex', bytes(3, 0, 0, 0))).toEqual({ n: 3, data: [] });
    expect(() => enc('flex', { data: [1] })).toThrowError('value.data: 1 elements do not fit [0]');
  });

  it('decodes every member of a union and encodes the ones given', () => {
    expect(dec('word', bytes(1, 2, 3, 4))).toEqual({
      v: 0x04030201,
      half: 0x0201,
      bytes: [1, 2, 3, 4],
    });
    expect(enc('word', { half: 0xbeef })).toEqual(bytes(0xef, 0xbe, 0, 0));
    expect(enc('word', { v: 0x11111111, bytes: [0xaa] })).toEqual(bytes(0xaa, 0x11, 0x11, 0x11));
  });

  it('flattens an anonymous union into its struct, as C names its members', () => {
    const b = enc('tagged_u', { kind: 2, b: 0x1234 });
    expect(b).toEqual(bytes(2, 0, 0, 0, 0x34, 0x12, 0, 0));
    expect(dec('tagged_u', b)).toEqual({ kind: 2, a: 0x1234, b: 0x1234 });
    expect(() => enc('tagged_u', { c: 1 })).toThrowError(
      "struct tagged_u has no member 'c' (have: kind, a, b)",
    );
  });

  it('reads a member named __proto__ as data', () => {
    const b = new BtfBuilder();
    const u8 = b.int('unsigned char', 1);
    const st = b.struct('odd', 1, [['__proto__', u8, 0]]);
    const odd = parseBtf(b.build());
    const v = decodeBtf(odd, st, bytes(7));
    expect(Object.keys(v as object)).toEqual(['__proto__']);
    expect(encodeBtf(odd, st, v)).toEqual(bytes(7));
  });
});

describe('bitfields', () => {
  // lo:3 = 5, mid:5 = -7 (0b11001), hi:24 = 0xabcdef, on:1, big:40 = 0x12_3456_789a, p:5 = 17
  const value = { lo: 5, mid: -7, hi: 0xabcdef, on: true, big: 0x123456789an, p: 17 };

  it('decodes kind_flag bitfields at their bit offsets', () => {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(
      0,
      5n | (0b11001n << 3n) | (0xabcdefn << 8n) | (1n << 32n) | (0x123456789an << 33n),
      true,
    );
    v.setUint16(8, Number((0x123456789an >> 31n) | (17n << 9n)), true);
    expect(dec('bits', b)).toEqual(value);
    expect(enc('bits', value)).toEqual(b);
  });

  it('keeps the representation of the declared type: a u64 bitfield is a bigint', () => {
    const v = dec('bits', enc('bits', { big: 1n })) as BtfStruct;
    expect(v['big']).toBe(1n);
    expect(v['hi']).toBe(0);
  });

  it('writes one bitfield without touching its neighbours', () => {
    const all = enc('bits', {
      lo: 7,
      mid: -1,
      hi: 0xffffff,
      on: true,
      big: (1n << 40n) - 1n,
      p: 31,
    });
    const one = enc('bits', { mid: -1 });
    expect(dec('bits', one)).toEqual({ lo: 0, mid: -1, hi: 0, on: false, big: 0n, p: 0 });
    expect(dec('bits', all)).toEqual({
      lo: 7,
      mid: -1,
      hi: 0xffffff,
      on: true,
      big: (1n << 40n) - 1n,
      p: 31,
    });
  });

  it.each([
    [{ lo: 8 }, 'value.lo: 8 does not fit u3'],
    [{ mid: 16 }, 'value.mid: 16 does not fit s5'],
    [{ mid: -17 }, 'value.mid: -17 does not fit s5'],
    [{ big: 1n << 40n }, 'value.big: 1099511627776 does not fit u40'],
    [{ p: 'IPPROTO_MAX' }, 'value.p: 4294967295 does not fit u5'],
  ])('refuses %o with the message "%s"', (v, msg) => {
    expect(() => enc('bits', v)).toThrowError(msg);
  });

  it('decodes bitfields encoded in the int type (kind_flag 0)', () => {
    expect(dec('old', bytes(0x21, 0, 7, 0))).toEqual({ a: 1, b: 2, rest: 7 });
    expect(enc('old', { a: 15, b: 1, rest: 1 })).toEqual(bytes(0x1f, 0, 1, 0));
    expect(() => enc('old', { b: 16 })).toThrowError('value.b: 16 does not fit u4');
  });
});

describe('errors', () => {
  it('refuses a buffer shorter than the type and ignores extra bytes', () => {
    expect(() => dec('pkt', new Uint8Array(35))).toThrowError(
      expect.objectContaining({
        name: 'UsageError',
        message: 'value: 35 bytes, struct pkt takes 36',
      }),
    );
    expect(dec('u16', bytes(1, 0, 9))).toBe(1);
  });

  it('refuses types without a value layout', () => {
    expect(() => dec('func', new Uint8Array(8))).toThrowError(
      expect.objectContaining({ name: 'BtfError' }),
    );
    expect(() => encodeBtf(btf, 0, 0)).toThrowError(/has no size/);
    expect(() => dec('fwd', new Uint8Array(8))).toThrowError(/has no size/);
  });

  it('refuses a member outside its struct as malformed BTF', () => {
    expect(() => dec('outside', new Uint8Array(8))).toThrowError(
      expect.objectContaining({
        name: 'BtfError',
        message: "btf: .BTF: member 'x' (64 bits at bit 0) outside struct outside of 4 bytes",
      }),
    );
  });

  it('stops on a struct that contains itself through an anonymous member', () => {
    const b = new BtfBuilder();
    // type 1 is the struct itself: its only member is an anonymous copy of it
    b.struct('loop', 4, [['', 1, 0]]);
    const bad = parseBtf(b.build());
    expect(() => decodeBtf(bad, 1, new Uint8Array(4))).toThrowError(
      expect.objectContaining({
        name: 'BtfError',
        message: expect.stringMatching(/nesting deeper than 64/),
      }),
    );
    expect(() => encodeBtf(bad, 1, {})).toThrowError(/nesting deeper than 64/);
  });
});

/** xorshift32, so a failing round trip can be reproduced from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

describe('round trips', () => {
  // types whose every byte is data (no padding, no unused bits, no bool, no float)
  const exact = ['pkt', 'hdrs', 'grid', 'word', 'tagged_u', 's64', 'u128', 'big'];
  for (const seed of [1, 2, 3, 0xc0ffee]) {
    it(`decodes and re-encodes random bytes exactly (seed ${seed})`, () => {
      const next = rng(seed);
      for (const type of exact) {
        for (let k = 0; k < 20; k++) {
          const b = new Uint8Array(btf.sizeOf(T(type))).map(() => next() & 0xff);
          expect(enc(type, dec(type, b)), `${type} seed ${seed}`).toEqual(b);
        }
      }
    });

    it(`keeps the decoded value of random bitfields through an encode (seed ${seed})`, () => {
      const next = rng(seed);
      for (let k = 0; k < 50; k++) {
        const b = new Uint8Array(16).map(() => next() & 0xff);
        const v = dec('bits', b);
        expect(dec('bits', enc('bits', v)), `seed ${seed}`).toEqual(v);
      }
    });
  }
});
