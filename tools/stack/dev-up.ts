/**
 * Dev stack (run by scripts/dev-up.sh, i.e. `npm start`): etcd with auth + Redis with persistent data
 * under .local/dev/, then the built gateway (npm run build's dist/.../main.js) wired to them. Ctrl-C stops
 * the gateway first, then etcd and Redis.
 *
 *   --stack-only   start etcd + Redis only (e.g. to run the gateway from an IDE); print its env.
 * Env: PORT (gateway, default 8080), LOG_LEVEL, ETCD_POOL_SIZE, AUTH_TOKENS_FILE or AUTH_DISABLED (default:
 * generated dev tokens), DEV_GATEWAY_MAIN (entry point).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdPorts, EtcdServer, credentialsFile, startEtcd } from './etcd';
import { LOCAL_DIR, REPO_ROOT, freePort, freePorts, isPortFree, trackChild } from './procs';
import { RedisServer, startRedis } from './redis';

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
function devTokensFile(): { file: string; adminToken: string } {
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
  return { file, adminToken: tokens.find((t) => t.role === 'admin')?.token ?? '' };
}

async function main(): Promise<void> {
  const stackOnly = process.argv.includes('--stack-only');
  let gatewayPort = 0;
  if (!stackOnly) {
    if (!fs.existsSync(GATEWAY_MAIN)) throw new Error(`${path.relative(REPO_ROOT, GATEWAY_MAIN)} not found: run \`npm run build\` first`);
    // An explicit $PORT is the user's choice: fail rather than silently move. The default may move.
    gatewayPort = process.env.PORT ? Number(process.env.PORT) : await pickPort(8080, 'gateway');
    if (process.env.PORT && !(await isPortFree(gatewayPort))) throw new Error(`PORT=${gatewayPort} is already in use`);
  }

  // Filled in as things start; shutdown() stops whatever is there.
  const running: { etcd?: EtcdServer; redis?: RedisServer; gateway?: ChildProcess } = {};
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
    await Promise.all([etcd?.stop(), redis?.stop()]);
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

  const [etcdPorts, redisPort] = await Promise.all([pickEtcdPorts(), pickPort(6379, 'Redis')]);
  const [etcd, redis] = await Promise.all([
    startEtcd({ dataDir: path.join(DEV_DIR, 'etcd'), prefix: PREFIX, ports: etcdPorts }),
    startRedis({ dir: path.join(DEV_DIR, 'redis'), port: redisPort }),
  ]);
  Object.assign(running, { etcd, redis });
  if (stopping) return; // a signal arrived while starting: shutdown() owns the exit

  const env: Record<string, string> = {
    PORT: String(gatewayPort),
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_USERNAME: etcd.gatewayUser,
    ETCD_PASSWORD: etcd.gatewayPassword,
    ETCD_POOL_SIZE: process.env.ETCD_POOL_SIZE ?? '2',
    ETCD_PREFIX: PREFIX,
    REDIS_URL: redis.url,
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

  const lines = [
    '',
    stackOnly ? 'Dev stack is up (etcd + Redis only):' : `Gateway:        http://127.0.0.1:${gatewayPort}   (health: /health/ready, metrics: /metrics)`,
    `etcd:           ${etcd.endpoint}   (auth on, gateway user "${etcd.gatewayUser}", prefix ${PREFIX})`,
    `etcd metrics:   ${etcd.metricsUrl}/metrics`,
    `Redis:          ${redis.url}`,
    `Credentials:    ${path.relative(REPO_ROOT, credentialsFile(etcd.dataDir))}   (data + logs in ${path.relative(REPO_ROOT, DEV_DIR)}/)`,
    ...(devTokens
      ? [
          `API tokens:     ${path.relative(REPO_ROOT, devTokens.file)}   (dev-admin, dev-agent, dev-reader)`,
          // A local, generated dev token: printing it is the point (issue 7 allows it for the Quick start).
          `  export TOKEN=${devTokens.adminToken}   # dev-admin; then: curl -H "authorization: Bearer $TOKEN" http://127.0.0.1:${gatewayPort || 8080}/v1/services`,
        ]
      : []),
    ...(stackOnly
      ? [
          'Gateway env:',
          ...Object.entries(publicEnv)
            .filter(([k]) => k !== 'PORT')
            .map(([k, v]) => `  ${k}=${v}`),
          '  ETCD_PASSWORD=<see credentials file>',
        ]
      : []),
    'Ctrl-C to stop',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');

  if (stackOnly) {
    setInterval(() => undefined, 1 << 30); // keep running until a signal arrives
    return;
  }

  // Own process group (detached): Ctrl-C reaches only us, and we stop the gateway before etcd/Redis.
  // stdout/stderr are inherited: the gateway's logs appear in this terminal as they are.
  const gateway = spawn(process.execPath, [GATEWAY_MAIN], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  running.gateway = gateway;
  trackChild(gateway);
  gateway.once('exit', (code, signal) => {
    if (!stopping) void shutdown(`gateway exited (${signal ?? code})`, code || 1);
  });
}

main().catch((err: unknown) => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1); // the exit hook kills whatever already started
});
