/**
 * Issue 3: bad input gets a 400 (or 413) JSON error naming the field, and nothing is written.
 */
import { etcdAdmin } from './support/etcd-admin';
import { call, GatewayUnderTest, startGateway } from './support/gateway';
import { sharedStack } from './support/stack';

const stack = sharedStack();
const admin = etcdAdmin();
const valid = { address: '10.0.0.1', port: 8080 };

describe('input validation on register, heartbeat and deregister', () => {
  let gateway: GatewayUnderTest;
  beforeAll(async () => {
    gateway = await startGateway({ endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password }, stack.redis.url);
  });
  afterAll(() => gateway.close());

  const cases: Array<[string, string, unknown, number, string | undefined]> = [
    ['service with a dot-dot and slash', '/v1/services/..%2Fx/instances/a', valid, 400, 'service'],
    ['service with a slash', '/v1/services/a%2Fb/instances/a', valid, 400, 'service'],
    ['id starting with a dot', '/v1/services/ok/instances/.hidden', valid, 400, 'id'],
    ['300-character id', `/v1/services/ok/instances/${'a'.repeat(300)}`, valid, 400, 'id'],
    ['port 0', '/v1/services/ok/instances/a', { ...valid, port: 0 }, 400, 'port'],
    ['port 70000', '/v1/services/ok/instances/a', { ...valid, port: 70000 }, 400, 'port'],
    ['port as a string', '/v1/services/ok/instances/a', { ...valid, port: '80' }, 400, 'port'],
    ['missing address', '/v1/services/ok/instances/a', { port: 80 }, 400, 'address'],
    ['address with a space', '/v1/services/ok/instances/a', { ...valid, address: 'a b' }, 400, 'address'],
    ['TTL 0', '/v1/services/ok/instances/a', { ...valid, ttl: 0 }, 400, 'ttl'],
    ['TTL 100000', '/v1/services/ok/instances/a', { ...valid, ttl: 100000 }, 400, 'ttl'],
    ['65 metadata keys', '/v1/services/ok/instances/a', { ...valid, metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, 400, 'metadata'],
    ['metadata with a number value', '/v1/services/ok/instances/a', { ...valid, metadata: { a: 1 } }, 400, 'metadata'],
    ['33 tags', '/v1/services/ok/instances/a', { ...valid, tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, 400, 'tags'],
    ['unknown field', '/v1/services/ok/instances/a', { ...valid, admin: true }, 400, 'admin'],
    ['bad status', '/v1/services/ok/instances/a', { ...valid, status: 'GONE' }, 400, 'status'],
    ['broken JSON', '/v1/services/ok/instances/a', '{"address":', 400, undefined],
    ['a JSON array', '/v1/services/ok/instances/a', '[1,2]', 400, undefined],
    ['a 2 MiB body', '/v1/services/ok/instances/a', { ...valid, metadata: { a: 'x'.repeat(2 * 1024 * 1024) } }, 413, undefined],
  ];

  it.each(cases)('rejects %s with a JSON error and writes nothing', async (_name, path, body, status, field) => {
    const keysBefore = await admin.listKeys('');
    const res = await call(`${gateway.url}${path}`, 'PUT', body);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(typeof res.body.error).toBe('string');
    expect(typeof res.body.message).toBe('string');
    if (field) expect(res.body.field).toBe(field);
    // Nothing written anywhere in etcd. Keys may disappear meanwhile: other files' leased keys on the
    // shared etcd expire on their own schedule.
    const before = new Set(keysBefore);
    expect((await admin.listKeys('')).filter((key) => !before.has(key))).toEqual([]);
  });

  it('rejects bad names on heartbeat and deregister too', async () => {
    expect((await call(`${gateway.url}/v1/services/a%2Fb/instances/x/heartbeat`, 'PUT')).status).toBe(400);
    expect((await call(`${gateway.url}/v1/services/ok/instances/..%2F..%2Fetc/heartbeat`, 'PUT')).status).toBe(400);
    expect((await call(`${gateway.url}/v1/services/ok/instances/a%2Fb`, 'DELETE')).status).toBe(400);
  });

  it('answers 404 with a JSON error for heartbeat and deregister of an unknown instance', async () => {
    const hb = await call(`${gateway.url}/v1/services/ok/instances/never/heartbeat`, 'PUT');
    expect(hb.status).toBe(404);
    expect(hb.body.error).toBe('instance_not_found');
    expect((await call(`${gateway.url}/v1/services/ok/instances/never`, 'DELETE')).status).toBe(404);
  });

  it('accepts the boundary values', async () => {
    const res = await call(`${gateway.url}/v1/services/${'s'.repeat(128)}/instances/a`, 'PUT', {
      address: 'pod-1.payments.svc.cluster.local',
      port: 65535,
      ttl: 300,
      tags: Array.from({ length: 32 }, (_, i) => `t${i}`),
      metadata: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'])),
    });
    expect(res.status).toBe(201);
    expect((await call(`${gateway.url}/v1/services/${'s'.repeat(128)}/instances/a`, 'DELETE')).status).toBe(204);
  });
});
