/**
 * A real single-member etcd 3.4 with authentication enabled, as the gateway meets it in production:
 * a root user, and a gateway user whose role may only read/write under the registry prefix.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCounters, fetchEtcdCounters } from './metrics';
import {
  freePorts,
  httpGet,
  killStale,
  LOCAL_DIR,
  LocalServer,
  logTail,
  spawnTracked,
  waitUntil,
} from './procs';

export interface EtcdPorts {
  client: number;
  peer: number;
  metrics: number;
}

export interface EtcdOptions {
  /** Default: a fresh `.local/test/etcd-<random>`. An existing, bootstrapped dir is reused as is. */
  dataDir?: string;
  /** Key prefix the gateway role may read/write. Default `/registry/`. */
  prefix?: string;
  /** Default: three random free loopback ports. */
  ports?: EtcdPorts;
  /** Name of the least-privileged user the gateway logs in as. Default `registry-gateway`. */
  gatewayUser?: string;
  /** etcd `--auth-token-ttl` in seconds (default 300): lower it to test token-expiry handling. */
  authTokenTtl?: number;
  /** How long to wait for `/health`. Default 30 s. */
  startTimeoutMs?: number;
  /** @internal Set by startEtcdCluster: this member's name and the whole initial cluster. */
  member?: { name: string; initialCluster: string };
}

/** What is persisted next to the data dir, so a restart of the same dev stack reuses the passwords. */
interface EtcdCredentials {
  rootUser: string;
  rootPassword: string;
  gatewayUser: string;
  gatewayPassword: string;
  prefix: string;
  /** Set only once auth is enabled: a half-finished bootstrap is resumed on the next start. */
  bootstrapped: boolean;
}

export type EtcdctlIdentity = 'root' | 'gateway' | 'anonymous';

export interface EtcdctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const GATEWAY_ROLE = 'registry-gateway';

const randomSecret = (): string => randomBytes(18).toString('base64url'); // no ':' (etcdctl user:pw syntax)

export class EtcdServer extends LocalServer {
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly metricsUrl: string;
  readonly logFile: string;
  readonly rootUser: string;
  readonly rootPassword: string;
  readonly gatewayUser: string;
  readonly gatewayPassword: string;
  readonly prefix: string;
  private readonly pidFile: string;

  constructor(
    readonly dataDir: string,
    readonly ports: EtcdPorts,
    creds: EtcdCredentials,
    private readonly opts: EtcdOptions,
  ) {
    super();
    this.endpoint = `127.0.0.1:${ports.client}`;
    this.clientUrl = `http://${this.endpoint}`;
    this.metricsUrl = `http://127.0.0.1:${ports.metrics}`;
    this.logFile = `${dataDir}.log`; // outside the data dir: etcd warns about foreign files in it
    this.pidFile = `${dataDir}.pid`;
    this.rootUser = creds.rootUser;
    this.rootPassword = creds.rootPassword;
    this.gatewayUser = creds.gatewayUser;
    this.gatewayPassword = creds.gatewayPassword;
    this.prefix = creds.prefix;
  }

  /** @internal Spawn etcd and wait until /health says true. */
  async spawnAndWait(): Promise<void> {
    const p = this.ports;
    const args = [
      `--name=${this.opts.member?.name ?? 'default'}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${p.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${p.peer}`,
      `--initial-cluster=${this.opts.member?.initialCluster ?? `default=http://127.0.0.1:${p.peer}`}`,
      `--listen-metrics-urls=${this.metricsUrl}`,
      '--logger=zap', // the 3.4 default (capnslog) prints a deprecation warning
      `--auth-token-ttl=${this.opts.authTokenTtl ?? 300}`,
    ];
    fs.appendFileSync(this.logFile, `\n=== ${new Date().toISOString()} etcd ${args.join(' ')}\n`);
    this.proc = spawnTracked('etcd', args, this.logFile);
    fs.writeFileSync(this.pidFile, String(this.proc.child.pid));
    await waitUntil('etcd', this.proc, this.logFile, () => this.healthy(), this.opts.startTimeoutMs ?? 30_000);
  }

  /**
   * etcd's /health on the metrics listener (no auth needed; false while there is no leader). During a
   * leader election /health itself can take longer than its 1 s timeout to answer: that is "not
   * healthy yet", not an error (a flake of core-member-failure on a loaded machine).
   */
  async healthy(): Promise<boolean> {
    try {
      const res = await httpGet(`${this.metricsUrl}/health`, 1000);
      return res.status === 200 && /"health":\s*"true"/.test(res.body);
    } catch {
      return false;
    }
  }

