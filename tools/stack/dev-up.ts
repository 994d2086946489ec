/**
 * Dev stack (run by scripts/dev-up.sh, i.e. `npm start`): etcd with auth + Redis with persistent data
 * under .local/dev/, then the built gateway (npm run build's dist/.../main.js) wired to them, and a
 * banner with its URLs once it is ready. Ctrl-C stops the gateway first, then etcd and Redis.
 *
 *   --stack-only   start etcd + Redis only (e.g. to run the gateway from an IDE); print its env.
 * Env: PORT (gateway, default 8080), LOG_LEVEL, ETCD_POOL_SIZE, AUTH_TOKENS_FILE or AUTH_DISABLED (default:
 * generated dev tokens), DEV_GATEWAY_MAIN (entry point), LOG_FORMAT (`pretty` or `json`; default: pretty
 * when stdout is a terminal, JSON otherwise), REDIS_MODE (`single`, the default: one redis-server with its
 * data under .local/dev/redis; `sentinel`: a primary, a replica and three Sentinels; `cluster`: 3 primaries +
 * 3 replicas; both of those start empty on loopback ports and are removed when the stack stops).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Readable } from 'node:stream';
import { prettyFactory } from 'pino-pretty';
import { EtcdPorts, EtcdServer, credentialsFile, startEtcd } from './etcd';
import { LOCAL_DIR, REPO_ROOT, freePort, freePorts, httpGet, isPortFree, sleep, trackChild } from './procs';
import { RedisServer, startRedis } from './redis';
import { describeRedisTarget } from '../../libs/redis/src/redis-target';
import { RedisClusterGroup, RedisSentinelGroup, startRedisCluster, startRedisSentinelGroup } from './redis-topologies';

type DevRedis = { kind: 'single'; server: RedisServer } | { kind: 'sentinel'; group: RedisSentinelGroup } | { kind: 'cluster'; group: RedisClusterGroup };

/** Redis in the shape REDIS_MODE asks for; returns it with the gateway's variables and a banner line. */
async function startDevRedis(): Promise<{ redis: DevRedis; env: Record<string, string>; line: string }> {
  const mode = process.env.REDIS_MODE ?? 'single';
  if (mode === 'sentinel' || mode === 'cluster') {
    const dir = path.join(DEV_DIR, `redis-${mode}`);
    fs.rmSync(dir, { recursive: true, force: true }); // a Cluster is created on empty nodes only
    const group = mode === 'sentinel' ? await startRedisSentinelGroup({ dir }) : await startRedisCluster({ dir });
    const env = group.gatewayEnv();
    const target =
      group instanceof RedisSentinelGroup
        ? describeRedisTarget({ kind: 'sentinel', sentinels: group.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: group.name })
        : describeRedisTarget({ kind: 'cluster', nodes: group.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) });
    const redis: DevRedis = group instanceof RedisSentinelGroup ? { kind: 'sentinel', group } : { kind: 'cluster', group };
    return { redis, env, line: `Redis:          ${target}   (REDIS_MODE=${mode}; starts empty)` };
  }
  if (mode !== 'single') throw new Error(`REDIS_MODE must be "single", "sentinel" or "cluster", not "${mode}"`);
  const server = await startRedis({ dir: path.join(DEV_DIR, 'redis'), port: await pickPort(6379, 'Redis') });
  return { redis: { kind: 'single', server }, env: { REDIS_URL: server.url }, line: `Redis:          ${server.url}` };
}

function stopDevRedis(redis: DevRedis | undefined): Promise<void> | undefined {
  if (!redis) return undefined;
  return redis.kind === 'single' ? redis.server.stop() : redis.group.dispose();
}

const DEV_DIR = path.join(LOCAL_DIR, 'dev');
// DEV_GATEWAY_MAIN: run another entry point (e.g. a different build) with the same stack and env.
const GATEWAY_MAIN = path.resolve(process.env.DEV_GATEWAY_MAIN ?? path.join(REPO_ROOT, 'dist', 'apps', 'gateway', 'apps', 'gateway', 'src', 'main.js'));
const PREFIX = '/registry/';

const log = (msg: string): void => void process.stderr.write(`[dev-up] ${msg}\n`);

/** The usual ports when free (stable URLs for the developer), otherwise fresh random ones. */
async function pickEtcdPorts(): Promise<EtcdPorts> {
  const usual = { client: 2379, peer: 2380, metrics: 2381 };
  const free = await Promise.all(Object.values(usual).map(isPortFree));
  if (free.every(Boolean)) return usual;
  const [client, peer, metrics] = await freePorts(3);
  log(`etcd ports 2379-2381 are taken; using ${client}/${peer}/${metrics}`);
  return { client, peer, metrics };
}

async function pickPort(usual: number, what: string): Promise<number> {
  if (await isPortFree(usual)) return usual;
  const port = await freePort();
  log(`${what} port ${usual} is taken; using ${port}`);
  return port;
}

