/**
 * The register state (src/verifier/reg-state.ts): constructors mirroring the kernel's
 * `__mark_reg_*` helpers, the null-check conversion and the log printer against entries of
 * kernel verifier logs (`print_reg_state`).
 */

import { describe, expect, it } from 'vitest';
import {
  scalarKnown,
  SCALAR_UNKNOWN,
  scalarCopy,
  regBoundsSync,
} from '../../../../src/verifier/bounds.js';
import { tnumRange } from '../../../../src/verifier/tnum.js';
import {
  markPtrNotNull,
  markPtrOrNull,
  markRegKnownZero,
  REG_LIVE_READ64,
  REG_LIVE_WRITTEN,
  regConst,
  regIsNull,
  regIsPointer,
  regNotInit,
  regPtr,
  regScalar,
  regStateStr,
  regStr,
  regTypeStr,
  regUnknownScalar,
  regWith,
  type MapInfo,
} from '../../../../src/verifier/reg-state.js';

const MAP: MapInfo = { keySize: 4, valueSize: 8, maxEntries: 1, type: 2, id: 7 };

describe('register constructors', () => {
  it('makes NOT_INIT, unknown and constant scalars', () => {
    expect(regNotInit().type).toBe('NOT_INIT');
    expect(regUnknownScalar().scalar).toBe(SCALAR_UNKNOWN);
    expect(regConst(5).scalar).toEqual(scalarKnown(5n));
    expect(regIsPointer(regConst(5))).toBe(false);
    expect(regIsPointer(regNotInit())).toBe(false);
    expect(regIsPointer(regPtr('PTR_TO_CTX'))).toBe(true);
  });

  it('gives pointers a zero variable offset', () => {
    const r = regPtr('PTR_TO_STACK', { off: -8 });
    expect(r.scalar).toEqual(scalarKnown(0n));
    expect(r.off).toBe(-8);
    // Records are shared between states: deriving one leaves the original as it was.
    const moved = regWith(r, { off: -16 });
    expect([r.off, moved.off, moved.type]).toEqual([-8, -16, 'PTR_TO_STACK']);
  });

  it('clears offsets and ids but keeps the type on markRegKnownZero', () => {
    const r = markRegKnownZero(regPtr('PTR_TO_MAP_VALUE', { off: 4, id: 3, map: MAP }));
    expect(r.type).toBe('PTR_TO_MAP_VALUE');
    expect([r.off, r.id, r.map]).toEqual([0, 0, undefined]);
    expect(regIsNull(regConst(0))).toBe(true);
  });
});

describe('null checks', () => {
  const orNull = regPtr('PTR_TO_MAP_VALUE', { maybeNull: true, id: 1, map: MAP });

  it('turns map_value_or_null into map_value on the non-NULL branch and drops the id', () => {
    const r = markPtrOrNull(orNull, 1, false);
    expect(r.maybeNull).toBe(false);
    expect(r.id).toBe(0);
    expect(regStateStr(r)).toBe('map_value(ks=4,vs=8)');
    expect(markPtrOrNull(orNull, 1, false, true).id).toBe(1);
    expect(markPtrNotNull(orNull).maybeNull).toBe(false);
  });

  it('turns it into the scalar 0 on the NULL branch', () => {
    const r = markPtrOrNull(orNull, 1, true);
    expect(r.type).toBe('SCALAR_VALUE');
    expect(regStateStr(r)).toBe('0');
  });

  it('leaves registers of another id alone', () => {
    expect(markPtrOrNull(orNull, 2, true)).toBe(orNull);
  });
});

