import { assessReadiness, ReadinessInputs } from './readiness';

const healthy = (): ReadinessInputs => ({
  now: 10_000,
  etcd: { readyConnections: 2, poolSize: 2, lastSuccessAt: 9_000 },
  keepalive: { open: 2, total: 2, lastAnswerAt: 9_500 },
  instancesInMemory: 0,
  redis: { clients: [{ client: 'http', up: true, state: 'ready' }] },
});

const statusOf = (input: ReadinessInputs) =>
  Object.fromEntries(assessReadiness(input).indicators.flatMap((r) => Object.entries(r).map(([k, v]) => [k, v.status])));

describe('assessReadiness', () => {
  it('is serving with every dependency up when etcd, streams and Redis are up', () => {
    const { serving, indicators } = assessReadiness(healthy());
    expect(serving).toBe(true);
    expect(statusOf(healthy())).toEqual({ serving: 'up', etcd: 'up', keepalive: 'up', redis: 'up' });
    expect(indicators[1]).toEqual({ etcd: { status: 'up', readyConnections: 2, poolSize: 2, lastSuccessAgoMs: 1_000 } });
  });

  it('keeps serving lookups from memory when etcd is unreachable, marking them stale while the watch is down', () => {
    const input: ReadinessInputs = {
      ...healthy(),
      etcd: { readyConnections: 0, poolSize: 2, lastSuccessAt: 0 },
      redis: { clients: [{ client: 'http', up: false, state: 'reconnecting' }] },
      watch: { up: false, revision: 812, stale: true, lookupViews: 0 },
      instancesInMemory: 0,
    };
    const { serving, indicators } = assessReadiness(input);
    expect(serving).toBe(true);
    expect(indicators[0]).toEqual({ serving: { status: 'up', lookups: 'memory (stale: the watch has not confirmed them lately)', writes: 'unavailable (etcd unreachable or refusing the gateway)' } });
    expect(indicators[1].etcd.lastSuccessAgoMs).toBeNull();
    expect(statusOf(input)).toEqual({ serving: 'up', etcd: 'down', keepalive: 'up', watch: 'down', redis: 'down' });
    expect(indicators[3]).toEqual({ watch: { status: 'down', revision: 812, lookupViews: 0 } });
  });

  it('names a failing etcd authentication (e.g. a changed password), says writes are unavailable, and keeps serving', () => {
    const input = { ...healthy(), etcd: { readyConnections: 2, poolSize: 2, lastSuccessAt: 1_000, authError: 'authentication failed, invalid user ID or password' }, instancesInMemory: 3 };
    const { serving, indicators } = assessReadiness(input);
    expect(serving).toBe(true);
    expect(indicators[1]).toMatchObject({ etcd: { status: 'down', message: expect.stringContaining('authentication failing: authentication failed') } });
    expect(indicators[0]).toMatchObject({ serving: { status: 'up', lookups: 'memory', writes: expect.stringContaining('unavailable') } });
  });

  it('is starting, not serving, until the initial read of the registry is done', () => {
    const { serving, starting } = assessReadiness({ ...healthy(), synced: false });
    expect([serving, starting]).toEqual([false, true]);
  });

  it('treats Redis being down as non-fatal', () => {
    const input: ReadinessInputs = { ...healthy(), redis: { clients: [{ client: 'http', up: false, state: 'reconnecting' }] }, watch: { up: true, revision: 5, stale: false, lookupViews: 1 } };
    expect(assessReadiness(input).serving).toBe(true);
    expect(statusOf(input)).toMatchObject({ redis: 'down', serving: 'up' });
  });

  it("lists every Redis connection and names the ones down (the lease engine worker's ledger included)", () => {
    const clients = [
      { client: 'http', up: true, state: 'ready' },
      { client: 'lease-engine', up: false, state: 'not connected' },
    ];
    const { serving, indicators } = assessReadiness({ ...healthy(), redis: { target: 'sentinel group "main" via 10.0.0.1:26379', clients } });
    expect(serving).toBe(true);
    expect(indicators.find((i) => i.redis)!.redis).toMatchObject({
      status: 'down',
      target: 'sentinel group "main" via 10.0.0.1:26379',
      clients: { http: 'ready', 'lease-engine': 'not connected' },
      message: expect.stringContaining('lease-engine'),
    });
  });
});
