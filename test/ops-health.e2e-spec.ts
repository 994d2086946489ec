/**
 * Issue 5: readiness means "this replica can answer". etcd frozen (SIGSTOP: sockets open, no answers)
 * with a warm replica: live 200, ready 200 with etcd reported down; a cold replica in the same outage
 * (and no Redis to fall back on) is 503. Redis down is never fatal. Private etcd and Redis: freezing
 * the shared ones would disturb other test files. "Warm" is a resolved service in the lookup cache
 * plus the instances whose heartbeats the replica answers from memory.
 */
import { EtcdServer, freePort, RedisServer, startEtcd, startRedis } from '@app/stack';
import { forEachLimited, heartbeatPod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { sharedStack } from './support/stack';
import { request } from './support/http';
import { waitFor } from './support/wait';

type Indicators = Record<string, Record<string, unknown>>;
interface Probe {
  status: number;
  /** Terminus's shape: indicator name -> `{status, ...detail}`. */
  body: { status: string; info?: Indicators; error?: Indicators; details: Indicators };
}
const probe = async (url: string, path: string): Promise<Probe> => {
  const res = await request(url, 'GET', path);
  return { status: res.status, body: JSON.parse(res.body) };
};

/** Probes every `everyMs` until `done` holds; every probe must satisfy `always` (the first that does not fails at once). */
async function probeUntil(url: string, done: (p: Probe) => boolean, always: (p: Probe) => void, timeoutMs = 60_000, everyMs = 500): Promise<Probe> {
  let last: Probe | undefined;
  let broken: unknown;
  await waitFor(
    'readiness to reach the expected state',
    async () => {
      last = await probe(url, '/health/ready');
      try {
        always(last);
      } catch (err) {
        broken = err; // stops the polling: waitFor would take a throw for "not yet"
        return true;
      }
      return done(last);
    },
    timeoutMs,
    everyMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last: ${JSON.stringify(last)}`);
  });
  if (broken) throw broken;
  return last!;
}


describe('readiness with etcd frozen (private etcd)', () => {
  let etcd: EtcdServer;
  let warm: GatewayUnderTest;
  let cold: GatewayUnderTest | undefined;

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    etcd?.thaw();
    await cold?.close();
    await warm?.close();
    await etcd?.dispose();
  });

  it('stays ready (200, etcd reported down) while warm, is 503 when cold, and recovers after thaw', async () => {
    const target = { endpoint: etcd.endpoint, username: etcd.gatewayUser, password: etcd.gatewayPassword };
    const redisUrl = sharedStack().redis.url;
    warm = await startGateway(target, redisUrl, { ETCD_REQUEST_TIMEOUT_MS: '1000' });
    const fleet = pods(1, 3, 'ops-health');
    expect((await forEachLimited(fleet, 3, (p) => registerPod(warm.url, p, 60))).map((r) => r.status)).toEqual([201, 201, 201]);
    const resolve = () => request(warm.url, 'GET', '/v1/services/ops-health-0');
    expect(JSON.parse((await resolve()).body).instances).toHaveLength(3); // decodes its lookup view

    const healthy = await probe(warm.url, '/health/ready');
    expect(healthy.status).toBe(200);
    expect(healthy.body.status).toBe('ok');
    expect(healthy.body.details).toMatchObject({
      serving: { status: 'up', lookups: 'memory', writes: 'etcd' },
      etcd: { status: 'up', readyConnections: 2, poolSize: 2 },
      keepalive: { status: 'up', open: 2, total: 2, instances: 3 },
      watch: { status: 'up', lookupViews: 1 },
      redis: { status: 'up', state: 'ready' },
    });
    expect(healthy.body.error).toEqual({});

    etcd.freeze();
    // gRPC keepalive pings notice a frozen member within ~15 s; until then etcd still looks up.
    // Every probe meanwhile must be 200: a warm replica never leaves rotation because of etcd.
    const frozen = await probeUntil(
      warm.url,
      (p) => p.body.details.etcd.status === 'down',
      (p) => expect(p.status).toBe(200),
    );
    expect(frozen.body.status).toBe('degraded');
    expect(frozen.body.error).toHaveProperty('etcd');
    expect(frozen.body.details.etcd.readyConnections).toBe(0);
    expect(frozen.body.details.serving).toMatchObject({ status: 'up', lookups: expect.stringMatching(/^memory/), writes: expect.stringMatching(/^unavailable/) });
    expect((await probe(warm.url, '/health/live')).status).toBe(200);
    // The gauges tell the same story (read at scrape time).
    await waitFor(
      'registry_etcd_connections and registry_keepalive_streams at 0',
      async () => (await warm.metric('registry_etcd_connections')) === 0 && (await warm.metric('registry_keepalive_streams')) === 0,
      5_000,
    );
    // ...and it does answer: heartbeats of known instances are absorbed in memory, lookups come
    // from the directory the watch kept.
    expect((await forEachLimited(fleet, 3, (p) => heartbeatPod(warm.url, p))).map((r) => r.status)).toEqual([204, 204, 204]);
    const stale = await resolve();
    expect(stale.status).toBe(200);
    expect(JSON.parse(stale.body)).toMatchObject({ stale: true, instances: expect.any(Array) });

    // A replica started during the outage has not read the registry: it knows nothing to answer from, 503.
    cold = await startGateway(target, `redis://127.0.0.1:${await freePort()}`, { ETCD_REQUEST_TIMEOUT_MS: '1000' });
    const coldReady = await probe(cold.url, '/health/ready');
    expect(coldReady.status).toBe(503);
    // It never managed its initial read of the registry: `starting` (a load balancer sends it nothing).
    expect(coldReady.body.status).toBe('starting');
    expect(coldReady.body.error).toMatchObject({ serving: { status: 'down' }, etcd: { status: 'down', readyConnections: 0 } });
    const coldLive = await probe(cold.url, '/health/live');
    expect(coldLive.status).toBe(200);
    expect(coldLive.body.status).toBe('ok');
    await cold.close();
    cold = undefined;

    etcd.thaw();
    const thawed = await probeUntil(
      warm.url,
      (p) => p.body.status === 'ok',
      (p) => expect(p.status).toBe(200),
    );
    expect(thawed.body.details).toMatchObject({ etcd: { status: 'up', readyConnections: 2 }, keepalive: { status: 'up', open: 2 } });
  });
});

describe('readiness with Redis down (private Redis)', () => {
  let redis: RedisServer;
  let gateway: GatewayUnderTest;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await gateway?.close();
    await redis?.dispose();
  });

  it('stays ready and reports Redis down', async () => {
    const stack = sharedStack();
    gateway = await startGateway({ endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password }, redis.url);
    expect((await probe(gateway.url, '/health/ready')).body.details.redis.status).toBe('up');
    await redis.stop();
    const ready = await probeUntil(
      gateway.url,
      (p) => p.body.details.redis.status === 'down',
      (p) => expect(p.status).toBe(200),
      10_000,
      200,
    );
    expect(ready.body.status).toBe('degraded');
    expect(ready.body.error).toHaveProperty('redis');
    expect(ready.body.details.serving.status).toBe('up');
  });
});