/**
 * The gateway refuses to start without API tokens (AUTH_TOKENS_FILE) unless AUTH_DISABLED=true.
 * For the dev stack: one token per role, generated once into .local/dev/ and reused across runs.
 */
function devTokensFile(): { file: string; adminToken: string; readerToken: string } {
  const file = path.join(DEV_DIR, 'api-tokens.json');
  if (!fs.existsSync(file)) {
    const token = (): string => randomBytes(32).toString('base64url');
    const tokens = [
      { name: 'dev-admin', role: 'admin', token: token() },
      { name: 'dev-agent', role: 'agent', services: ['*'], token: token() },
      { name: 'dev-reader', role: 'reader', token: token() },
    ];
    fs.mkdirSync(DEV_DIR, { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ tokens }, null, 2) + '\n', { mode: 0o600 });
  }
  const { tokens } = JSON.parse(fs.readFileSync(file, 'utf8')) as { tokens: Array<{ role: string; token?: string }> };
  const tokenOf = (role: string): string => tokens.find((t) => t.role === role)?.token ?? '';
  return { file, adminToken: tokenOf('admin'), readerToken: tokenOf('reader') };
}

/**
 * The gateway logs JSON lines (what log shippers want, and what `npm run start:prod` keeps doing).
 * In a terminal they are hard to read, so dev-up pretty-prints them here rather than teaching the
 * gateway a second output format: the gateway stays exactly as it runs in production.
 */
function wantPrettyLogs(): boolean {
  const format = process.env.LOG_FORMAT;
  if (format === 'json') return false;
  if (format === 'pretty') return true;
  if (format) throw new Error(`LOG_FORMAT must be "pretty" or "json", not "${format}"`);
  return process.stdout.isTTY === true;
}

/** Pretty-prints the gateway's JSON lines to our stdout; resolves once the gateway closed its stdout. */
function prettyPrintLines(from: Readable): Promise<void> {
  const format = prettyFactory({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    // service is always registry-gateway; context goes in front of the message instead.
    ignore: 'pid,hostname,service,context',
    messageFormat: '{if context}[{context}] {end}{msg}',
  });
  const lines = readline.createInterface({ input: from, crlfDelay: Infinity });
  lines.on('line', (line) => {
    // Anything that is not a JSON log line (a crash trace, a library's console.log) passes as is.
    process.stdout.write(line.startsWith('{') ? format(line) : line + '\n');
  });
  return new Promise((resolve) => lines.once('close', resolve));
}

/** Polls /health/ready until it answers 200; false if it has not after `timeoutMs`. */
async function waitForReady(url: string, gateway: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && gateway.exitCode === null && gateway.signalCode === null) {
    const res = await httpGet(`${url}/health/ready`, 1000).catch(() => undefined);
    if (res?.status === 200) return true;
    await sleep(200);
  }
  return false;
}

