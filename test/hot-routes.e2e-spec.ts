/**
 * The hot routes (registration, heartbeat, resolve, batch heartbeat) are served outside Nest's per-request
 * pipeline (issue 10): no Nest guard, interceptor or pipe runs for them, yet they answer exactly as
 * the Nest routes do, refusals included (status, JSON body, headers), and resolve serves encoded
 * answers that follow every change. Real etcd and Redis, authentication on.
 */
import { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyRequest } from 'fastify';
import { createGatewayApp } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway-config';
import { gatewayEnv, readMetric } from './support/gateway';
import { writeTokenFile, TestTokens } from './support/security';
import { rawRequest } from './support/http';
import { sharedStack } from './support/stack';
import { waitFor } from './support/wait';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** Counts the requests that reach Nest's interceptors, i.e. went through Nest's pipeline. */
class SeenByNest implements NestInterceptor {
  readonly routes: string[] = [];
  intercept(context: ExecutionContext, next: CallHandler) {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    this.routes.push(`${request.method} ${request.routeOptions.url}`);
    return next.handle();
  }
}

describe('hot routes outside Nest', () => {
  let app: NestFastifyApplication;
  let url: string;
  let tokens: TestTokens;
  const seen = new SeenByNest();

  beforeAll(async () => {
    tokens = writeTokenFile();
    const stack = sharedStack();
    app = await createGatewayApp(loadGatewayConfig(gatewayEnv(stack.etcd, stack.redis.url, { AUTH_DISABLED: 'false', AUTH_TOKENS_FILE: tokens.file })));
    app.useGlobalInterceptors(seen);
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
    tokens?.remove();
  });

  async function send(method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await rawRequest(url, { method, path, token, body, headers });
    return { status: res.status, headers: new Headers(res.headers as Record<string, string>), text: res.text };
  }

  const register = (service: string, id: string, extra: Record<string, unknown> = {}) =>
    send('PUT', `/v1/services/${service}/instances/${id}`, tokens.admin, { address: '10.0.0.7', port: 8080, ttl: 30, ...extra });

  /** What a client can tell apart: status, body, and the headers that carry meaning. */
  const shape = (a: Answer) => ({
    status: a.status,
    body: a.text ? JSON.parse(a.text) : undefined,
    contentType: a.headers.get('content-type'),
    wwwAuthenticate: a.headers.get('www-authenticate'),
    retryAfter: a.headers.get('retry-after'),
  });

  const metrics = async () => (await send('GET', '/metrics')).text;

  it('serves registration, heartbeat, resolve and batch heartbeat without Nest\'s pipeline, every other route through it', async () => {
    expect((await register('hot', 'a')).status).toBe(201);
    expect((await send('PUT', '/v1/services/hot/instances/a/heartbeat', tokens.admin)).status).toBe(204);
    const resolved = await send('GET', '/v1/services/hot', tokens.reader);
    expect([resolved.status, JSON.parse(resolved.text).instances.map((i: { id: string }) => i.id)]).toEqual([200, ['a']]);
    expect((await send('HEAD', '/v1/services/hot', tokens.reader)).status).toBe(200);
    const batch = await send('POST', '/v1/heartbeats', tokens.admin, { instances: [{ service: 'hot', id: 'a' }] });
    expect([batch.status, JSON.parse(batch.text)]).toEqual([200, { results: [{ service: 'hot', id: 'a', result: 'accepted' }] }]);
    expect((await send('GET', '/v1/services', tokens.reader)).status).toBe(200);
    expect(seen.routes).toEqual(['GET /v1/services']);
  });

  it('refuses a hot request exactly as Nest refuses the same failure on its routes, and counts it', async () => {
    const denied = async () => readMetric(await metrics(), 'registry_api_requests_denied_total');
    const before = await denied();
    const pairs: Array<[string, Answer, Answer]> = [
      ['no token', await send('PUT', '/v1/services/payments/instances/a/heartbeat'), await send('DELETE', '/v1/services/payments/instances/a')],
      ['unknown token', await send('GET', '/v1/services/payments', 'not-a-token-at-all'), await send('PATCH', '/v1/services/payments/instances/a', 'not-a-token-at-all', { status: 'UP' })],
      ['bad name', await send('PUT', '/v1/services/.x/instances/a/heartbeat', tokens.admin), await send('DELETE', '/v1/services/.x/instances/a', tokens.admin)],
      ['service outside the agent\'s globs', await send('PUT', '/v1/services/billing/instances/a/heartbeat', tokens.agent), await send('DELETE', '/v1/services/billing/instances/a', tokens.agent)],
      ['unknown instance', await send('PUT', '/v1/services/payments/instances/never/heartbeat', tokens.admin), await send('DELETE', '/v1/services/payments/instances/never', tokens.admin)],
    ];
    for (const [what, hot, nest] of pairs) {
      expect({ what, ...shape(hot) }).toEqual({ what, ...shape(nest) });
      expect(hot.status).toBeGreaterThanOrEqual(400);
      expect(hot.headers.get('x-request-id')).toBeTruthy();
    }
    expect(shape(pairs[0][1]).wwwAuthenticate).toBe('Bearer realm="registry-gateway"');
    // An empty path parameter gets Nest's not-found answer, as on Nest's routes.
    const empty = await send('PUT', '/v1/services//instances/a/heartbeat', tokens.admin);
    expect(shape(empty)).toEqual({ ...shape(await send('DELETE', '/v1/services//instances/a', tokens.admin)), body: { error: 'not_found', message: 'Cannot PUT /v1/services//instances/a/heartbeat' } });
    // no token, unknown token, forbidden: each once per route of the pair.
    expect((await denied()) - before).toBe(6);
    // A reader may resolve but not heartbeat: 403 from the hot route, in the same words as the guard's.
    const reader = await send('PUT', '/v1/services/payments/instances/a/heartbeat', tokens.reader);
    expect(shape(reader)).toMatchObject({ status: 403, body: { error: 'forbidden', message: expect.stringContaining('(role reader) may not') } });
    expect(readMetric(await metrics(), 'registry_http_request_duration_seconds_count', { route: '/v1/services/:service/instances/:id/heartbeat', status: '404' })).toBe(1);
  });

  it('registers through the hand check and through the pipe alike, and refuses a body exactly as the pipe does on Nest\'s routes', async () => {
    // A plainly valid body is taken by the hand check; a valid one it does not take as plain goes through the
    // pipe (a tag of 65 emoji: 130 UTF-16 units, 65 characters for class-validator's length rule).
    const created = await register('reg', 'a', { tags: ['canary'], metadata: { version: '1' }, zone: 'z1' });
    expect(created.status).toBe(201);
    const answer = JSON.parse(created.text);
    expect(answer).toMatchObject({ service: 'reg', id: 'a', instance: { address: '10.0.0.7', port: 8080, ttl: 30, tags: ['canary'], metadata: { version: '1' }, zone: 'z1', weight: 100, status: 'UP' } });
    expect(answer.instance).not.toHaveProperty('service');
    const replaced = await register('reg', 'a', { tags: ['canary'], metadata: { version: '1' }, zone: 'z1' });
    expect([replaced.status, JSON.parse(replaced.text).leaseId]).toEqual([200, answer.leaseId]);
    const emoji = '\u{1F600}'.repeat(65);
    const viaPipe = await register('reg', 'e', { tags: [emoji] });
    expect([viaPipe.status, JSON.parse(viaPipe.text).instance.tags]).toEqual([201, [emoji]]);

    // Refusals: the hot route's answer equals the Nest PATCH route's answer to the same body fault
    // where both routes validate the field, and otherwise names the field as the pipe does.
    const refusals: Array<[string, Record<string, unknown>, string]> = [
      ['port as a string', { address: '10.0.0.7', port: '80' }, 'port'],
      ['null zone', { address: '10.0.0.7', port: 80, zone: null }, 'zone'],
      ['unknown field', { address: '10.0.0.7', port: 80, colour: 'red' }, 'colour'],
      ['metadata key naming an Object member', { address: '10.0.0.7', port: 80, metadata: { constructor: 'x' } }, 'metadata.constructor'],
    ];
    for (const [what, body, field] of refusals) {
      const refused = await send('PUT', '/v1/services/reg/instances/b', tokens.admin, body);
      expect({ what, ...shape(refused) }).toMatchObject({ what, status: 400, body: { error: 'invalid_request', field } });
    }
    const patchFault = { status: 'UP', colour: 'red' };
    expect(shape(await send('PUT', '/v1/services/reg/instances/b', tokens.admin, { address: '10.0.0.7', port: 80, colour: 'red' })).body).toEqual(
      shape(await send('PATCH', '/v1/services/reg/instances/a', tokens.admin, patchFault)).body,
    );
    // Nothing was written for the refused bodies.
    expect((await send('PUT', '/v1/services/reg/instances/b/heartbeat', tokens.admin)).status).toBe(404);
    // A token without the registration right gets the guard's 403; a reader may not register.
    expect(shape(await send('PUT', '/v1/services/reg/instances/c', tokens.reader, { address: '10.0.0.7', port: 80 }))).toMatchObject({ status: 403, body: { error: 'forbidden' } });
  });

  it('answers a resolve from encoded bytes that follow every change of the service, per filter', async () => {
    expect((await register('enc', 'a', { zone: 'z1' })).status).toBe(201);
    const first = await send('GET', '/v1/services/enc', tokens.reader);
    const again = await send('GET', '/v1/services/enc', tokens.reader);
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(again.text).toBe(first.text);
    expect(again.headers.get('x-registry-index')).toBe(first.headers.get('x-registry-index'));
    expect(JSON.parse(first.text)).toMatchObject({ service: 'enc', stale: false, instances: [{ id: 'a', zone: 'z1' }] });

    expect((await register('enc', 'b', { zone: 'z2' })).status).toBe(201);
    const listed = async () => JSON.parse((await send('GET', '/v1/services/enc', tokens.reader)).text).instances.map((x: { id: string }) => x.id) as string[];
    await waitFor('b listed', async () => (await listed()).length === 2, 10_000, 100);
    expect(await listed()).toEqual(['a', 'b']);
    const zone = await send('GET', '/v1/services/enc?zone=z2', tokens.reader);
    expect(JSON.parse(zone.text).instances.map((x: { id: string }) => x.id)).toEqual(['b']);
    // The filtered answer did not replace the unfiltered one, nor the other way round.
    expect(JSON.parse((await send('GET', '/v1/services/enc', tokens.reader)).text).instances).toHaveLength(2);
    expect(JSON.parse((await send('GET', '/v1/services/enc?zone=z1', tokens.reader)).text).instances.map((x: { id: string }) => x.id)).toEqual(['a']);
    const badQuery = await send('GET', '/v1/services/enc?zone=a/b', tokens.reader);
    expect(shape(badQuery)).toMatchObject({ status: 400, body: { error: 'invalid_request', field: 'zone' } });
  });
});
