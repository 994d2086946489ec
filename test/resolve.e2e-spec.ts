/**
 * Issue 4, the resolve API against the shared etcd + Redis: answers and their shape, filters,
 * the services list, PATCH status changes, and watch-applied deregistration/expiry across replicas.
 * Count-sensitive and disruptive cases (0 Range calls, frozen etcd, Redis down, a changed password)
 * are in resolve-read-model.e2e-spec.ts, on private servers.
 */
import { Etcd3 } from 'etcd3';
import { call, GatewayUnderTest, startGateway } from './support/gateway';
import { sharedStack } from './support/stack';
import { waitFor } from './support/wait';

jest.setTimeout(60_000);

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };

const register = (gw: GatewayUnderTest, service: string, id: string, body: Record<string, unknown> = {}) =>
  call(`${gw.url}/v1/services/${service}/instances/${id}`, 'PUT', { address: '10.0.0.1', port: 8080, ttl: 60, ...body });
const resolve = (gw: GatewayUnderTest, service: string, query = '') => call(`${gw.url}/v1/services/${service}${query ? `?${query}` : ''}`, 'GET');
const ids = async (gw: GatewayUnderTest, service: string, query = '') => ((await resolve(gw, service, query)).body.instances as Array<{ id: string }>).map((i) => i.id);

/** Polls until `ok` holds; returns the milliseconds it took (throws after `timeoutMs`). */
async function within(timeoutMs: number, ok: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  await waitFor('the other replica to show the change', ok, timeoutMs, 50);
  return Date.now() - started;
}

