/**
 * `bpfwasm run` on coroutine objects: the run's suspended coroutines are driven to completion
 * on the default scheduler (deferred ring, timers) and the JSON counts their frames.
 */
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

const obj = (name: string): string =>
  new URL(`../../examples/coro/build/${name}.o`, import.meta.url).pathname;

describe('bpfwasm run --json on coroutines', () => {
  it('coro_perf_event (verified): one frame, completed at the end of the run', async () => {
    const r = await cli('run', obj('coro_perf_event'), '--program', 'on_perf_event', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({
      r0: '0',
      coroutines: { created: 1, completed: 1, destroyed: 0, live: 0 },
    });
  });

  it('coro_loop: four timer sleeps and four nested tasks driven to the end', async () => {
    const r = await cli('run', obj('coro_loop'), '--program', 'on_tick', '--json', '--no-verify');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).coroutines).toEqual({
      created: 5,
      completed: 5,
      destroyed: 0,
      live: 0,
    });
  });

  it('coro_symmetric: reports the parent frame the example never detaches as live', async () => {
    const r = await cli('run', obj('coro_symmetric'), '--program', 'on_sym', '--json');
    expect(JSON.parse(r.out).coroutines).toEqual({
      created: 2,
      completed: 1,
      destroyed: 0,
      live: 1,
    });
  });

  it('prints the counts without --json', async () => {
    const r = await cli('run', obj('coro_perf_event'), '--program', 'on_perf_event');
    expect(r.out).toContain('coroutines: 1 created, 1 completed, 0 destroyed, 0 live');
  });

  it('reports a frame parked in a queue that nothing drains as live', async () => {
    const r = await cli('run', obj('coro_where'), '--program', 'start_hop', '--json');
    expect(JSON.parse(r.out).coroutines).toEqual({
      created: 1,
      completed: 0,
      destroyed: 0,
      live: 1,
    });
  });

  it('adds no coroutines field for a program that made none', async () => {
    const xdp = new URL('../../examples/xdp_count/build/xdp_count.o', import.meta.url).pathname;
    const r = await cli('run', xdp, '--program', 'xdp_count', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).not.toHaveProperty('coroutines');
  });
});
