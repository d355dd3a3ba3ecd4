/**
 * Context access rules (src/verifier/ctx-access.ts): for each program type, accepted and
 * refused accesses at the edges of fields and of the context, stores, narrow loads, the
 * register type a load gives, and the kernel's exact message. Also checks that the rules agree
 * with the verifier corpus (test/verifier/cases/ctx.ts) and stay inside the context the
 * runtime builds.
 */

import { describe, expect, it } from 'vitest';
import { CTX_SIZE, SK_BUFF, XDP_MD } from '../../../src/abi.js';
import { assemble } from '../../../src/asm/assembler.js';
import {
  BPF_B,
  BPF_DW,
  BPF_H,
  BPF_LDX,
  BPF_MEM,
  BPF_ST,
  BPF_STX,
  BPF_W,
} from '../../../src/isa/opcodes.js';
import { PROG_TYPES, type ProgType } from '../../../src/program.js';
import {
  checkCtxAccess,
  ctxSize,
  PERF_MAX_TRACE_SIZE,
  PT_REGS_SIZE,
  type CtxAccessSize,
  type CtxRegType,
} from '../../../src/verifier/ctx-access.js';
import { ctxCases } from '../../verifier/cases/ctx.js';

const R = false;
const W = true;
const NO = 'reject';

/** One expectation: [offset, size, write, the loaded register's type or 'reject']. */
type Row = readonly [number, CtxAccessSize, boolean, CtxRegType | typeof NO];

const S: CtxRegType = 'SCALAR_VALUE';
const PKT: CtxRegType = 'PTR_TO_PACKET';
const END: CtxRegType = 'PTR_TO_PACKET_END';
const META: CtxRegType = 'PTR_TO_PACKET_META';

