import { ConsulServiceIds } from './consul-service-ids';

describe('ConsulServiceIds', () => {
  function setup(beforePass: (pass: number, registry: Record<string, string[]>) => void = () => undefined) {
    const clock = { now: 0, slept: [] as number[] };
    const registry: Record<string, string[]> = { web: ['w1', 'w2'], api: ['a1'] };
    let passes = 0;
    const ids = new ConsulServiceIds(
      {
        services: async () => {
          beforePass(++passes, registry);
          return Object.keys(registry);
        },
        consulIds: async (service) => registry[service] ?? [],
      },
      { minGapMs: 250, passesPerMiss: 2, keepLearntMs: 10_000 },
      () => clock.now,
      async (ms) => {
        clock.slept.push(ms);
        clock.now += ms;
      },
    );
    return { ids, registry, clock, passes: () => passes };
  }

  it('finds IDs registered elsewhere with one pass shared by every caller that missed', async () => {
    const { ids, passes } = setup();
    expect(await Promise.all([ids.find('w2'), ids.find('a1'), ids.find('w1')])).toEqual(['web', 'api', 'web']);
    expect(passes()).toBe(1);
    expect(await ids.find('w1')).toBe('web');
    expect(passes()).toBe(1);
  });

  it('waits for a second pass, a quiet period later, before an ID is unknown (the watch may deliver it just after the first)', async () => {
    // The registration reaches this replica's view only after the first pass.
    const { ids, clock, passes } = setup((pass, registry) => pass === 2 && registry.web.push('late'));
    expect(await ids.find('late')).toBe('web');
    expect(passes()).toBe(2);
    expect(await ids.find('never')).toBeUndefined();
    expect(passes()).toBe(4);
    // Passes are at least 250 ms apart, whatever asks.
    expect(clock.slept).toEqual([250, 250, 250]);
  });

  it('keeps IDs learnt here lately although a pass does not show them, and drops IDs gone from the registry', async () => {
    const { ids, registry, clock } = setup();
    await ids.find('w1');
    ids.learn('n1', 'new');
    delete registry.api;
    clock.now += 1_000;
    await ids.find('missing');
    expect([ids.known('a1'), ids.known('n1'), ids.known('w1')]).toEqual([undefined, 'new', 'web']);
    clock.now += 20_000;
    await ids.find('missing');
    expect(ids.known('n1')).toBeUndefined();
  });

  it('fails the callers of a pass that fails, and the next pass runs again', async () => {
    const { ids, passes } = setup((pass) => {
      if (pass === 1) throw new Error('etcd down');
    });
    await expect(Promise.all([ids.find('w1'), ids.find('w2')])).rejects.toThrow('etcd down');
    expect(await ids.find('w1')).toBe('web');
    expect(passes()).toBe(2);
  });
});
