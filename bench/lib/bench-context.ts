/**
 * What every scenario needs from the orchestrator: the private etcd and Redis, gateway replicas
 * started from dist/, fleet-sim runs, and a key prefix of its own. Scenarios stay declarative; this
 * class owns the processes and cleans them up.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCounters, EtcdServer, LOCAL_DIR, diffCounters, startEtcd, startRedis, startRedisCluster } from '@app/stack';
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

export class BenchContext {
  private readonly running = new Set<ServerProcess>();
  private step = 0;
  private etcdGeneration = 1;

  private constructor(
    private readonly runId: string,
    readonly workDir: string,
    private etcdServer: EtcdServer,
    readonly redis: BenchRedis,
    readonly poolSize: number,
    private readonly totalSteps: number,
  ) {}

  static async start(poolSize: number, totalSteps: number, redisShape: RedisShape = 'single'): Promise<BenchContext> {
    const runId = randomBytes(3).toString('hex');
    const workDir = path.join(LOCAL_DIR, 'bench', runId);
    fs.mkdirSync(workDir, { recursive: true });
    const [etcd, redis] = await Promise.all([startEtcd({ dataDir: path.join(workDir, 'etcd-0') }), startBenchRedis(redisShape, workDir)]);
    log(`etcd ${etcd.endpoint} (metrics ${etcd.metricsUrl}), redis ${redis.description}`);
    return new BenchContext(runId, workDir, etcd, redis, poolSize, totalSteps);
  }

  get etcd(): EtcdServer {
    return this.etcdServer;
  }

  /**
   * A new empty etcd for a scale scenario: 100,000 leases left by the previous one would expire
   * (and be revoked by etcd) during the next one, and their keys would slow every read.
   */
  async freshEtcd(): Promise<void> {
    await this.etcdServer.dispose();
    this.etcdServer = await startEtcd({ dataDir: path.join(this.workDir, `etcd-${this.etcdGeneration++}`) });
    log(`fresh etcd ${this.etcd.endpoint}`);
  }

  header(title: string): void {
    process.stderr.write(`\n[bench] === ${++this.step}/${this.totalSteps}: ${title} ===\n`);
  }

  counters(): Promise<EtcdCounters> {
    return etcdCounters(this.etcd.metricsUrl);
  }

  waitForIdleEtcd(): Promise<string | undefined> {
    return waitForIdleEtcd(this.etcd.metricsUrl);
  }

  prefix(name: string): string {
    return `/registry/bench-${this.runId}-${name}/`;
  }

  simEnv(): Record<string, string> {
    return {
      ETCD_ENDPOINTS: this.etcd.endpoint,
      ETCD_USERNAME: this.etcd.gatewayUser,
      ETCD_PASSWORD: this.etcd.gatewayPassword,
      ETCD_METRICS_URL: this.etcd.metricsUrl,
    };
  }

  private gatewayEnv(prefix: string): GatewayEnv {
    return {
      ETCD_ENDPOINTS: this.etcd.endpoint,
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
   */
  async startGateways(name: string, prefix: string, count: number, main?: string): Promise<{ gateways: ServerProcess[]; startup: EtcdCounters }> {
    const c0 = await this.counters();
    const gateways = await Promise.all(Array.from({ length: count }, (_, i) => startGateway(this.gatewayEnv(prefix), path.join(this.workDir, `gateway-${name}-${i}.log`), main)));
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

  /** `etcd=1,redis=2,gateway=3` for fleet-sim's --sample-pid (replicas numbered when several). */
  pids(gateways: ServerProcess[], extra: Record<string, number | undefined> = {}): string {
    const named: Record<string, number | undefined> = { etcd: this.etcd.pid, ...(gateways.length ? this.redis.pids : {}), ...extra };
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
    await Promise.all([this.etcd.dispose(), this.redis.dispose()]);
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}