describe('log printing (print_reg_state)', () => {
  it('prints the kernel short type names with modifiers', () => {
    expect(regTypeStr(regPtr('PTR_TO_MAP_VALUE', { maybeNull: true }))).toBe('map_value_or_null');
    expect(regTypeStr(regPtr('PTR_TO_MEM', { memRingbuf: true }))).toBe('ringbuf_mem');
    expect(regTypeStr(regPtr('PTR_TO_MEM', { memRingbuf: true, maybeNull: true }))).toBe(
      'ringbuf_mem_or_null',
    );
    expect(regTypeStr(regPtr('PTR_TO_MEM', { memRdonly: true }))).toBe('rdonly_mem');
    expect(regTypeStr(regPtr('CONST_PTR_TO_MAP'))).toBe('map_ptr');
    expect(regTypeStr(regPtr('PTR_TO_PACKET_END'))).toBe('pkt_end');
    expect(regTypeStr(regPtr('PTR_TO_BTF_ID', { maybeNull: true }))).toBe('ptr_or_null_');
  });

  it('prints the entries of kernel logs', () => {
    expect(regStr(1, regPtr('PTR_TO_CTX'))).toBe('R1=ctx()');
    expect(regStr(10, regPtr('PTR_TO_STACK'))).toBe('R10=fp0');
    expect(regStr(2, regPtr('PTR_TO_STACK', { off: -8 }), true)).toBe('R2_w=fp-8');
    expect(regStr(0, regPtr('PTR_TO_MAP_VALUE', { maybeNull: true, id: 1, map: MAP }))).toBe(
      'R0=map_value_or_null(id=1,ks=4,vs=8)',
    );
    expect(regStr(1, regPtr('CONST_PTR_TO_MAP', { map: { ...MAP, name: 'counts' } }))).toBe(
      'R1=map_ptr(map=counts,ks=4,vs=8)',
    );
    expect(regStr(3, regPtr('PTR_TO_PACKET', { range: 14 }))).toBe('R3=pkt(r=14)');
    expect(regStr(3, regPtr('PTR_TO_PACKET', { off: 14, range: 0 }))).toBe('R3=pkt(off=14,r=0)');
    expect(
      regStr(
        0,
        regPtr('PTR_TO_MEM', {
          memRingbuf: true,
          maybeNull: true,
          id: 2,
          refObjId: 2,
          memSize: 16,
        }),
      ),
    ).toBe('R0=ringbuf_mem_or_null(id=2,ref_obj_id=2,sz=16)');
    expect(regStr(1, regConst(5))).toBe('R1=5');
    expect(regStr(1, regConst(-1), true)).toBe('R1_w=-1');
    expect(regStr(1, regUnknownScalar())).toBe('R1=scalar()');
  });

  it('prints scalar ranges, ids and precision', () => {
    const b = scalarCopy(SCALAR_UNKNOWN);
    b.varOff = tnumRange(0n, 255n);
    regBoundsSync(b);
    const r = regWith(regScalar(b), { id: 3 });
    expect(regStateStr(r)).toBe(
      'scalar(id=3,smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))',
    );
    expect(regStateStr(regWith(regConst(7), { precise: true }))).toBe('P7');
  });

  it('prints the variable offset of a pointer', () => {
    const b = scalarCopy(SCALAR_UNKNOWN);
    b.varOff = tnumRange(0n, 7n);
    regBoundsSync(b);
    expect(regStateStr(regPtr('PTR_TO_MAP_VALUE', { map: MAP, scalar: b }))).toBe(
      'map_value(ks=4,vs=8,smin=smin32=0,smax=umax=smax32=umax32=7,var_off=(0x0; 0x7))',
    );
    expect(regStateStr(regPtr('PTR_TO_STACK', { scalar: b }))).toContain('fp(');
  });

  it('marks stack pointers into another frame and the liveness bits', () => {
    expect(regStateStr(regPtr('PTR_TO_STACK', { frameno: 0, off: -16 }), 1)).toBe('fp[0]-16');
    expect(regStr(6, regWith(regConst(1), { live: REG_LIVE_READ64 | REG_LIVE_WRITTEN }))).toBe(
      'R6_rw=1',
    );
  });
});
