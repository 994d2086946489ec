/**
 * Issue 7: API tokens and scopes, per-token registration rate limits, and start-up refusal without a
 * valid token file, through real HTTP against the shared etcd. Tokens must never show up in
 * responses, metrics or logs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdAdmin } from './support/etcd-admin';
import { gatewayEnv, GatewayProcess, GatewayUnderTest, startGateway, startGatewayProcess } from './support/gateway';
import { instancePath, useSecuredGateway, validRegistration, writeTokenFile } from './support/security';
import { sharedStack } from './support/stack';
import { HttpResponse, rawRequest } from './support/http';

jest.setTimeout(120_000);

const admin = etcdAdmin();

/** Keys under the gateway's prefix, as "<service>/<id>". */
async function storedInstances(gw: GatewayUnderTest): Promise<string[]> {
  return (await admin.instanceKeys(gw.prefix)).map((k) => k.slice(`${gw.prefix}services/`.length));
}

function expectJsonError(res: HttpResponse, status: number, error: string): void {
  expect({ status: res.status, error: res.json?.error }).toEqual({ status, error });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(typeof res.json.message).toBe('string');
}

describe('API tokens and scopes', () => {
  const secured = useSecuredGateway();
  const seen: string[] = [];
  const send = async (method: string, p: string, token?: string, body?: unknown) => {
    const res = await rawRequest(secured.gw.url, { method, path: p, token, body });
    seen.push(JSON.stringify(res.headers), res.text);
    return res;
  };

  it('answers 401 with WWW-Authenticate to every instance call without a token, and writes nothing', async () => {
    for (const [method, p, body] of [
      ['PUT', instancePath('payments', 'p1'), validRegistration],
      ['PUT', `${instancePath('payments', 'p1')}/heartbeat`, undefined],
      ['DELETE', instancePath('payments', 'p1'), undefined],
      ['PATCH', instancePath('payments', 'p1'), { weight: 1 }],
    ] as const) {
      const res = await send(method, p, undefined, body);
      if (res.status === 404 && method === 'PATCH') continue; // PATCH lands with the resolve endpoints
      expectJsonError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="registry-gateway"');
    }
    expect(await storedInstances(secured.gw)).toEqual([]);
  });

  it('answers 401 to an unknown or malformed token', async () => {
    for (const authorization of [`Bearer ${secured.tokens.admin}x`, `Basic ${secured.tokens.admin}`, 'Bearer', `Bearer ${secured.tokens.admin.slice(1)}`]) {
      const res = await rawRequest(secured.gw.url, { method: 'PUT', path: instancePath('payments', 'p1'), body: validRegistration, headers: { authorization } });
      seen.push(res.text);
      expectJsonError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="registry-gateway", error="invalid_token"');
    }
    expect(await storedInstances(secured.gw)).toEqual([]);
  });

  it('answers 403 to a reader registering, heartbeating or deregistering', async () => {
    expectJsonError(await send('PUT', instancePath('payments', 'p1'), secured.tokens.reader, validRegistration), 403, 'forbidden');
    expectJsonError(await send('PUT', `${instancePath('payments', 'p1')}/heartbeat`, secured.tokens.reader), 403, 'forbidden');
    expectJsonError(await send('DELETE', instancePath('payments', 'p1'), secured.tokens.reader), 403, 'forbidden');
    expect(await storedInstances(secured.gw)).toEqual([]);
  });

  it('answers 403 to an agent outside its globs, and 400 to a malformed name before any scope check', async () => {
    const outside = await send('PUT', instancePath('billing', 'b1'), secured.tokens.agent, validRegistration);
    expectJsonError(outside, 403, 'forbidden');
    expect(outside.json.message).toBe('token "payments-agent" may not act on service "billing"');
    expectJsonError(await send('PUT', instancePath('paymentsx', 'b1'), secured.tokens.agent, validRegistration), 403, 'forbidden');
    // Issue 14: a bad name is the caller's mistake, named as such, not a permission problem.
    const malformed = await send('PUT', instancePath('payments/../billing', 'b1'), secured.tokens.agent, validRegistration);
    expectJsonError(malformed, 400, 'invalid_request');
    expect(malformed.json.field).toBe('service');
    expect(await storedInstances(secured.gw)).toEqual([]);
  });

  it('lets an agent register, heartbeat and deregister within its globs', async () => {
    const created = await send('PUT', instancePath('payments-eu', 'p1'), secured.tokens.agent, validRegistration);
    expect(created.status).toBe(201);
    expect((await send('PUT', `${instancePath('payments-eu', 'p1')}/heartbeat`, secured.tokens.agent)).status).toBe(204);
    expect(await storedInstances(secured.gw)).toEqual(['payments-eu/p1']);
    expect((await send('DELETE', instancePath('payments-eu', 'p1'), secured.tokens.agent)).status).toBe(204);
    expect(await storedInstances(secured.gw)).toEqual([]);
  });

  it('lets an admin register anywhere', async () => {
    expect((await send('PUT', instancePath('billing', 'b1'), secured.tokens.admin, validRegistration)).status).toBe(201);
    expect((await send('PUT', instancePath('payments', 'p2'), secured.tokens.admin, validRegistration)).status).toBe(201);
    expect(await storedInstances(secured.gw)).toEqual(['billing/b1', 'payments/p2']);
  });

  it('still validates input for authorized callers', async () => {
    expectJsonError(await send('PUT', instancePath('payments', 'p3'), secured.tokens.admin, { ...validRegistration, port: 0 }), 400, 'invalid_request');
    expect(await storedInstances(secured.gw)).toEqual(['billing/b1', 'payments/p2']);
  });

  it('covers the resolve endpoints: readers and admins see every service, agents only their own', async () => {
    const probe = await send('GET', '/v1/services/billing', secured.tokens.admin);
    if (probe.status === 404 && /Cannot GET/.test(probe.text)) {
      console.warn('GET /v1/services/:service is not implemented yet: resolve access checks skipped');
      return;
    }
    expect(probe.status).toBe(200);
    expectJsonError(await send('GET', '/v1/services/billing'), 401, 'unauthorized');
    expect((await send('GET', '/v1/services/billing', secured.tokens.reader)).status).toBe(200);
    expect((await send('GET', '/v1/services/payments', secured.tokens.agent)).status).toBe(200);
    expectJsonError(await send('GET', '/v1/services/billing', secured.tokens.agent), 403, 'forbidden');
    expectJsonError(await send('GET', '/v1/services'), 401, 'unauthorized');
    expect((await send('GET', '/v1/services', secured.tokens.reader)).status).toBe(200);
    expectJsonError(await send('GET', '/v1/services', secured.tokens.agent), 403, 'forbidden');
    const patch = await send('PATCH', instancePath('billing', 'b1'), secured.tokens.reader, { weight: 5 });
    expectJsonError(patch, 403, 'forbidden');
  });

  it('keeps /metrics, /health/*, /docs and /openapi.json public', async () => {
    expect((await send('GET', '/metrics')).status).toBe(200);
    expect((await send('GET', '/openapi.json')).status).toBe(200);
    expect((await send('GET', '/docs')).status).toBeLessThan(400);
    for (const probe of ['/health/live', '/health/ready']) {
      const res = await send('GET', probe);
      expect(res.status).not.toBe(401);
      expect(res.status).not.toBe(403);
    }
  });

  it('never echoes a token in a response or in /metrics, and counts refusals by reason', async () => {
    const metrics = (await send('GET', '/metrics')).text;
    for (const s of secured.tokens.secrets) {
      for (const text of seen) expect(text).not.toContain(s);
      expect(metrics).not.toContain(s);
    }
    expect(await secured.gw.metric('registry_api_requests_denied_total', { reason: 'missing_token' })).toBeGreaterThanOrEqual(3);
    expect(await secured.gw.metric('registry_api_requests_denied_total', { reason: 'invalid_token' })).toBe(4);
    expect(await secured.gw.metric('registry_api_requests_denied_total', { reason: 'forbidden' })).toBeGreaterThanOrEqual(6);
  });
});

