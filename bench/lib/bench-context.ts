/**
 * What every scenario needs from the orchestrator: the private etcd and Redis, gateway replicas
 * started from dist/, fleet-sim runs, and a key prefix of its own. Scenarios stay declarative; this
 * class owns the processes and cleans them up.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCounters, EtcdServer, LOCAL_DIR, diffCounters, startEtcd, startEtcdCluster, startRedis, startRedisCluster } from '@app/stack';
import { GatewayEnv, ServerProcess, runFleetSim, startBareServer, startGateway } from './processes';
import { etcdCounters, waitForIdleEtcd } from './sampling';

export const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

/** `single`: one redis-server; `cluster`: a Redis Cluster of 3 primaries + 3 replicas (issue 24). */
export type RedisShape = 'single' | 'cluster';

/**
 * The Redis a run's gateways use, whatever its shape: the one place that knows how to start it, what
 * to tell the gateway (REDIS_URL or REDIS_CLUSTER_NODES, as apps/gateway/src/config/redis-config.ts
 * reads them) and which processes to sample.
 */
export interface BenchRedis {
  shape: RedisShape;
  /** For logs: the URL, or the node list. */
  description: string;
  gatewayEnv: Record<string, string>;
  /** `redis` for one server; `redis-1`..`redis-6` for the cluster's nodes. */
  pids: Record<string, number | undefined>;
  dispose(): Promise<void>;
}

async function startBenchRedis(shape: RedisShape, workDir: string): Promise<BenchRedis> {
  if (shape === 'single') {
    const redis = await startRedis({ dir: path.join(workDir, 'redis') });
    return { shape, description: redis.url, gatewayEnv: { REDIS_URL: redis.url }, pids: { redis: redis.pid }, dispose: () => redis.dispose() };
  }
  const cluster = await startRedisCluster({ dir: path.join(workDir, 'redis-cluster'), primaries: 3, replicasPerPrimary: 1 });
  return {
    shape,
    description: `cluster ${cluster.nodeEndpoints}`,
    gatewayEnv: cluster.gatewayEnv(),
    pids: Object.fromEntries(cluster.nodes.map((n, i) => [`redis-${i + 1}`, n.pid])),
    dispose: () => cluster.dispose(),
  };
}

function addCounters(a: EtcdCounters, b: EtcdCounters): EtcdCounters {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof EtcdCounters)[]) out[k] += b[k];
  return out;
}

export class BenchContext {
  private readonly running = new Set<ServerProcess>();
  private step = 0;
  private etcdGeneration = 1;
  /** The current etcd: one member, or the members of a cluster (`freshEtcd(3)`). */
  private etcdServers: EtcdServer[];

  private constructor(
    private readonly runId: string,
    readonly workDir: string,
    etcdServer: EtcdServer,
    readonly redis: BenchRedis,
    readonly poolSize: number,
    private readonly totalSteps: number,
  ) {
    this.etcdServers = [etcdServer];
  }

  static async start(poolSize: number, totalSteps: number, redisShape: RedisShape = 'single'): Promise<BenchContext> {
    const runId = randomBytes(3).toString('hex');
    const workDir = path.join(LOCAL_DIR, 'bench', runId);
    fs.mkdirSync(workDir, { recursive: true });
    const [etcd, redis] = await Promise.all([startEtcd({ dataDir: path.join(workDir, 'etcd-0') }), startBenchRedis(redisShape, workDir)]);
    log(`etcd ${etcd.endpoint} (metrics ${etcd.metricsUrl}), redis ${redis.description}`);
    return new BenchContext(runId, workDir, etcd, redis, poolSize, totalSteps);
  }

  /** The first member (the only one unless the scenario asked for a cluster). */
  get etcd(): EtcdServer {
    return this.etcdServers[0];
  }

  get etcdMembers(): readonly EtcdServer[] {
    return this.etcdServers;
  }

  /**
   * A new empty etcd for a scale scenario: 100,000 leases left by the previous one would expire
   * (and be revoked by etcd) during the next one, and their keys would slow every read. `members` > 1:
   * a cluster of that many members on loopback (auth on, as one member).
   */
  async freshEtcd(members = 1): Promise<void> {
    await Promise.all(this.etcdServers.map((e) => e.dispose()));
    const dir = path.join(this.workDir, `etcd-${this.etcdGeneration++}`);
    this.etcdServers = members > 1 ? await startEtcdCluster(members, { baseDir: dir }) : [await startEtcd({ dataDir: dir })];
    log(`fresh etcd ${this.endpoints()} (metrics ${this.etcdServers.map((e) => e.metricsUrl).join(',')})`);
  }

