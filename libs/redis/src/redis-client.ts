import Redis, { Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import { backoffDelay, BackoffPolicy } from '@app/concurrency';
import { RedisEndpoint, RedisTarget } from './redis-target';

/** A client for any shape: `Redis` (one server, or a Sentinel-managed primary) or `Cluster`. */
export type RedisClient = Redis | Cluster;

/**
 * Every option the gateway sets on a Redis connection, beside why. Both the HTTP thread's connection
 * and the lease engine worker's ledger are built from this object (one per client may only lower
 * `commandTimeout`, its own latency budget), whatever the shape.
 *
 * Redis is an optimisation, never a dependency of correctness: a command that cannot be answered at
 * once must fail at once, so its caller takes the fallback (the ledger's replica renews by itself).
 */
export const REDIS_CLIENT_DEFAULTS = {
  /** Commands fail at once while disconnected, instead of queueing work that is stale by the time it runs. */
  enableOfflineQueue: false,
  /** A command lost with its connection is not re-sent: its caller already fell back. */
  maxRetriesPerRequest: 0,
  /** A server that does not accept the connection in 1 s counts as down; the next attempt follows the retry strategy. */
  connectTimeout: 1_000,
  /** Latency budget of one command; callers with a tighter budget (the ledger: 250 ms) pass their own. */
  commandTimeout: 500,
  /** ioredis then reports `ready` only once the server answers INFO (not while it loads its data). */
  enableReadyCheck: true,
  /**
   * A primary demoted to replica (a Sentinel failover it missed while partitioned) answers writes
   * with READONLY: reconnect, which asks the Sentinels for the current primary again.
   */
  reconnectOnError: (err: Error): boolean => err.message.startsWith('READONLY'),
  /** Sentinel shape: subscribe to the Sentinels' +switch-master and move at once, not at the next error. */
  failoverDetector: true,
  /**
   * Cluster shape: after a node's connection closes, retry the command once the slot map is refreshed
   * (a replica is promoted within the cluster's node timeout); CLUSTERDOWN and TRYAGAIN likewise.
   * No auto-pipelining: ioredis 6 then batches a tick's commands into one pipeline and refuses it
   * ("All keys in the pipeline should belong to the same slots allocation group") as soon as they span
   * nodes, which the ledger's per-slot calls always do; each call is written at once instead.
   */
  cluster: {
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 1_000,
    slotsRefreshInterval: 5_000,
    enableAutoPipelining: false,
  },
} as const;

/**
 * Reconnects to Redis: from 200 ms, capped at 2 s (a failover is noticed within one cap), with up to
 * 20 % jitter so that replicas restarted together do not reconnect in step.
 */
export const REDIS_RECONNECT_BACKOFF: BackoffPolicy = { minMs: 200, maxMs: 2_000, jitter: 0.2 };

/**
 * THE retry strategy, for every reconnect a client makes: to Redis, to the Sentinels, to the Cluster.
 * ioredis counts `attempt` from 1 and keeps the count itself (reset once connected).
 */
export function redisRetryDelay(attempt: number): number {
  return backoffDelay(REDIS_RECONNECT_BACKOFF, attempt - 1);
}

export interface RedisClientOptions {
  /** This client's latency budget per command (default REDIS_CLIENT_DEFAULTS.commandTimeout). */
  commandTimeoutMs?: number;
  /** Shown by `CLIENT LIST` on the servers: which part of which gateway holds the connection. */
  connectionName?: string;
  /** Build without connecting (the first command, or `connect()`, connects). Default false. */
  lazyConnect?: boolean;
}

/**
 * Builds the client for `target` with ioredis's own Sentinel and Cluster support (no discovery of our
 * own). The caller owns it: listen to 'error' (ioredis requires a listener) and `disconnect()` it.
 */
export function createRedisClient(target: RedisTarget, options: RedisClientOptions = {}): RedisClient {
  const d = REDIS_CLIENT_DEFAULTS;
  const tls = target.tls ? { ...(target.tls.ca ? { ca: target.tls.ca } : {}) } : undefined;
  const connection: RedisOptions = {
    enableOfflineQueue: d.enableOfflineQueue,
    maxRetriesPerRequest: d.maxRetriesPerRequest,
    connectTimeout: d.connectTimeout,
    commandTimeout: options.commandTimeoutMs ?? d.commandTimeout,
    enableReadyCheck: d.enableReadyCheck,
    reconnectOnError: d.reconnectOnError,
    connectionName: options.connectionName,
    lazyConnect: options.lazyConnect ?? false,
    username: target.username,
    password: target.password,
    tls,
  };
  switch (target.kind) {
    case 'single':
      return new Redis({ ...connection, ...target.endpoint, db: target.db, retryStrategy: redisRetryDelay });
    case 'sentinel':
      return new Redis({
        ...connection,
        sentinels: target.sentinels.map(copy),
        name: target.name,
        role: 'master',
        sentinelPassword: target.sentinelPassword,
        sentinelTLS: tls,
        enableTLSForSentinelMode: tls !== undefined,
        failoverDetector: d.failoverDetector,
        retryStrategy: redisRetryDelay,
        sentinelRetryStrategy: redisRetryDelay,
        sentinelReconnectStrategy: redisRetryDelay,
      });
    case 'cluster': {
      const { retryStrategy: _none, enableOfflineQueue: _queue, ...perNode } = connection;
      const clusterOptions: ClusterOptions = {
        ...d.cluster,
        enableOfflineQueue: d.enableOfflineQueue,
        enableReadyCheck: d.enableReadyCheck,
        clusterRetryStrategy: redisRetryDelay,
        lazyConnect: options.lazyConnect ?? false,
        redisOptions: perNode,
      };
      return new Cluster(target.nodes.map(copy), clusterOptions);
    }
  }
}

/** Whether the client can take commands now (no I/O): `ready` for Redis and Cluster alike. */
export function redisClientReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

const copy = (e: RedisEndpoint): RedisEndpoint => ({ host: e.host, port: e.port });
