/**
 * Issue 7 input limits, through real HTTP with an admin token (so every request gets past the
 * guard and meets validation): each bad input is refused with a JSON error and the right status,
 * and etcd is unchanged afterwards.
 */
import { etcdAdmin } from './support/etcd-admin';
import { instancePath, useSecuredGateway, validRegistration } from './support/security';
import { HttpRequest, rawRequest } from './support/http';

jest.setTimeout(120_000);

const admin = etcdAdmin();
const metadata = (keys: number, value = 'v') => Object.fromEntries(Array.from({ length: keys }, (_, i) => [`key${i}`, value]));
const put = (body: unknown, p = instancePath('payments', 'p1')): Omit<HttpRequest, 'token'> => ({ method: 'PUT', path: p, body });
const ok = validRegistration;

/** [what, request, status, field named in the error (400 only)] */
const REJECTED: Array<[string, Omit<HttpRequest, 'token'>, number, string?]> = [
  ['service ../x, encoded', put(ok, '/v1/services/..%2Fx/instances/p1'), 400, 'service'],
  ['service ../x, as written (no route)', put(ok, '/v1/services/../x/instances/p1'), 404],
  ['service a/b as a%2Fb', put(ok, '/v1/services/a%2Fb/instances/p1'), 400, 'service'],
  ['service a/b as a%2fb', put(ok, '/v1/services/a%2fb/instances/p1'), 400, 'service'],
  ['service ..', put(ok, '/v1/services/%2E%2E/instances/p1'), 400, 'service'],
  ['service .hidden', put(ok, '/v1/services/.hidden/instances/p1'), 400, 'service'],
  ['service with NUL', put(ok, '/v1/services/a%00b/instances/p1'), 400, 'service'],
  ['service with a space', put(ok, '/v1/services/a%20b/instances/p1'), 400, 'service'],
  ['empty service (no route)', put(ok, '/v1/services//instances/p1'), 404],
  ['300-character service', put(ok, instancePath('s'.repeat(300), 'p1')), 400, 'service'],
  ['129-character service', put(ok, instancePath('s'.repeat(129), 'p1')), 400, 'service'],
  ['id ../x, encoded', put(ok, '/v1/services/payments/instances/..%2Fx'), 400, 'id'],
  ['id a/b as a%2Fb', put(ok, '/v1/services/payments/instances/a%2Fb'), 400, 'id'],
  ['empty id (no route)', put(ok, '/v1/services/payments/instances/'), 404],
  ['300-character id', put(ok, instancePath('payments', 'i'.repeat(300))), 400, 'id'],
  ['an overlong (2000-character) name', put(ok, instancePath('s'.repeat(2000), 'p1')), 414],
  ['port 0', put({ ...ok, port: 0 }), 400, 'port'],
  ['port 70000', put({ ...ok, port: 70000 }), 400, 'port'],
  ['port as a string', put({ ...ok, port: '8080' }), 400, 'port'],
  ['port 80.5', put({ ...ok, port: 80.5 }), 400, 'port'],
  ['no port', put({ address: ok.address }), 400, 'port'],
  ['TTL 0', put({ ...ok, ttl: 0 }), 400, 'ttl'],
  ['TTL 100000', put({ ...ok, ttl: 100000 }), 400, 'ttl'],
  ['no address', put({ port: 80 }), 400, 'address'],
  ['address with a space', put({ ...ok, address: 'not an address' }), 400, 'address'],
  ['address as a URL', put({ ...ok, address: 'http://10.0.0.1/' }), 400, 'address'],
  ['address of 300 characters', put({ ...ok, address: 'a'.repeat(300) }), 400, 'address'],
  ['65 metadata keys', put({ ...ok, metadata: metadata(65) }), 400, 'metadata'],
  ['a 513-character metadata value', put({ ...ok, metadata: { k: 'v'.repeat(513) } }), 400, 'metadata'],
  ['a non-string metadata value', put({ ...ok, metadata: { k: 1 } }), 400, 'metadata'],
  ['nested metadata', put({ ...ok, metadata: { k: { x: 'y' } } }), 400, 'metadata'],
  ['10,000 metadata keys (over the body limit first)', put({ ...ok, metadata: metadata(10_000) }), 413],
  ['33 tags', put({ ...ok, tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }), 400, 'tags'],
  ['a non-string tag', put({ ...ok, tags: [1] }), 400, 'tags'],
  ['an unknown field', put({ ...ok, admin: true }), 400, 'admin'],
  ['status outside the enum', put({ ...ok, status: 'ROOT' }), 400, 'status'],
  // class-transformer skips keys naming inherited Object members: they must be refused, not dropped.
  ['a valueOf field', put({ ...ok, valueOf: '' }), 400, 'valueOf'],
  ['a constructor field', put({ ...ok, constructor: 'x' }), 400, 'constructor'],
  ['a prototype field', put({ ...ok, prototype: [] }), 400, 'prototype'],
  ['a toString metadata key', put({ ...ok, metadata: { toString: 'x' } }), 400, 'metadata.toString'],
  // 5000 levels fit in 16 KiB and used to overflow the validation pipe's stack (500).
  ['tags nested 5000 deep', put(`{"address":"10.0.0.1","port":80,"tags":${'['.repeat(5000)}${']'.repeat(5000)}}`), 400],
  ['a body nested 8000 deep', put(`${'['.repeat(8000)}${']'.repeat(8000)}`), 400],
  ['a 2 MiB body', put(Buffer.alloc(2 * 1024 * 1024, 'a')), 413],
  ['a 2 MiB chunked body', { ...put(Buffer.alloc(2 * 1024 * 1024, 'a')), headers: { 'transfer-encoding': 'chunked' } }, 413],
  ['broken JSON', put('{"address": "10.0.0.1", "port": 80'), 400],
  ['a JSON array', put('[]'), 400],
  ['JSON null', put('null'), 400],
  ['an empty JSON body', put(''), 400],
  ['a __proto__ key', put('{"address":"10.0.0.1","port":80,"__proto__":{"admin":true}}'), 400],
  ['an XML body', { ...put('<instance address="10.0.0.1" port="80"/>'), headers: { 'content-type': 'application/xml' } }, 415],
  // Only JSON is parsed (issue 14): any other non-empty body is a 415, not a confusing 400.
  ['a text/plain body', { ...put('address=10.0.0.1 port=80'), headers: { 'content-type': 'text/plain' } }, 415],
  ['a form body', { ...put('address=10.0.0.1&port=80'), headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
];

describe('input limits', () => {
  const secured = useSecuredGateway();

  // Objects, not rows: jest takes a trailing parameter missing from a row for a `done` callback.
  it.each(REJECTED.map(([what, req, status, field]) => ({ what, req, status, field })))('refuses $what', async ({ req, status, field }) => {
    const res = await rawRequest(secured.gw.url, { ...req, token: secured.tokens.admin });
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(typeof res.json?.message).toBe('string');
    if (field) expect(res.json).toMatchObject({ error: 'invalid_request', field });
  });

  it('wrote nothing for any of them, inside or outside the prefix', async () => {
    expect(await admin.instanceKeys(secured.gw.prefix)).toEqual([]);
    expect(await admin.keysOutside('/registry/')).toEqual([]);
  });

  it('accepts the limits themselves: 128-character names, 64 metadata keys, 32 tags, TTL 5 and 300, ports 1 and 65535', async () => {
    const service = 's'.repeat(128);
    const id = 'i'.repeat(128);
    const bodies = [
      { ...ok, port: 1, ttl: 5, metadata: metadata(64, 'v'.repeat(100)) },
      { ...ok, port: 65535, ttl: 300, tags: Array.from({ length: 32 }, (_, i) => `tag-${i}`), address: 'pod-1.payments.svc.cluster.local' },
    ];
    for (const body of bodies) {
      const res = await rawRequest(secured.gw.url, { method: 'PUT', path: instancePath(service, id), token: secured.tokens.admin, body });
      expect(res.status).toBeLessThan(300);
    }
    expect(await admin.instanceKeys(secured.gw.prefix)).toEqual([`${secured.gw.prefix}services/${service}/${id}`]);
    expect((await rawRequest(secured.gw.url, { method: 'DELETE', path: instancePath(service, id), token: secured.tokens.admin })).status).toBe(204);
  });
});
