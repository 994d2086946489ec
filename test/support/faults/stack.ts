/**
 * The fault stack: a 3-member auth-enabled etcd cluster, Redis and N gateway replicas, all real
 * processes on loopback, each of which can be killed, frozen, thawed and restarted. Built on
 * tools/stack (etcd, Redis) and test/support/gateway (gateway env and process start).
 */
import { randomBytes } from 'node:crypto';
import { EtcdctlResult, EtcdServer, startEtcdCluster } from '../../../tools/stack/etcd';
import { EtcdCounters, fetchEtcdCounters } from '../../../tools/stack/metrics';
import { freePorts, httpGet } from '../../../tools/stack/procs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedisServer, startRedis } from '../../../tools/stack/redis';
import { RedisClusterGroup, RedisSentinelGroup, startRedisCluster, startRedisSentinelGroup } from '../../../tools/stack/redis-topologies';
import { gatewayEnv, uniquePrefix } from '../gateway';
import { HttpClient, metricValue } from '../http';
import { GatewayReplica } from './replica';
import { sleep, waitFor } from '../wait';

export interface FaultStackOptions {
  replicas?: number;
  /** Extra gateway environment (every replica gets the same). */
  gatewayEnv?: Record<string, string>;
  /**
   * etcd's space quota in bytes (`--quota-backend-bytes`). tools/stack has no flag for it, so it is
   * passed the way etcd reads every flag from the environment (ETCD_QUOTA_BACKEND_BYTES), and kept
   * there for the stack's lifetime so that a restarted member gets it too.
   */
  etcdQuotaBytes?: number;
  /**
   * How Redis is run: one server (default), a Sentinel group (a primary, one replica, three Sentinels;
   * passwords on both, handed to the gateways by file) or a Cluster (3 primaries + 3 replicas, password).
   */
  redis?: 'single' | 'sentinel' | 'cluster';
}

/** The Redis processes of a fault stack, in the shape asked for. */
export type RedisTopology =
  | { kind: 'single'; server: RedisServer }
  | { kind: 'sentinel'; group: RedisSentinelGroup }
  | { kind: 'cluster'; group: RedisClusterGroup };

async function startRedisTopology(kind: FaultStackOptions['redis']): Promise<RedisTopology> {
  const password = () => randomBytes(12).toString('hex');
  if (kind === 'sentinel') return { kind, group: await startRedisSentinelGroup({ password: password(), sentinelPassword: password() }) };
  if (kind === 'cluster') return { kind, group: await startRedisCluster({ password: password() }) };
  return { kind: 'single', server: await startRedis() };
}

