/**
 * The stack model (src/verifier/stack.ts): spill and fill round trips, narrow scalar spills,
 * STACK_MISC / STACK_ZERO writes, every rejection with the kernel's message, and the log
 * format of stack slots (`fp-8=mmmmmmmm`, `fp-16_w=ctx()`).
 */

import { describe, expect, it } from 'vitest';
import {
  allocatedStack,
  newStack,
  readStack,
  stackSlot,
  stackStr,
  writeStack,
  type StackReadResult,
} from '../../../../src/verifier/stack.js';
import {
  regConst,
  regPtr,
  regStateStr,
  regUnknownScalar,
  type RegState,
} from '../../../../src/verifier/reg-state.js';

function loaded(r: StackReadResult): RegState {
  if ('error' in r) throw new Error(r.error);
  return r.reg;
}

describe('register spill and fill', () => {
  it('round-trips an 8-byte pointer spill', () => {
    const stack = newStack();
    const ctx = regPtr('PTR_TO_CTX');
    expect(writeStack(stack, -16, 8, { reg: ctx })).toBeUndefined();
    const r = loaded(readStack(stack, -16, 8));
    expect(regStateStr(r)).toBe('ctx()');
    expect(allocatedStack(stack)).toBe(16);
    expect(stackStr(stack)).toBe(' fp-16_w=ctx()');
  });

  it('round-trips a scalar and keeps its bounds and id', () => {
    const stack = newStack();
    expect(writeStack(stack, -8, 8, { reg: { ...regConst(42), id: 5 } })).toBeUndefined();
    const r = loaded(readStack(stack, -8, 8));
    expect(regStateStr(r)).toBe('42');
    expect(r.id).toBe(5);
  });

  it('spills a 4-byte scalar and fills it back', () => {
    const stack = newStack();
    expect(writeStack(stack, -8, 4, { reg: regConst(7) })).toBeUndefined();
    expect(stackSlot(stack, 0).slotType).toEqual([
      'STACK_INVALID',
      'STACK_INVALID',
      'STACK_INVALID',
      'STACK_INVALID',
      'STACK_SPILL',
      'STACK_SPILL',
      'STACK_SPILL',
      'STACK_SPILL',
    ]);
    expect(regStateStr(loaded(readStack(stack, -8, 4)))).toBe('7');
    expect(stackStr(stack)).toBe(' fp-8=????7');
    expect(readStack(stack, -8, 8)).toEqual({ error: 'invalid read from stack off -8+4 size 8' });
  });

  it('spills an immediate store as a known scalar', () => {
    const stack = newStack();
    expect(writeStack(stack, -8, 8, { imm: -3n })).toBeUndefined();
    expect(regStateStr(loaded(readStack(stack, -8, 8)))).toBe('-3');
  });

  it('narrows a wide scalar on a narrow fill and drops its id', () => {
    const stack = newStack();
    writeStack(stack, -8, 8, { reg: { ...regConst(0x1_0000_0005n), id: 2 } });
    const r = loaded(readStack(stack, -8, 4));
    expect(regStateStr(r)).toBe('5');
    expect(r.id).toBe(0);
  });

  it('rejects a narrow pointer spill and a narrow pointer fill', () => {
    const stack = newStack();
    expect(writeStack(stack, -8, 4, { reg: regPtr('PTR_TO_CTX') })).toBe(
      'invalid size of register spill',
    );
    writeStack(stack, -8, 8, { reg: regPtr('PTR_TO_CTX') });
    expect(readStack(stack, -8, 4)).toEqual({ error: 'invalid size of register fill' });
  });

  it('rejects a partial overwrite of a spilled pointer unless pointer leaks are allowed', () => {
    const stack = newStack();
    writeStack(stack, -8, 8, { reg: regPtr('PTR_TO_CTX') });
    expect(writeStack(stack, -4, 4, { misc: true })).toBe(
      'attempt to corrupt spilled pointer on stack',
    );
    expect(writeStack(stack, -4, 4, { misc: true }, { allowPtrLeaks: true })).toBeUndefined();
    expect(stackStr(stack)).toBe(' fp-8_w=mmmmmmmm');
  });
});

describe('data writes', () => {
  it('marks unknown bytes STACK_MISC and reads them as an unknown scalar', () => {
    const stack = newStack();
    writeStack(stack, -8, 8, { misc: true });
    expect(stackStr(stack)).toBe(' fp-8_w=mmmmmmmm');
    expect(loaded(readStack(stack, -8, 8))).toMatchObject({ type: 'SCALAR_VALUE' });
    expect(regStateStr(loaded(readStack(stack, -8, 8)))).toBe('scalar()');
    expect(regStateStr(loaded(readStack(stack, -8, 1)))).toBe(
      'scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))',
    );
  });

  it('marks unaligned zero stores STACK_ZERO and reads 0 back', () => {
    const stack = newStack();
    expect(writeStack(stack, -6, 2, { reg: regConst(0) })).toBeUndefined();
    expect(writeStack(stack, -4, 4, { imm: 0n })).toBeUndefined();
    expect(stackStr(stack)).toBe(' fp-8=000000??');
    expect(regStateStr(loaded(readStack(stack, -4, 4)))).toBe('0');
    expect(readStack(stack, -8, 8)).toEqual({ error: 'invalid read from stack off -8+0 size 8' });
  });

  it('breaks a spilled scalar overlapped by an unaligned write', () => {
    const stack = newStack();
    writeStack(stack, -8, 8, { reg: regConst(1) });
    writeStack(stack, -4, 4, { reg: regUnknownScalar() });
    expect(stackStr(stack)).toBe(' fp-8_w=mmmmmmmm');
  });
});

describe('rejections', () => {
  it('rejects reads of uninitialised stack unless allowed', () => {
    const stack = newStack();
    expect(readStack(stack, -16, 8)).toEqual({ error: 'invalid read from stack off -16+0 size 8' });
    writeStack(stack, -8, 2, { misc: true });
    expect(readStack(stack, -8, 4)).toEqual({ error: 'invalid read from stack off -8+2 size 4' });
    expect(loaded(readStack(stack, -8, 4, { allowUninitStack: true })).type).toBe('SCALAR_VALUE');
  });

  it('rejects accesses outside the 512-byte stack and misaligned ones', () => {
    const stack = newStack();
    expect(writeStack(stack, -520, 8, { misc: true })).toBe(
      'invalid write to stack R10 off=-520 size=8',
    );
    expect(readStack(stack, 0, 8)).toEqual({ error: 'invalid read from stack R10 off=0 size=8' });
    expect(writeStack(stack, -6, 4, { misc: true })).toBe(
      'misaligned stack access off (0x0; 0x0)+0+-6 size 4',
    );
    expect(allocatedStack(stack)).toBe(0);
  });

  it('sign-extends a narrow load when asked', () => {
    const stack = newStack();
    writeStack(stack, -8, 1, { imm: 0xffn });
    expect(regStateStr(loaded(readStack(stack, -8, 1)))).toBe('255');
    expect(regStateStr(loaded(readStack(stack, -8, 1, { sx: true })))).toBe('-1');
  });
});
