/**
 * Issue 7 load shedding: a registration burst far beyond the etcd write queue is answered with fast
 * 503s + Retry-After instead of piling up, the gateway stays live, and every registration it
 * accepted (2xx) is in etcd while none it refused is.
 */
import { etcdAdmin } from './support/etcd-admin';
import { instancePath, useSecuredGateway, validRegistration } from './support/security';
import { rawRequest } from './support/http';

jest.setTimeout(120_000);

describe('load shedding in front of etcd writes', () => {
  // One write at a time and two waiting: any real burst overflows it.
  const secured = useSecuredGateway({ WRITE_CONCURRENCY: '1', WRITE_QUEUE_CAPACITY: '2' });

  it('answers a burst beyond the write queue with 503 + Retry-After and keeps every accepted registration', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `pod-${i}`);
    const results = await Promise.all(
      ids.map(async (id) => ({ id, res: await rawRequest(secured.gw.url, { method: 'PUT', path: instancePath('payments', id), token: secured.tokens.admin, body: validRegistration }) })),
    );

    const accepted = results.filter((r) => r.res.status >= 200 && r.res.status < 300).map((r) => r.id);
    const shed = results.filter((r) => r.res.status === 503);
    expect(results.filter((r) => r.res.status !== 201 && r.res.status !== 503).map((r) => `${r.id}: ${r.res.status} ${r.res.text}`)).toEqual([]);
    expect(accepted.length).toBeGreaterThan(0);
    expect(shed.length).toBeGreaterThan(0);
    for (const { res } of shed) {
      expect(res.json).toMatchObject({ error: 'overloaded' });
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }

    // Still live and still writing once the burst is over.
    expect((await rawRequest(secured.gw.url, { method: 'GET', path: '/metrics' })).status).toBe(200);
    const live = await rawRequest(secured.gw.url, { method: 'GET', path: '/health/live' });
    if (live.status !== 404) expect(live.status).toBe(200);
    expect((await rawRequest(secured.gw.url, { method: 'PUT', path: instancePath('payments', 'after-burst'), token: secured.tokens.admin, body: validRegistration })).status).toBe(201);

    const stored = (await etcdAdmin().listKeys(`${secured.gw.prefix}services/payments/`)).map((k) => k.split('/').pop());
    expect(stored.sort()).toEqual([...accepted, 'after-burst'].sort());
  });
});
