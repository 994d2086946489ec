/**
 * Issue 10, part 6: one service with 50,000 instances resolves cold (paged etcd reads) and warm (L1,
 * and a second replica from Redis), and an etcd error that is not unavailability reaches clients as
 * `502 etcd_error`, never as "etcd is unavailable". On the shared etcd and Redis, under a prefix of
 * its own; the keys are written straight into etcd (no leases), as the gateway would have written them.
 */
import { randomBytes } from 'node:crypto';
import { Etcd3, IRequestOp } from 'etcd3';
import Redis from 'ioredis';
import { DEFAULT_PAGE_SIZE } from '@app/etcd';
import { encodeRecord, InstanceRecord, KeyLayout, ResolvedInstance } from '@app/registry';
import { diffCounters } from '@app/stack';
import { etcdAdmin } from './support/etcd-admin';
import { call, GatewayUnderTest, startGateway, uniquePrefix } from './support/gateway';
import { request } from './support/http';
import { sharedStack } from './support/stack';

jest.setTimeout(180_000);

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };
const prefix = uniquePrefix();
const layout = new KeyLayout(prefix);

const BIG = 'big';
const BIG_INSTANCES = 50_000;
// 3,000 instances with ~2.6 KB of metadata each: 2,000 of them (one default page) are ~5.3 MB.
const FAT = 'fat';
const FAT_INSTANCES = 3_000;
const GRPC_MAX_MESSAGE = 4 * 1024 * 1024;
const TXN_OPS = 128; // etcd's default --max-txn-ops

// A slow page on this shared 2-core machine must not turn into a 503 that would hide what we count, and
// the refresh lock must outlive the whole paged read (see README, Known limitations).
const GATEWAY_ENV = { ETCD_PREFIX: prefix, ETCD_REQUEST_TIMEOUT_MS: '20000', CACHE_LOCK_TTL_MS: '30000' };

const id = (i: number) => `pod-${String(i).padStart(5, '0')}`;
function record(service: string, i: number, metadata: Record<string, string> = {}): InstanceRecord {
  return {
    service,
    id: id(i),
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8080 + (i % 100),
    ttl: 30,
    metadata: { team: 'payments', build: `b${i % 7}`, ...metadata },
    tags: ['v2', i % 2 ? 'odd' : 'even'],
    zone: `zone-${i % 3}`,
    weight: 100,
    status: 'UP',
    registeredAt: '2026-12-03T08:00:00.000Z',
  };
}
const fatMetadata = Object.fromEntries(Array.from({ length: 5 }, (_, k) => [`blob-${k}`, 'x'.repeat(500)]));
const resolved = ({ service: _s, ttl: _t, ...rest }: InstanceRecord): ResolvedInstance => rest;

/** Writes the records in Txns of at most TXN_OPS puts, a few at once; returns the last revision and the bytes written. */
async function writeDirectly(client: Etcd3, records: InstanceRecord[]): Promise<{ revision: number; bytes: number }> {
  const batches: IRequestOp[][] = [];
  let bytes = 0;
  for (let i = 0; i < records.length; i += TXN_OPS) {
    batches.push(
      records.slice(i, i + TXN_OPS).map((r) => {
        const key = Buffer.from(layout.instanceKey(r.service, r.id));
        const value = Buffer.from(encodeRecord(r));
        bytes += key.length + value.length;
        return { request_put: { key, value } };
      }),
    );
  }
  let revision = 0;
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      const res = await client.kv.txn({ success: batch });
      revision = Math.max(revision, Number(res.header.revision));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { revision, bytes };
}

// One answer is ~10 MB of JSON: parsed strictly (a non-JSON answer fails here, not later).
async function getJson(url: string): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { origin, pathname } = new URL(url);
  const res = await request(origin, 'GET', pathname);
  return { status: res.status, body: JSON.parse(res.body) };
}

