/**
 * The guarantee of fast-path termination (issue 8 §3, notes/fast-path-termination.md §10.4):
 * a verified program stopped at any point still releases everything it acquired, through its
 * own verified paths, and the run is reported as terminated. For every k, termination is
 * requested from inside the k-th helper call (`vm.terminate()`, as a helper or kfunc of the
 * run would), on both engines, for programs that hold ring-buffer records, a spin lock and map
 * values across helper calls and inside bpf_loop / for_each_map_elem callbacks; after each run
 * the Vm's accounts (reservations, locks held, the hash map's element count, the ring's records)
 * are checked exactly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { TerminationError } from '../../src/errors.js';
import type { HelperProto } from '../../runtime/helpers.js';
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_RINGBUF,
} from '../../runtime/maps/map-type.js';
import type { BpfMap } from '../../runtime/maps/map.js';
import { frameAllocKfuncs } from '../../runtime/frame-alloc.js';
import { Vm } from '../../runtime/vm.js';
import { createPrng } from '../helpers/prng.js';
import { withMapFds } from './programs.js';

const ZERO = { live_objects: 0, live_bytes: 0, reservations: 0, locks_held: 0 };

const MAPS = [
  // 1: value = { u32 lock, u32 pad, u64 counter }
  { name: 'locked', type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 16, maxEntries: 1 },
  { name: 'events', type: BPF_MAP_TYPE_RINGBUF, keySize: 0, valueSize: 0, maxEntries: 4096 },
  { name: 'seen', type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 64 },
];

/**
 * lookup + lock/unlock around a counter; two ring-buffer records held across a hash update;
 * both submitted; then bpf_loop(r2 & 7) whose callback reserves, writes and submits a record.
 * r0 = the update's result (0, or -EBUSY from its fast path).
 */
const HOLDER = `
    mov %r9, %r2
    and %r9, 7
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out0
    mov %r6, %r0
    mov %r1, %r6
    call 93
    ldxdw %r1, [%r6+8]
    add %r1, 1
    stxdw [%r6+8], %r1
    mov %r1, %r6
    call 94
    lddw %r1, map_fd 2
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, out1
    mov %r7, %r0
    lddw %r1, map_fd 2
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, drop7
    mov %r8, %r0
    stdw [%r8+0], 42
    stdw [%r8+8], 43
    stdw [%r10-16], 5
    stw [%r10-20], 1
    lddw %r1, map_fd 3
    mov %r2, %r10
    add %r2, -20
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 2
    mov %r6, %r0
    mov %r1, %r8
    mov %r2, 0
    call 132
    stdw [%r7+0], 1
    stdw [%r7+8], 2
    mov %r1, %r7
    mov %r2, 0
    call 132
    mov %r1, %r9
    lddw %r2, func cb
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, %r6
    exit
  drop7:
    mov %r1, %r7
    mov %r2, 0
    call 133
  out1:
    mov %r0, 1
    exit
  out0:
    mov %r0, 0
    exit
  cb:
    lddw %r1, map_fd 2
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, cbout
    stdw [%r0+0], 7
    mov %r1, %r0
    mov %r2, 0
    call 132
  cbout:
    mov %r0, 0
    exit`;

/**
 * for_each_map_elem over the hash map (value = key): the callback reserves a record per
 * element, writes the value into it and submits it when the value is odd, discards it
 * otherwise, and deletes the elements above 8. r0 = elements visited.
 */
const ITERATOR = `
    lddw %r1, map_fd 3
    lddw %r2, func cb
    mov %r3, 0
    mov %r4, 0
    call 164
    exit
  cb:
    mov %r6, %r1
    mov %r7, %r2
    mov %r8, %r3
    lddw %r1, map_fd 2
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, del
    ldxdw %r2, [%r8+0]
    stxdw [%r0+0], %r2
    and %r2, 1
    mov %r1, %r0
    jeq %r2, 0, drop
    mov %r2, 0
    call 132
    ja del
  drop:
    mov %r2, 0
    call 133
  del:
    ldxdw %r1, [%r8+0]
    jle %r1, 8, keep
    mov %r1, %r6
    mov %r2, %r7
    call 3
  keep:
    mov %r0, 0
    exit`;

