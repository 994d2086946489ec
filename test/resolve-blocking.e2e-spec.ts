/**
 * Issue 12, blocking queries on resolve (`?index=&wait=`, Consul semantics), on the shared etcd +
 * Redis with two in-process replicas of one registry: a change made through one replica wakes the
 * queries held on the other through its watch, at no etcd cost (etcd's own Range counter), and held
 * queries are bounded, released by disconnecting clients and answered on shutdown.
 * Nothing here asserts on elapsed time: every wait is a poll on an outcome or a metric.
 */
import { call, gatewayEnv, GatewayProcess, GatewayUnderTest, startGateway, startGatewayProcess } from './support/gateway';
import { metricValue, rawRequest, request } from './support/http';
import { sharedStack } from './support/stack';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(90_000);

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };
const ENV = {};

interface Answer {
  status: number;
  index: string | null;
  retryAfter: string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert on arbitrary JSON shapes
  body: any;
}

async function get(url: string, signal?: AbortSignal): Promise<Answer> {
  const { origin, pathname, search } = new URL(url);
  // Held up to 10 minutes on purpose: only the answer (or the abort) ends the request.
  const res = await rawRequest(origin, { method: 'GET', path: pathname + search, signal, timeoutMs: 15 * 60_000 });
  const header = (name: string) => (res.headers[name] as string | undefined) ?? null;
  return { status: res.status, index: header('x-registry-index'), retryAfter: header('retry-after'), body: res.json };
}

const register = (gw: GatewayUnderTest, service: string, id: string, body: Record<string, unknown> = {}) =>
  call(`${gw.url}/v1/services/${service}/instances/${id}`, 'PUT', { address: '10.0.0.1', port: 8080, ttl: 120, ...body });
const ids = (answer: Answer) => (answer.body.instances as Array<{ id: string }>).map((i) => i.id);

const held = (gw: GatewayUnderTest) => gw.metric('registry_blocking_queries_held');
const outcomes = (gw: GatewayUnderTest, outcome: string) => gw.metric('registry_blocking_queries_total', { outcome });