/** Per program type: accesses at field and context edges, kernel function in the title. */
const TABLE: readonly (readonly [ProgType, string, readonly Row[]])[] = [
  [
    'mem',
    'has no context at all',
    [
      [0, 1, R, NO],
      [0, 8, R, NO],
      [0, 4, W, NO],
      [-8, 8, R, NO],
    ],
  ],
  [
    'xdp',
    'reads aligned u32 fields only (xdp_is_valid_access)',
    [
      [0, 4, R, PKT],
      [4, 4, R, END],
      [8, 4, R, META],
      [12, 4, R, S],
      [16, 4, R, S],
      [20, 4, R, S],
      [0, 8, R, NO],
      [4, 8, R, NO],
      [8, 8, R, NO],
      [0, 2, R, NO],
      [12, 1, R, NO],
      [12, 2, R, NO],
      [14, 2, R, NO],
      [2, 4, R, NO],
      [24, 4, R, NO],
      [28, 4, R, NO],
      [-4, 4, R, NO],
      [0, 4, W, NO],
      [16, 4, W, NO],
      [20, 4, W, NO],
    ],
  ],
  [
    'socket_filter',
    'writes cb[] only and never sees the packet directly (sk_filter_is_valid_access)',
    [
      [0, 4, R, S],
      [0, 2, R, S],
      [2, 2, R, S],
      [0, 1, R, S],
      [3, 1, R, S],
      [8, 2, R, S],
      [36, 4, R, S],
      [68, 4, R, S],
      [164, 4, R, S],
      [176, 4, R, S],
      [48, 4, W, S],
      [48, 8, W, S],
      [49, 1, W, S],
      [66, 2, W, S],
      [64, 4, W, S],
      [56, 8, R, S],
      [1, 2, R, NO],
      [9, 2, R, NO],
      [2, 4, R, NO],
      [0, 8, R, NO],
      [64, 8, R, NO],
      [0, 4, W, NO],
      [8, 4, W, NO],
      [8, 2, W, NO],
      [76, 4, R, NO],
      [80, 4, R, NO],
      [140, 4, R, NO],
      [72, 4, R, NO],
      [88, 4, R, NO],
      [92, 4, R, NO],
      [136, 4, R, NO],
      [152, 8, R, NO],
      [160, 4, R, NO],
      [184, 8, R, NO],
      [144, 8, R, NO],
      [168, 8, R, NO],
      [172, 4, R, NO],
      [180, 1, R, NO],
      [181, 1, R, NO],
      [192, 4, R, NO],
      [-4, 4, R, NO],
    ],
  ],
  [
    'sched_cls',
    'loads packet pointers and writes the tc fields (tc_cls_act_is_valid_access)',
    [
      [76, 4, R, PKT],
      [80, 4, R, END],
      [140, 4, R, META],
      [8, 4, W, S],
      [44, 4, W, S],
      [32, 4, W, S],
      [72, 4, W, S],
      [12, 4, W, S],
      [152, 8, W, S],
      [48, 1, W, S],
      [56, 8, W, S],
      [152, 8, R, S],
      [184, 8, R, S],
      [180, 1, R, S],
      [72, 4, R, S],
      [0, 2, R, S],
      [76, 8, R, NO],
      [76, 2, R, NO],
      [78, 2, R, NO],
      [140, 8, R, NO],
      [88, 4, R, NO],
      [92, 4, R, NO],
      [136, 4, R, NO],
      [8, 2, W, NO],
      [0, 4, W, NO],
      [16, 4, W, NO],
      [76, 4, W, NO],
      [184, 8, W, NO],
      [180, 1, W, NO],
      [180, 2, R, NO],
      [181, 1, R, NO],
      [152, 4, R, NO],
      [144, 8, R, NO],
      [168, 8, R, NO],
      [60, 8, W, NO],
      [64, 8, W, NO],
    ],
  ],
  [
    'cgroup_skb',
    'loads data/data_end and writes mark, priority, cb[] and tstamp (cg_skb_is_valid_access)',
    [
      [76, 4, R, PKT],
      [80, 4, R, END],
      [8, 4, W, S],
      [32, 4, W, S],
      [52, 4, W, S],
      [152, 8, W, S],
      [88, 4, R, S],
      [92, 4, R, S],
      [100, 4, R, S],
      [112, 4, R, S],
      [136, 2, R, S],
      [184, 8, R, S],
      [140, 4, R, NO],
      [72, 4, R, NO],
      [160, 4, R, NO],
      [44, 4, W, NO],
      [72, 4, W, NO],
      [12, 4, W, NO],
      [92, 2, R, NO],
      [100, 8, R, NO],
      [180, 1, R, NO],
    ],
  ],
  [
    'sk_skb',
    'loads data/data_end, writes tc_index and priority, never touches mark (sk_skb_is_valid_access)',
    [
      [76, 4, R, PKT],
      [80, 4, R, END],
      [44, 4, W, S],
      [32, 4, W, S],
      [88, 4, R, S],
      [0, 4, R, S],
      [48, 4, R, S],
      [8, 4, R, NO],
      [8, 4, W, NO],
      [140, 4, R, NO],
      [152, 8, R, NO],
      [160, 4, R, NO],
      [184, 8, R, NO],
      [72, 4, R, NO],
      [48, 4, W, NO],
    ],
  ],
  [
    'kprobe',
    'reads struct pt_regs at any aligned size (kprobe_prog_is_valid_access)',
    [
      [0, 8, R, S],
      [160, 8, R, S],
      [164, 4, R, S],
      [166, 2, R, S],
      [167, 1, R, S],
      [4, 4, R, S],
      [168, 1, R, NO],
      [168, 8, R, NO],
      [164, 8, R, NO],
      [2, 4, R, NO],
      [-8, 8, R, NO],
      [0, 8, W, NO],
    ],
  ],
  [
    'tracepoint',
    'reads the record from offset 8 to PERF_MAX_TRACE_SIZE (tp_prog_is_valid_access)',
    [
      [8, 8, R, S],
      [8, 4, R, S],
      [12, 4, R, S],
      [14, 2, R, S],
      [2040, 8, R, S],
      [2047, 1, R, S],
      [0, 8, R, NO],
      [4, 4, R, NO],
      [7, 1, R, NO],
      [10, 4, R, NO],
      [2044, 8, R, NO],
      [2048, 1, R, NO],
      [8, 8, W, NO],
    ],
  ],
  [
    'raw_tracepoint',
    'reads u64 args[12] at any aligned size (bpf_tracing_ctx_access)',
    [
      [0, 8, R, S],
      [88, 8, R, S],
      [4, 4, R, S],
      [95, 1, R, S],
      [96, 8, R, NO],
      [96, 1, R, NO],
      [92, 8, R, NO],
      [-8, 8, R, NO],
      [0, 8, W, NO],
    ],
  ],
  [
    'perf_event',
    'reads whole pt_regs words and narrow sample_period/addr (pe_prog_is_valid_access)',
    [
      [0, 8, R, S],
      [160, 8, R, S],
      [168, 8, R, S],
      [168, 4, R, S],
      [172, 4, R, S],
      [174, 2, R, S],
      [175, 1, R, S],
      [176, 8, R, S],
      [183, 1, R, S],
      [0, 4, R, NO],
      [4, 4, R, NO],
      [160, 1, R, NO],
      [170, 4, R, NO],
      [184, 8, R, NO],
      [184, 1, R, NO],
      [168, 8, W, NO],
      [0, 8, W, NO],
    ],
  ],
  [
    'syscall',
    'reads and writes its ctx memory at any aligned size (syscall_prog_is_valid_access)',
    [
      [0, 8, R, S],
      [0, 8, W, S],
      [3, 1, W, S],
      [4, 4, R, S],
      [CTX_SIZE - 8, 8, W, S],
      [CTX_SIZE - 1, 1, R, S],
      [CTX_SIZE, 1, R, NO],
      [CTX_SIZE - 4, 8, R, NO],
      [2, 4, W, NO],
      [-1, 1, R, NO],
    ],
  ],
  ...(['tracing', 'lsm', 'struct_ops'] as const).map(
    (t) =>
      [
        t,
        'reads u64 args at multiples of 8 (bpf_tracing_btf_ctx_access)',
        [
          [0, 8, R, S],
          [88, 8, R, S],
          [0, 4, R, S],
          [8, 1, R, S],
          [4, 4, R, NO],
          [92, 4, R, NO],
          [96, 8, R, NO],
          [0, 8, W, NO],
        ],
      ] as const,
  ),
];