/**
 * Two bpf_obj_new objects and a ring-buffer record held across each other's acquisitions
 * (kfunc#0 = bpf_obj_new_impl of BTF type 1, 16 bytes; kfunc#1 = bpf_obj_drop_impl); every
 * path releases all of them. r0 = 0 when everything was obtained.
 */
const OBJECTS = `
    mov %r1, 1
    mov %r2, 0
    call kfunc 0
    jeq %r0, 0, out0
    mov %r6, %r0
    stdw [%r6+0], 7
    lddw %r1, map_fd 2
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, drop6
    mov %r7, %r0
    mov %r1, 1
    mov %r2, 0
    call kfunc 0
    jeq %r0, 0, discard7
    mov %r8, %r0
    ldxdw %r1, [%r6+0]
    stxdw [%r8+0], %r1
    stdw [%r7+0], 1
    stdw [%r7+8], 2
    mov %r1, %r7
    mov %r2, 0
    call 132
    mov %r1, %r8
    mov %r2, 0
    call kfunc 1
    mov %r1, %r6
    mov %r2, 0
    call kfunc 1
    mov %r0, 0
    exit
  discard7:
    mov %r1, %r7
    mov %r2, 0
    call 133
  drop6:
    mov %r1, %r6
    mov %r2, 0
    call kfunc 1
    mov %r0, 1
    exit
  out0:
    mov %r0, 2
    exit`;

/** The kfunc names of OBJECTS's `call kfunc N` insns, by insn index. */
function objectKfuncs(asm: string): Map<number, { name: string; weak: boolean }> {
  const prog = assembleProgram(asm);
  const names = ['bpf_obj_new_impl', 'bpf_obj_drop_impl'];
  const out = new Map<number, { name: string; weak: boolean }>();
  prog.insns.forEach((i, idx) => {
    if (prog.ops[idx]?.kind === 'call' && i.src === 2)
      out.set(idx, { name: names[i.imm] ?? '?', weak: false });
  });
  return out;
}

/** Helper ids the programs call; each is wrapped to count calls. */
const COUNTED = [1, 2, 3, 93, 94, 131, 132, 133, 164, 181];

interface Counted {
  readonly vm: Vm;
  readonly maps: BpfMap[];
  /** Calls made in the current run. */
  calls: number;
  /** Request termination inside this call (1-based); 0: never. */
  stopAt: number;
}

