/**
 * The committed example objects can be rebuilt from their sources: when a clang the Makefiles
 * accept (clang-22 down to clang-19) and make are on the PATH, every example is rebuilt into a
 * temporary directory with its own Makefile (`make BUILD=<dir>`), and each rebuilt object must
 * declare the same programs, maps and globals as the committed one and behave the same on both
 * engines over a fixed scenario (verdicts, data_out, ctx_out, map contents, ring buffer
 * records). Objects need not be byte-identical. Without clang or make the tests skip and say why.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadObject } from '../../src/loader/object.js';
import type { Engine } from '../../runtime/loaded-program.js';
import { BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_RINGBUF } from '../../runtime/maps/map-type.js';
import type { LoadedObject } from '../../runtime/object.js';
import { u32 } from '../helpers/maps.js';
import {
  ETH_P_IP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  arpRequest,
  concat,
  eth,
  hex,
  ip4,
  ipv4,
  mac,
  pktV4,
  pktV6,
  udp,
  withPayload,
} from '../helpers/packets.js';
import {
  ENGINES,
  EXAMPLES_DIR,
  exampleObject,
  findClang,
  hasMake,
  loadExample,
  skbCtx,
  xdpMd,
} from './example.js';

/** One test-run input: a program of the object, its data_in and optional ctx_in. */
interface RunInput {
  readonly program: string;
  readonly dataIn: Uint8Array;
  readonly ctxIn?: Uint8Array;
}

/** How to exercise one object: map updates before the runs, then the runs. */
interface Scenario {
  readonly setup?: (obj: LoadedObject) => void;
  readonly runs: readonly RunInput[];
}

const A = mac('02:00:00:00:00:0a');
const B = mac('02:00:00:00:00:0b');
const udpTo = (dst: string, len = 64): Uint8Array =>
  withPayload(
    concat(
      eth(B, A, ETH_P_IP),
      ipv4({ src: '10.0.0.1', dst, protocol: IPPROTO_UDP, payloadLen: len - 34 }),
      udp(7, 9, len - 42),
    ),
    len - 42,
  );
const arp = arpRequest(A, '10.0.0.1', '10.0.0.2');
const broken = concat(eth(B, A, ETH_P_IP), new Uint8Array(6));
const runs = (program: string, packets: readonly Uint8Array[]): RunInput[] =>
  packets.map((dataIn) => ({ program, dataIn }));

/** Scenarios by `<example>/<object>`. */
const SCENARIOS: Readonly<Record<string, Scenario>> = {
  'xdp_count/xdp_count': {
    runs: runs('xdp_count', [
      udpTo('10.0.0.2'),
      udpTo('10.0.0.2', 100),
      ...Array.from({ length: 6 }, () => udpTo('10.0.0.3', 1600)),
    ]),
  },
  'proto_count/proto_count': {
    runs: runs('proto_count', [udpTo('10.0.0.2'), pktV4(), pktV6(), arp, broken]),
  },
  'ringbuf_events/ringbuf_events': {
    runs: runs('ringbuf_events', [udpTo('10.0.0.2', 80), arp, udpTo('10.0.0.2', 50), pktV6()]),
  },
  'tail_chain/tail_chain': {
    runs: [...runs('dispatch', [pktV4(), pktV6(), arp]), ...runs('chain', [pktV4()])],
  },
  'lpm_router/lpm_router': {
    setup: (obj) => {
      for (const [addr, len, ifindex] of [
        ['0.0.0.0', 0, 1],
        ['10.0.0.0', 8, 2],
        ['10.1.2.0', 24, 3],
      ] as const) {
        obj.map('routes').update(concat(u32(len), ip4(addr)), u32(ifindex));
        if (ifindex !== 1)
          obj.map('next_hops').update(u32(ifindex), concat(mac(`0a:00:00:00:00:0${ifindex}`), A));
      }
    },
    runs: runs('lpm_router', [
      udpTo('10.1.2.3'),
      udpTo('10.9.9.9'),
      udpTo('192.168.0.1'),
      pktV6(),
      broken,
    ]),
  },
  'timer_tick/timer_tick': {
    // the timer callbacks run later, from the event loop: only the arming run is compared
    runs: runs('arm', [pktV4()]),
  },
  'selftests/pkt_access': { runs: runs('pkt_access', [pktV4(), pktV6(), arp]) },
  'selftests/skb_ctx': {
    runs: [
      { program: 'skb_ctx', dataIn: pktV4() },
      {
        program: 'skb_ctx',
        dataIn: pktV4(),
        ctxIn: skbCtx(
          {
            priority: 6,
            ingress_ifindex: 11,
            ifindex: 1,
            tstamp: 7,
            wire_len: 100,
            gso_segs: 8,
            mark: 9,
            gso_size: 10,
            hwtstamp: 11,
          },
          [1, 2, 3, 4, 5],
        ),
      },
    ],
  },
  'selftests/global_data': { runs: runs('global_data', [pktV4()]) },
  'selftests/xdp_adjust_tail': {
    runs: [
      ...runs('adjust_tail_shrink', [pktV4(), pktV6()]),
      ...runs('adjust_tail_grow', [
        pktV6(),
        new Uint8Array(64).fill(1),
        new Uint8Array(128).fill(2),
      ]),
    ],
  },
  'selftests/xdp_tunnel': {
    setup: (obj) => {
      const key = new Uint8Array(24);
      key[18] = 2;
      key[20] = IPPROTO_TCP;
      const value = new Uint8Array(40);
      value[32] = 2;
      obj.map('vip2tnl').update(key, value);
    },
    runs: runs('xdp_tunnel', [pktV4(), pktV6(), udpTo('10.0.0.2')]),
  },
  'selftests/xdp_context': {
    runs: [
      {
        program: 'xdp_context',
        dataIn: concat(u32(2), pktV4()),
        ctxIn: xdpMd({ data: 4, data_end: 58 }),
      },
    ],
  },
};

