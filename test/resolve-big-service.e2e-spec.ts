/**
 * Issue 10, part 6 (and issue 22): a registry with one service of 50,000 instances is read by a
 * replica's initial read in pages (a page over gRPC's message limit is read again in smaller pages),
 * then every lookup of it is answered from memory with no etcd read at all; and an etcd error that is
 * not unavailability reaches clients as `503 etcd_error` with Retry-After, naming the status, never as
 * "etcd is unavailable" nor as a 502. On the shared etcd and Redis, under a prefix of its own; the keys
 * are written straight into etcd (no leases), as the gateway would have written them.
 */
import { randomBytes } from 'node:crypto';
import { Etcd3, IRequestOp } from 'etcd3';
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

// A slow page on this shared 2-core machine must not turn into a retry that would hide what we count.
const GATEWAY_ENV = { ETCD_PREFIX: prefix, ETCD_REQUEST_TIMEOUT_MS: '20000' };

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
  const gateways: GatewayUnderTest[] = [];
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
  });

  it('is more than one gRPC message: one unpaged Range could not read it', () => {
    expect(big.bytes).toBeGreaterThan(2 * GRPC_MAX_MESSAGE);
    expect((fat.bytes / FAT_INSTANCES) * DEFAULT_PAGE_SIZE).toBeGreaterThan(GRPC_MAX_MESSAGE);
  });

  it('is read once, in pages, by the initial read (a page over the gRPC limit again in smaller pages); lookups then cost no Range', async () => {
    let gw!: GatewayUnderTest;
    const startupRanges = await ranges('replica start (initial read)', async () => {
      gw = await startGateway(target, stack.redis.url, GATEWAY_ENV);
      gateways.push(gw);
    });
    // The 50,000 small values in full pages; the fat service's first page is refused (~5.3 MB), then
    // read in pages half as big. Other tests may read the shared etcd meanwhile: a small slack.
    const pages = Math.ceil(BIG_INSTANCES / DEFAULT_PAGE_SIZE) + 1 + Math.ceil(FAT_INSTANCES / (DEFAULT_PAGE_SIZE / 2));
    expect(startupRanges).toBeGreaterThanOrEqual(pages);
    expect(startupRanges).toBeLessThanOrEqual(pages + 3);

    let answer!: Awaited<ReturnType<typeof getJson>>;
    let fatAnswer!: Awaited<ReturnType<typeof getJson>>;
    expect(
      await ranges('two lookups of each service', async () => {
        for (let i = 0; i < 2; i++) [answer, fatAnswer] = [await getJson(`${gw.url}/v1/services/${BIG}`), await getJson(`${gw.url}/v1/services/${FAT}`)];
      }),
    ).toBe(0);
    expect(answer.status).toBe(200);
    expect(answer.body.stale).toBe(false);
    expect(Number(answer.body.revision)).toBeGreaterThanOrEqual(fat.revision);
    const instances = answer.body.instances as ResolvedInstance[];
    expect(instances).toHaveLength(BIG_INSTANCES);
    expect(instances.map((i) => i.id)).toEqual(Array.from({ length: BIG_INSTANCES }, (_, i) => id(i)));
    for (const i of [0, 1, 12_345, BIG_INSTANCES - 1]) expect(instances[i]).toEqual(resolved(record(BIG, i)));
    expect(fatAnswer.status).toBe(200);
    expect(fatAnswer.body.instances).toHaveLength(FAT_INSTANCES);
    expect(fatAnswer.body.instances[FAT_INSTANCES - 1]).toEqual(resolved(record(FAT, FAT_INSTANCES - 1, fatMetadata)));
    const list = await getJson(`${gw.url}/v1/services`);
    expect(list.body.services).toEqual([
      { service: BIG, instances: BIG_INSTANCES },
      { service: FAT, instances: FAT_INSTANCES },
    ]);
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

  it('answers a registration with 503 etcd_error naming the status, with Retry-After, and writes nothing', async () => {
    const res = await call(`${gw.url}/v1/services/a/instances/pod-1`, 'PUT', { address: '10.0.0.1', port: 8080, ttl: 30 });
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('etcd_error');
    // The first write of a replica is its shared lease's record (written with the lease): refused the same way.
    expect(res.body.message).toBe('etcd error while granting a 120 s shared lease: PERMISSION_DENIED (etcdserver: permission denied)');
    expect(res.headers.get('retry-after')).toBe('10');
    for (const secret of [stack.etcd.password, stack.etcd.rootPassword]) expect(JSON.stringify(res.body)).not.toContain(secret);
    expect(await etcdAdmin().listKeys(forbidden)).toEqual([]);
  });

  it('never reads the registry, so lookups answer 503 starting with Retry-After (not an empty list)', async () => {
    for (const path of ['/v1/services/a', '/v1/services']) {
      const res = await call(`${gw.url}${path}`, 'GET');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'registry_unavailable', message: expect.stringContaining('starting') });
      expect(res.headers.get('retry-after')).toBe('1');
    }
  });
});
