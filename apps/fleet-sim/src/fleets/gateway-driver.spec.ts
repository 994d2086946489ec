import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { SimPod } from './fleet-driver';
import { GatewayDriver, retryDelayMs } from './gateway-driver';

describe('retryDelayMs', () => {
  it('waits at least Retry-After, with under a second of jitter', () => {
    expect(retryDelayMs(2, 0, () => 0)).toBe(2000);
    expect(retryDelayMs(2, 5, () => 0.999)).toBe(2999);
  });

  it('backs off exponentially, capped at 5 s, when the answer had no Retry-After', () => {
    expect(retryDelayMs(undefined, 0, () => 0)).toBe(250);
    expect(retryDelayMs(undefined, 3, () => 0)).toBe(2000);
    expect(retryDelayMs(undefined, 10, () => 0)).toBe(5000);
  });
});

/**
 * A local stub answering registrations from a script (no etcd, no gateway): what the driver sends and
 * how it treats 503/429 and Retry-After, over the raw pool and over node:http.
 */
describe('GatewayDriver.register', () => {
  let server: http.Server;
  let url: string;
  let script: Array<{ status: number; headers?: Record<string, string> }> = [];
  const seen: Array<{ method?: string; url?: string; rawHeaders: string[]; body: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') });
        if (req.url?.endsWith('/heartbeat')) return void res.writeHead(204).end();
        const next = script.shift() ?? { status: 201 };
        const body = next.status === 201 ? '{"leaseId":"7","ttl":60}' : '{"error":"overloaded","message":"try later"}';
        res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers }).end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    seen.length = 0;
    script = [];
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const pod = (index: number): SimPod => ({ index, service: 'svc-1', id: `pod-${index}`, key: `/x/services/svc-1/pod-${index}`, registered: false });
  const expectedBody = { address: '10.0.1.2', port: 8080, ttl: 60, metadata: { version: '1.0.0' }, tags: ['sim'], zone: 'zone-0' };
  /** The header lines the raw pool writes, and nothing else (node:http adds at least Connection). */
  const rawPoolHeaders = (json: string) => ['host', new URL(url).host, 'content-type', 'application/json', 'content-length', String(Buffer.byteLength(json))];

  it('retries 503 and 429 after their Retry-After over the raw pool, then counts the success', async () => {
    const driver = new GatewayDriver([url], 60, 5000, 'sticky', { rawHttp: true, maxSockets: 2 });
    script = [
      { status: 503, headers: { 'retry-after': '0' } },
      { status: 429, headers: { 'retry-after': '0' } },
    ];
    const p = pod(258);
    expect(await driver.register(p)).toEqual({ ok: true, outcome: '201' });
    expect(p.registered).toBe(true);
    expect(driver.retryStats).toEqual({ retried: { '503': 1, '429': 1 }, succeededAfterRetry: 1, gaveUp: 0, retryAfterSeconds: { min: 0, max: 0 } });
    expect(seen).toHaveLength(3);
    for (const s of seen) {
      expect(s).toMatchObject({ method: 'PUT', url: '/v1/services/svc-1/instances/pod-258' });
      expect(JSON.parse(s.body)).toEqual(expectedBody);
      expect(s.rawHeaders).toEqual(rawPoolHeaders(s.body));
    }
    // Registrations have sockets of their own: none of them counts as a heartbeat.
    expect(driver.heartbeatsWritten).toBe(0);
    await driver.close();
  });

  it('gives up on a 503 once the deadline has passed, and does not retry other failures', async () => {
    const driver = new GatewayDriver([url], 60, 5000, 'sticky', { rawHttp: true, registerDeadlineMs: 0 });
    script = [{ status: 503, headers: { 'retry-after': '30' } }, { status: 400 }];
    const shed = pod(258);
    expect(await driver.register(shed)).toEqual({ ok: false, outcome: '503' });
    expect(shed.registered).toBe(false);
    const refused = pod(259);
    expect(await driver.register(refused)).toEqual({ ok: false, outcome: '400' });
    expect(driver.retryStats).toEqual({ retried: {}, succeededAfterRetry: 0, gaveUp: 1, retryAfterSeconds: { min: Infinity, max: 0 } });
    expect(seen).toHaveLength(2);
    await driver.close();
  });

  it('reports a network error by its label', async () => {
    const driver = new GatewayDriver(['http://127.0.0.1:1'], 60, 5000, 'sticky', { rawHttp: true });
    expect(await driver.register(pod(1))).toEqual({ ok: false, outcome: 'ECONNREFUSED' });
    await driver.close();
  });

  it('re-registers a pod without a lease on its heartbeat tick over the registration pool', async () => {
    const driver = new GatewayDriver([url], 60, 5000, 'sticky', { rawHttp: true });
    const p = pod(258);
    const first = await new Promise((resolve) => driver.beatRaw(p, 1, resolve));
    expect(first).toEqual({ ok: true, outcome: 're-registered' });
    const second = await new Promise((resolve) => driver.beatRaw(p, 2, resolve));
    expect(second).toEqual({ ok: true, outcome: '204' });
    expect(seen.map((s) => s.url)).toEqual(['/v1/services/svc-1/instances/pod-258', '/v1/services/svc-1/instances/pod-258/heartbeat']);
    expect(seen[0].rawHeaders).toEqual(rawPoolHeaders(seen[0].body));
    expect(driver.heartbeatsWritten).toBe(1);
    await driver.close();
  });

  it('without rawHttp sends the same registration over node:http, with the same retry semantics', async () => {
    const driver = new GatewayDriver([url], 60, 5000, 'sticky');
    script = [{ status: 503, headers: { 'retry-after': '0' } }];
    expect(await driver.register(pod(258))).toEqual({ ok: true, outcome: '201' });
    expect(driver.retryStats).toEqual({ retried: { '503': 1 }, succeededAfterRetry: 1, gaveUp: 0, retryAfterSeconds: { min: 0, max: 0 } });
    expect(seen).toHaveLength(2);
    expect(JSON.parse(seen[0].body)).toEqual(expectedBody);
    expect(seen[0].rawHeaders).not.toEqual(rawPoolHeaders(seen[0].body));
    await driver.close();
  });
});
