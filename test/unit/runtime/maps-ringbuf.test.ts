/**
 * BPF_MAP_TYPE_RINGBUF: BPF producers on both engines, the host consumer, wraparound, discard.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import { MapError } from '../../../src/errors.js';
import { Vm } from '../../../runtime/vm.js';
import { BPF_MAP_TYPE_RINGBUF } from '../../../runtime/maps/map-type.js';
import { loadBoth, outcome } from '../../helpers/engines.js';

const ring = (vm: Vm, size = 4096) =>
  vm.createMap({
    name: 'rb',
    type: BPF_MAP_TYPE_RINGBUF,
    keySize: 0,
    valueSize: 0,
    maxEntries: size,
  });

// reserve input[0] * 8 bytes (r2 = size), fill the first 8 with the input length, submit or discard (input[1])
const producer = (fd: number): string => `
    mov %r6, %r1
    mov %r7, %r2
    ldxb %r2, [%r6]
    lsh %r2, 3
    lddw %r1, map_fd ${fd}
    mov %r3, 0
    call 131
    jeq %r0, 0, full
    stxdw [%r0], %r7
    mov %r1, %r0
    mov %r2, 0
    ldxb %r3, [%r6+1]
    jne %r3, 0, drop
    call 132
    mov %r0, 1
    exit
  drop:
    call 133
    mov %r0, 2
    exit
  full:
    mov %r0, 0
    exit`;

describe('ring buffers', () => {
  it('refuse sizes that are not a power of two of at least a page', () => {
    const vm = Vm.create();
    expect(() => ring(vm, 1000)).toThrow(MapError);
    expect(() => ring(vm, 6144)).toThrow(MapError);
  });

  it('deliver committed records in order, skip discarded ones and wrap around', async () => {
    for (const engine of ['jit', 'interp'] as const) {
      const vm = Vm.create();
      const rb = ring(vm);
      const { jit, interp } = await loadBoth(vm, assembleProgram(producer(rb.id)));
      const p = engine === 'jit' ? jit : interp;
      const seen: number[] = [];
      // 120-byte records (+8 header): a 4096-byte ring holds 32; go around it several times
      for (let round = 0; round < 200; round++) {
        const drop = round % 5 === 4;
        const input = new Uint8Array(20 + (round % 7));
        input[0] = 15;
        input[1] = drop ? 1 : 0;
        expect(p.run(input)).toBe(drop ? 2n : 1n);
        if (round % 3 === 2)
          rb.ringbuf().consume((r) => seen.push(r.length === 120 ? Number(r[0]) : -1));
      }
      rb.ringbuf().consume((r) => seen.push(Number(r[0])));
      const want = Array.from({ length: 200 }, (_, k) => k)
        .filter((k) => k % 5 !== 4)
        .map((k) => 20 + (k % 7));
      expect(seen).toEqual(want);
      expect(rb.ringbuf().pending).toBe(0);
    }
  });

  it('returns NULL from reserve when the ring is full', async () => {
    const vm = Vm.create();
    const rb = ring(vm);
    const { jit } = await loadBoth(vm, assembleProgram(producer(rb.id)));
    const input = new Uint8Array([200, 0]); // 1600-byte records: two fit in 4096
    expect([jit.run(input), jit.run(input), jit.run(input)]).toEqual([1n, 1n, 0n]);
    expect(rb.ringbuf().consume(() => {})).toBe(2);
    expect(jit.run(input)).toBe(1n);
  });

  it('serve output and query, and refuse records that are not reserved', async () => {
    const vm = Vm.create();
    const rb = ring(vm);
    const { jit, interp } = await loadBoth(
      vm,
      assembleProgram(`
        stdw [%r10-8], 0x1234
        lddw %r1, map_fd ${rb.id}
        mov %r2, %r10
        add %r2, -8
        mov %r3, 8
        mov %r4, 0
        call 130
        mov %r6, %r0
        lddw %r1, map_fd ${rb.id}
        mov %r2, 0
        call 134
        lsh %r0, 8
        or %r6, %r0
        mov %r1, %r10
        add %r1, -8
        mov %r2, 0
        call 132
        lsh %r0, 32
        or %r0, %r6
        exit`),
    );
    // output: 0; avail data: 16 bytes; submit of a stack pointer: -EINVAL
    expect(outcome(() => jit.run())).toBe('r0=ffffffea00001000');
    expect(outcome(() => interp.run())).toBe('r0=ffffffea00002000');
    const recs: string[] = [];
    for await (const r of rb.ringbuf().records({ signal: AbortSignal.timeout(50) }))
      recs.push(Buffer.from(r).toString('hex'));
    expect(recs).toEqual(['3412000000000000', '3412000000000000']);
  });
});
