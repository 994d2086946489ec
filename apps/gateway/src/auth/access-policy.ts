import { ApiRole, ApiToken } from './api-tokens';

/** Who may call a route: anyone, a role, or an agent whose globs cover the route's `:service`. */
export type Grant = 'public' | ApiRole | 'agent-in-scope';

export interface AccessRule {
  methods: readonly string[];
  /** A Fastify route pattern as registered (`request.routeOptions.url`); a trailing `*` matches any rest. */
  route: string;
  grants: readonly Grant[];
  /** Requests that spend the token's registration budget (429 beyond it). */
  rateLimit?: 'registrations';
}

const WRITES = ['PUT', 'PATCH', 'DELETE', 'POST'];

/**
 * Who may do what, decided by route pattern and method; the first matching rule wins. A route not
 * listed here is for admins only, so a new endpoint stays closed until it is given a rule.
 */
export const ACCESS_POLICY: readonly AccessRule[] = [
  { methods: ['GET'], route: '/health/*', grants: ['public'] },
  { methods: ['GET'], route: '/metrics', grants: ['public'] },
  // Served by Fastify directly (no guard runs); listed so the table tells the whole story.
  { methods: ['GET'], route: '/docs*', grants: ['public'] },
  { methods: ['GET'], route: '/openapi.json', grants: ['public'] },
  { methods: ['GET'], route: '/openapi.yaml', grants: ['public'] },
  // The dashboard's static files hold no data; its API calls carry the operator's own token.
  { methods: ['GET'], route: '/ui*', grants: ['public'] },
  { methods: ['PUT'], route: '/v1/services/:service/instances/:id', grants: ['admin', 'agent-in-scope'], rateLimit: 'registrations' },
  { methods: WRITES, route: '/v1/services/:service/instances/*', grants: ['admin', 'agent-in-scope'] },
  // Agents may call it; which of the listed instances they may heartbeat is checked per instance.
  { methods: ['POST'], route: '/v1/heartbeats', grants: ['admin', 'agent'] },
  { methods: ['GET'], route: '/v1/services/:service', grants: ['admin', 'reader', 'agent-in-scope'] },
  { methods: ['GET'], route: '/v1/services', grants: ['admin', 'reader'] },
  { methods: ['GET'], route: '/v1/sd/prometheus', grants: ['admin', 'reader'] },
  // The Eureka door (doors/eureka) checks its routes under these patterns, whatever the prefix
  // (/eureka or /eureka/v2) and trailing slash; `:service` is the app's registry name.
  { methods: ['POST'], route: '/eureka/apps/:service', grants: ['admin', 'agent-in-scope'], rateLimit: 'registrations' },
  { methods: ['PUT', 'DELETE'], route: '/eureka/apps/:service/*', grants: ['admin', 'agent-in-scope'] },
  // Every Eureka client fetches the whole registry: agents may, and see only the services their globs cover.
  { methods: ['GET'], route: '/eureka/apps', grants: ['admin', 'reader', 'agent'] },
  { methods: ['GET'], route: '/eureka/instances/:id', grants: ['admin', 'reader', 'agent'] },
  { methods: ['GET'], route: '/eureka/apps/:service*', grants: ['admin', 'reader', 'agent-in-scope'] },
];

export const ADMIN_ONLY: AccessRule = { methods: ['*'], route: '*', grants: ['admin'] };

/** The rule for a request; HEAD is answered like GET. Unmatched routes get ADMIN_ONLY. */
export function ruleFor(method: string, route: string | undefined, policy: readonly AccessRule[] = ACCESS_POLICY): AccessRule {
  const verb = method === 'HEAD' ? 'GET' : method;
  if (route === undefined) return ADMIN_ONLY;
  return policy.find((rule) => rule.methods.includes(verb) && routeMatches(rule.route, route)) ?? ADMIN_ONLY;
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: 'role' | 'service' };

/** Whether `token` may use a route governed by `rule`; `service` is the route's `:service`, if any. */
export function decideAccess(rule: AccessRule, token: ApiToken, service: string | undefined): AccessDecision {
  if (rule.grants.includes(token.role)) return { allowed: true };
  if (token.role === 'agent' && rule.grants.includes('agent-in-scope')) {
    return service !== undefined && token.coversService(service) ? { allowed: true } : { allowed: false, reason: 'service' };
  }
  return { allowed: false, reason: 'role' };
}

function routeMatches(pattern: string, route: string): boolean {
  return pattern.endsWith('*') ? route.startsWith(pattern.slice(0, -1)) : route === pattern;
}
