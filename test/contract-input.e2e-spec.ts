/**
 * Issue 14: each surprise users found at the edges of the API, through real HTTP against a gateway
 * with authentication on: `null` fields, bodiless heartbeats with a content type, non-JSON bodies,
 * type errors, the order of name validation and authorization, router errors, and CORS.
 * Every refusal is a JSON error naming the field, and nothing is written.
 */
import { etcdAdmin } from './support/etcd-admin';
import { GatewayUnderTest } from './support/gateway';
import { instancePath, startSecuredGateway, useSecuredGateway, validRegistration, writeTokenFile } from './support/security';
import { HttpRequest, HttpResponse, rawRequest } from './support/http';

jest.setTimeout(120_000);

const admin = etcdAdmin();

function expectError(res: HttpResponse, status: number, error: string, field?: string): void {
  expect({ status: res.status, error: res.json?.error, field: res.json?.field }).toEqual({ status, error, field });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(typeof res.json.message).toBe('string');
}

describe('API contract at the edges', () => {
  const secured = useSecuredGateway();
  const as = (token: 'admin' | 'agent' | 'reader' | undefined, req: Omit<HttpRequest, 'token'>) =>
    rawRequest(secured.gw.url, { ...req, token: token && secured.tokens[token] });
  const stored = () => admin.instanceKeys(secured.gw.prefix);

  describe('null', () => {
    it.each(['address', 'port', 'ttl', 'metadata', 'tags', 'zone', 'weight', 'status'])('refuses "%s": null on register, naming the field', async (field) => {
      const res = await as('admin', { method: 'PUT', path: instancePath('payments', 'nulls'), body: { ...validRegistration, [field]: null } });
      expectError(res, 400, 'invalid_request', field);
      expect(res.json.message).toBe(`${field} must not be null`);
    });

    it.each([
      [{ status: null }, 'status'],
      [{ status: 'DOWN', metadata: null }, 'metadata'],
    ])('refuses %p on PATCH, naming the field', async (body, field) => {
      expect((await as('admin', { method: 'PUT', path: instancePath('payments', 'patched'), body: validRegistration })).status).toBe(201);
      expectError(await as('admin', { method: 'PATCH', path: instancePath('payments', 'patched'), body }), 400, 'invalid_request', field);
      expect((await as('admin', { method: 'DELETE', path: instancePath('payments', 'patched') })).status).toBe(204);
    });

    it('stored none of them, and a lookup never shows a null zone', async () => {
      expect(await stored()).toEqual([]);
      expect((await as('admin', { method: 'PUT', path: instancePath('payments', 'zoneless'), body: validRegistration })).status).toBe(201);
      const lookup = await as('admin', { method: 'GET', path: '/v1/services/payments' });
      expect(lookup.json.instances).toEqual([expect.not.objectContaining({ zone: expect.anything() })]);
      expect(lookup.text).not.toContain('null');
      expect((await as('admin', { method: 'DELETE', path: instancePath('payments', 'zoneless') })).status).toBe(204);
    });
  });

  it.each([
    ['port', '80', 'port must be an integer from 1 to 65535'],
    ['port', 80.5, 'port must be an integer from 1 to 65535'],
    ['ttl', '30', 'ttl must be an integer from 5 to 300'],
    ['weight', 7.25, 'weight must be an integer from 0 to 1000'],
  ])('says %s must be an integer when it gets %p', async (field, value, message) => {
    const res = await as('admin', { method: 'PUT', path: instancePath('payments', 'types'), body: { ...validRegistration, [field]: value } });
    expectError(res, 400, 'invalid_request', field);
    expect(res.json.message).toBe(message);
  });

  describe('content types', () => {
    it.each(['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream'])(
      'accepts a heartbeat and a deregistration with content-type %s and no body',
      async (contentType) => {
        expect((await as('agent', { method: 'PUT', path: instancePath('payments', 'ct'), body: validRegistration })).status).toBe(201);
        for (const headers of [
          { 'content-type': contentType, 'content-length': '0' } as Record<string, string>,
          { 'content-type': contentType, 'transfer-encoding': 'chunked' },
        ]) {
          expect((await as('agent', { method: 'PUT', path: `${instancePath('payments', 'ct')}/heartbeat`, headers })).status).toBe(204);
        }
        expect((await as('agent', { method: 'DELETE', path: instancePath('payments', 'ct'), headers: { 'content-type': contentType, 'content-length': '0' } })).status).toBe(204);
        expect(await stored()).toEqual([]);
      },
    );

    const json = JSON.stringify(validRegistration);
    it.each([
      ['text/plain', json],
      ['text/plain', 'address=10.0.0.7 port=8080'],
      ['application/x-www-form-urlencoded', 'address=10.0.0.7&port=8080'],
      ['application/xml', '<instance address="10.0.0.7" port="8080"/>'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="port"\r\n\r\n8080\r\n--x--'],
    ])('answers 415 to a %s body on register and PATCH, and writes nothing', async (contentType, body) => {
      const headers = { 'content-type': contentType };
      expectError(await as('admin', { method: 'PUT', path: instancePath('payments', 'ct'), body, headers }), 415, 'unsupported_media_type');
      expectError(await as('admin', { method: 'PATCH', path: instancePath('payments', 'ct'), body: '{"status":"DOWN"}', headers }), 415, 'unsupported_media_type');
      expect(await stored()).toEqual([]);
    });

    it('answers 415 to a body without a content type', async () => {
      // An array of headers is sent exactly as written: no JSON content type is added to this body.
      const body = JSON.stringify(validRegistration);
      const res = await as('admin', { method: 'PUT', path: instancePath('payments', 'ct'), body, headers: ['content-length', String(body.length)] });
      expect(res.status).toBe(415);
      expect(JSON.parse(res.text)).toMatchObject({ error: 'unsupported_media_type' });
      expect(await stored()).toEqual([]);
    });

    it('answers 400 to a register without a body, whatever the content type says', async () => {
      for (const headers of [{ 'content-type': 'application/json', 'content-length': '0' }, { 'content-length': '0' }] as Array<Record<string, string>>) {
        const res = await as('admin', { method: 'PUT', path: instancePath('payments', 'ct'), headers });
        expectError(res, 400, 'invalid_request');
        expect(res.json.message).toBe('the body must be a JSON object');
      }
      expect(await stored()).toEqual([]);
    });
  });

  describe('names are checked before the token', () => {
    const bad = instancePath('payments/../billing', 'p1');
    it.each([
      ['an agent', 'agent' as const, bad, 'service'],
      ['an agent, bad id', 'agent' as const, instancePath('payments', '../p1'), 'id'],
      ['a reader', 'reader' as const, bad, 'service'],
      ['no token at all', undefined, bad, 'service'],
    ])('answers 400 naming the field to %s', async (_who, token, path, field) => {
      expectError(await as(token, { method: 'PUT', path, body: validRegistration }), 400, 'invalid_request', field);
      expectError(await as(token, { method: 'PUT', path: `${path}/heartbeat` }), 400, 'invalid_request', field);
    });

    it('still answers 401 without a token, and 403 outside the globs, for valid names', async () => {
      expectError(await as(undefined, { method: 'PUT', path: instancePath('payments', 'p1'), body: validRegistration }), 401, 'unauthorized');
      expectError(await as('agent', { method: 'PUT', path: instancePath('billing', 'p1'), body: validRegistration }), 403, 'forbidden');
      expectError(await as(undefined, { method: 'GET', path: '/v1/services/a%20b' }), 400, 'invalid_request', 'service');
      expect(await stored()).toEqual([]);
    });
  });

  it("answers the router's own refusals in the same JSON shape, without echoing the path", async () => {
    const badEscape = await as('admin', { method: 'PUT', path: '/v1/services/pay%zzments/instances/p1', body: validRegistration });
    expectError(badEscape, 400, 'invalid_request');
    const tooLong = await as('admin', { method: 'PUT', path: instancePath('p'.repeat(1100), 'p1'), body: validRegistration });
    expectError(tooLong, 414, 'uri_too_long');
    expect(tooLong.text).not.toContain('ppppp');
    expect(await stored()).toEqual([]);
  });
});

describe('CORS', () => {
  const origin = 'https://dashboard.example:8443';
  const preflight = (gw: GatewayUnderTest, from: string) =>
    rawRequest(gw.url, {
      method: 'OPTIONS',
      path: instancePath('payments', 'p1'),
      headers: { origin: from, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type' },
    });

  it('is off by default: OPTIONS is 404 and no answer allows another origin', async () => {
    const tokens = writeTokenFile();
    const gw = await startSecuredGateway(tokens);
    try {
      const res = await preflight(gw, origin);
      expect(res.status).toBe(404);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      const get = await rawRequest(gw.url, { method: 'GET', path: '/v1/services/payments', token: tokens.reader, headers: { origin } });
      expect(get.status).toBe(200);
      expect(get.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await gw.close();
      tokens.remove();
    }
  });

  describe(`with CORS_ORIGINS=${origin},http://other.example`, () => {
    const secured = useSecuredGateway({ CORS_ORIGINS: `${origin},http://other.example` });

    it('answers a preflight from a listed origin, for the methods and headers the API uses', async () => {
      const res = await preflight(secured.gw, origin);
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(String(res.headers['access-control-allow-methods']).split(/, */)).toEqual(expect.arrayContaining(['GET', 'PUT', 'PATCH', 'DELETE']));
      expect(String(res.headers['access-control-allow-headers']).toLowerCase().split(/, */)).toEqual(expect.arrayContaining(['authorization', 'content-type']));
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    });

    it('lets a browser read Retry-After, X-Request-Id and X-Registry-Index, on answers and refusals alike', async () => {
      for (const res of [
        await rawRequest(secured.gw.url, { method: 'GET', path: '/v1/services/payments', token: secured.tokens.reader, headers: { origin } }),
        await rawRequest(secured.gw.url, { method: 'GET', path: '/v1/services/payments', headers: { origin } }),
      ]) {
        expect(res.headers['access-control-allow-origin']).toBe(origin);
        expect(String(res.headers['access-control-expose-headers']).toLowerCase().split(/, */)).toEqual(expect.arrayContaining(['retry-after', 'x-request-id', 'x-registry-index']));
      }
    });

    it('allows no other origin', async () => {
      const res = await preflight(secured.gw, 'https://evil.example');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      const get = await rawRequest(secured.gw.url, { method: 'GET', path: '/v1/services/payments', token: secured.tokens.reader, headers: { origin: 'https://evil.example' } });
      expect(get.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('still requires a token for the actual request', async () => {
      const res = await rawRequest(secured.gw.url, { method: 'PUT', path: instancePath('payments', 'p1'), body: validRegistration, headers: { origin } });
      expectError(res, 401, 'unauthorized');
      expect(await admin.instanceKeys(secured.gw.prefix)).toEqual([]);
    });
  });
});
