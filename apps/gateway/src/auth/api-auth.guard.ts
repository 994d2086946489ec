import { CanActivate, ExecutionContext } from '@nestjs/common';
import { FastifyRequest } from 'fastify';
import { ruleFor } from './access-policy';
import { ApiToken } from './api-tokens';
import { checkNameParams, RequestAuthorizer } from './request-auth';

export { bearerToken } from './request-auth';

/**
 * The global guard: every Nest route passes here before pipes and handlers, so a refused request
 * never reaches body validation or etcd. Order: malformed names (400, naming the field), then the
 * token (401), the access rule (403) and the registration budget (429), see request-auth.ts, which
 * the hot routes outside Nest (http/fast-routes) run as well.
 */
export class ApiAuthGuard implements CanActivate {
  constructor(private readonly authorizer: RequestAuthorizer) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest<{ Params: { service?: string; id?: string } }>>();
    const rule = ruleFor(request.method, request.routeOptions.url);
    if (rule.grants.includes('public')) return true;
    checkNameParams(request.params);
    (request as TokenCarrier).apiToken = this.authorizer.authorize(rule, request.params?.service, request.headers.authorization);
    return true;
  }
}

type TokenCarrier = FastifyRequest & { apiToken?: ApiToken };

/** The token the guard verified for this request; undefined on public routes or with AUTH_DISABLED. */
export function tokenOf(request: FastifyRequest): ApiToken | undefined {
  return (request as TokenCarrier).apiToken;
}
