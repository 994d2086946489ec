/**
 * Redis as it is run in production, on loopback, from real processes: a Sentinel group (a primary,
 * replicas, three Sentinels; Debian's `redis-sentinel`) and a Redis Cluster (3 primaries + 3 replicas,
 * `redis-server --cluster-enabled yes` joined by `redis-cli --cluster create`). Used by the reliability
 * scenarios (kill the primary, watch the failover) and by `npm start` with REDIS_MODE=sentinel|cluster.
 * Every process is tracked like the single Redis (procs.ts): it dies with the Node process that started it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePorts, killStale, LOCAL_DIR, LocalServer, sleep, spawnTracked, waitUntil } from './procs';
import { redisPing, RedisServer } from './redis';

/** `redis-cli` against one loopback server; the password goes through the environment, never argv. */
export function redisCli(port: number, args: string[], password?: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(port), ...args],
      { timeout: timeoutMs, env: { ...process.env, ...(password ? { REDISCLI_AUTH: password } : {}) } },
      (err, stdout, stderr) => (err ? reject(new Error(`redis-cli ${args[0]} on ${port} failed: ${stderr || err.message}`)) : resolve(stdout)),
    );
  });
}

/** `field:value` lines of INFO / CLUSTER INFO as a map. */
function infoFields(text: string): Map<string, string> {
  return new Map(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]),
  );
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
}

const freshDir = (kind: string, dir?: string) => {
  const d = path.resolve(dir ?? path.join(LOCAL_DIR, 'test', `${kind}-${randomBytes(4).toString('hex')}`));
  fs.mkdirSync(d, { recursive: true });
  return d;
};

// ---------------------------------------------------------------------------------------------
// Sentinel

export interface SentinelGroupOptions {
  /** Working dir (one sub-dir per process). Default: a fresh `.local/test/sentinel-<random>`. */
  dir?: string;
  /** The monitored group's name. Default `registry`. */
  name?: string;
  /** Replicas of the primary. Default 1. */
  replicas?: number;
  /** Sentinels (quorum: a majority of them). Default 3. */
  sentinels?: number;
  /** A primary unreachable this long is down for a Sentinel (`down-after-milliseconds`). Default 1000. */
  downAfterMs?: number;
  /** Redis's requirepass (data nodes) and the Sentinels' own; default: none. */
  password?: string;
  sentinelPassword?: string;
}

export class SentinelServer extends LocalServer {
  readonly logFile: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly config: string,
    readonly password?: string,
  ) {
    super();
    this.logFile = path.join(dir, 'sentinel.log');
  }

  /** @internal */
  async spawnAndWait(): Promise<void> {
    const configFile = path.join(this.dir, 'sentinel.conf');
    // Sentinel rewrites its config file as it learns (replicas, peers, the current primary): it must be
    // writable, and a restart keeps what it learned, as in production.
    if (!fs.existsSync(configFile)) fs.writeFileSync(configFile, this.config, { mode: 0o600 });
    fs.appendFileSync(this.logFile, `\n=== ${new Date().toISOString()} redis-sentinel ${configFile}\n`);
    this.proc = spawnTracked('redis-sentinel', [configFile], this.logFile);
    fs.writeFileSync(path.join(this.dir, 'sentinel.pid'), String(this.proc.child.pid));
    await waitUntil('redis-sentinel', this.proc, this.logFile, () => redisPing(this.port, 1000, this.password), 15_000);
  }

  cli(args: string[]): Promise<string> {
    return redisCli(this.port, args, this.password);
  }
}

/** A primary, its replicas and the Sentinels watching them. */
export class RedisSentinelGroup {
  constructor(
    readonly dir: string,
    readonly name: string,
    /** The data nodes; [0] was the primary at start (ask `primary()` for the current one). */
    readonly servers: RedisServer[],
    readonly sentinels: SentinelServer[],
    readonly password?: string,
    readonly sentinelPassword?: string,
  ) {}

