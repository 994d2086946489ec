import { Counter, Registry } from 'prom-client';
import { ApiTokens } from './api-tokens';
import { RegistrationRateLimiter } from './registration-rate-limiter';
import { RequestAuthorizer } from './request-auth';

/** Test fixture: a RequestAuthorizer over `tokens`, with its denial counter readable by reason. */
export function testAuthorizer(tokens: ReadonlyArray<Record<string, unknown>>, burst = 100) {
  const registry = new Registry();
  const denials = new Counter({ name: 'denied', help: 'x', labelNames: ['reason'] as const, registers: [registry] });
  const parsed = ApiTokens.parse(JSON.stringify({ tokens }), 'test');
  const authorizer = new RequestAuthorizer(parsed, new RegistrationRateLimiter(1, burst, () => 0), denials);
  /** Denials counted so far, by reason. */
  const deniedByReason = async (): Promise<Record<string, number>> => Object.fromEntries((await denials.get()).values.map((v) => [v.labels.reason, v.value]));
  return { authorizer, deniedByReason };
}