/** The gateway's Redis variables for `topology`; passwords of the Sentinel shape go through files, as in production. */
function redisEnv(topology: RedisTopology): Record<string, string> {
  if (topology.kind === 'single') return { REDIS_URL: topology.server.url };
  const { REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD, ...env } = topology.group.gatewayEnv();
  if (topology.kind === 'cluster') return { REDIS_URL: '', ...env, REDIS_PASSWORD: REDIS_PASSWORD ?? '' };
  const dir = path.join(topology.group.dir, 'secrets');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'redis'), `${REDIS_PASSWORD}\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'sentinel'), `${REDIS_SENTINEL_PASSWORD}\n`, { mode: 0o600 });
  return { REDIS_URL: '', ...env, REDIS_PASSWORD_FILE: path.join(dir, 'redis'), REDIS_SENTINEL_PASSWORD_FILE: path.join(dir, 'sentinel') };
}

function disposeTopology(topology: RedisTopology | undefined): Promise<void> | undefined {
  if (!topology) return undefined;
  return topology.kind === 'single' ? topology.server.dispose() : topology.group.dispose();
}

export class FaultStack {
  /** Sums etcd's server-side counters over members across restarts (see EtcdCounterTracker). */
  readonly counters: EtcdCounterTracker;

  constructor(
    readonly members: EtcdServer[],
    readonly redisTopology: RedisTopology,
    readonly replicas: GatewayReplica[],
    readonly http: HttpClient,
    readonly prefix: string,
    private readonly restoreEnv: () => void,
  ) {
    this.counters = new EtcdCounterTracker(members);
  }

  /** The one Redis server (single shape only). */
  get redis(): RedisServer {
    if (this.redisTopology.kind !== 'single') throw new Error(`this fault stack runs Redis as ${this.redisTopology.kind}`);
    return this.redisTopology.server;
  }

  get sentinel(): RedisSentinelGroup {
    if (this.redisTopology.kind !== 'sentinel') throw new Error(`this fault stack runs Redis as ${this.redisTopology.kind}`);
    return this.redisTopology.group;
  }

  get cluster(): RedisClusterGroup {
    if (this.redisTopology.kind !== 'cluster') throw new Error(`this fault stack runs Redis as ${this.redisTopology.kind}`);
    return this.redisTopology.group;
  }

  get urls(): string[] {
    return this.replicas.map((r) => r.url);
  }

  /** The member that reports `etcd_server_is_leader 1` (frozen or dead members are skipped). */
  async leader(): Promise<EtcdServer | undefined> {
    for (const m of this.members) {
      if (!m.running) continue;
      try {
        const res = await httpGet(`${m.metricsUrl}/metrics`, 1000);
        if (metricValue(res.body, 'etcd_server_is_leader') === 1) return m;
      } catch {
        /* frozen or down */
      }
    }
    return undefined;
  }

  /**
   * The member the gateways' connections currently use: the one receiving the most LeaseKeepAlive
   * messages over `windowMs`. After a member was killed, pick_first connections stay where they
   * failed over to, so "the first endpoint" is no longer necessarily the preferred one.
   */
  async memberServingGateways(windowMs = 1500): Promise<EtcdServer> {
    const sample = () => Promise.all(this.members.map((m) => fetchEtcdCounters(m.metricsUrl, 1000).then((c) => c.leaseKeepAliveMessages).catch(() => 0)));
    const before = await sample();
    await sleep(windowMs);
    const after = await sample();
    let best = 0;
    for (let i = 1; i < this.members.length; i++) if (after[i] - before[i] > after[best] - before[best]) best = i;
    return this.members[best];
  }

  /** Waits until some member leads and every running member reports healthy. */
  async waitForQuorum(timeoutMs = 30_000): Promise<EtcdServer> {
    return waitFor(
      'an etcd leader and healthy members',
      async () => {
        for (const m of this.members) if (m.running && !(await m.healthy())) return undefined;
        return this.leader();
      },
      timeoutMs,
    );
  }

  /**
   * etcdctl as root through the first running member (etcdctl 3.4 refuses an --endpoints flag next to
   * the ETCDCTL_ENDPOINTS that EtcdServer.ctl sets; use --cluster for commands about every member).
   */
  ctl(args: string[], input?: string): Promise<EtcdctlResult> {
    const via = this.members.find((m) => m.running) ?? this.members[0];
    return via.ctl(args, 'root', input);
  }

  async close(): Promise<void> {
    this.counters.stop();
    await Promise.all(this.replicas.map((r) => r.stop()));
    this.http.close();
    for (const m of this.members) m.thaw();
    await Promise.all([...this.members.map((m) => m.dispose()), disposeTopology(this.redisTopology)]);
    this.restoreEnv();
  }
}

export async function startFaultStack(opts: FaultStackOptions = {}): Promise<FaultStack> {
  const previousQuota = process.env.ETCD_QUOTA_BACKEND_BYTES;
  const restoreEnv = () => {
    if (previousQuota === undefined) delete process.env.ETCD_QUOTA_BACKEND_BYTES;
    else process.env.ETCD_QUOTA_BACKEND_BYTES = previousQuota;
  };
  if (opts.etcdQuotaBytes) process.env.ETCD_QUOTA_BACKEND_BYTES = String(opts.etcdQuotaBytes);
  // The faults freeze processes: a request must give up in seconds, not hang the scenario.
  const http = new HttpClient({ timeoutMs: 2000, maxSockets: 32 });
  let members: EtcdServer[] = [];
  let redis: RedisTopology | undefined;
  try {
    [members, redis] = await Promise.all([startEtcdCluster(3), startRedisTopology(opts.redis)]);
    const prefix = uniquePrefix();
    const ports = await freePorts(opts.replicas ?? 2);
    const first = members[0];
    const target = { endpoint: members.map((m) => m.endpoint).join(','), username: first.gatewayUser, password: first.gatewayPassword };
    const replicas = ports.map(
      (port, i) =>
        new GatewayReplica(
          `replica-${i}`,
          {
            ...gatewayEnv(target, '', {
              ...redisEnv(redis!),
              ETCD_PREFIX: prefix,
              ETCD_POOL_SIZE: '2',
              ETCD_REQUEST_TIMEOUT_MS: '2000',
              LOG_LEVEL: 'warn',
              LOG_FORMAT: 'json',
              ...opts.gatewayEnv,
            }),
            PORT: String(port),
          },
          http,
        ),
    );
    const stack = new FaultStack(members, redis, replicas, http, prefix, restoreEnv);
    try {
      await Promise.all(replicas.map((r) => r.start()));
    } catch (err) {
      await stack.close();
      throw err;
    }
    return stack;
  } catch (err) {
    http.close();
    await Promise.all([...members.map((m) => m.dispose()), disposeTopology(redis)]);
    restoreEnv();
    throw err;
  }
}

/**
 * etcd's counters per member, sampled every second and accumulated as deltas: a restarted member
 * starts again from 0 (its new value is all new), a frozen one is skipped until it answers. Sums
 * over members are then meaningful across kills and restarts, which a before/after diff is not.
 * Calls between a member's last sample and its death are missed (at most one second's worth).
 */
export class EtcdCounterTracker {
  private readonly last = new Map<EtcdServer, { pid: number | undefined; counters: EtcdCounters }>();
  private total: EtcdCounters | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;

  constructor(private readonly members: EtcdServer[]) {}

  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One sample of every member now (also called by start's timer). */
  sample(): Promise<void> {
    this.sampling ??= this.sampleAll().finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  /** Counters accumulated since the first sample, summed over members. */
  async totals(): Promise<EtcdCounters> {
    await this.sample();
    return { ...this.total! };
  }

  private async sampleAll(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        if (!m.running) return;
        let now: EtcdCounters;
        try {
          now = await fetchEtcdCounters(m.metricsUrl, 800);
        } catch {
          return; // frozen or restarting
        }
        const before = this.last.get(m);
        this.last.set(m, { pid: m.pid, counters: now });
        this.total ??= zero();
        if (!before) return; // the member's first sample is its baseline
        const restarted = before.pid !== m.pid;
        for (const k of Object.keys(now) as (keyof EtcdCounters)[]) {
          this.total[k] += restarted || now[k] < before.counters[k] ? now[k] : now[k] - before.counters[k];
        }
      }),
    );
    this.total ??= zero();
  }
}

function zero(): EtcdCounters {
  const keys: (keyof EtcdCounters)[] = [
    'authenticate',
    'authenticateStarted',
    'range',
    'txn',
    'put',
    'deleteRange',
    'leaseGrant',
    'leaseRevoke',
    'leaseKeepAliveStreams',
    'leaseKeepAliveMessages',
    'watchStreams',
  ];
  return Object.fromEntries(keys.map((k) => [k, 0])) as unknown as EtcdCounters;
}