  /** `host:port,...` of every member, as ETCD_ENDPOINTS takes them. */
  private endpoints(): string {
    return this.etcdServers.map((e) => e.endpoint).join(',');
  }

  header(title: string): void {
    process.stderr.write(`\n[bench] === ${++this.step}/${this.totalSteps}: ${title} ===\n`);
  }

  /** Summed over the members. */
  async counters(): Promise<EtcdCounters> {
    const each = await Promise.all(this.etcdServers.map((e) => etcdCounters(e.metricsUrl)));
    return each.slice(1).reduce((sum, c) => addCounters(sum, c), each[0]);
  }

  waitForIdleEtcd(): Promise<string | undefined> {
    return waitForIdleEtcd(this.etcd.metricsUrl);
  }

  prefix(name: string): string {
    return `/registry/bench-${this.runId}-${name}/`;
  }

  simEnv(): Record<string, string> {
    return {
      ETCD_ENDPOINTS: this.endpoints(),
      ETCD_USERNAME: this.etcd.gatewayUser,
      ETCD_PASSWORD: this.etcd.gatewayPassword,
      ETCD_METRICS_URL: this.etcdServers.map((e) => e.metricsUrl).join(','),
    };
  }

  private gatewayEnv(prefix: string): GatewayEnv {
    return {
      ETCD_ENDPOINTS: this.endpoints(),
      ETCD_USERNAME: this.etcd.gatewayUser,
      ETCD_PASSWORD: this.etcd.gatewayPassword,
      ETCD_PREFIX: prefix,
      ETCD_POOL_SIZE: String(this.poolSize),
      ...this.redis.gatewayEnv,
    };
  }

  /**
   * Starts `count` replicas on one prefix; returns them and what their start-up cost etcd. `main`: another
   * build's main.js (an experiment comparing two builds in one run); the repository's dist/ by default.
   * `nodeArgs`: extra node flags for these replicas (e.g. a larger heap for a 1M-instance run).
   */
  async startGateways(name: string, prefix: string, count: number, main?: string, nodeArgs: string[] = []): Promise<{ gateways: ServerProcess[]; startup: EtcdCounters }> {
    const c0 = await this.counters();
    const gateways = await Promise.all(Array.from({ length: count }, (_, i) => startGateway(this.gatewayEnv(prefix), path.join(this.workDir, `gateway-${name}-${i}.log`), main, nodeArgs)));
    gateways.forEach((g) => this.running.add(g));
    const c1 = await this.counters();
    return { gateways, startup: diffCounters(c0, c1) };
  }

  async startBare(resolveBodyFile: string | undefined): Promise<ServerProcess> {
    const bare = await startBareServer(resolveBodyFile, path.join(this.workDir, 'bare-server.log'));
    this.running.add(bare);
    return bare;
  }

  async stop(servers: Array<ServerProcess | undefined>): Promise<void> {
    const live = servers.filter((s): s is ServerProcess => !!s);
    await Promise.all(live.map((s) => s.stop()));
    live.forEach((s) => this.running.delete(s));
  }

  /** `etcd=1,redis=2,gateway=3` for fleet-sim's --sample-pid (replicas and etcd members numbered when several). */
  pids(gateways: ServerProcess[], extra: Record<string, number | undefined> = {}): string {
    const members = this.etcdServers.length;
    const named: Record<string, number | undefined> = Object.fromEntries(this.etcdServers.map((e, i) => [members === 1 ? 'etcd' : `etcd-${i + 1}`, e.pid]));
    Object.assign(named, gateways.length ? this.redis.pids : {}, extra);
    gateways.forEach((g, i) => (named[gateways.length === 1 ? 'gateway' : `gateway-${i + 1}`] = g.pid));
    return Object.entries(named)
      .filter(([, pid]) => pid)
      .map(([n, pid]) => `${n}=${pid}`)
      .join(',');
  }

  /** One fleet-sim process; its JSON result lands in the work dir under `jsonName`. */
  sim<T>(args: string[], jsonName: string): Promise<T> {
    return runFleetSim<T>(args, this.simEnv(), path.join(this.workDir, `${jsonName}.json`));
  }

  async stopAll(): Promise<void> {
    await this.stop([...this.running]);
  }

  async dispose(): Promise<void> {
    await this.stopAll();
    await Promise.all([...this.etcdServers.map((e) => e.dispose()), this.redis.dispose()]);
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}