  /** Server-side gRPC counters (Authenticate, Range, LeaseKeepAlive, ...) from etcd's /metrics. */
  counters(): Promise<EtcdCounters> {
    return fetchEtcdCounters(this.metricsUrl);
  }

  /** Environment for running etcdctl yourself as root (password in env, not argv, so `ps` doesn't show it). */
  rootClientEnv(): Record<string, string> {
    return { ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: this.endpoint, ETCDCTL_USER: `${this.rootUser}:${this.rootPassword}` };
  }

  /**
   * Run etcdctl against this server as root, as the gateway user, or without credentials. Never throws on
   * a non-zero exit: tests assert on `code`/`stderr` (e.g. "permission denied").
   */
  ctl(args: string[], as: EtcdctlIdentity = 'root', input?: string): Promise<EtcdctlResult> {
    const env: Record<string, string> = { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: this.endpoint } as Record<
      string,
      string
    >;
    delete env.ETCDCTL_USER;
    delete env.ETCDCTL_PASSWORD;
    if (as === 'root') env.ETCDCTL_USER = `${this.rootUser}:${this.rootPassword}`;
    if (as === 'gateway') env.ETCDCTL_USER = `${this.gatewayUser}:${this.gatewayPassword}`;
    return runEtcdctl(args, env, input);
  }

  /** Stop and delete the data dir, its log/pid and the credentials file (for throw-away test servers). */
  async dispose(): Promise<void> {
    await this.stop();
    // STACK_LOG_DIR keeps the log of a throw-away server (e.g. to explain a failed fault scenario).
    const keep = process.env.STACK_LOG_DIR;
    if (keep && fs.existsSync(this.logFile)) {
      fs.mkdirSync(keep, { recursive: true });
      fs.copyFileSync(this.logFile, path.join(keep, path.basename(this.logFile)));
    }
    for (const f of [this.dataDir, this.logFile, this.pidFile, credentialsFile(this.dataDir)]) {
      fs.rmSync(f, { recursive: true, force: true });
    }
  }
}

