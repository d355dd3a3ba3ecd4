/**
 * A Vm with worker threads (runtime/worker-pool.ts, runtime/worker-main.ts): corpus programs
 * give the single-threaded Vm's results on every worker, each worker is its own CPU (smp id,
 * percpu values), helpers that need the host are refused at load, a dead thread is reported
 * and replaced, and close() lets the process exit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CORPUS_PROGRAMS,
  loadCorpusProgram,
  loadExpected,
  loadPacket,
} from '../../bench/corpus.js';
import { assembleProgram } from '../../src/asm/assembler.js';
import { TerminationError, UsageError, WorkerError, isBpfError } from '../../src/errors.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY } from '../../runtime/maps/map-type.js';
import { Vm } from '../../runtime/vm.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((vm) => vm.close()));
});

function make(workers: number): Vm {
  const vm = Vm.create({ workers });
  vms.push(vm);
  return vm;
}

describe('a Vm with workers', () => {
  it('runs every corpus xdp program on 2 workers with the results of the single-threaded Vm', async () => {
    const vm = make(2);
    const single = Vm.create();
    vms.push(single);
    const packet = loadPacket();
    const expected = loadExpected();
    for (const name of CORPUS_PROGRAMS) {
      const prog = await vm.load(loadCorpusProgram(name, 'xdp', 'v3'));
      const ref = await single.load(loadCorpusProgram(name, 'xdp', 'v3'));
      const want = ref.run(packet);
      expect(Number(want & 0xffffffffn)).toBe(expected.get(name));
      const got = await Promise.all([prog.runOn(0, packet), prog.runOn(1, packet)]);
      expect(got, name).toEqual([want, want]);
    }
  });

  it('gives each worker its index as bpf_get_smp_processor_id, and nCpus the worker count', async () => {
    const vm = make(2);
    expect(vm.nCpus).toBe(2);
    const prog = await vm.load(assembleProgram('call 8\nexit'), { type: 'mem' });
    expect(await Promise.all([prog.runOn(0), prog.runOn(1), prog.runOn(1), prog.runOn(0)])).toEqual(
      [0n, 1n, 1n, 0n],
    );
  });

  it('keeps one percpu array value per worker and shows the host all of them', async () => {
    const vm = make(2);
    const m = vm.createMap({
      name: 'pcpu',
      type: BPF_MAP_TYPE_PERCPU_ARRAY,
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    // value[smp id] += input byte 0
    const prog = await vm.load(
      assembleProgram(`
        ldxb %r6, [%r1]
        stw [%r10-4], 0
        lddw %r1, map_fd ${m.id}
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        ldxdw %r3, [%r0]
        add %r3, %r6
        stxdw [%r0], %r3
      out:
        mov %r0, 0
        exit`),
      { type: 'mem' },
    );
    const runs: Promise<bigint>[] = [];
    for (let k = 0; k < 100; k++) {
      runs.push(prog.runOn(0, new Uint8Array([1])), prog.runOn(1, new Uint8Array([3])));
    }
    await Promise.all(runs);
    const all = m.lookup(new Uint8Array(4)) as Uint8Array;
    const view = new DataView(all.buffer, all.byteOffset, all.byteLength);
    expect(all.length).toBe(16);
    expect([view.getBigUint64(0, true), view.getBigUint64(8, true)]).toEqual([100n, 300n]);
  });

  it('spreads a batch over the workers and returns the results in input order', async () => {
    const vm = make(2);
    // r0 = input byte 0 * 256 + smp id
    const prog = await vm.load(
      assembleProgram('ldxb %r6, [%r1]\nlsh %r6, 8\ncall 8\nadd %r0, %r6\nexit'),
      { type: 'mem' },
    );
    const inputs = Array.from({ length: 9 }, (_, k) => new Uint8Array([k + 1]));
    const out = await prog.runBatchParallel(inputs);
    // five inputs on worker 0, four on worker 1
    expect([...out]).toEqual(inputs.map((x, k) => (x[0] as number) * 256 + (k < 5 ? 0 : 1)));
  });

  it('serialises bpf_spin_lock sections across workers: no increment is lost', async () => {
    const vm = make(2);
    const m = vm.createMap({
      name: 'locked',
      type: BPF_MAP_TYPE_ARRAY,
      keySize: 4,
      valueSize: 16,
      maxEntries: 1,
    });
    // value = lookup(0); lock(value); value[8] += 1 (load, spin a little, store); unlock
    const prog = await vm.load(
      assembleProgram(`
        stw [%r10-4], 0
        lddw %r1, map_fd ${m.id}
        mov %r2, %r10
        add %r2, -4
        call 1
        jne %r0, 0, +1
        exit
        mov %r6, %r0
        mov %r1, %r6
        call 93
        ldxdw %r7, [%r6+8]
        mov %r8, 0
      spin:
        add %r8, 1
        jlt %r8, 200, spin
        add %r7, 1
        stxdw [%r6+8], %r7
        mov %r1, %r6
        call 94
        mov %r0, 0
        exit`),
      { type: 'mem', verify: false },
    );
    const batch = Array.from({ length: 5000 }, () => new Uint8Array(0));
    await Promise.all([prog.runBatchParallel(batch), prog.runBatchParallel(batch)]);
    const v = m.lookup(new Uint8Array(4)) as Uint8Array;
    expect(new DataView(v.buffer, v.byteOffset).getBigUint64(8, true)).toBe(10000n);
  });

  it('refuses at load a helper that needs the host thread, naming it', async () => {
    const vm = make(1);
    // bpf_trace_printk("", 1)
    const printk = assembleProgram(
      'stb [%r10-1], 0\nmov %r1, %r10\nadd %r1, -1\nmov %r2, 1\ncall 6\nexit',
    );
    const err = await vm.load(printk, { type: 'mem' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(
      /insn 4: helper bpf_trace_printk#6 cannot run in a worker/,
    );
  });

  it('runs a bpf_loop the JIT inlined on workers, and stops it there at a deadline', async () => {
    const vm = make(2);
    // r0 = sum of the indexes bpf_loop(nr = the input's first u32) hands its callback
    const asm = `
      ldxw %r1, [%r1+0]
      stdw [%r10-8], 0
      lddw %r2, func cb
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      ldxdw %r0, [%r10-8]
      exit
    cb:
      ldxdw %r3, [%r2]
      add %r3, %r1
      stxdw [%r2], %r3
      mov %r0, 0
      exit`;
    const prog = await vm.load(assembleProgram(asm), { type: 'mem' });
    const nr = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
    expect(await Promise.all([prog.runOn(0, nr(100)), prog.runOn(1, nr(1000))])).toEqual([
      4950n,
      499500n,
    ]);
    // 1 << 23 calls take far longer than 1 ms: the loop's checkpoint ends the run
    const err = await prog
      .runOn(1, nr(1 << 23), { deadlineNs: 1_000_000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminationError);
    expect((err as TerminationError).reason).toBe('timeout');
    expect(await prog.runOn(1, nr(10))).toBe(45n);
    // unverified, bpf_loop stays a helper call, which needs the host thread
    const helper = await vm
      .load(assembleProgram(asm), { type: 'mem', verify: false })
      .catch((e: unknown) => e);
    expect((helper as Error).message).toMatch(/insn 7: helper bpf_loop#181 cannot run in a worker/);
  });

  it('loads hash map updates (concurrent now) and runs them on a worker', async () => {
    const vm = make(1);
    const m = vm.createMap({ name: 'h', type: 1, keySize: 4, valueSize: 8, maxEntries: 4 });
    const update = assembleProgram(
      `stw [%r10-4], 0
      stdw [%r10-16], 1
      lddw %r1, map_fd ${m.id}
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      mov %r4, 0
      call 2
      exit`,
    );
    const prog = await vm.load(update, { type: 'mem' });
    expect(await prog.runOn(0)).toBe(0n);
    expect(m.lookup(new Uint8Array(4))).toEqual(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('reports a worker whose thread is terminated, fails its run and replaces it', async () => {
    const exits: WorkerError[] = [];
    const vm = Vm.create({ workers: 2, onWorkerExit: (e) => exits.push(e) });
    vms.push(vm);
    // spins for as many iterations as the input's first u32 says
    const prog = await vm.load(
      assembleProgram(`
        ldxw %r2, [%r1]
        mov %r0, 0
      loop:
        add %r0, 1
        jlt %r0, %r2, loop
        exit`),
      { type: 'mem', verify: false },
    );
    const pool = vm.workers;
    if (pool === undefined) throw new Error('no workers');
    await pool.ready();
    const long = prog.runOn(0, new Uint8Array([0xff, 0xff, 0xff, 0x7f]));
    const queued = prog.runOn(0, new Uint8Array([5, 0, 0, 0]));
    await new Promise((r) => setTimeout(r, 50));
    await pool.thread(0).terminate();
    const err = await long.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).worker).toBe(0);
    expect(isBpfError(err)).toBe(true);
    expect(exits.map((e) => e.worker)).toEqual([0]);
    // the request queued behind it runs on the replacement, which has the program
    expect(await queued).toBe(5n);
    expect(await prog.runOn(0, new Uint8Array([7, 0, 0, 0]))).toBe(7n);
    expect(await prog.runOn(1, new Uint8Array([9, 0, 0, 0]))).toBe(9n);
    expect(pool.replacements).toBe(1);
  });

  it('bumps each worker heartbeat while idle', async () => {
    const vm = Vm.create({ workers: 1, heartbeatMs: 5 });
    vms.push(vm);
    await vm.workers?.ready();
    const before = vm.workers?.heartbeat(0) ?? 0;
    await new Promise((r) => setTimeout(r, 60));
    expect((vm.workers?.heartbeat(0) ?? 0) - before).toBeGreaterThan(2);
  });

  it('lets the process exit after close()', async () => {
    const { spawnSync } = await import('node:child_process');
    const register = new URL('../../runtime/dev/ts-register.mjs', import.meta.url).href;
    const vmUrl = new URL('../../runtime/vm.ts', import.meta.url).href;
    const asmUrl = new URL('../../src/asm/assembler.ts', import.meta.url).href;
    const script = `
      const { Vm } = await import(${JSON.stringify(vmUrl)});
      const { assembleProgram } = await import(${JSON.stringify(asmUrl)});
      const vm = Vm.create({ workers: 2 });
      const prog = await vm.load(assembleProgram('call 8\\nexit'), { type: 'mem' });
      console.log(String(await prog.runOn(1)));
      vm.close();`;
    const r = spawnSync(
      process.execPath,
      ['--import', register, '--input-type=module', '-e', script],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1');
    expect(r.status).toBe(0);
  });

  it('refuses runOn without workers, and a bad worker index', async () => {
    const vm = make(0);
    const prog = await vm.load(assembleProgram('mov %r0, 1\nexit'), { type: 'mem' });
    expect(() => prog.runOn(0)).toThrow(UsageError);
    const vm2 = make(1);
    const p2 = await vm2.load(assembleProgram('mov %r0, 1\nexit'), { type: 'mem' });
    expect(() => p2.runOn(3)).toThrow(/no worker 3/);
    expect(() => Vm.create({ workers: 1, clock: () => 0n })).toThrow(UsageError);
  });
});
