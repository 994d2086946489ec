import { ADMIN_ONLY, decideAccess, ruleFor } from './access-policy';
import { ApiTokens } from './api-tokens';

const tokens = ApiTokens.parse(
  JSON.stringify({
    tokens: [
      { name: 'agent', token: 'agent-token-0123456789', role: 'agent', services: ['payments', 'team-a-*'] },
      { name: 'reader', token: 'reader-token-0123456789', role: 'reader' },
      { name: 'admin', token: 'admin-token-0123456789', role: 'admin' },
    ],
  }),
  'test',
);
const agent = tokens.verify('agent-token-0123456789')!;
const reader = tokens.verify('reader-token-0123456789')!;
const admin = tokens.verify('admin-token-0123456789')!;

const INSTANCE = '/v1/services/:service/instances/:id';
const allowed = (method: string, route: string, who: typeof agent, service?: string) => decideAccess(ruleFor(method, route), who, service).allowed;

describe('access policy', () => {
  it.each([
    ['GET', '/health/live'],
    ['GET', '/health/ready'],
    ['GET', '/metrics'],
    ['GET', '/docs'],
    ['GET', '/openapi.json'],
  ])('%s %s is public', (method, route) => {
    expect(ruleFor(method, route).grants).toEqual(['public']);
  });

  it.each([
    ['PUT', INSTANCE],
    ['PUT', `${INSTANCE}/heartbeat`],
    ['DELETE', INSTANCE],
    ['PATCH', INSTANCE],
  ])('%s %s: agents within their globs and admins, never readers', (method, route) => {
    expect(allowed(method, route, agent, 'payments')).toBe(true);
    expect(allowed(method, route, agent, 'team-a-api')).toBe(true);
    expect(allowed(method, route, agent, 'billing')).toBe(false);
    expect(allowed(method, route, agent, 'a/b')).toBe(false);
    expect(allowed(method, route, reader, 'payments')).toBe(false);
    expect(allowed(method, route, admin, 'billing')).toBe(true);
  });

  it('resolving one service: readers, admins, and agents within their globs', () => {
    for (const method of ['GET', 'HEAD']) {
      expect(allowed(method, '/v1/services/:service', reader, 'billing')).toBe(true);
      expect(allowed(method, '/v1/services/:service', admin, 'billing')).toBe(true);
      expect(allowed(method, '/v1/services/:service', agent, 'payments')).toBe(true);
      expect(allowed(method, '/v1/services/:service', agent, 'billing')).toBe(false);
    }
  });

  it('listing services: readers and admins only', () => {
    expect(allowed('GET', '/v1/services', reader)).toBe(true);
    expect(allowed('GET', '/v1/services', admin)).toBe(true);
    expect(allowed('GET', '/v1/services', agent)).toBe(false);
  });

  it('rate-limits registrations only', () => {
    expect(ruleFor('PUT', INSTANCE).rateLimit).toBe('registrations');
    expect(ruleFor('PUT', `${INSTANCE}/heartbeat`).rateLimit).toBeUndefined();
    expect(ruleFor('DELETE', INSTANCE).rateLimit).toBeUndefined();
  });

  it('keeps routes without a rule (and unknown methods) for admins', () => {
    for (const [method, route] of [
      ['POST', '/v1/admin/reset'],
      ['DELETE', '/v1/services/:service'],
      ['GET', `${INSTANCE}`],
      ['POST', '/metrics'],
      ['GET', undefined],
    ] as const) {
      expect(ruleFor(method, route)).toBe(ADMIN_ONLY);
    }
    expect(decideAccess(ADMIN_ONLY, reader, 'payments').allowed).toBe(false);
    expect(decideAccess(ADMIN_ONLY, agent, 'payments').allowed).toBe(false);
    expect(decideAccess(ADMIN_ONLY, admin, undefined).allowed).toBe(true);
  });

  it('says why access was refused', () => {
    expect(decideAccess(ruleFor('PUT', INSTANCE), reader, 'payments')).toEqual({ allowed: false, reason: 'role' });
    expect(decideAccess(ruleFor('PUT', INSTANCE), agent, 'billing')).toEqual({ allowed: false, reason: 'service' });
  });
});
