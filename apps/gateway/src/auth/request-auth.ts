import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { Counter } from 'prom-client';
import { InvalidRequestError, isValidName, NAME_RULE, RateLimitedError } from '@app/registry';
import { AccessRule, decideAccess } from './access-policy';
import { ApiToken, ApiTokens } from './api-tokens';
import { RegistrationRateLimiter } from './registration-rate-limiter';

/**
 * The request checks of the API, as plain functions: ApiAuthGuard runs them for Nest routes and
 * http/fast-routes for the hot routes it serves outside Nest's pipeline, so both refuse a request
 * with the same error (mapped to HTTP by describeError in http/error.filter.ts).
 */

/** Path parameters that become etcd key segments. */
const NAME_PARAMS = ['service', 'id'] as const;

export interface NameParams {
  service?: string;
  id?: string;
}

/** 400 naming the field for a malformed `:service` or `:id`, whoever asks: a bad name is the caller's mistake. */
export function checkNameParams(params: NameParams | undefined): void {
  for (const field of NAME_PARAMS) {
    const value = params?.[field];
    if (value !== undefined && !isValidName(value)) throw new InvalidRequestError(`${field} must be ${NAME_RULE}`, field);
  }
}

const CHALLENGE = {
  missing_token: 'Bearer realm="registry-gateway"',
  invalid_token: 'Bearer realm="registry-gateway", error="invalid_token"',
} as const;

/** 401 that carries its `WWW-Authenticate` challenge; the error mapping adds the header. */
export class TokenRequiredError extends UnauthorizedException {
  readonly challenge: string;

  constructor(readonly reason: 'missing_token' | 'invalid_token') {
    super(reason === 'missing_token' ? 'an API token is required: Authorization: Bearer <token>' : 'the API token is not valid');
    this.challenge = CHALLENGE[reason];
  }
}

/**
 * After checkNameParams: the token (401), then the route's access rule with its `:service` (403, see
 * ACCESS_POLICY), then the registration budget (429). Every refusal is counted by reason. Presented
 * tokens are only hashed, never logged or echoed.
 */
export class RequestAuthorizer {
  constructor(
    private readonly tokens: ApiTokens,
    private readonly registrations: RegistrationRateLimiter,
    private readonly denials: Counter<'reason'>,
  ) {}

  /**
   * `basic`: the protocol doors whose clients only speak Basic auth (Eureka) also take `Authorization:
   * Basic` with the token's name as user and the token as password; a wrong name is a wrong token.
   */
  authorize(rule: AccessRule, service: string | undefined, authorization: string | undefined, { basic = false } = {}): ApiToken {
    const credentials = basic ? bearerOrBasicCredentials(authorization) : tokenCredentials(bearerToken(authorization));
    const presented = credentials?.token;
    const found = presented ? this.tokens.verify(presented) : undefined;
    const token = found && (credentials?.name === undefined || credentials.name === found.name) ? found : undefined;
    if (!token) {
      const reason = presented === undefined ? 'missing_token' : 'invalid_token';
      this.denials.inc({ reason });
      throw new TokenRequiredError(reason);
    }
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
    return token;
  }
}

/**
 * What the API checks of every request, built once by AuthModule: `authorizer` is undefined with
 * AUTH_DISABLED (names are still checked).
 */
export class ApiAccess {
  constructor(readonly authorizer: RequestAuthorizer | undefined) {}
}

/** The token of `Authorization: Bearer <token>`; '' for any other Authorization header, undefined without one. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return match ? match[1] : '';
}

interface Credentials {
  token: string;
  /** The user of Basic credentials, which must be the token's name. */
  name?: string;
}

function tokenCredentials(token: string | undefined): Credentials | undefined {
  return token === undefined ? undefined : { token };
}

/** Bearer as bearerToken(), or Basic `name:token`; `{token: ''}` for anything else, undefined without a header. */
export function bearerOrBasicCredentials(header: string | undefined): Credentials | undefined {
  const basic = header === undefined ? null : /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header);
  if (!basic) return tokenCredentials(bearerToken(header));
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? { token: '' } : { name: decoded.slice(0, colon), token: decoded.slice(colon + 1) };
}

function describe(rule: AccessRule): string {
  if (rule.route === '*') return 'use this endpoint (admins only)';
  return `${rule.methods.join('/')} ${rule.route}`;
}
