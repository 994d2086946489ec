/**
 * Issue 4 acceptance for the resolve cache, on a PRIVATE etcd (auth enabled) and a PRIVATE Redis:
 * etcd's own /metrics counts every Range exactly, and freezing etcd or stopping Redis cannot disturb
 * other test files. Assertions are on counts and behaviour; the only timing bound is a generous
 * "under a second per lookup" while etcd is frozen.
 */
import Redis from 'ioredis';
import { diffCounters, EtcdServer, RedisServer, startEtcd, startRedis } from '@app/stack';
import { call, GatewayUnderTest, startGateway } from './support/gateway';
import { HttpClient } from './support/http';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(120_000);

const SERVICES = Array.from({ length: 50 }, (_, i) => `svc-${i}`);
const FREEZE_MS = 15_000;
const BACKOFF_MIN_MS = 1_000;

// Short enough that the stale/negative/backoff behaviour shows within seconds, not minutes.
const CACHE_ENV = {
  CACHE_STALE_AFTER_MS: '1500',
  CACHE_NEGATIVE_TTL_MS: '2000',
  CACHE_BACKOFF_MIN_MS: String(BACKOFF_MIN_MS),
  CACHE_BACKOFF_MAX_MS: '4000',
  CACHE_LOCK_TTL_MS: '3000',
  ETCD_REQUEST_TIMEOUT_MS: '1000',
};

// Thousands of lookups in flight at once: a pool of its own, larger than the shared client's.
const client = new HttpClient({ maxSockets: 1_000 });
interface Answer {
  status: number;
  ms: number;
  body: { service: string; revision: string; stale: boolean; instances: Array<{ id: string }> };
}
async function get(baseUrl: string, path: string): Promise<Answer> {
  const started = Date.now();
  const res = await client.send(baseUrl, { method: 'GET', path });
  if (res.json === undefined) throw new Error(`${path}: ${res.status} ${res.text}`);
  return { status: res.status, ms: Date.now() - started, body: res.json };
}
const resolve = (gw: GatewayUnderTest, service: string) => get(gw.url, `/v1/services/${service}`);
const idsOf = (answer: Answer) => answer.body.instances.map((i) => i.id).join();

