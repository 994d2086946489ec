/**
 * `POST /v1/heartbeats` (issue 10): node agents heartbeat up to 1000 instances in one request, with
 * one outcome per instance; an agent token heartbeats only its services; bad input is a 400 naming
 * the field, and changes nothing. Real etcd and Redis, authentication on.
 */
import { etcdAdmin } from './support/etcd-admin';
import { instancePath, useSecuredGateway, validRegistration } from './support/security';
import { rawRequest } from './support/http';
import { sleep } from './support/wait';

describe('POST /v1/heartbeats', () => {
  const ctx = useSecuredGateway();
  const batch = (token: string | undefined, body: unknown) => rawRequest(ctx.gw.url, { method: 'POST', path: '/v1/heartbeats', token, body });

  it('keeps every listed instance alive past its TTL and answers one outcome per instance, in order', async () => {
    for (const id of ['a', 'b']) {
      expect((await rawRequest(ctx.gw.url, { method: 'PUT', path: instancePath('payments', id), token: ctx.tokens.admin, body: { ...validRegistration, ttl: 5 } })).status).toBe(201);
    }
    const refs = [
      { service: 'payments', id: 'a' },
      { service: 'payments', id: 'b' },
      { service: 'payments', id: 'never-registered' },
    ];
    // 10 s of batch heartbeats only: twice the TTL, so the leases live only because of them.
    for (let i = 0; i < 10; i++) {
      const res = await batch(ctx.tokens.admin, { instances: refs });
      expect(res.status).toBe(200);
      expect(res.json.results).toEqual([
        { service: 'payments', id: 'a', result: 'accepted' },
        { service: 'payments', id: 'b', result: 'accepted' },
        { service: 'payments', id: 'never-registered', result: 'not_found' },
      ]);
      await sleep(1_000);
    }
    const keys = await etcdAdmin().listKeys(`${ctx.gw.prefix}services/payments/`);
    expect(keys).toEqual([`${ctx.gw.prefix}services/payments/a`, `${ctx.gw.prefix}services/payments/b`]);
  });

  it('lets an agent heartbeat only the services its globs cover; readers not at all', async () => {
    const res = await batch(ctx.tokens.agent, { instances: [{ service: 'payments', id: 'a' }, { service: 'orders', id: 'x' }] });
    expect(res.status).toBe(200);
    expect(res.json.results.map((r: { result: string }) => r.result)).toEqual(['accepted', 'forbidden']);
    expect((await batch(ctx.tokens.reader, { instances: [{ service: 'payments', id: 'a' }] })).status).toBe(403);
    expect((await batch(undefined, { instances: [{ service: 'payments', id: 'a' }] })).status).toBe(401);
  });

  it('refuses bad batches with a 400 naming the field, and bodies beyond its limit with 413', async () => {
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ service: 'payments', id: `p${i}` }));
    const cases: Array<[unknown, string]> = [
      [{ instances: [] }, 'instances'],
      [{ instances: tooMany }, 'instances'],
      [{ instances: [{ service: '../etc', id: 'a' }] }, 'instances.0.service'],
      [{ instances: [{ service: 'payments' }] }, 'instances.0.id'],
      [{ instances: [{ service: 'payments', id: 'a', extra: 1 }] }, 'instances.0.extra'],
      [{}, 'instances'],
    ];
    for (const [body, field] of cases) {
      const res = await batch(ctx.tokens.admin, body);
      expect([res.status, res.json?.field]).toEqual([400, field]);
    }
    const huge = { instances: Array.from({ length: 1000 }, (_, i) => ({ service: 'x'.repeat(128), id: `${'y'.repeat(120)}${i}` })) };
    expect((await batch(ctx.tokens.admin, huge)).status).toBe(200);
    const registration = { ...validRegistration, metadata: { blob: 'x'.repeat(400) }, tags: Array.from({ length: 32 }, (_, i) => `${'t'.repeat(120)}${i}`) };
    // The batch route's larger limit is its own: a registration body is still held to 16 KiB.
    const bigRegistration = { ...registration, tags: [...registration.tags], metadata: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(300)])) };
    expect((await rawRequest(ctx.gw.url, { method: 'PUT', path: instancePath('payments', 'big'), token: ctx.tokens.admin, body: bigRegistration })).status).toBe(413);
  });
});
