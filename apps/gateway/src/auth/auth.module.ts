import { CanActivate, DynamicModule, Logger, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Counter } from 'prom-client';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { ApiAuthGuard } from './api-auth.guard';
import { loadApiTokens } from './api-tokens';
import { RegistrationRateLimiter } from './registration-rate-limiter';
import { ApiAccess, RequestAuthorizer } from './request-auth';

/**
 * API authentication and authorization for every route: a global guard for Nest's routes, and
 * ApiAccess for the hot routes served outside Nest (http/fast-routes); both use the one
 * RequestAuthorizer. The token file is read and validated here, while the module graph is built: a
 * missing or bad file fails createGatewayApp() before anything connects to etcd, with a message that
 * names AUTH_TOKENS_FILE and never a token.
 */
@Module({})
export class AuthModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    const tokens = loadApiTokens(config);
    const access = {
      provide: ApiAccess,
      inject: [GatewayMetrics],
      useFactory: (metrics: GatewayMetrics): ApiAccess => {
        const logger = new Logger('Auth');
        if (!tokens) {
          logger.warn('authentication is DISABLED (AUTH_DISABLED=true): anyone who reaches this gateway may register, deregister and read');
          return new ApiAccess(undefined);
        }
        logger.log(`${tokens.size} API token(s) loaded from AUTH_TOKENS_FILE`);
        const denials = new Counter({
          name: 'registry_api_requests_denied_total',
          help: 'API requests refused by the auth guard, by reason (missing_token, invalid_token, forbidden, rate_limited)',
          labelNames: ['reason'] as const,
          registers: [metrics.registry],
        });
        const limiter = new RegistrationRateLimiter(config.RATE_LIMIT_REGISTRATIONS_PER_SECOND, config.RATE_LIMIT_REGISTRATIONS_BURST);
        return new ApiAccess(new RequestAuthorizer(tokens, limiter, denials));
      },
    };
    const guard = {
      provide: APP_GUARD,
      inject: [ApiAccess],
      useFactory: ({ authorizer }: ApiAccess): CanActivate => (authorizer ? new ApiAuthGuard(authorizer) : { canActivate: () => true }),
    };
    return { module: AuthModule, providers: [access, guard], exports: [ApiAccess] };
  }
}
