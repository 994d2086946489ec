import { ExecutionContext, ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { InvalidRequestError, RateLimitedError } from '@app/registry';
import { ApiAuthGuard, bearerToken } from './api-auth.guard';
import { describeError } from '../http/error.filter';
import { testAuthorizer } from './request-auth.fixture';

const AGENT = 'agent-token-0123456789';
const READER = 'reader-token-0123456789';
const INSTANCE = '/v1/services/:service/instances/:id';

function setup(burst = 100) {
  const { authorizer, deniedByReason } = testAuthorizer(
    [
      { name: 'payments-agent', token: AGENT, role: 'agent', services: ['payments*'] },
      { name: 'dashboards', token: READER, role: 'reader' },
    ],
    burst,
  );
  const guard = new ApiAuthGuard(authorizer);
  const denied = async (reason: string) => (await deniedByReason())[reason] ?? 0;
  return { guard, denied };
}

function request(method: string, url: string | undefined, params: Record<string, string>, authorization?: string) {
  const req = { method, routeOptions: { url }, params, headers: authorization === undefined ? {} : { authorization } };
  const context = { switchToHttp: () => ({ getRequest: () => req }) } as unknown as ExecutionContext;
  return { context };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('ApiAuthGuard', () => {
  it('lets public routes through without a token', () => {
    const { guard } = setup();
    expect(guard.canActivate(request('GET', '/metrics', {}).context)).toBe(true);
    expect(guard.canActivate(request('GET', '/health/ready', {}).context)).toBe(true);
  });

  it('answers 401 with WWW-Authenticate for a missing, malformed or unknown token', async () => {
    const { guard, denied } = setup();
    for (const [authorization, challenge] of [
      [undefined, 'Bearer realm="registry-gateway"'],
      [`Basic ${AGENT}`, 'Bearer realm="registry-gateway", error="invalid_token"'],
      ['Bearer', 'Bearer realm="registry-gateway", error="invalid_token"'],
      ['Bearer not-a-known-token-at-all', 'Bearer realm="registry-gateway", error="invalid_token"'],
    ] as const) {
      const { context } = request('PUT', INSTANCE, { service: 'payments', id: 'p1' }, authorization);
      const err = thrown(() => guard.canActivate(context));
      expect(err).toBeInstanceOf(UnauthorizedException);
      // The one error mapping (used by the filter and the fast routes) turns the challenge into the header.
      expect(describeError(err)).toEqual({ status: 401, body: { error: 'unauthorized', message: (err as Error).message }, headers: { 'www-authenticate': challenge } });
      expect((err as Error).message).not.toContain(AGENT);
    }
    expect(await denied('missing_token')).toBe(1);
    expect(await denied('invalid_token')).toBe(3);
  });

  it('answers 403 for the wrong role or a service outside the globs, naming the token but not its secret', async () => {
    const { guard, denied } = setup();
    const asReader = thrown(() => guard.canActivate(request('PUT', INSTANCE, { service: 'payments', id: 'p1' }, `Bearer ${READER}`).context));
    expect(asReader).toBeInstanceOf(ForbiddenException);
    expect((asReader as Error).message).toMatch(/token "dashboards" \(role reader\) may not PUT/);
    const outside = thrown(() => guard.canActivate(request('PUT', INSTANCE, { service: 'billing', id: 'p1' }, `Bearer ${AGENT}`).context));
    expect(outside).toBeInstanceOf(ForbiddenException);
    expect((outside as Error).message).toBe('token "payments-agent" may not act on service "billing"');
    expect(await denied('forbidden')).toBe(2);
  });

  it('answers a malformed name with a 400 naming it, before looking at the token', async () => {
    const { guard, denied } = setup();
    for (const [params, authorization, field] of [
      [{ service: 'payments/../x', id: 'p1' }, `Bearer ${AGENT}`, 'service'],
      [{ service: 'payments', id: '..' }, `Bearer ${AGENT}`, 'id'],
      [{ service: 'a b', id: 'p1' }, `Bearer ${READER}`, 'service'],
      [{ service: '.hidden', id: 'p1' }, undefined, 'service'],
      [{ service: 'payments', id: 'x'.repeat(129) }, 'Bearer not-a-known-token-at-all', 'id'],
    ] as const) {
      const err = thrown(() => guard.canActivate(request('PUT', INSTANCE, params, authorization).context));
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect((err as InvalidRequestError).field).toBe(field);
    }
    expect(thrown(() => guard.canActivate(request('PUT', INSTANCE, { service: 'payments', id: 'p1' }).context))).toBeInstanceOf(UnauthorizedException);
    expect(await denied('forbidden')).toBe(0);
    expect(await denied('missing_token')).toBe(1);
    expect(await denied('invalid_token')).toBe(0);
  });

  it('lets an agent act within its globs, with any case of the scheme', () => {
    const { guard } = setup();
    expect(guard.canActivate(request('PUT', INSTANCE, { service: 'payments-eu', id: 'p1' }, `Bearer ${AGENT}`).context)).toBe(true);
    expect(guard.canActivate(request('DELETE', INSTANCE, { service: 'payments', id: 'p1' }, `bearer  ${AGENT}`).context)).toBe(true);
    expect(guard.canActivate(request('GET', '/v1/services/:service', { service: 'billing' }, `Bearer ${READER}`).context)).toBe(true);
  });

  it('rate-limits registrations per token, not heartbeats', async () => {
    const { guard, denied } = setup(2);
    const register = () => guard.canActivate(request('PUT', INSTANCE, { service: 'payments', id: 'p1' }, `Bearer ${AGENT}`).context);
    expect(register()).toBe(true);
    expect(register()).toBe(true);
    const err = thrown(register);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).retryAfterSeconds).toBe(1);
    expect(guard.canActivate(request('PUT', `${INSTANCE}/heartbeat`, { service: 'payments', id: 'p1' }, `Bearer ${AGENT}`).context)).toBe(true);
    expect(await denied('rate_limited')).toBe(1);
  });
});

describe('bearerToken', () => {
  it.each([
    [undefined, undefined],
    ['Bearer abc', 'abc'],
    ['bearer abc ', 'abc'],
    ['Bearer a b', ''],
    ['Basic abc', ''],
    ['Bearer ', ''],
    ['abc', ''],
  ])('%p -> %p', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});