describe('checkCtxAccess', () => {
  for (const [type, rule, rows] of TABLE) {
    describe(`${type} ${rule}`, () => {
      it.each(rows)('access at off %i of size %i (write %s) gives %s', (off, size, write, want) => {
        const got = checkCtxAccess(type, off, size, write);
        if (want === NO) {
          expect(got).toEqual({
            ok: false,
            error: `invalid bpf_context access off=${off} size=${size}`,
          });
        } else {
          expect(got).toEqual({ ok: true, regType: want });
        }
      });
    });
  }

  it('gives sched_act the same verdicts as sched_cls everywhere', () => {
    forEachAccess('sched_cls', (off, size, write) => {
      expect(checkCtxAccess('sched_act', off, size, write)).toEqual(
        checkCtxAccess('sched_cls', off, size, write),
      );
    });
  });

  it('prints the kernel message with a negative offset as a signed number', () => {
    expect(checkCtxAccess('socket_filter', -4, 4, false)).toEqual({
      ok: false,
      error: 'invalid bpf_context access off=-4 size=4',
    });
  });

  it('allows narrow reads of a u32 __sk_buff field at every offset aligned to their size', () => {
    for (const off of [SK_BUFF.len, SK_BUFF.mark, SK_BUFF.hash, SK_BUFF.gso_segs]) {
      for (let b = 0; b < 4; b++) {
        expect(checkCtxAccess('socket_filter', off + b, 1, false).ok).toBe(true);
        expect(checkCtxAccess('socket_filter', off + b, 2, false).ok).toBe(b % 2 === 0);
        expect(checkCtxAccess('socket_filter', off + b, 4, false).ok).toBe(b === 0);
        expect(checkCtxAccess('socket_filter', off + b, 8, false).ok).toBe(false);
      }
    }
  });

  it('gives a packet pointer only to a 4-byte load, never to a store', () => {
    for (const type of PROG_TYPES) {
      forEachAccess(type, (off, size, write) => {
        const got = checkCtxAccess(type, off, size, write);
        if (got.ok && got.regType !== 'SCALAR_VALUE') {
          expect({ type, off, size, write }).toEqual({ type, off, size: 4, write: false });
        }
      });
    }
  });

  it('allows no access that leaves the context or is misaligned', () => {
    for (const type of PROG_TYPES) {
      forEachAccess(type, (off, size, write) => {
        if (!checkCtxAccess(type, off, size, write).ok) return;
        expect(off).toBeGreaterThanOrEqual(0);
        expect(off + size).toBeLessThanOrEqual(ctxSize(type));
        expect(off % size).toBe(0);
      });
    }
  });
});

