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

  it('keeps serving from known instances when etcd is unreachable, and reports etcd down', () => {
    const input = { ...healthy(), etcd: { readyConnections: 0, poolSize: 2, lastSuccessAt: 1_000 }, instancesInMemory: 12 };
    const { serving, indicators } = assessReadiness(input);
    expect(serving).toBe(true);
    expect(indicators[0]).toEqual({ serving: { status: 'up', answersFrom: ['known-instances'] } });
    expect(statusOf(input)).toMatchObject({ etcd: 'down' });
  });

  it('keeps serving from a warm cache when etcd and Redis are unreachable', () => {
    const input: ReadinessInputs = {
      ...healthy(),
      etcd: { readyConnections: 0, poolSize: 2, lastSuccessAt: 0 },
      redis: { clients: [{ client: 'http', up: false, state: 'reconnecting' }] },
      cache: { watch: 'down', l2: 'down', warmServices: 3 },
    };
    expect(assessReadiness(input).indicators[0]).toEqual({ serving: { status: 'up', answersFrom: ['cache'] } });
    expect(statusOf(input)).toEqual({ serving: 'up', etcd: 'down', keepalive: 'up', watch: 'down', redis: 'down' });
  });

  it('keeps a cold replica serving from the shared (Redis) cache when etcd is unreachable', () => {
    const input: ReadinessInputs = {
      ...healthy(),
      etcd: { readyConnections: 0, poolSize: 2, lastSuccessAt: 0 },
      cache: { watch: 'down', l2: 'up', warmServices: 0 },
    };
    expect(assessReadiness(input).indicators[0]).toEqual({ serving: { status: 'up', answersFrom: ['shared-cache'] } });
  });

  it('cannot serve when etcd is unreachable and nothing is known or cached, in memory or in Redis', () => {
    const input: ReadinessInputs = {
      ...healthy(),
      etcd: { readyConnections: 0, poolSize: 2, lastSuccessAt: 0 },
      redis: { clients: [{ client: 'http', up: false, state: 'reconnecting' }] },
      cache: { watch: 'down', l2: 'down', warmServices: 0 },
    };
    const { serving, indicators } = assessReadiness(input);
    expect(serving).toBe(false);
    expect(indicators[0].serving.status).toBe('down');
    expect(indicators[1].etcd.lastSuccessAgoMs).toBeNull();
  });

  it('names a failing etcd authentication (e.g. a changed password) and keeps serving from what it holds', () => {
    const input = { ...healthy(), etcd: { readyConnections: 2, poolSize: 2, lastSuccessAt: 1_000, authError: 'authentication failed, invalid user ID or password' }, instancesInMemory: 3 };
    const { serving, indicators } = assessReadiness(input);
    expect(serving).toBe(true);
    expect(indicators[1]).toMatchObject({ etcd: { status: 'down', message: expect.stringContaining('authentication failing: authentication failed') } });
    expect(indicators[0]).toEqual({ serving: { status: 'up', answersFrom: ['known-instances'] } });
  });

  it('is starting, not serving, until the initial read of the registry is done', () => {
    const { serving, starting } = assessReadiness({ ...healthy(), synced: false });
    expect([serving, starting]).toEqual([false, true]);
  });

  it('treats Redis being down as non-fatal', () => {
    const input: ReadinessInputs = { ...healthy(), redis: { clients: [{ client: 'http', up: false, state: 'reconnecting' }] }, cache: { watch: 'up', l2: 'down', warmServices: 0 } };
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