async function main(): Promise<void> {
  const stackOnly = process.argv.includes('--stack-only');
  const pretty = wantPrettyLogs(); // before anything starts: a bad LOG_FORMAT fails fast
  let gatewayPort = 0;
  if (!stackOnly) {
    if (!fs.existsSync(GATEWAY_MAIN)) throw new Error(`${path.relative(REPO_ROOT, GATEWAY_MAIN)} not found: run \`npm run build\` first`);
    // An explicit $PORT is the user's choice: fail rather than silently move. The default may move.
    gatewayPort = process.env.PORT ? Number(process.env.PORT) : await pickPort(8080, 'gateway');
    if (process.env.PORT && !(await isPortFree(gatewayPort))) throw new Error(`PORT=${gatewayPort} is already in use`);
  }

  // Filled in as things start; shutdown() stops whatever is there.
  const running: { etcd?: EtcdServer; redis?: DevRedis; gateway?: ChildProcess; logsDone?: Promise<void> } = {};
  let stopping = false;

  // Registered before anything starts, so @app/stack's own signal hook defers to us (see procs.ts).
  const shutdown = async (reason: string, code: number): Promise<void> => {
    if (stopping) {
      log('second signal: killing everything now');
      process.exit(code); // the 'exit' hook in procs.ts SIGKILLs etcd, Redis and the gateway
    }
    stopping = true;
    log(`${reason}: stopping ...`);
    const { gateway, etcd, redis } = running;
    if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
      const exited = new Promise((r) => gateway.once('exit', r));
      gateway.kill('SIGTERM');
      const timer = setTimeout(() => gateway.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // The gateway's last lines (shutdown complete) are still in the pipe: print them before ours.
    await Promise.race([running.logsDone, sleep(2000)]);
    await Promise.all([etcd?.stop(), stopDevRedis(redis)]);
    log('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGHUP', () => void shutdown('SIGHUP', 0));
  // `npm start` puts npm and `sh -c` above us; a SIGTERM sent to npm kills the shell without
  // reaching us. Being re-parented means whoever started us is gone: stop rather than linger.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void shutdown('parent process exited', 0);
  }, 1000).unref();

  const etcdPorts = await pickEtcdPorts();
  const [etcd, devRedis] = await Promise.all([startEtcd({ dataDir: path.join(DEV_DIR, 'etcd'), prefix: PREFIX, ports: etcdPorts }), startDevRedis()]);
  Object.assign(running, { etcd, redis: devRedis.redis });
  if (stopping) return; // a signal arrived while starting: shutdown() owns the exit

  const env: Record<string, string> = {
    PORT: String(gatewayPort),
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_USERNAME: etcd.gatewayUser,
    ETCD_PASSWORD: etcd.gatewayPassword,
    ETCD_POOL_SIZE: process.env.ETCD_POOL_SIZE ?? '2',
    ETCD_PREFIX: PREFIX,
    ...devRedis.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  };
  // The developer's own AUTH_TOKENS_FILE / AUTH_DISABLED win (inherited from process.env below).
  const devTokens = process.env.AUTH_TOKENS_FILE || process.env.AUTH_DISABLED === 'true' ? undefined : devTokensFile();
  if (devTokens) env.AUTH_TOKENS_FILE = devTokens.file;
  // For tools (benches, scripts) that want to find the running dev stack. No root password here.
  const { ETCD_PASSWORD: _secret, ...publicEnv } = env;
  fs.writeFileSync(
    path.join(DEV_DIR, 'stack.json'),
    JSON.stringify({ ...publicEnv, ETCD_METRICS_URL: etcd.metricsUrl, credentialsFile: credentialsFile(etcd.dataDir) }, null, 2) + '\n',
  );

  const relative = (p: string): string => path.relative(REPO_ROOT, p);
  const stackLines = [
    `etcd:           ${etcd.endpoint}   (auth on, gateway user "${etcd.gatewayUser}", prefix ${PREFIX})`,
    `etcd metrics:   ${etcd.metricsUrl}/metrics`,
    devRedis.line,
    `Credentials:    ${relative(credentialsFile(etcd.dataDir))}   (data + logs in ${relative(DEV_DIR)}/)`,
  ];

  if (stackOnly) {
    const envLines = Object.entries(publicEnv)
      .filter(([k]) => k !== 'PORT')
      .map(([k, v]) => `  ${k}=${v}`);
    printBanner(['Dev stack is up (etcd + Redis only):', ...stackLines, 'Gateway env:', ...envLines, '  ETCD_PASSWORD=<see credentials file>'], 'etcd and Redis');
    setInterval(() => undefined, 1 << 30); // keep running until a signal arrives
    return;
  }

  // Own process group (detached): Ctrl-C reaches only us, and we stop the gateway before etcd/Redis.
  // JSON logs go straight to our stdout; pretty ones through us.
  const gateway = spawn(process.execPath, [GATEWAY_MAIN], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', pretty ? 'pipe' : 'inherit', 'inherit'],
    detached: true,
  });
  running.gateway = gateway;
  if (gateway.stdout) running.logsDone = prettyPrintLines(gateway.stdout);
  trackChild(gateway);
  gateway.once('exit', (code, signal) => {
    if (!stopping) void shutdown(`gateway exited (${signal ?? code})`, code || 1);
  });

  // The banner comes last, once the gateway answers: its URLs work when the developer reads them, and
  // start-up log lines do not push it out of sight.
  const url = `http://127.0.0.1:${gatewayPort}`;
  const ready = await waitForReady(url, gateway, 60_000);
  if (stopping) return;
  printBanner([
    ready ? `Gateway is ready: ${url}` : `Gateway started at ${url} but ${url}/health/ready is not 200 yet: see the logs above`,
    // Local, generated dev tokens: printing them is the point (issue 7 allows it for the Quick start).
    // The dashboard gets the read-only token; the fragment (#...) never leaves the browser.
    devTokens?.readerToken ? `Dashboard:      ${url}/ui#token=${devTokens.readerToken}   (dev-reader token)` : `Dashboard:      ${url}/ui`,
    `API:            ${url}/v1/services${devTokens ? '   (Bearer token: see below)' : ''}`,
    `API docs:       ${url}/docs   (OpenAPI document: ${url}/openapi.json)`,
    `Metrics:        ${url}/metrics`,
    `Health:         ${url}/health/ready   (liveness: /health/live)`,
    ...stackLines,
    ...(devTokens
      ? [
          `API tokens:     ${relative(devTokens.file)}   (dev-admin, dev-agent, dev-reader)`,
          `  export TOKEN=${devTokens.adminToken}   # dev-admin; then: curl -H "authorization: Bearer $TOKEN" ${url}/v1/services`,
        ]
      : []),
  ]);
}

function printBanner(lines: string[], stops = 'the gateway, etcd and Redis'): void {
  process.stdout.write(['', ...lines, `Ctrl-C stops ${stops}`, ''].join('\n') + '\n');
}

main().catch((err: unknown) => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1); // the exit hook kills whatever already started
});
