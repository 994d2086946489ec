/**
 * The processes a benchmark run starts besides etcd and Redis: gateway replicas (the built
 * dist/, as in production), the bare Fastify server, and one fleet-sim process per scenario. Each
 * is tracked by @app/stack, so a crashed or interrupted run leaves nothing behind.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, freePort, trackChild } from '@app/stack';

/** The build every scenario starts; BENCH_GATEWAY_MAIN points a run at another build's main.js (A/B of two builds). */
export const GATEWAY_MAIN = process.env.BENCH_GATEWAY_MAIN || path.join(REPO_ROOT, 'dist', 'apps', 'gateway', 'apps', 'gateway', 'src', 'main.js');
/** Extra node flags for every gateway a run starts (e.g. a V8 flag under test), split on spaces. */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
const TS_NODE = ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register'];

export interface ServerProcess {
  url: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** Spawns `node <args>` with output to `logFile` and waits until `readyPath` answers 200. */
async function startServer(args: string[], env: Record<string, string>, logFile: string, readyPath: string): Promise<ServerProcess> {
  const port = await freePort();
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  trackChild(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.at(-1)} exited (${child.exitCode}) during start-up; log ${logFile}:\n${tail(logFile)}`);
    try {
      if ((await fetch(url + readyPath, { signal: AbortSignal.timeout(1000) })).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${args.at(-1)} not ready after 60 s; log ${logFile}:\n${tail(logFile)}`);
    }
    await sleep(100);
  }
  return { url, pid: child.pid!, logFile, stop: () => stopChild(child) };
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface GatewayEnv {
  ETCD_ENDPOINTS: string;
  ETCD_USERNAME: string;
  ETCD_PASSWORD: string;
  ETCD_PREFIX: string;
  ETCD_POOL_SIZE: string;
  /** REDIS_URL, or REDIS_CLUSTER_NODES (+ REDIS_PASSWORD): BenchRedis.gatewayEnv. */
  [redisSetting: `REDIS_${string}`]: string;
}

/**
 * One gateway replica from the build, configured as in production (bearer auth and registration rate
 * limit off). `nodeArgs` reach this replica only (e.g. a profiler on the replica under test).
 */
export function startGateway(env: GatewayEnv, logFile: string, main = GATEWAY_MAIN, nodeArgs: string[] = []): Promise<ServerProcess> {
  if (!fs.existsSync(main)) throw new Error(`${main} not found: run \`npm run build\` first`);
  // The per-token registration rate limit would measure itself, not the gateway: off here.
  // The heap limit deploy/k8s sets: Node's default (a quarter of the machine, 4 GB here) lets V8 grow
  // the heap to ~4x what is live before it collects, which is what RSS then shows (bench/results/memory.md).
  return startServer(['--max-old-space-size=768', ...GATEWAY_NODE_ARGS, ...nodeArgs, main], { ...env, AUTH_DISABLED: 'true', LOG_LEVEL: 'warn', RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' }, logFile, '/metrics');
}

/** The bare Fastify server (bench/bare-server.ts): same routes and response shapes, nothing behind them. */
export function startBareServer(resolveBodyFile: string | undefined, logFile: string): Promise<ServerProcess> {
  const env: Record<string, string> = resolveBodyFile ? { BARE_RESOLVE_BODY_FILE: resolveBodyFile } : {};
  return startServer([...TS_NODE, path.join(REPO_ROOT, 'bench', 'bare-server.ts')], env, logFile, '/health');
}

/**
 * Runs one fleet-sim scenario as its own process (progress bars and its summary table go to this
 * terminal) and returns the JSON it wrote.
 */
export async function runFleetSim<T>(args: string[], env: Record<string, string>, jsonFile: string): Promise<T> {
  fs.rmSync(jsonFile, { force: true });
  // FLEET_SIM_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") reaches the load generator only,
  // where NODE_OPTIONS would also slow down the replica under test.
  const nodeArgs = (process.env.FLEET_SIM_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, ...TS_NODE, path.join(REPO_ROOT, 'apps', 'fleet-sim', 'src', 'main.ts'), ...args, '--json', jsonFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  trackChild(child);
  // Passed through to this terminal; the tail is kept so that a failure says why, not just "exit 1".
  let stderrTail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  if (code !== 0 || !fs.existsSync(jsonFile)) {
    const why = /fleet-sim: (.+)/.exec(stderrTail)?.[1]?.trim();
    throw new Error(`fleet-sim ${args[0]} failed (exit ${code})${why ? `: ${why}` : ''}`);
  }
  return JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as T;
}