  /** REDIS_SENTINELS for the gateway. */
  get sentinelEndpoints(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  /** The gateway's environment for this group (passwords inline; tests may move them to files). */
  gatewayEnv(): Record<string, string> {
    return {
      REDIS_SENTINELS: this.sentinelEndpoints,
      REDIS_SENTINEL_NAME: this.name,
      ...(this.password ? { REDIS_PASSWORD: this.password } : {}),
      ...(this.sentinelPassword ? { REDIS_SENTINEL_PASSWORD: this.sentinelPassword } : {}),
    };
  }

  /** The data node the (first answering) Sentinel names as primary now. */
  async primary(): Promise<RedisServer | undefined> {
    for (const s of this.sentinels) {
      if (!s.running) continue;
      try {
        const [, port] = (await s.cli(['SENTINEL', 'get-master-addr-by-name', this.name])).trim().split(/\s+/);
        return this.servers.find((r) => r.port === Number(port));
      } catch {
        /* next */
      }
    }
    return undefined;
  }

  /** Waits until every running Sentinel names a primary other than `old` that answers as a primary. */
  async waitForNewPrimary(old: RedisServer, timeoutMs = 30_000): Promise<RedisServer> {
    return waitFor(
      `a Sentinel failover away from 127.0.0.1:${old.port}`,
      async () => {
        const named = new Set<number>();
        for (const s of this.sentinels.filter((x) => x.running)) {
          named.add(Number((await s.cli(['SENTINEL', 'get-master-addr-by-name', this.name])).trim().split(/\s+/)[1]));
        }
        if (named.size !== 1 || named.has(old.port)) return undefined;
        const next = this.servers.find((r) => named.has(r.port));
        return next && infoFields(await redisCli(next.port, ['INFO', 'replication'], this.password)).get('role') === 'master' && next;
      },
      timeoutMs,
    );
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sentinels.map((s) => s.stop()), ...this.servers.map((r) => r.stop())]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startRedisSentinelGroup(opts: SentinelGroupOptions = {}): Promise<RedisSentinelGroup> {
  const dir = freshDir('sentinel', opts.dir);
  const name = opts.name ?? 'registry';
  const replicas = opts.replicas ?? 1;
  const sentinelCount = opts.sentinels ?? 3;
  const ports = await freePorts(1 + replicas + sentinelCount);
  const servers: RedisServer[] = [];
  const sentinels: SentinelServer[] = [];
  const group = new RedisSentinelGroup(dir, name, servers, sentinels, opts.password, opts.sentinelPassword);
  try {
    for (let i = 0; i <= replicas; i++) {
      const serverDir = path.join(dir, `redis-${i}`);
      fs.mkdirSync(serverDir, { recursive: true });
      await killStale(path.join(serverDir, 'redis.pid'), 'redis-server');
      const extraArgs = i === 0 ? [] : ['--replicaof', '127.0.0.1', String(ports[0])];
      servers.push(new RedisServer(serverDir, ports[i], { password: opts.password, extraArgs }));
    }
    await Promise.all(servers.map((s) => s.spawnAndWait()));
    // Sentinels learn the replicas from the primary's INFO: start them once replication is up.
    for (const replica of servers.slice(1)) {
      await waitFor('replication link up', async () => infoFields(await redisCli(replica.port, ['INFO', 'replication'], opts.password)).get('master_link_status') === 'up', 20_000);
    }
    const quorum = Math.floor(sentinelCount / 2) + 1;
    for (let i = 0; i < sentinelCount; i++) {
      const port = ports[1 + replicas + i];
      const sentinelDir = path.join(dir, `sentinel-${i}`);
      fs.mkdirSync(sentinelDir, { recursive: true });
      await killStale(path.join(sentinelDir, 'sentinel.pid'), 'redis-sentinel');
      const config = [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize no',
        `dir ${sentinelDir}`,
        ...(opts.sentinelPassword ? [`requirepass ${opts.sentinelPassword}`, `sentinel sentinel-pass ${opts.sentinelPassword}`] : []),
        `sentinel monitor ${name} 127.0.0.1 ${ports[0]} ${quorum}`,
        ...(opts.password ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n');
      sentinels.push(new SentinelServer(sentinelDir, port, config, opts.sentinelPassword));
    }
    await Promise.all(sentinels.map((s) => s.spawnAndWait()));
    // A failover needs every Sentinel to know the replicas and a quorum of its peers.
    await waitFor(
      'Sentinels to know the replicas and each other',
      async () => {
        for (const s of sentinels) {
          const master = (await s.cli(['SENTINEL', 'master', name])).trim().split(/\r?\n/);
          const field = (k: string) => Number(master[master.indexOf(k) + 1]);
          if (field('num-slaves') < replicas || field('num-other-sentinels') < sentinelCount - 1) return false;
        }
        return true;
      },
      30_000,
    );
    return group;
  } catch (err) {
    await Promise.all([...sentinels.map((s) => s.kill()), ...servers.map((r) => r.kill())]);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

export interface ClusterOptions {
  /** Working dir (one sub-dir per node). Default: a fresh `.local/test/cluster-<random>`. */
  dir?: string;
  /** Primaries (slots are split between them). Default 3. */
  primaries?: number;
  /** Replicas per primary. Default 1. */
  replicasPerPrimary?: number;
  /** `cluster-node-timeout`: a primary unreachable this long is failed over to its replica. Default 1000. */
  nodeTimeoutMs?: number;
  password?: string;
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'slave';
  /** For a replica: the id of its primary. */
  primaryId?: string;
  failed: boolean;
  /** For a primary: its slot ranges, e.g. ["0-5460"]. */
  slots: string[];
}

export class RedisClusterGroup {
  constructor(
    readonly dir: string,
    readonly nodes: RedisServer[],
    readonly password?: string,
  ) {}

  /** REDIS_CLUSTER_NODES for the gateway (every node; the client needs only one that answers). */
  get nodeEndpoints(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  gatewayEnv(): Record<string, string> {
    return { REDIS_CLUSTER_NODES: this.nodeEndpoints, ...(this.password ? { REDIS_PASSWORD: this.password } : {}) };
  }

  server(port: number): RedisServer | undefined {
    return this.nodes.find((n) => n.port === port);
  }

  /** `CLUSTER NODES` as seen by the first running node (or `via`). */
  async topology(via?: RedisServer): Promise<ClusterNodeInfo[]> {
    const node = via ?? this.nodes.find((n) => n.running)!;
    const text = await redisCli(node.port, ['CLUSTER', 'NODES'], this.password);
    return text
      .trim()
      .split(/\r?\n/)
      .map((line) => {
        const [id, addr, flags, primaryId, , , , , ...slots] = line.split(' ');
        return {
          id,
          port: Number(addr.split('@')[0].split(':')[1]),
          role: flags.includes('master') ? 'master' : 'slave',
          primaryId: primaryId === '-' ? undefined : primaryId,
          failed: /fail/.test(flags),
          slots,
        } as ClusterNodeInfo;
      });
  }

  /** Waits until every running node reports cluster_state:ok and knows every node. */
  async waitForHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'the cluster to be ok on every node',
      async () => {
        for (const n of this.nodes.filter((x) => x.running)) {
          const info = infoFields(await redisCli(n.port, ['CLUSTER', 'INFO'], this.password));
          if (info.get('cluster_state') !== 'ok' || Number(info.get('cluster_known_nodes')) !== this.nodes.length) return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startRedisCluster(opts: ClusterOptions = {}): Promise<RedisClusterGroup> {
  const dir = freshDir('cluster', opts.dir);
  const primaries = opts.primaries ?? 3;
  const perPrimary = opts.replicasPerPrimary ?? 1;
  const ports = await freePorts(primaries * (1 + perPrimary));
  const nodes: RedisServer[] = [];
  try {
    for (const [i, port] of ports.entries()) {
      const nodeDir = path.join(dir, `node-${i}`);
      fs.mkdirSync(nodeDir, { recursive: true });
      await killStale(path.join(nodeDir, 'redis.pid'), 'redis-server');
      const extraArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1_000)];
      nodes.push(new RedisServer(nodeDir, port, { password: opts.password, extraArgs }));
    }
    await Promise.all(nodes.map((n) => n.spawnAndWait()));
    const group = new RedisClusterGroup(dir, nodes, opts.password);
    // Slots are split evenly between the first `primaries` nodes; each of the others replicates one of them.
    await redisCli(
      ports[0],
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(perPrimary), '--cluster-yes'],
      opts.password,
      60_000,
    );
    await group.waitForHealthy();
    // A replica takes over only with its primary's data: wait until every replica is in sync.
    await waitFor(
      'every cluster replica in sync',
      async () => {
        for (const info of (await group.topology()).filter((n) => n.role === 'slave')) {
          if (infoFields(await redisCli(info.port, ['INFO', 'replication'], opts.password)).get('master_link_status') !== 'up') return false;
        }
        return true;
      },
      30_000,
    );
    return group;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw err;
  }
}