function runEtcdctl(args: string[], env: Record<string, string>, input?: string): Promise<EtcdctlResult> {
  return new Promise((resolve) => {
    const child = spawn('etcdctl', ['--dial-timeout=3s', '--command-timeout=10s', ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => resolve({ code: -1, stdout, stderr: stderr + err.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // etcdctl may exit before reading stdin (EPIPE): its exit code is the verdict, not this write.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** `<parent>/<name>.credentials.json` for data dir `<parent>/<name>`. */
export function credentialsFile(dataDir: string): string {
  return `${dataDir}.credentials.json`;
}

function loadOrCreateCredentials(dataDir: string, opts: EtcdOptions): EtcdCredentials {
  const file = credentialsFile(dataDir);
  const prefix = opts.prefix ?? '/registry/';
  if (fs.existsSync(file)) {
    const creds = JSON.parse(fs.readFileSync(file, 'utf8')) as EtcdCredentials;
    if (creds.prefix !== prefix) {
      throw new Error(`${dataDir} was bootstrapped for prefix ${creds.prefix}, not ${prefix}; delete it to start over`);
    }
    return creds;
  }
  if (fs.existsSync(path.join(dataDir, 'member'))) {
    // An etcd data dir whose passwords we lost: auth is (probably) on and we can't get in.
    throw new Error(`${dataDir} exists but ${file} is missing; delete the data dir to start over`);
  }
  const creds: EtcdCredentials = {
    rootUser: 'root', // etcd requires the user named "root" (with role root) before `auth enable`
    rootPassword: randomSecret(),
    gatewayUser: opts.gatewayUser ?? 'registry-gateway',
    gatewayPassword: randomSecret(),
    prefix,
    bootstrapped: false,
  };
  saveCredentials(file, creds);
  return creds;
}

function saveCredentials(file: string, creds: EtcdCredentials): void {
  fs.writeFileSync(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
}

/**
 * Create root + gateway users and roles and turn auth on. Written to be resumable: an earlier run
 * that died half-way left "already exists" errors behind, which we accept.
 */
async function bootstrapAuth(etcd: EtcdServer): Promise<void> {
  // With auth already enabled an anonymous call fails with "user name is empty": then only check
  // that our root password works (a run died after `auth enable` but before saving `bootstrapped`).
  const probe = await etcd.ctl(['user', 'list'], 'anonymous');
  if (probe.code !== 0 && /user name is empty/.test(probe.stderr)) {
    const rootOk = await etcd.ctl(['user', 'get', 'root'], 'root');
    if (rootOk.code !== 0) throw new Error(`etcd auth is on but the saved root password fails: ${rootOk.stderr.trim()}`);
    return;
  }
  const steps: Array<{ args: string[]; input?: string }> = [
    // --interactive=false reads the password from stdin: it never shows up in argv.
    { args: ['user', 'add', etcd.rootUser, '--interactive=false'], input: etcd.rootPassword + '\n' },
    { args: ['role', 'add', 'root'] },
    { args: ['user', 'grant-role', etcd.rootUser, 'root'] },
    { args: ['role', 'add', GATEWAY_ROLE] },
    { args: ['role', 'grant-permission', GATEWAY_ROLE, 'readwrite', etcd.prefix, '--prefix=true'] },
    { args: ['user', 'add', etcd.gatewayUser, '--interactive=false'], input: etcd.gatewayPassword + '\n' },
    { args: ['user', 'grant-role', etcd.gatewayUser, GATEWAY_ROLE] },
    { args: ['auth', 'enable'] },
  ];
  for (const step of steps) {
    const res = await etcd.ctl(step.args, 'anonymous', step.input);
    if (res.code !== 0 && !/already exists|already granted/.test(res.stderr)) {
      throw new Error(`etcdctl ${step.args.slice(0, 2).join(' ')} failed: ${res.stderr.trim()}`);
    }
  }
}

/** Start etcd (fresh or existing data dir), bootstrap auth once, and return a handle. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdServer> {
  const dataDir = path.resolve(opts.dataDir ?? path.join(LOCAL_DIR, 'test', `etcd-${randomBytes(4).toString('hex')}`));
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const creds = loadOrCreateCredentials(dataDir, opts);
  // A dev stack killed with SIGKILL leaves its etcd running on this data dir: it would hold the lock.
  await killStale(`${dataDir}.pid`, `--data-dir=${dataDir}`);

  let etcd: EtcdServer | undefined;
  for (let attempt = 1; !etcd; attempt++) {
    const [client, peer, metrics] = opts.ports ? [] : await freePorts(3);
    const candidate = new EtcdServer(dataDir, opts.ports ?? { client, peer, metrics }, creds, opts);
    try {
      await candidate.spawnAndWait();
      etcd = candidate;
    } catch (err) {
      await candidate.kill();
      // Random ports can be taken between probing and binding: try others. Fixed ports: report it.
      if (opts.ports || attempt >= 3 || !/address already in use/.test(logTail(candidate.logFile, 5))) throw err;
    }
  }

  if (!creds.bootstrapped) {
    try {
      await bootstrapAuth(etcd);
    } catch (err) {
      await etcd.kill();
      throw err;
    }
    creds.bootstrapped = true;
    saveCredentials(credentialsFile(dataDir), creds);
  }
  return etcd;
}

/**
 * A multi-member etcd cluster on loopback, auth enabled (bootstrapped once through the first
 * member; users, roles and tokens are replicated). For member-failure tests and the bench.
 * `baseDir`: member i keeps its data in `<baseDir>-<i>` (default: a fresh `.local/test/etcd-cluster-<random>`).
 */
export async function startEtcdCluster(size = 3, opts: Omit<EtcdOptions, 'dataDir' | 'ports' | 'member'> & { baseDir?: string } = {}): Promise<EtcdServer[]> {
  const base = opts.baseDir ?? path.join(LOCAL_DIR, 'test', `etcd-cluster-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(path.dirname(base), { recursive: true });
  const creds = loadOrCreateCredentials(`${base}-0`, opts);
  const ports = await freePorts(3 * size);
  const memberPorts = Array.from({ length: size }, (_, i) => ({ client: ports[3 * i], peer: ports[3 * i + 1], metrics: ports[3 * i + 2] }));
  const initialCluster = memberPorts.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members = memberPorts.map((p, i) => new EtcdServer(`${base}-${i}`, p, creds, { ...opts, member: { name: `m${i}`, initialCluster } }));
  try {
    // All members must be up before any of them has a leader (and so reports healthy).
    await Promise.all(members.map((m) => m.spawnAndWait()));
    await bootstrapAuth(members[0]);
  } catch (err) {
    await Promise.all(members.map((m) => m.kill()));
    throw err;
  }
  return members;
}