describe('per-token registration rate limit', () => {
  const secured = useSecuredGateway({ RATE_LIMIT_REGISTRATIONS_PER_SECOND: '1', RATE_LIMIT_REGISTRATIONS_BURST: '3' });

  it('answers 429 with Retry-After beyond the burst, for that token only, and writes nothing for it', async () => {
    const register = (token: string, id: string) => rawRequest(secured.gw.url, { method: 'PUT', path: instancePath('payments', id), token, body: validRegistration });
    for (const id of ['a1', 'a2', 'a3']) expect((await register(secured.tokens.agent, id)).status).toBe(201);
    const limited = await register(secured.tokens.agent, 'a4');
    expectJsonError(limited, 429, 'rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    // Heartbeats and other secured.tokens are not limited by it.
    for (let i = 0; i < 5; i++) expect((await rawRequest(secured.gw.url, { method: 'PUT', path: `${instancePath('payments', 'a1')}/heartbeat`, token: secured.tokens.agent })).status).toBe(204);
    expect((await register(secured.tokens.admin, 'b1')).status).toBe(201);

    expect(await storedInstances(secured.gw)).toEqual(['payments/a1', 'payments/a2', 'payments/a3', 'payments/b1']);
    expect(await secured.gw.metric('registry_api_requests_denied_total', { reason: 'rate_limited' })).toBe(1);
  });
});

describe('start-up without a valid token file', () => {
  const stack = sharedStack();
  const env = (overrides: Record<string, string>) => gatewayEnv(stack.etcd, stack.redis.url, { LOG_LEVEL: 'info', AUTH_DISABLED: 'false', ...overrides });
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-badtokens-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses to build the app without AUTH_TOKENS_FILE unless AUTH_DISABLED=true', async () => {
    await expect(startGateway(stack.etcd, stack.redis.url, { AUTH_DISABLED: 'false' })).rejects.toThrow(/AUTH_TOKENS_FILE is not set/);
  });

  it('exits non-zero naming AUTH_TOKENS_FILE when it is missing', async () => {
    const proc = await startGatewayProcess(env({}));
    expect(await proc.exited).not.toBe(0);
    expect(proc.output()).toMatch(/AUTH_TOKENS_FILE is not set/);
  });

  it('exits non-zero naming AUTH_TOKENS_FILE and the problem for a bad file, without printing the token', async () => {
    const token = 'a-perfectly-secret-token-value';
    const file = path.join(dir, 'tokens.json');
    fs.writeFileSync(file, JSON.stringify({ tokens: [{ name: 'ops', token, role: 'superuser' }] }));
    const proc = await startGatewayProcess(env({ AUTH_TOKENS_FILE: file }));
    expect(await proc.exited).not.toBe(0);
    expect(proc.output()).toMatch(/AUTH_TOKENS_FILE \(.*tokens\.json\): tokens\[0\]\.role: Invalid option/);
    expect(proc.output()).not.toContain(token);
  });

  it('never logs a token, valid or not, even at trace level', async () => {
    const tokens = writeTokenFile();
    let proc: GatewayProcess | undefined;
    try {
      proc = await startGatewayProcess(
        env({ AUTH_TOKENS_FILE: tokens.file, LOG_LEVEL: 'trace', RATE_LIMIT_REGISTRATIONS_PER_SECOND: '1', RATE_LIMIT_REGISTRATIONS_BURST: '2' }),
      );
      const wrong = 'wrong-token-that-must-not-be-logged';
      const calls = [
        { method: 'PUT', path: instancePath('payments', 'p1'), token: tokens.agent, body: validRegistration },
        { method: 'PUT', path: instancePath('payments', 'p2'), token: tokens.agent, body: validRegistration },
        { method: 'PUT', path: instancePath('payments', 'p3'), token: tokens.agent, body: validRegistration }, // 429
        { method: 'PUT', path: instancePath('billing', 'p1'), token: tokens.agent, body: validRegistration }, // 403
        { method: 'PUT', path: instancePath('payments', 'p1'), token: tokens.reader, body: validRegistration }, // 403
        { method: 'PUT', path: instancePath('payments', 'p1'), token: wrong, body: validRegistration }, // 401
        { method: 'PUT', path: instancePath('payments', 'p1'), token: tokens.admin, body: '{"broken' }, // 400
        { method: 'PUT', path: instancePath('payments', 'p1'), token: tokens.admin, body: Buffer.alloc(64 * 1024, 'x') }, // 413
        { method: 'DELETE', path: instancePath('payments', 'nope'), token: tokens.admin }, // 404
      ];
      const statuses: number[] = [];
      for (const c of calls) statuses.push((await rawRequest(proc.url, c)).status);
      expect(statuses).toEqual([201, 201, 429, 403, 403, 401, 400, 413, 404]);
      proc.child.kill('SIGTERM');
      await proc.exited;
      expect(proc.output()).toMatch(/API token\(s\) loaded from AUTH_TOKENS_FILE/);
      for (const s of [...tokens.secrets, wrong]) expect(proc.output()).not.toContain(s);
    } finally {
      if (proc && proc.child.exitCode === null) {
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
      tokens.remove();
    }
  });
});