describe('resolve cache on private etcd + Redis', () => {
  let etcd: EtcdServer;
  let redis: RedisServer;
  let prefix: string;
  const gateways: GatewayUnderTest[] = [];
  const target = () => ({ endpoint: etcd.endpoint, username: etcd.gatewayUser, password: etcd.gatewayPassword });
  const replica = async (overrides: Record<string, string> = {}) => {
    const gw = await startGateway(target(), redis.url, { ...CACHE_ENV, ...(prefix ? { ETCD_PREFIX: prefix } : {}), ...overrides });
    prefix = gw.prefix;
    gateways.push(gw);
    return gw;
  };
  const close = async (gw: GatewayUnderTest) => {
    gateways.splice(gateways.indexOf(gw), 1);
    await gw.close();
  };
  const redisKeys = async (pattern: string) => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    try {
      return await client.keys(pattern);
    } finally {
      client.disconnect();
    }
  };
  const flushRedis = async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    await client.flushall();
    client.disconnect();
  };

  let a: GatewayUnderTest;
  let b: GatewayUnderTest;

  beforeAll(async () => {
    [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
    // Two instances per service, written by a replica that is gone before the cold start.
    const writer = await replica();
    for (const service of SERVICES) {
      for (const id of ['i1', 'i2']) {
        const res = await call(`${writer.url}/v1/services/${service}/instances/${id}`, 'PUT', { address: '10.0.0.1', port: 8080, ttl: 300 });
        expect(res.status).toBe(201);
      }
    }
    await close(writer);
  });

  afterAll(async () => {
    client.close();
    await Promise.all(gateways.map((gw) => gw.close()));
    await Promise.all([etcd?.dispose(), redis?.dispose()]);
  });

  it('cold start, Redis flushed: 5000 concurrent lookups of 50 services on two replicas cost at most 50 etcd Range calls', async () => {
    await flushRedis();
    [a, b] = await Promise.all([replica(), replica()]);
    const before = await etcd.counters();
    const answers = await Promise.all(Array.from({ length: 5_000 }, (_, i) => resolve(i % 2 ? b : a, SERVICES[i % SERVICES.length])));
    const ranges = diffCounters(before, await etcd.counters()).range;

    expect(answers.every((r) => r.status === 200 && idsOf(r) === 'i1,i2' && r.body.stale === false)).toBe(true);
    expect(ranges).toBeGreaterThan(0);
    expect(ranges).toBeLessThanOrEqual(SERVICES.length);
    // Both replicas missed in L1; the second one to ask for a service got it from Redis.
    expect((await a.metric('registry_cache_requests_total', { tier: 'l1', result: 'miss' })) + (await b.metric('registry_cache_requests_total', { tier: 'l1', result: 'miss' }))).toBeGreaterThan(0);
    expect(await redisKeys(`registry-gateway:v1:${prefix}doc:svc:*`)).toHaveLength(SERVICES.length);
  });

  it('a replica started later answers from Redis, which the watches kept current, without reading etcd', async () => {
    const docKey = `registry-gateway:v1:${prefix}doc:svc:svc-49`;
    const fieldsOf = async () => {
      const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await client.connect();
      try {
        return Object.keys(await client.hgetall(docKey)).filter((f) => !f.startsWith('~')).sort().join();
      } finally {
        client.disconnect();
      }
    };
    // A change after the cold start reaches Redis through the replicas' watches, not through a read.
    expect((await call(`${a.url}/v1/services/svc-49/instances/i3`, 'PUT', { address: '10.0.0.3', port: 80, ttl: 300 })).status).toBe(201);
    await waitFor('Redis holds i1,i2,i3', async () => (await fieldsOf()) === 'i1,i2,i3');

    const later = await replica();
    const before = await etcd.counters();
    const answers = await Promise.all(SERVICES.map((s) => resolve(later, s)));
    expect(answers.every((r) => r.status === 200 && idsOf(r) === (r.body.service === 'svc-49' ? 'i1,i2,i3' : 'i1,i2'))).toBe(true);
    expect(diffCounters(before, await etcd.counters()).range).toBe(0);
    expect(await later.metric('registry_cache_requests_total', { tier: 'l2', result: 'hit' })).toBe(SERVICES.length);

    expect((await call(`${a.url}/v1/services/svc-49/instances/i3`, 'DELETE')).status).toBe(204);
    await waitFor('Redis and the later replica show i1,i2', async () => (await fieldsOf()) === 'i1,i2' && idsOf(await resolve(later, 'svc-49')) === 'i1,i2');
    await close(later);
  });

  it('caches unknown services negatively: repeated lookups cost at most one Range per negative TTL, cluster-wide', async () => {
    const before = await etcd.counters();
    const started = Date.now();
    let lookups = 0;
    while (Date.now() - started < 3_000) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => resolve(i % 2 ? b : a, 'ghost')));
      expect(answers.every((r) => r.status === 200 && r.body.instances.length === 0)).toBe(true);
      lookups += answers.length;
      await sleep(25);
    }
    const ranges = diffCounters(before, await etcd.counters()).range;
    const periods = Math.ceil((Date.now() - started) / Number(CACHE_ENV.CACHE_NEGATIVE_TTL_MS));
    expect(lookups).toBeGreaterThan(200);
    expect(ranges).toBeGreaterThanOrEqual(1);
    expect(ranges).toBeLessThanOrEqual(periods + 1); // +1: a period boundary can fall on each replica's side
  });

  it('keeps answering with Redis down (L1 + etcd), and uses Redis again once it is back', async () => {
    await redis.stop();
    try {
      // Warm services from L1, a service this replica never saw from etcd, changes through the watch.
      expect(idsOf(await resolve(a, 'svc-1'))).toBe('i1,i2');
      const fresh = await Promise.all(Array.from({ length: 20 }, () => resolve(a, 'newcomer')));
      expect(fresh.every((r) => r.status === 200 && r.body.instances.length === 0)).toBe(true);
      expect((await call(`${a.url}/v1/services/newcomer/instances/n1`, 'PUT', { address: '10.0.0.2', port: 80, ttl: 300 })).status).toBe(201);
      await waitFor('newcomer resolved through a', async () => idsOf(await resolve(a, 'newcomer')) === 'n1');
      expect((await call(`${a.url}/v1/services/svc-1/instances/i1`, 'PATCH', { status: 'DRAINING' })).status).toBe(200);
      expect(idsOf(await resolve(a, 'svc-1'))).toBe('i2');
      expect((await call(`${a.url}/v1/services/svc-1/instances/i1`, 'PATCH', { status: 'UP' })).status).toBe(200);
      // What ResolveService.cacheHealth() reports, as /health/ready shows it.
      const ready = await call(`${a.url}/health/ready`, 'GET');
      expect(ready.body.details).toMatchObject({ watch: { status: 'up' }, redis: { status: 'down', l2: 'down' } });
      expect(ready.body.details.watch.warmServices).toBeGreaterThanOrEqual(SERVICES.length / 2); // the half it was asked for
    } finally {
      await redis.restart();
    }
    // Back (empty, no persistence): new lookups are written to L2 again once the client reconnected.
    let probe = 0;
    await waitFor('new lookups written to Redis again', async () => {
      const service = `probe-${probe++}`;
      expect((await resolve(a, service)).status).toBe(200);
      return (await redisKeys(`registry-gateway:v1:${prefix}doc:svc:${service}`)).length === 1;
    });
  });

  it('etcd frozen: every lookup answers 200 at once with the last instances, stale, and etcd is tried at most once per service per backoff window', async () => {
    const watched = SERVICES.slice(0, 5);
    const replicas = [a, b];
    for (const gw of replicas) for (const s of watched) expect((await resolve(gw, s)).body).toMatchObject({ stale: false });
    // From now on only the watches confirm these snapshots: no read is recent enough to count.
    await sleep(2 * Number(CACHE_ENV.CACHE_STALE_AFTER_MS));
    const before = await etcd.counters();

    etcd.freeze();
    const frozenAt = Date.now();
    // Per replica and service: each answer turns stale once etcd has not confirmed it for
    // CACHE_STALE_AFTER_MS (a snapshot read just before the freeze stays fresh a little longer).
    const staleSince = new Map<string, number>();
    let staleAnswers = 0;
    let slowest = 0;
    try {
      while (Date.now() - frozenAt < FREEZE_MS) {
        const answers = await Promise.all(replicas.map((gw, r) => Promise.all(watched.map(async (s) => ({ key: `${r}/${s}`, answer: await resolve(gw, s) })))));
        for (const { key, answer } of answers.flat()) {
          expect(answer.status).toBe(200);
          expect(idsOf(answer)).toBe('i1,i2');
          if (answer.body.stale) {
            if (!staleSince.has(key)) staleSince.set(key, Date.now());
            staleAnswers++;
            slowest = Math.max(slowest, answer.ms);
          } else {
            expect(staleSince.has(key)).toBe(false); // never fresh again while etcd is frozen
          }
        }
        await sleep(100);
      }
      expect(staleSince.size).toBe(replicas.length * watched.length);
      for (const since of staleSince.values()) expect(since - frozenAt).toBeLessThan(10_000);
      expect(staleAnswers).toBeGreaterThan(100);
      expect(slowest).toBeLessThan(1_000);
    } finally {
      etcd.thaw();
    }

    // After the thaw the watches confirm again: answers are fresh without anyone waiting on etcd.
    await waitFor('fresh answers after the thaw', async () => {
      const answers = await Promise.all(replicas.flatMap((gw) => watched.map((s) => resolve(gw, s))));
      return answers.every((r) => r.status === 200 && !r.body.stale && idsOf(r) === 'i1,i2');
    }, 30_000);

    // Counted by etcd after the thaw (requests sent while frozen are processed then). At most one
    // attempt per service and replica per backoff window; the windows are at least BACKOFF_MIN_MS.
    const ranges = diffCounters(before, await etcd.counters()).range;
    const bound = replicas.length * watched.length * (1 + Math.ceil(FREEZE_MS / BACKOFF_MIN_MS));
    expect(ranges).toBeLessThanOrEqual(bound);
    expect(ranges).toBeLessThan(staleAnswers / 4);
  });

  it('after an etcd restart the watch re-authenticates (one Authenticate per pooled connection) and keeps applying changes', async () => {
    await etcd.restart();
    await waitFor('a registration accepted after the restart', async () => (await call(`${a.url}/v1/services/svc-2/instances/i3`, 'PUT', { address: '10.0.0.3', port: 80, ttl: 300 })).status === 201, 30_000);
    // Both watches are back: the change shows on the other replica too.
    await waitFor('svc-2 complete through b', async () => idsOf(await resolve(b, 'svc-2')) === 'i1,i2,i3', 30_000);
    await waitFor('svc-2 complete through a', async () => idsOf(await resolve(a, 'svc-2')) === 'i1,i2,i3');
    // Counters restarted with etcd: everything since the restart. Two replicas, two connections each.
    expect((await etcd.counters()).authenticate).toBeLessThanOrEqual(4);
  });
});