describe('blocking queries on resolve', () => {
  let a: GatewayUnderTest;
  let b: GatewayUnderTest;

  beforeAll(async () => {
    a = await startGateway(target, stack.redis.url, ENV);
    b = await startGateway(target, stack.redis.url, { ...ENV, ETCD_PREFIX: a.prefix });
    expect((await register(a, 'orders', 'o1', { zone: 'z1' })).status).toBe(201);
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('carries X-Registry-Index on every answer of both routes, and answers at once when the index is behind', async () => {
    const plain = await get(`${a.url}/v1/services/orders`);
    expect(plain.status).toBe(200);
    expect(plain.index).toMatch(/^\d+$/);
    expect(ids(plain)).toEqual(['o1']);
    const list = await get(`${a.url}/v1/services`);
    expect(list.status).toBe(200);
    expect(list.index).toMatch(/^\d+$/);

    const immediateBefore = await outcomes(a, 'immediate');
    // A 10-minute wait: held instead of answered, this test would time out.
    const behind = await get(`${a.url}/v1/services/orders?index=${Number(plain.index) - 1}&wait=10m`);
    expect(behind).toMatchObject({ status: 200, index: plain.index });
    expect(behind.body).toEqual(plain.body);
    const listBehind = await get(`${a.url}/v1/services?index=0&wait=10m`);
    expect(listBehind).toMatchObject({ status: 200, index: list.index });
    expect(await outcomes(a, 'immediate')).toBe(immediateBefore + 2);
    expect(await held(a)).toBe(0);
  });

  it('holds 120 queries until an instance registers through the OTHER replica, then answers with it and a higher index, at no etcd Range cost', async () => {
    const current = await get(`${a.url}/v1/services/orders`);
    const index = Number(current.index);
    // Every second query filters: the filter shapes the answer, the service's change wakes it.
    const queries = Array.from({ length: 120 }, (_, i) => get(`${a.url}/v1/services/orders?index=${index}&wait=60s${i % 2 ? '&zone=z2' : ''}`));
    await waitFor('120 queries held on a', async () => (await held(a)) === 120);
    const changedBefore = await outcomes(a, 'changed');
    const before = await stack.etcdCounters();

    expect((await register(b, 'orders', 'o2', { zone: 'z2' })).status).toBe(201);
    const answers = await Promise.all(queries);
    const after = await stack.etcdCounters();

    for (const [i, answer] of answers.entries()) {
      expect(answer.status).toBe(200);
      expect(Number(answer.index)).toBeGreaterThan(index);
      expect(ids(answer)).toEqual(i % 2 ? ['o2'] : ['o1', 'o2']);
    }
    expect(new Set(answers.map((x) => x.index)).size).toBe(1);
    expect(await outcomes(a, 'changed')).toBe(changedBefore + 120);
    expect(await held(a)).toBe(0);
    // The registration on b wrote to etcd; the held queries and their answers read nothing.
    expect(after.range - before.range).toBe(0);
    // A shared lease is granted only if b had none of this class yet.
    expect(after.leaseGrant - before.leaseGrant).toBeLessThanOrEqual(1);
    expect(after.put + after.txn - (before.put + before.txn)).toBeGreaterThan(0);
  });

  it('answers with the unchanged view when the wait runs out, and a write that changes nothing does not wake it', async () => {
    const current = await get(`${a.url}/v1/services/orders`);
    const timeoutsBefore = await outcomes(a, 'timeout');
    const query = get(`${a.url}/v1/services/orders?index=${current.index}&wait=3s`);
    await waitFor('1 queries held on a', async () => (await held(a)) === 1);
    // A PATCH to the status it already has: etcd gets a new revision, the answer's content stays the
    // same. (A re-registration is a change: it moves the instance's registeredAt.)
    const patched = await call(`${b.url}/v1/services/orders/instances/o1`, 'PATCH', {
      status: current.body.instances.find((i: { id: string }) => i.id === 'o1').status,
    });
    expect(patched.status).toBe(200);
    const answer = await query;
    expect(answer).toMatchObject({ status: 200, index: current.index });
    expect(answer.body.instances).toEqual(current.body.instances);
    expect(await outcomes(a, 'timeout')).toBe(timeoutsBefore + 1);
    expect(await held(a)).toBe(0);
  });

  it('wakes a held services-list query when a service appears through the other replica', async () => {
    const list = await get(`${a.url}/v1/services`);
    const query = get(`${a.url}/v1/services?index=${list.index}&wait=60s`);
    await waitFor('1 queries held on a', async () => (await held(a)) === 1);
    expect((await register(b, 'payments', 'p1')).status).toBe(201);
    const answer = await query;
    expect(answer.status).toBe(200);
    expect(Number(answer.index)).toBeGreaterThan(Number(list.index));
    expect(answer.body.services).toEqual([
      { service: 'orders', instances: 2 },
      { service: 'payments', instances: 1 },
    ]);
  });

  it('wakes a query on a service nobody has registered yet when its first instance appears', async () => {
    const empty = await get(`${a.url}/v1/services/newcomer`);
    expect(empty.body.instances).toEqual([]);
    const changedBefore = await outcomes(a, 'changed');
    const query = get(`${a.url}/v1/services/newcomer?index=${empty.index}&wait=20s`);
    await waitFor('1 queries held on a', async () => (await held(a)) === 1);
    // A while later: nothing about an unknown service is kept in memory, and its first event must wake the query all the same.
    await sleep(2_000);
    expect((await register(b, 'newcomer', 'n1')).status).toBe(201);
    const answer = await query;
    expect(ids(answer)).toEqual(['n1']);
    expect(Number(answer.index)).toBeGreaterThan(Number(empty.index));
    expect(await outcomes(a, 'changed')).toBe(changedBefore + 1);
  });

  it('documents index, wait, X-Registry-Index and the 429 in the OpenAPI document', async () => {
    const doc = (await get(`${a.url}/openapi.json`)).body;
    for (const path of ['/v1/services', '/v1/services/{service}']) {
      const operation = doc.paths[path].get;
      expect(operation.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['index', 'wait']));
      expect(Object.keys(operation.responses['200'].headers)).toEqual(['X-Registry-Index']);
      expect(operation.responses['429'].description).toContain('MAX_BLOCKING_QUERIES');
    }
  });

  it.each([
    ['/v1/services/orders?index=abc', 'index'],
    ['/v1/services/orders?index=-3', 'index'],
    ['/v1/services/orders?index=1&index=2', 'index'],
    ['/v1/services/orders?index=1&wait=5', 'wait'],
    ['/v1/services/orders?index=1&wait=11m', 'wait'],
    ['/v1/services/orders?index=1&wait=1h', 'wait'],
    ['/v1/services?index=1.5', 'index'],
    ['/v1/services?index=1&wait=later', 'wait'],
  ])('GET %s answers 400 naming %s and holds nothing', async (path, field) => {
    const answer = await get(`${a.url}${path}`);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_request', field });
    expect(await held(a)).toBe(0);
  });

  describe('on a replica with MAX_BLOCKING_QUERIES=3', () => {
    let c: GatewayUnderTest;
    let closed = false;
    beforeAll(async () => {
      c = await startGateway(target, stack.redis.url, { ...ENV, ETCD_PREFIX: a.prefix, MAX_BLOCKING_QUERIES: '3' });
    });
    afterAll(async () => {
      if (!closed) await c?.close();
    });

    it('answers 429 with Retry-After beyond the bound, frees a slot when a client disconnects, and answers held queries on shutdown', async () => {
      const current = await get(`${c.url}/v1/services/orders`);
      const url = `${c.url}/v1/services/orders?index=${current.index}&wait=10m`;
      const leaving = new AbortController();
      const gone = get(url, leaving.signal).catch((err: Error) => err.name);
      const staying = [get(url), get(url)];
      await waitFor('3 queries held on c', async () => (await held(c)) === 3);

      const refused = await get(url);
      expect(refused.status).toBe(429);
      expect(Number(refused.retryAfter)).toBeGreaterThan(0);
      expect(refused.body).toMatchObject({ error: 'rate_limited' });
      expect(refused.body.message).toContain('MAX_BLOCKING_QUERIES');
      expect(await outcomes(c, 'rejected')).toBe(1);
      // Ordinary lookups are never limited.
      expect((await get(`${c.url}/v1/services/orders`)).status).toBe(200);

      leaving.abort();
      expect(await gone).toBe('AbortError');
      await waitFor('2 queries held on c', async () => (await held(c)) === 2);
      expect(await outcomes(c, 'disconnected')).toBe(1);
      staying.push(get(url));
      await waitFor('3 queries held on c', async () => (await held(c)) === 3);

      // A 10-minute wait: unless shutdown answers the held queries, close() (and this test) would hang.
      await c.close();
      closed = true;
      const answers = await Promise.all(staying);
      for (const answer of answers) {
        expect(answer).toMatchObject({ status: 200, index: current.index });
        expect(answer.body).toEqual(current.body);
      }
    });
  });

  describe('a gateway process', () => {
    let proc: GatewayProcess | undefined;
    afterAll(() => {
      if (proc?.child.exitCode === null) proc.child.kill('SIGKILL');
    });

    it('answers held queries on SIGTERM with the current view, then exits 0', async () => {
      proc = await startGatewayProcess(gatewayEnv(target, stack.redis.url, { ...ENV, ETCD_PREFIX: a.prefix }));
      const url = proc.url;
      const current = await get(`${url}/v1/services/orders`);
      const queries = [get(`${url}/v1/services/orders?index=${current.index}&wait=10m`), get(`${url}/v1/services?index=${(await get(`${url}/v1/services`)).index}&wait=10m`)];
      await waitFor('2 queries held on the process', async () => metricValue((await request(url, 'GET', '/metrics')).body, 'registry_blocking_queries_held') === 2);

      proc.child.kill('SIGTERM');
      const [service, list] = await Promise.all(queries);
      expect(service).toMatchObject({ status: 200, index: current.index });
      expect(service.body).toEqual(current.body);
      expect(list.status).toBe(200);
      expect(list.body.services).toContainEqual({ service: 'orders', instances: 2 });
      expect(await proc.exited).toBe(0);
    });
  });
});
