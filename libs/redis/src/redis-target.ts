/**
 * Where the gateway's Redis is and how to reach it, in one of the three shapes Redis is run in. Plain
 * data (strings and numbers), so it crosses the worker boundary by structured clone: the HTTP thread
 * and the lease engine's worker build their clients from the same target.
 *
 * Secrets (`password`, `sentinelPassword`) live here and nowhere else; `describeRedisTarget` is the one
 * way to put a target into a log line, a metric or a response.
 */
export interface RedisEndpoint {
  host: string;
  port: number;
}

/** Present = TLS on (rediss://, REDIS_TLS=true): to Redis, and to the Sentinels in that shape. */
export interface RedisTls {
  /** PEM of the CA that signed the servers' certificates; absent = the system's CAs. */
  ca?: string;
}

interface RedisAuth {
  username?: string;
  password?: string;
  tls?: RedisTls;
}

/** One Redis (REDIS_URL). */
export interface SingleRedisTarget extends RedisAuth {
  kind: 'single';
  endpoint: RedisEndpoint;
  db: number;
}

/** A primary found through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME); follows its failovers. */
export interface SentinelRedisTarget extends RedisAuth {
  kind: 'sentinel';
  sentinels: RedisEndpoint[];
  /** The monitored group's name (`sentinel monitor <name> ...`). */
  name: string;
  /** The Sentinels' own password (their `requirepass`), when they have one. */
  sentinelPassword?: string;
}

/** A Redis Cluster (REDIS_CLUSTER_NODES: some of its nodes; the client discovers the rest). */
export interface ClusterRedisTarget extends RedisAuth {
  kind: 'cluster';
  nodes: RedisEndpoint[];
}

export type RedisTarget = SingleRedisTarget | SentinelRedisTarget | ClusterRedisTarget;

const list = (endpoints: RedisEndpoint[]) => endpoints.map((e) => `${e.host}:${e.port}`).join(',');

/** The target without its secrets, for logs, readiness and the start banner. */
export function describeRedisTarget(target: RedisTarget): string {
  const tls = target.tls ? ', tls' : '';
  const auth = target.password ? ', password set' : '';
  switch (target.kind) {
    case 'single':
      return `redis ${target.endpoint.host}:${target.endpoint.port}/${target.db}${tls}${auth}`;
    case 'sentinel':
      return `sentinel group "${target.name}" via ${list(target.sentinels)}${tls}${auth}`;
    case 'cluster':
      return `cluster via ${list(target.nodes)}${tls}${auth}`;
  }
}
