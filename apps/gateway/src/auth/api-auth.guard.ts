import { CanActivate, ExecutionContext, ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { InvalidRequestError, isValidName, NAME_RULE, RateLimitedError } from '@app/registry';
import { AccessRule, decideAccess, ruleFor } from './access-policy';
import { ApiToken, ApiTokens } from './api-tokens';
import { RegistrationRateLimiter } from './registration-rate-limiter';

/** Path parameters that become etcd key segments; ParseNamePipe checks them again in the handlers. */
const NAME_PARAMS = ['service', 'id'] as const;

/**
 * The global guard: every Nest route passes here before pipes and handlers, so a refused request
 * never reaches body validation or etcd. Order: malformed names (400, naming the field, whoever asks:
 * a bad name is the caller's mistake, not a permission problem), then the token (401), then the
 * route pattern, the method and the `:service` path parameter (403, see ACCESS_POLICY), then the
 * registration budget (429). Presented tokens are only hashed, never logged or echoed.
 */
export class ApiAuthGuard implements CanActivate {
  constructor(
    private readonly tokens: ApiTokens,
    private readonly registrations: RegistrationRateLimiter,
    private readonly denials: Counter<'reason'>,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest<{ Params: { service?: string; id?: string } }>>();
    const rule = ruleFor(request.method, request.routeOptions.url);
    if (rule.grants.includes('public')) return true;

    for (const field of NAME_PARAMS) {
      const value = request.params?.[field];
      if (value !== undefined && !isValidName(value)) throw new InvalidRequestError(`${field} must be ${NAME_RULE}`, field);
    }

    const presented = bearerToken(request.headers.authorization);
    const token = presented && this.tokens.verify(presented);
    if (!token) {
      const reason = presented === undefined ? 'missing_token' : 'invalid_token';
      this.denials.inc({ reason });
      const reply = http.getResponse<FastifyReply>();
      void reply.header('www-authenticate', reason === 'missing_token' ? 'Bearer realm="registry-gateway"' : 'Bearer realm="registry-gateway", error="invalid_token"');
      throw new UnauthorizedException(reason === 'missing_token' ? 'an API token is required: Authorization: Bearer <token>' : 'the API token is not valid');
    }

    (request as TokenCarrier).apiToken = token;
    const service = request.params?.service;
    const decision = decideAccess(rule, token, service);
    if (!decision.allowed) {
      this.denials.inc({ reason: 'forbidden' });
      throw new ForbiddenException(
        decision.reason === 'service' ? `token "${token.name}" may not act on service "${service}"` : `token "${token.name}" (role ${token.role}) may not ${describe(rule)}`,
      );
    }

    if (rule.rateLimit === 'registrations') {
      const budget = this.registrations.take(token.name);
      if (!budget.allowed) {
        this.denials.inc({ reason: 'rate_limited' });
        throw new RateLimitedError(`token "${token.name}" is over its registration rate limit; retry later`, budget.retryAfterSeconds);
      }
    }
    return true;
  }
}

/** The token of `Authorization: Bearer <token>`; '' for any other Authorization header, undefined without one. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return match ? match[1] : '';
}

function describe(rule: AccessRule): string {
  if (rule.route === '*') return 'use this endpoint (admins only)';
  return `${rule.methods.join('/')} ${rule.route}`;
}

type TokenCarrier = FastifyRequest & { apiToken?: ApiToken };

/** The token the guard verified for this request; undefined on public routes or with AUTH_DISABLED. */
export function tokenOf(request: FastifyRequest): ApiToken | undefined {
  return (request as TokenCarrier).apiToken;
}