const vms: Vm[] = [];
afterAll(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

/** A Vm whose helpers in COUNTED count their calls and terminate the run at call `stopAt`. */
function countedVm(): Counted {
  const vm = Vm.create();
  vms.push(vm);
  const maps = MAPS.map((m) => vm.createMap(m));
  const c: Counted = { vm, maps, calls: 0, stopAt: 0 };
  for (const id of COUNTED) {
    const orig = vm.helpers.get(id) as HelperProto;
    vm.registerHelper({
      id,
      name: orig.name,
      fn: (args) => {
        const r = orig.fn(args);
        if (++c.calls === c.stopAt) vm.terminate();
        return r;
      },
    });
  }
  // the allocator's kfuncs too, around the runtime module's own implementation
  for (const k of frameAllocKfuncs(vm.rt)) {
    if (k.name !== 'bpf_obj_new_impl' && k.name !== 'bpf_obj_drop_impl') continue;
    vm.registerKfunc({
      name: k.name,
      fn: (args) => {
        const r = k.fn(args);
        if (++c.calls === c.stopAt) vm.terminate();
        return r;
      },
    });
  }
  return c;
}

/** Drains the ring and checks every record is whole; returns how many there were. */
function drain(ring: BpfMap): number {
  let n = 0;
  ring.ringbuf().consume((rec) => {
    n++;
    expect([8, 16]).toContain(rec.length);
  });
  expect(ring.ringbuf().pending).toBe(0);
  return n;
}

/** Runs once, terminating at helper call `stopAt`; checks the accounts; returns the outcome. */
function runChecked(c: Counted, run: () => bigint, stopAt: number): string {
  c.calls = 0;
  c.stopAt = stopAt;
  let out: string;
  try {
    out = `r0=${run()}`;
  } catch (e) {
    if (!(e instanceof TerminationError)) throw e;
    out = `terminated: ${e.reason}`;
  }
  const [locked, ring, seen] = c.maps as [BpfMap, BpfMap, BpfMap];
  expect(c.vm.resources()).toEqual(ZERO);
  expect(c.vm.dataView().getUint32(locked.valueAddr(0), true)).toBe(0);
  expect(c.vm.termination.engaged).toBe(false);
  const count = c.vm.dataView().getUint32(seen.addr + 36, true);
  expect(count).toBe([...seen.keys()].length);
  drain(ring);
  return out;
}

describe.each(['jit', 'interp'] as const)(
  'terminating at every helper call on the %s engine',
  (engine) => {
    it('releases the lock and every ring-buffer record the holder program took', async () => {
      const seed = 0x7e41;
      const rng = createPrng(seed);
      const c = countedVm();
      const prog = await c.vm.load(assembleProgram(withMapFds(HOLDER, c.maps)), {
        engine,
        maps: c.maps,
      });
      for (let round = 0; round < 3; round++) {
        const input = new Uint8Array(1 + rng.int(8));
        // the unterminated run: its helper calls and r0
        expect(
          runChecked(c, () => prog.run(input), 0),
          `seed ${seed}`,
        ).toBe('r0=0');
        const total = c.calls;
        // the JIT inlines the verified bpf_loop (no helper call); the interpreter calls it
        const loopCall = engine === 'jit' ? 0 : 1;
        expect(prog.links.loopInlines?.size).toBe(1);
        expect(total).toBe(8 + loopCall + 2 * (input.length & 7));
        for (let k = 1; k <= total + 1; k++) {
          const out = runChecked(c, () => prog.run(input), k);
          expect(out, `seed ${seed} len ${input.length} k ${k}`).toBe(
            k <= total ? 'terminated: request' : 'r0=0',
          );
          // a stopped run makes no helper call that acquires after the k-th
          expect(c.calls).toBeLessThanOrEqual(k <= total ? k + 3 : total);
        }
      }
    });

    it('stops for_each_map_elem after the current callback and releases its records', async () => {
      const c = countedVm();
      const prog = await c.vm.load(assembleProgram(withMapFds(ITERATOR, c.maps)), {
        engine,
        maps: c.maps,
      });
      const seen = c.maps[2] as BpfMap;
      const fill = (): void => {
        for (let key = 1; key <= 12; key++) {
          seen.update(
            new Uint8Array(new Uint32Array([key]).buffer),
            new Uint8Array(new BigUint64Array([BigInt(key)]).buffer),
          );
        }
      };
      fill();
      expect(runChecked(c, () => prog.run(), 0)).toBe('r0=12');
      const total = c.calls;
      // 1 for_each + 12 × (reserve, submit or discard) + 4 deletes
      expect(total).toBe(1 + 12 * 2 + 4);
      for (let k = 1; k <= total + 1; k++) {
        fill();
        const out = runChecked(c, () => prog.run(), k);
        expect(out, `k ${k}`).toBe(k <= total ? 'terminated: request' : 'r0=12');
      }
    });

    it('drops every bpf_obj_new object and releases the record, wherever it is stopped', async () => {
      const c = countedVm();
      const asm = withMapFds(OBJECTS, c.maps);
      const prog = await c.vm.load(assembleProgram(asm), {
        engine,
        kfuncs: objectKfuncs(asm),
        btfTypeSize: (id) => (id === 1 ? 16 : undefined),
      });
      expect(runChecked(c, () => prog.run(), 0)).toBe('r0=0');
      const total = c.calls;
      // new, reserve, new, submit, drop, drop
      expect(total).toBe(6);
      for (let k = 1; k <= total + 1; k++) {
        const out = runChecked(c, () => prog.run(), k);
        expect(out, `k ${k}`).toBe(k <= total ? 'terminated: request' : 'r0=0');
        expect(c.vm.allocator.stats().liveObjects, `k ${k}`).toBe(0);
      }
    });
  },
);
