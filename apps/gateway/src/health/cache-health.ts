/**
 * What readiness needs from the lookup cache (apps/gateway/src/resolve): whether its etcd watch and
 * its Redis tier are up, and how many services it could answer from memory right now.
 *
 * The cache module provides it under CACHE_HEALTH, e.g.
 * `{ provide: CACHE_HEALTH, useExisting: ResolveCache }`, exported so HealthModule can inject it.
 * Readiness works without it (etcd pool, keepalive streams and Redis only) and then counts only the
 * instances this replica renews as "something to answer from".
 */
export interface CacheHealthReport {
  watch: 'up' | 'down';
  l2: 'up' | 'down';
  /** Services with a snapshot in L1 that a lookup can be answered from (stale or not). */
  warmServices: number;
}

export interface CacheHealthSource {
  cacheHealth(): CacheHealthReport;
}

export const CACHE_HEALTH = Symbol('CACHE_HEALTH');
