import type { HealthIndicatorResult } from '@nestjs/terminus';

/**
 * Readiness means "this replica can answer", not "every dependency is up".
 *
 * Every replica shares the same etcd and the same Redis. If an etcd or Redis outage made readiness
 * fail, it would fail on all replicas at once: the load balancer (or Kubernetes) would take every
 * replica out of rotation, and pods and clients would get connection errors instead of the answers
 * the gateway can still give from memory: heartbeats of known instances are absorbed in memory and
 * every lookup is answered from the directory the watch keeps (`stale: true` while the watch is
 * down). That would turn a degraded registry into an outage, the very failure the gateway exists to
 * prevent. So a dependency that is down is reported (status `degraded`, the dependency in `error`),
 * and the replica leaves rotation (503) only before its initial read of the registry (`starting`:
 * it knows nothing to answer from yet) and while it shuts down.
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
    /** Owned shared leases whose renewal is due and unconfirmed, and how long the oldest has waited past due. */
    backlog?: number;
    oldestDueMs?: number;
    /** Beyond this wait renewals count as lagging. */
    lagLimitMs?: number;
    /** Shared leases this replica owns and the instances on them. */
    leases?: number;
    leaseInstances?: number;
  };
  /** Instances in the directory: their heartbeats are answered from memory. */
  instancesInMemory: number;
  /**
   * The expiry sweep: `paused` while a present replica's heard-sets have a gap (Redis down, a replica
   * that cannot publish): nothing another replica may have heard is deleted meanwhile. Absent in tests
   * of the other parts.
   */
  expiry?: { paused: boolean; reason?: string; overdue: number; selfPreservation: boolean };
  /**
   * Every Redis connection of the process (see redis/redis-clients.ts), the HTTP thread's first, and
   * where they connect (no secrets). Reported, never fatal: Redis only saves work.
   */
  redis: { target?: string; clients: ReadonlyArray<{ client: string; up: boolean; state: string }> };
  /** The registry watch, and whether lookups are answered `stale` (it has not confirmed them lately); absent in tests of the other parts. */
  watch?: { up: boolean; revision: number; stale: boolean; lookupViews: number };
  /**
   * The initial read of the registry (every instance and its lease) is done. Until then the replica
   * would answer heartbeats of instances it cannot know yet with 404: it is not ready, `starting`.
   */
  synced?: boolean;
}

export interface ReadinessAssessment {
  /** The replica can answer requests (it has read the registry and is not shutting down). */
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
  const starting = input.synced === false;
  // Once synced, every lookup is answered from memory and every known instance's heartbeat too.
  const serving = !starting;
  const lagging = input.keepalive.lagLimitMs !== undefined && (input.keepalive.oldestDueMs ?? 0) > input.keepalive.lagLimitMs;

  const indicators: HealthIndicatorResult[] = [
    {
      serving: serving
        ? { status: 'up', lookups: input.watch?.stale ? 'memory (stale: the watch has not confirmed them lately)' : 'memory', writes: etcdReachable ? 'etcd' : 'unavailable (etcd unreachable or refusing the gateway)' }
        : { status: 'down', message: 'starting: the initial read of the registry (every instance and its lease) is not done yet' },
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
        // A shared lease outlives 2/3 of LEASE_TTL without a renewal (80 s by default).
        status: input.keepalive.open > 0 && !lagging ? 'up' : 'down',
        open: input.keepalive.open,
        total: input.keepalive.total,
        lastAnswerAgoMs: ago(input.keepalive.lastAnswerAt),
        instances: input.instancesInMemory,
        ...(input.keepalive.leases !== undefined ? { leases: input.keepalive.leases, leaseInstances: input.keepalive.leaseInstances ?? 0 } : {}),
        ...(input.keepalive.backlog !== undefined ? { backlog: input.keepalive.backlog, oldestDueMs: input.keepalive.oldestDueMs ?? 0 } : {}),
        ...(lagging ? { message: `renewals lag: the oldest due renewal has waited ${input.keepalive.oldestDueMs} ms` } : {}),
      },
    },
  ];
  if (input.expiry) {
    // Paused is degraded, never fatal: heartbeats, registrations and lookups are unaffected; only dead
    // pods stay listed a while longer (the README's trade-off beside self-preservation).
    indicators.push({
      expiry: {
        status: input.expiry.paused ? 'down' : 'up',
        state: input.expiry.paused ? 'paused' : input.expiry.selfPreservation ? 'self-preservation' : 'running',
        overdue: input.expiry.overdue,
        ...(input.expiry.paused ? { message: `expiry: paused (${input.expiry.reason ?? 'heard-sets gap'}); no instance another replica may have heard is deleted` } : {}),
      },
    });
  }
  if (input.watch) {
    indicators.push({ watch: { status: input.watch.up ? 'up' : 'down', revision: input.watch.revision, lookupViews: input.watch.lookupViews } });
  }
  const redisDown = input.redis.clients.filter((c) => !c.up).map((c) => c.client);
  indicators.push({
    redis: {
      status: redisDown.length ? 'down' : 'up',
      state: input.redis.clients[0]?.state,
      ...(input.redis.target ? { target: input.redis.target } : {}),
      clients: Object.fromEntries(input.redis.clients.map((c) => [c.client, c.state])),
      ...(redisDown.length ? { message: `not connected: ${redisDown.join(', ')} (expiry pauses while heard-sets cannot be exchanged; nothing live is deleted)` } : {}),
    },
  });
  return { serving, starting, indicators };
}