describe('a service with 50,000 instances', () => {
  const writer = new Etcd3({ hosts: stack.etcd.endpoint, auth: { username: stack.etcd.username, password: stack.etcd.password } });
  const redis = new Redis(stack.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const docKey = (service: string) => `registry-gateway:v1:${prefix}doc:svc:${service}`;
  const gateways: GatewayUnderTest[] = [];
  const replica = async (env: Record<string, string> = GATEWAY_ENV) => {
    const gw = await startGateway(target, stack.redis.url, env);
    gateways.push(gw);
    return gw;
  };
  const timings: string[] = [];
  /** etcd Range calls made while `run` ran; its duration is printed, never asserted. */
  const ranges = async (what: string, run: () => Promise<void>) => {
    const before = await stack.etcdCounters();
    const started = Date.now();
    await run();
    timings.push(`${what} ${Date.now() - started} ms`);
    return diffCounters(before, await stack.etcdCounters()).range;
  };
  let big: { revision: number; bytes: number };
  let fat: { revision: number; bytes: number };

  beforeAll(async () => {
    await redis.connect();
    const started = Date.now();
    big = await writeDirectly(writer, Array.from({ length: BIG_INSTANCES }, (_, i) => record(BIG, i)));
    fat = await writeDirectly(writer, Array.from({ length: FAT_INSTANCES }, (_, i) => record(FAT, i, fatMetadata)));
    timings.push(`writing ${BIG_INSTANCES + FAT_INSTANCES} keys ${Date.now() - started} ms`);
  });

  afterAll(async () => {
    process.stdout.write(`big service: ${timings.join(', ')}\n`);
    await Promise.all(gateways.map((gw) => gw.close()));
    writer.close();
    await etcdAdmin().deletePrefix(prefix);
    const keys = await redis.keys(`registry-gateway:v1:${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('is more than one gRPC message: one unpaged Range could not read it', () => {
    expect(big.bytes).toBeGreaterThan(2 * GRPC_MAX_MESSAGE);
    expect((fat.bytes / FAT_INSTANCES) * DEFAULT_PAGE_SIZE).toBeGreaterThan(GRPC_MAX_MESSAGE);
  });

  it('resolves cold in ceil(50,000 / page size) Range calls, warm with none, and from Redis on a second replica', async () => {
    expect(await redis.exists(docKey(BIG))).toBe(0);
    const first = await replica();

    let cold!: Awaited<ReturnType<typeof getJson>>;
    const coldRanges = await ranges('cold lookup', async () => {
      cold = await getJson(`${first.url}/v1/services/${BIG}`);
    });
    expect(cold.status).toBe(200);
    expect(cold.body.stale).toBe(false);
    expect(Number(cold.body.revision)).toBeGreaterThanOrEqual(big.revision);
    const instances = cold.body.instances as ResolvedInstance[];
    expect(instances).toHaveLength(BIG_INSTANCES);
    expect(instances.map((i) => i.id)).toEqual(Array.from({ length: BIG_INSTANCES }, (_, i) => id(i)));
    for (const i of [0, 1, 12_345, BIG_INSTANCES - 1]) expect(instances[i]).toEqual(resolved(record(BIG, i)));
    // Exactly the pages, no slack: a lookup's only Range is the paged read (the watch and startup
    // read nothing), and etcd's `more` flag is exact, so no empty page follows the last full one.
    expect(coldRanges).toBe(Math.ceil(BIG_INSTANCES / DEFAULT_PAGE_SIZE));

    // L2 holds the whole document: one hash, `~rev` + `~at` + one field per instance.
    expect(await redis.hlen(docKey(BIG))).toBe(BIG_INSTANCES + 2);
    expect(JSON.parse((await redis.hget(docKey(BIG), id(777)))!)).toEqual(resolved(record(BIG, 777)));

    let warm!: Awaited<ReturnType<typeof getJson>>;
    expect(
      await ranges('warm lookup', async () => {
        warm = await getJson(`${first.url}/v1/services/${BIG}`);
      }),
    ).toBe(0);
    expect(warm.status).toBe(200);
    expect(warm.body.instances).toHaveLength(BIG_INSTANCES);

    const second = await replica();
    let fromRedis!: Awaited<ReturnType<typeof getJson>>;
    expect(
      await ranges('second replica (Redis)', async () => {
        fromRedis = await getJson(`${second.url}/v1/services/${BIG}`);
      }),
    ).toBe(0);
    expect(fromRedis.status).toBe(200);
    expect(fromRedis.body.revision).toBe(cold.body.revision);
    expect(fromRedis.body.instances).toEqual(instances);
    expect(await second.metric('registry_cache_requests_total', { tier: 'l2', result: 'hit' })).toBe(1);
  });

  it('reads a page that exceeds the gRPC limit again in smaller pages (one refused Range, then pages of 1,000)', async () => {
    const gw = await replica();
    let answer!: Awaited<ReturnType<typeof getJson>>;
    const used = await ranges('fat service cold', async () => {
      answer = await getJson(`${gw.url}/v1/services/${FAT}`);
    });
    expect(answer.status).toBe(200);
    expect(answer.body.instances).toHaveLength(FAT_INSTANCES);
    expect(answer.body.instances[FAT_INSTANCES - 1]).toEqual(resolved(record(FAT, FAT_INSTANCES - 1, fatMetadata)));
    // 2,000 keys are refused (~5.3 MB); grpc-js reports the size, so the next pages are half as big.
    expect(used).toBe(1 + Math.ceil(FAT_INSTANCES / (DEFAULT_PAGE_SIZE / 2)));
  });
});

describe('an etcd error that is not unavailability', () => {
  // The gateway user may only read and write under the test prefix: anything else is PERMISSION_DENIED,
  // an answer from a perfectly reachable etcd.
  const forbidden = `/forbidden-${randomBytes(4).toString('hex')}/`;
  let gw: GatewayUnderTest;

  beforeAll(async () => {
    gw = await startGateway(target, stack.redis.url, { ETCD_PREFIX: forbidden, ETCD_REQUEST_TIMEOUT_MS: '2000' });
  });
  afterAll(() => gw.close());

  const expectEtcdError = (res: { status: number; body: { error: string; message: string }; headers: Headers }, doing: string) => {
    expect(res.status).toBe(502);
    expect(res.body.error).toBe('etcd_error');
    expect(res.body.message).toBe(`etcd error while ${doing}: PERMISSION_DENIED (etcdserver: permission denied)`);
    expect(res.headers.get('retry-after')).toBeNull();
    for (const secret of [stack.etcd.password, stack.etcd.rootPassword]) expect(JSON.stringify(res.body)).not.toContain(secret);
  };

  it('answers a lookup with 502 etcd_error naming the status, also while the read backs off', async () => {
    expectEtcdError(await call(`${gw.url}/v1/services/a`, 'GET'), 'reading service a');
    expectEtcdError(await call(`${gw.url}/v1/services/a`, 'GET'), 'reading service a');
    expectEtcdError(await call(`${gw.url}/v1/services`, 'GET'), 'listing services');
  });

  it('answers a registration with 502 etcd_error, and writes nothing', async () => {
    const res = await call(`${gw.url}/v1/services/a/instances/pod-1`, 'PUT', { address: '10.0.0.1', port: 8080, ttl: 30 });
    expectEtcdError(res, 'writing instance a/pod-1');
    expect(await etcdAdmin().listKeys(forbidden)).toEqual([]);
  });
});