describe('resolve API', () => {
  let gw: GatewayUnderTest;
  let other: GatewayUnderTest;
  const root = new Etcd3({ hosts: stack.etcd.endpoint, auth: { username: stack.etcd.rootUser, password: stack.etcd.rootPassword } });

  beforeAll(async () => {
    gw = await startGateway(target, stack.redis.url);
    other = await startGateway(target, stack.redis.url, { ETCD_PREFIX: gw.prefix });
    const fixtures: Array<[string, string, Record<string, unknown>]> = [
      ['orders', 'o1', { tags: ['canary', 'v2'], zone: 'z1', metadata: { version: '2', tier: 'gold' } }],
      ['orders', 'o2', { tags: ['v2'], zone: 'z2', metadata: { version: '2' } }],
      ['orders', 'o3', { tags: ['canary'], zone: 'z1', status: 'DRAINING' }],
      ['orders', 'o4', { zone: 'z1', status: 'DOWN', metadata: { version: '1' } }],
      ['billing', 'b1', {}],
    ];
    for (const [service, id, body] of fixtures) expect((await register(gw, service, id, body)).status).toBe(201);
  });

  afterAll(async () => {
    root.close();
    await Promise.all([gw?.close(), other?.close()]);
  });

  it('answers the UP instances with the revision they reflect, and 200 with none for an unknown service', async () => {
    const res = await resolve(gw, 'orders');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ service: 'orders', stale: false });
    expect(res.body.revision).toMatch(/^\d+$/);
    expect(res.body.instances).toEqual([
      { id: 'o1', address: '10.0.0.1', port: 8080, metadata: { version: '2', tier: 'gold' }, tags: ['canary', 'v2'], zone: 'z1', weight: 100, status: 'UP', registeredAt: expect.any(String) },
      { id: 'o2', address: '10.0.0.1', port: 8080, metadata: { version: '2' }, tags: ['v2'], zone: 'z2', weight: 100, status: 'UP', registeredAt: expect.any(String) },
    ]);

    const unknown = await resolve(gw, 'no-such-service');
    expect(unknown.status).toBe(200);
    expect(unknown.body).toMatchObject({ service: 'no-such-service', stale: false, instances: [] });
  });

  it('filters by tag (all must match), zone, metadata key=value and status, in any combination', async () => {
    expect(await ids(gw, 'orders', 'tag=v2')).toEqual(['o1', 'o2']);
    expect(await ids(gw, 'orders', 'tag=canary&tag=v2')).toEqual(['o1']);
    expect(await ids(gw, 'orders', 'zone=z1')).toEqual(['o1']);
    expect(await ids(gw, 'orders', 'zone=z1&status=all')).toEqual(['o1', 'o3', 'o4']);
    expect(await ids(gw, 'orders', 'status=DRAINING')).toEqual(['o3']);
    expect(await ids(gw, 'orders', 'status=down')).toEqual(['o4']);
    expect(await ids(gw, 'orders', 'meta=version=2')).toEqual(['o1', 'o2']);
    expect(await ids(gw, 'orders', 'meta=version=2&meta=tier=gold')).toEqual(['o1']);
    expect(await ids(gw, 'orders', 'meta=version=1&status=all')).toEqual(['o4']);
    expect(await ids(gw, 'orders', 'tag=canary&zone=z1&status=all&meta=version=2')).toEqual(['o1']);
    expect(await ids(gw, 'orders', 'tag=canary&zone=z2')).toEqual([]);
  });

  it.each([
    ['status=SLEEPING', 'status'],
    ['meta=version', 'meta'],
    ['meta==2', 'meta'],
    ['zone=a&zone=b', 'zone'],
    ['zone=bad%2Fzone', 'zone'],
    ['colour=red', 'colour'],
  ])('rejects the query %s with 400 naming %s', async (query, field) => {
    const res = await resolve(gw, 'orders', query);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field });
  });

  it('rejects an invalid service name with 400', async () => {
    expect((await resolve(gw, 'bad%20name')).status).toBe(400);
    expect((await resolve(gw, '.hidden')).status).toBe(400);
  });

  it('lists the services with their instance counts', async () => {
    const res = await call(`${gw.url}/v1/services`, 'GET');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ stale: false, services: [{ service: 'billing', instances: 1 }, { service: 'orders', instances: 4 }] });
    expect(res.body.revision).toMatch(/^\d+$/);
  });

  it('changes an instance status with PATCH, keeping its lease; resolve results follow on every replica', async () => {
    expect(await ids(other, 'orders')).toEqual(['o1', 'o2']); // through the second replica's watch
    const key = `${gw.prefix}services/orders/o2`;
    const leaseBefore = String((await root.getAll().prefix(key).exec()).kvs[0].lease);

    const res = await call(`${gw.url}/v1/services/orders/instances/o2`, 'PATCH', { status: 'DRAINING', metadata: { version: '3' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ service: 'orders', id: 'o2', instance: { status: 'DRAINING', metadata: { version: '3' }, zone: 'z2', tags: ['v2'] } });
    expect(res.body.revision).toMatch(/^\d+$/);
    expect(String((await root.getAll().prefix(key).exec()).kvs[0].lease)).toBe(leaseBefore);

    // The replica that took the PATCH shows it at once; the other one through its watch.
    expect(await ids(gw, 'orders')).toEqual(['o1']);
    expect(await ids(gw, 'orders', 'status=DRAINING&meta=version=3')).toEqual(['o2']);
    await within(2_000, async () => (await ids(other, 'orders')).join() === 'o1');

    expect((await call(`${gw.url}/v1/services/orders/instances/o2`, 'PATCH', { status: 'UP' })).status).toBe(200);
    expect(await ids(gw, 'orders')).toEqual(['o1', 'o2']);
    expect(await ids(gw, 'orders', 'meta=version=3')).toEqual(['o2']); // metadata kept when not given
  });

  it.each([
    [{ status: 'SLEEPING' }, 'status'],
    [{}, 'status'],
    [{ status: 'UP', colour: 'red' }, 'colour'],
    [{ status: 'UP', metadata: { 'bad key': 'x' } }, 'metadata'],
  ])('rejects the PATCH body %p with 400', async (body, field) => {
    const res = await call(`${gw.url}/v1/services/orders/instances/o1`, 'PATCH', body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field });
  });

  it('answers 404 to a PATCH of an unknown instance', async () => {
    const res = await call(`${gw.url}/v1/services/orders/instances/nobody`, 'PATCH', { status: 'DOWN' });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: 'instance_not_found' });
  });

  it('shows a deregistration on another replica within a second or two, and never empties another service', async () => {
    expect(await ids(other, 'billing')).toEqual(['b1']);
    expect((await register(gw, 'billing', 'b2')).status).toBe(201);
    await within(2_000, async () => (await ids(other, 'billing')).join() === 'b1,b2');

    expect((await call(`${gw.url}/v1/services/billing/instances/b1`, 'DELETE')).status).toBe(204);
    const took = await within(2_000, async () => (await ids(other, 'billing')).join() === 'b2');
    expect(took).toBeLessThan(2_000);
    expect(await ids(other, 'orders')).toEqual(['o1', 'o2']);

    // The last instance going leaves an empty answer for that service only.
    expect((await call(`${gw.url}/v1/services/billing/instances/b2`, 'DELETE')).status).toBe(204);
    await within(2_000, async () => (await ids(other, 'billing')).length === 0);
    expect(await ids(other, 'orders')).toEqual(['o1', 'o2']);
    expect((await call(`${other.url}/v1/services`, 'GET')).body.services).toEqual([{ service: 'orders', instances: 4 }]);
  });

  it('shows a lease expiry (a pod that stopped heartbeating) through the watch', async () => {
    expect((await register(gw, 'shortlived', 's1', { ttl: 5 })).status).toBe(201);
    const registeredAt = Date.now();
    expect(await ids(other, 'shortlived')).toEqual(['s1']);
    await within(15_000, async () => (await ids(other, 'shortlived')).length === 0);
    expect(Date.now() - registeredAt).toBeGreaterThanOrEqual(4_000); // expired by etcd, not dropped early
    expect(await ids(other, 'orders')).toEqual(['o1', 'o2']);
  });
});