/** What loading declared: programs, map specs and global variables. */
function shape(obj: LoadedObject): unknown {
  return {
    programs: obj.programNames(),
    maps: obj
      .mapEntries()
      .map(([name, m]) => [name, m.typeName, m.keySize, m.valueSize, m.maxEntries, m.flags]),
    globals: obj.globals.names(),
  };
}

/** Map contents as text: prog_array slots by program name, ring buffers by their records. */
function contents(obj: LoadedObject): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, map] of obj.mapEntries()) {
    if (map.type === BPF_MAP_TYPE_RINGBUF) {
      const records: string[] = [];
      map.ringbuf().consume((r) => records.push(hex(r)));
      out[name] = records;
    } else if (map.type === BPF_MAP_TYPE_PROG_ARRAY) {
      out[name] = [...map.keys()].map((k) => {
        const token = map.progToken(new DataView(k.buffer, k.byteOffset).getUint32(0, true));
        const prog = obj.programNames().find((p) => obj.program(p).links.funcTokenBase === token);
        return `${hex(k)}:${prog ?? String(token)}`;
      });
    } else out[name] = [...map.entries()].map(([k, v]) => `${hex(k)}:${hex(v)}`);
  }
  return out;
}

/** Loads `bytes`, runs the scenario and returns everything observable. */
async function observe(bytes: Uint8Array, scenario: Scenario, engine: Engine): Promise<unknown> {
  const { vm, obj } = await loadExample(bytes, engine);
  try {
    scenario.setup?.(obj);
    const results = scenario.runs.map(({ program, dataIn, ctxIn }) => {
      const r = obj.program(program).testRun(ctxIn === undefined ? { dataIn } : { dataIn, ctxIn });
      return [program, r.retval, hex(r.dataOut), r.ctxOut === null ? null : hex(r.ctxOut)];
    });
    return { shape: shape(obj), results, maps: contents(obj) };
  } finally {
    vm.close();
  }
}

const clang = findClang();
const make = hasMake();
const skipReason =
  clang === undefined
    ? 'no clang-22, clang-21, clang-20 or clang-19 on the PATH'
    : !make
      ? 'no make on the PATH'
      : undefined;
if (skipReason !== undefined) console.log(`skip examples rebuild: ${skipReason}`);

// the C examples; examples/coro (C++ coroutines) is checked below
const EXAMPLES = readdirSync(EXAMPLES_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'coro')
  .map((d) => d.name)
  .sort();

describe.skipIf(skipReason !== undefined)(`examples rebuilt with ${clang ?? 'clang'}`, () => {
  let out = '';
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'bpfwasm-examples-'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('has a scenario for every committed object', () => {
    const committed = EXAMPLES.flatMap((ex) =>
      readdirSync(join(EXAMPLES_DIR, ex, 'build'))
        .filter((f) => f.endsWith('.o'))
        .map((f) => `${ex}/${f.slice(0, -2)}`),
    );
    expect(committed.sort()).toEqual(Object.keys(SCENARIOS).sort());
  });

  for (const example of EXAMPLES) {
    it(`rebuilds ${example} into objects that load and behave as the committed ones`, async () => {
      const build = join(out, example);
      execFileSync(
        'make',
        ['-s', '-C', join(EXAMPLES_DIR, example), `BUILD=${build}`, `CLANG=${clang ?? ''}`],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const objects = Object.keys(SCENARIOS)
        .filter((k) => k.startsWith(`${example}/`))
        .map((k) => k.slice(example.length + 1));
      expect(
        readdirSync(build)
          .filter((f) => f.endsWith('.o'))
          .sort(),
      ).toEqual(objects.map((o) => `${o}.o`).sort());
      for (const object of objects) {
        const scenario = SCENARIOS[`${example}/${object}`] as Scenario;
        for (const engine of ENGINES) {
          const committed = await observe(exampleObject(example, object), scenario, engine);
          const rebuilt = await observe(exampleObject(example, object, build), scenario, engine);
          expect(rebuilt, `${example}/${object} on the ${engine}`).toEqual(committed);
        }
      }
    });
  }
});

/**
 * examples/coro: C++20 coroutines on include/bpf_coro.h. Rebuilt with the same clang (22) the
 * objects must come out byte for byte as committed (the build is reproducible:
 * -fdebug-compilation-dir=.); with another clang they must declare the same programs and maps.
 */
describe.skipIf(skipReason !== undefined)(`examples/coro rebuilt with ${clang ?? 'clang'}`, () => {
  it('gives the committed objects', () => {
    const out = mkdtempSync(join(tmpdir(), 'bpfwasm-coro-'));
    try {
      execFileSync(
        'make',
        ['-s', '-C', join(EXAMPLES_DIR, 'coro'), `BUILD=${out}`, `CLANG=${clang ?? ''}`],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const committed = readdirSync(join(EXAMPLES_DIR, 'coro', 'build'))
        .filter((f) => f.endsWith('.o'))
        .sort();
      expect(
        readdirSync(out)
          .filter((f) => f.endsWith('.o'))
          .sort(),
      ).toEqual(committed);
      const same22 = /clang-22$/.test(clang ?? '');
      for (const f of committed) {
        const want = exampleObject('coro', f.slice(0, -2));
        const got = new Uint8Array(readFileSync(join(out, f)));
        if (same22) expect(Buffer.compare(got, want), f).toBe(0);
        const names = (b: Uint8Array): unknown => {
          const o = loadObject(b);
          return [o.programs.map((p) => p.name), o.maps.map((m) => m.name)];
        };
        expect(names(got), f).toEqual(names(want));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
