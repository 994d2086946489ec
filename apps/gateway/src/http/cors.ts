import type { FastifyCorsOptions } from '@fastify/cors';

/**
 * CORS for browser apps on the origins in CORS_ORIGINS (`*` = any); undefined (CORS off) without
 * any. No credentials: the API authenticates with a Bearer header, never with cookies. Exposed:
 * Retry-After (429/503), X-Request-Id (to quote in a support request), X-Registry-Index (blocking
 * queries) and WWW-Authenticate (why a 401).
 */
export function corsOptions(origins: readonly string[]): FastifyCorsOptions | undefined {
  if (origins.length === 0) return undefined;
  return {
    origin: origins.includes('*') ? '*' : [...origins],
    methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
    exposedHeaders: ['retry-after', 'x-request-id', 'x-registry-index', 'www-authenticate'],
    // Browsers cap this (Chromium at 2 h); 10 min keeps preflights rare without pinning a stale policy.
    maxAge: 600,
  };
}