describe('ctxSize', () => {
  it.each([
    ['mem', 0],
    ['xdp', XDP_MD.size],
    ['socket_filter', SK_BUFF.size],
    ['sched_cls', SK_BUFF.size],
    ['sched_act', SK_BUFF.size],
    ['cgroup_skb', SK_BUFF.size],
    ['sk_skb', SK_BUFF.size],
    ['kprobe', PT_REGS_SIZE],
    ['tracepoint', PERF_MAX_TRACE_SIZE],
    ['raw_tracepoint', 96],
    ['perf_event', PT_REGS_SIZE + 16],
    ['struct_ops', 96],
    ['syscall', CTX_SIZE],
    ['tracing', 96],
    ['lsm', 96],
  ] as const)('of %s is %i bytes', (type, size) => {
    expect(ctxSize(type)).toBe(size);
  });

  it('fits every context in the ctx area the runtime reserves', () => {
    for (const type of PROG_TYPES) expect(ctxSize(type)).toBeLessThanOrEqual(CTX_SIZE);
  });
});

describe('the verifier corpus (test/verifier/cases/ctx.ts)', () => {
  // Every corpus program keeps the ctx in r1, so its ctx accesses are those based on r1.
  it.each(ctxCases.map((c) => [c.desc, c] as const))('%s', (_desc, c) => {
    const verdicts = ctxAccesses(c.asm).map((a) =>
      checkCtxAccess(c.progType, a.off, a.size, a.write),
    );
    const refused = verdicts.find((v) => !v.ok);
    if (c.result === 'accept') {
      expect(refused).toBeUndefined();
    } else {
      expect(refused).toEqual({ ok: false, error: c.msg });
    }
  });
});

const SIZE_BYTES: Readonly<Record<number, CtxAccessSize>> = {
  [BPF_B]: 1,
  [BPF_H]: 2,
  [BPF_W]: 4,
  [BPF_DW]: 8,
};

/** One load or store through the ctx register. */
interface CtxAccess {
  readonly off: number;
  readonly size: CtxAccessSize;
  readonly write: boolean;
}

/** The loads and stores through r1 of an assembly program. */
function ctxAccesses(asm: string): CtxAccess[] {
  return assemble(asm).flatMap((i): CtxAccess[] => {
    const cls = i.code & 0x07;
    const size = SIZE_BYTES[i.code & 0x18];
    if ((i.code & 0xe0) !== BPF_MEM || size === undefined) return [];
    if (cls === BPF_LDX && i.src === 1) return [{ off: i.off, size, write: false }];
    if ((cls === BPF_STX || cls === BPF_ST) && i.dst === 1)
      return [{ off: i.off, size, write: true }];
    return [];
  });
}

/** Calls `fn` for every access size, both directions, at offsets around the context. */
function forEachAccess(
  type: ProgType,
  fn: (off: number, size: CtxAccessSize, write: boolean) => void,
): void {
  for (let off = -16; off < ctxSize(type) + 16; off++) {
    for (const size of [1, 2, 4, 8] as const) {
      fn(off, size, false);
      fn(off, size, true);
    }
  }
}
