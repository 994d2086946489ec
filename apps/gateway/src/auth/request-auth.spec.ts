import { ForbiddenException } from '@nestjs/common';
import { InvalidRequestError, RateLimitedError } from '@app/registry';
import { describeError } from '../http/error.filter';
import { ruleFor } from './access-policy';
import { checkNameParams, TokenRequiredError } from './request-auth';
import { testAuthorizer } from './request-auth.fixture';

const AGENT = 'agent-token-0123456789';
const ADMIN = 'admin-token-0123456789';
const HEARTBEAT = ruleFor('PUT', '/v1/services/:service/instances/:id/heartbeat');
const RESOLVE = ruleFor('GET', '/v1/services/:service');
const REGISTER = ruleFor('PUT', '/v1/services/:service/instances/:id');

function setup(burst = 100) {
  const { authorizer, deniedByReason: denied } = testAuthorizer(
    [
      { name: 'payments-agent', token: AGENT, role: 'agent', services: ['payments*'] },
      { name: 'ops', token: ADMIN, role: 'admin' },
    ],
    burst,
  );
  return { authorizer, denied };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('checkNameParams', () => {
  it('accepts valid names and absent parameters', () => {
    expect(() => checkNameParams({ service: 'payments', id: 'pod-1.a_b' })).not.toThrow();
    expect(() => checkNameParams({})).not.toThrow();
    expect(() => checkNameParams(undefined)).not.toThrow();
  });

  it('names the first malformed field, service before id', () => {
    for (const [params, field] of [
      [{ service: '../x', id: 'bad/' }, 'service'],
      [{ service: 'payments', id: '.hidden' }, 'id'],
      [{ service: 'x'.repeat(129) }, 'service'],
      [{ service: 'ok', id: '' }, 'id'],
    ] as const) {
      const err = thrown(() => checkNameParams(params));
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect((err as InvalidRequestError).field).toBe(field);
      expect(describeError(err).status).toBe(400);
    }
  });
});

describe('RequestAuthorizer', () => {
  it('401 with the challenge the error mapping turns into WWW-Authenticate, counted by reason', async () => {
    const { authorizer, denied } = setup();
    const missing = thrown(() => authorizer.authorize(HEARTBEAT, 'payments', undefined));
    expect(missing).toBeInstanceOf(TokenRequiredError);
    expect(describeError(missing)).toEqual({
      status: 401,
      body: { error: 'unauthorized', message: 'an API token is required: Authorization: Bearer <token>' },
      headers: { 'www-authenticate': 'Bearer realm="registry-gateway"' },
    });
    const invalid = thrown(() => authorizer.authorize(RESOLVE, 'payments', 'Bearer nope-nope-nope'));
    expect(describeError(invalid)).toEqual({
      status: 401,
      body: { error: 'unauthorized', message: 'the API token is not valid' },
      headers: { 'www-authenticate': 'Bearer realm="registry-gateway", error="invalid_token"' },
    });
    expect(await denied()).toMatchObject({ missing_token: 1, invalid_token: 1 });
  });

  it('returns the token when its role and globs allow the route', () => {
    const { authorizer } = setup();
    expect(authorizer.authorize(HEARTBEAT, 'payments-eu', `Bearer ${AGENT}`).name).toBe('payments-agent');
    expect(authorizer.authorize(RESOLVE, 'anything', `Bearer ${ADMIN}`).name).toBe('ops');
  });

  it('403 for a service outside an agent token\'s globs, naming the token but never its secret', async () => {
    const { authorizer, denied } = setup();
    const err = thrown(() => authorizer.authorize(HEARTBEAT, 'billing', `Bearer ${AGENT}`));
    expect(err).toBeInstanceOf(ForbiddenException);
    const { status, body, headers } = describeError(err);
    expect({ status, body, headers }).toEqual({ status: 403, body: { error: 'forbidden', message: 'token "payments-agent" may not act on service "billing"' }, headers: {} });
    expect(JSON.stringify(body)).not.toContain(AGENT);
    expect(await denied()).toMatchObject({ forbidden: 1 });
  });

  it('spends the registration budget on registrations only, 429 with Retry-After beyond it', async () => {
    const { authorizer, denied } = setup(1);
    authorizer.authorize(REGISTER, 'payments', `Bearer ${AGENT}`);
    const err = thrown(() => authorizer.authorize(REGISTER, 'payments', `Bearer ${AGENT}`));
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(describeError(err)).toMatchObject({ status: 429, headers: { 'retry-after': '1' } });
    for (let i = 0; i < 5; i++) authorizer.authorize(HEARTBEAT, 'payments', `Bearer ${AGENT}`);
    expect(await denied()).toMatchObject({ rate_limited: 1 });
  });
});

describe('Basic credentials (protocol doors whose clients speak only Basic auth)', () => {
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const EUREKA_REGISTER = ruleFor('POST', '/eureka/apps/:service');

  it('takes user = token name and password = token, or Bearer, when the route allows Basic', () => {
    const { authorizer } = setup();
    expect(authorizer.authorize(EUREKA_REGISTER, 'payments', basic('ops', ADMIN), { basic: true }).name).toBe('ops');
    expect(authorizer.authorize(EUREKA_REGISTER, 'payments', `Bearer ${ADMIN}`, { basic: true }).name).toBe('ops');
  });

  it('refuses a token under another name, a wrong password and Basic where only Bearer is taken, as invalid tokens', async () => {
    const { authorizer, denied } = setup();
    for (const [header, options] of [
      [basic('payments-agent', ADMIN), { basic: true }],
      [basic('ops', 'wrong-token-0123456789'), { basic: true }],
      ['Basic bm8tY29sb24=', { basic: true }],
      [basic('ops', ADMIN), {}],
    ] as const) {
      const err = thrown(() => authorizer.authorize(EUREKA_REGISTER, 'payments', header, options));
      expect(err).toBeInstanceOf(TokenRequiredError);
      expect((err as TokenRequiredError).reason).toBe('invalid_token');
    }
    expect(await denied()).toEqual({ invalid_token: 4 });
  });
});
