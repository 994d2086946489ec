import type { HealthIndicatorResult } from '@nestjs/terminus';
import { CacheHealthReport } from './cache-health';

/**
 * Readiness means "this replica can answer", not "every dependency is up".
 *
 * Every replica shares the same etcd and the same Redis. If an etcd or Redis outage made readiness
 * fail, it would fail on all replicas at once: the load balancer (or Kubernetes) would take every
 * replica out of rotation, and pods and clients would get connection errors instead of the answers
 * the gateway can still give from memory: heartbeats of known instances are absorbed in memory and
 * lookups are served from the last snapshot (`stale: true`). That would turn a degraded registry into
 * an outage, the very failure the gateway exists to prevent. So a dependency that is down is reported
 * (status `degraded`, the dependency in `error`), and the replica leaves rotation (503) only when it
 * has nothing to answer from: etcd unreachable AND no instance known AND no service cached in memory
 * AND no shared (Redis) cache to fall back on, or while it shuts down.
 */
export interface ReadinessInputs {
  now: number;
  etcd: {
    /** Pooled connections whose channel is connected. */
    readyConnections: number;
    poolSize: number;
    /** Last successful etcd call, epoch ms; 0 = none yet. */
    lastSuccessAt: number;
    /** Why re-authentication fails (e.g. the gateway's password changed in etcd), while it does. */
    authError?: string;
  };
  keepalive: {
    /** LeaseKeepAlive streams open on a connected channel. */
    open: number;
    total: number;
    /** Last renewal answer from etcd, epoch ms; 0 = none yet. */
    lastAnswerAt: number;
    /** Due renewals etcd has not confirmed yet, and how long the oldest of them has waited. */
    backlog?: number;
    oldestDueMs?: number;
    /** Beyond this wait renewals count as lagging (RENEWAL_LAG_MAX_MS). */
    lagLimitMs?: number;
  };
  /** Instances whose leases this replica renews: their heartbeats are answered from memory. */
  instancesInMemory: number;
  /**
   * Every Redis connection of the process (see redis/redis-clients.ts), the HTTP thread's first, and
   * where they connect (no secrets). Reported, never fatal: Redis only saves work.
   */
  redis: { target?: string; clients: ReadonlyArray<{ client: string; up: boolean; state: string }> };
  /** Absent until the lookup cache is wired in (see cache-health.ts). */
  cache?: CacheHealthReport;
  /**
   * The initial read of the registry (every instance and its lease) is done. Until then the replica
   * would answer heartbeats of instances it cannot know yet with 404: it is not ready, `starting`.
   */
  synced?: boolean;
}

export interface ReadinessAssessment {
  /** The replica can answer requests (through etcd, or from what it holds in memory). */
  serving: boolean;
  /** Not serving yet because the initial read of the registry is not done. */
  starting: boolean;
  /** Terminus-style indicator results, `serving` first; a dependency that is down is `down` here. */
  indicators: HealthIndicatorResult[];
}

export function assessReadiness(input: ReadinessInputs): ReadinessAssessment {
  const ago = (at: number): number | null => (at > 0 ? Math.max(0, input.now - at) : null);
  // Connected but refused (e.g. the password changed): etcd cannot answer this replica either.
  const etcdReachable = input.etcd.readyConnections > 0 && !input.etcd.authError;
  const warmServices = input.cache?.warmServices ?? 0;

  const answersFrom: string[] = [];
  if (etcdReachable) answersFrom.push('etcd');
  if (input.instancesInMemory > 0) answersFrom.push('known-instances');
  if (warmServices > 0) answersFrom.push('cache');
  // Snapshots in Redis outlive any one replica (CACHE_L2_TTL_MS): a cold replica answers from them.
  if (input.cache?.l2 === 'up') answersFrom.push('shared-cache');
  const starting = input.synced === false;
  const serving = answersFrom.length > 0 && !starting;
  const lagging = input.keepalive.lagLimitMs !== undefined && (input.keepalive.oldestDueMs ?? 0) > input.keepalive.lagLimitMs;

  const indicators: HealthIndicatorResult[] = [
    {
      serving: serving
        ? { status: 'up', answersFrom }
        : starting
          ? { status: 'down', message: 'starting: the initial read of the registry (every instance and its lease) is not done yet' }
          : { status: 'down', message: 'etcd is unreachable and there is nothing to answer from (no known instance, no cached service, no shared cache)' },
    },
    {
      etcd: {
        status: etcdReachable ? 'up' : 'down',
        readyConnections: input.etcd.readyConnections,
        poolSize: input.etcd.poolSize,
        lastSuccessAgoMs: ago(input.etcd.lastSuccessAt),
        ...(input.etcd.authError ? { message: `authentication failing: ${input.etcd.authError} (check ETCD_USERNAME/ETCD_PASSWORD)` } : {}),
      },
    },
    {
      keepalive: {
        // Lagging renewals are reported, not made fatal: the cause is usually etcd itself, shared by all
        // replicas, and taking every replica out of rotation would turn slow renewals into an outage.
        // The replica protects its renewals by shedding registrations instead (see AdmissionControl).
        status: input.keepalive.open > 0 && !lagging ? 'up' : 'down',
        open: input.keepalive.open,
        total: input.keepalive.total,
        lastAnswerAgoMs: ago(input.keepalive.lastAnswerAt),
        instances: input.instancesInMemory,
        ...(input.keepalive.backlog !== undefined ? { backlog: input.keepalive.backlog, oldestDueMs: input.keepalive.oldestDueMs ?? 0 } : {}),
        ...(lagging ? { message: `renewals lag: the oldest due renewal has waited ${input.keepalive.oldestDueMs} ms` } : {}),
      },
    },
  ];
  if (input.cache) {
    indicators.push({ watch: { status: input.cache.watch, warmServices } });
  }
  const redisDown = input.redis.clients.filter((c) => !c.up).map((c) => c.client);
  indicators.push({
    redis: {
      status: redisDown.length ? 'down' : 'up',
      state: input.redis.clients[0]?.state,
      ...(input.redis.target ? { target: input.redis.target } : {}),
      clients: Object.fromEntries(input.redis.clients.map((c) => [c.client, c.state])),
      ...(redisDown.length ? { message: `not connected: ${redisDown.join(', ')} (lease renewals are then not de-duplicated; nothing is lost)` } : {}),
      ...(input.cache ? { l2: input.cache.l2 } : {}),
    },
  });
  return { serving, starting, indicators };
}
