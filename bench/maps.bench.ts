/**
 * Map lookups from BPF (issue #4): ns per bpf_map_lookup_elem on an array map (4-byte keys)
 * and a hash map (8-byte keys), JIT. Each run of the program makes LOOKUPS lookups of keys
 * 0..63 in a bounded loop; the same loop without the call is the baseline subtracted.
 * Targets: array ≤ 15 ns, hash ≤ 40 ns.
 */

import { assembleProgram } from '../src/asm/assembler.js';
import { Vm } from '../runtime/vm.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH } from '../runtime/maps/map-type.js';
import { fmtNs, formatTable, verdict } from './table.js';
import { timeTask, type NsSample, type TimingPlan } from './timing.js';

const LOOKUPS = 1000;

/** Targets in ns per lookup. */
export const MAP_TARGETS = { array: 15, hash: 40 } as const;

/** The section's figures. */
export interface MapsReport {
  readonly lookupsPerRun: number;
  readonly baseline: NsSample;
  readonly array: NsSample;
  readonly hash: NsSample;
  /** ns per lookup, baseline subtracted. */
  readonly arrayNs: number;
  readonly hashNs: number;
}

function loop(body: string): string {
  return `
    mov %r6, 0
    mov %r7, 0
  loop:
    mov %r1, %r6
    and %r1, 63
    stxdw [%r10-8], %r1
    ${body}
    add %r6, 1
    jlt %r6, ${LOOKUPS}, loop
    mov %r0, %r7
    exit`;
}

function lookup(fd: number): string {
  return loop(`lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -8
    call 1
    jeq %r0, 0, +1
    add %r7, 1`);
}

/** Measures lookups per family. */
export async function benchMaps(
  plan: TimingPlan,
  progress: (line: string) => void,
): Promise<MapsReport> {
  const vm = Vm.create();
  const arr = vm.createMap({
    name: 'arr',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 8,
    maxEntries: 64,
  });
  const hash = vm.createMap({
    name: 'hash',
    type: BPF_MAP_TYPE_HASH,
    keySize: 8,
    valueSize: 8,
    maxEntries: 1024,
  });
  for (let k = 0; k < 64; k++)
    hash.update(new Uint8Array(new BigUint64Array([BigInt(k)]).buffer), new Uint8Array(8));
  const time = async (name: string, text: string, hits: number): Promise<NsSample> => {
    progress(`maps: ${name}`);
    const p = await vm.load(assembleProgram(text), { verify: false });
    if (p.runU32(0) !== hits)
      throw new Error(`maps bench: ${name} found ${p.runU32(0)} values, not ${hits}`);
    return timeTask((n) => {
      let x = 0;
      for (let k = 0; k < n; k++) x += p.runU32(0);
      return x;
    }, plan);
  };
  const baseline = await time('baseline loop', loop('add %r7, 1'), LOOKUPS);
  const array = await time('array lookup', lookup(arr.id), LOOKUPS);
  const hashS = await time('hash lookup', lookup(hash.id), LOOKUPS);
  vm.close();
  const per = (s: NsSample): number => Math.max(0, (s.median - baseline.median) / LOOKUPS);
  return {
    lookupsPerRun: LOOKUPS,
    baseline,
    array,
    hash: hashS,
    arrayNs: per(array),
    hashNs: per(hashS),
  };
}

/** The section as text. */
export function formatMaps(r: MapsReport): string {
  const rows = [
    [
      'array (4-byte key)',
      fmtNs(r.array.median / r.lookupsPerRun),
      fmtNs(r.arrayNs),
      `≤ ${MAP_TARGETS.array}`,
    ],
    [
      'hash (8-byte key)',
      fmtNs(r.hash.median / r.lookupsPerRun),
      fmtNs(r.hashNs),
      `≤ ${MAP_TARGETS.hash}`,
    ],
  ];
  return [
    `JIT; ${r.lookupsPerRun} lookups per run in a BPF loop; baseline loop ${fmtNs(r.baseline.median / r.lookupsPerRun)} ns/iteration subtracted`,
    '',
    formatTable(['map', 'ns/iteration', 'ns/lookup', 'target'], rows),
    '',
    `array lookup: ${fmtNs(r.arrayNs)} ns (target ≤ ${MAP_TARGETS.array} ns) ${verdict(r.arrayNs <= MAP_TARGETS.array)}`,
    `hash lookup: ${fmtNs(r.hashNs)} ns (target ≤ ${MAP_TARGETS.hash} ns) ${verdict(r.hashNs <= MAP_TARGETS.hash)}`,
  ].join('\n');
}
