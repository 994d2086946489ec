/**
 * Gateways under test: in-process replicas (fast, several per test) and real child processes (for
 * signals and logs). Each test picks its own ETCD_PREFIX below /registry/, so tests sharing one etcd
 * never see each other's keys.
 */
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createGatewayApp } from '../../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../../apps/gateway/src/config/gateway-config';
import { EtcdServer, startEtcd } from '../../tools/stack/etcd';
import { freePort } from '../../tools/stack/procs';
import { RedisServer, startRedis } from '../../tools/stack/redis';
import { metricValue, request } from './http';
import { waitFor } from './wait';

export interface EtcdTarget {
  endpoint: string;
  username: string;
  password: string;
}

export interface GatewayUnderTest {
  url: string;
  prefix: string;
  app: NestFastifyApplication;
  close(): Promise<void>;
  /** One sample of this replica's /metrics (sum over label sets when `labels` is omitted). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export function uniquePrefix(): string {
  return `/registry/t${randomBytes(4).toString('hex')}/`;
}

export function gatewayEnv(etcd: EtcdTarget, redisUrl: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_USERNAME: etcd.username,
    ETCD_PASSWORD: etcd.password,
    ETCD_PREFIX: uniquePrefix(),
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'error',
    AUTH_DISABLED: 'true',
    // Tests share 2 cores with etcd, Redis and jest itself: event-loop spikes of hundreds of ms are
    // normal here and must not shed the registrations a test depends on. The admission tests set
    // their own bound (test/lease-engine-starvation).
    ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '10000',
    // Many tests let most of their pods go silent on purpose to watch them expire; self-preservation
    // (on by default in production) would hold them. test/self-preservation turns it on.
    SELF_PRESERVATION: 'false',
    ...overrides,
  };
}

/** Starts one replica in this process, listening on a random loopback port. */
export async function startGateway(etcd: EtcdTarget, redisUrl: string, overrides: Record<string, string> = {}): Promise<GatewayUnderTest> {
  const config = loadGatewayConfig(gatewayEnv(etcd, redisUrl, overrides));
  const app = await createGatewayApp(config);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    url,
    prefix: config.ETCD_PREFIX,
    app,
    close: () => app.close(),
    metric: async (name, labels) => metricValue((await request(url, 'GET', '/metrics')).body, name, labels),
  };
}

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
}

/**
 * Starts the gateway as a real process (ts-node, no build needed), for signal and log tests. `root`:
 * another checkout of the gateway (a previous release, see previous-release.ts); default this one.
 */
export async function startGatewayProcess(env: Record<string, string>, root = path.resolve(__dirname, '..', '..')): Promise<GatewayProcess> {
  const port = env.PORT ?? String(await freePort());
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', 'apps/gateway/src/main.ts'],
    { cwd: root, env: { ...process.env, TS_NODE_PROJECT: 'tsconfig.json', HOST: '127.0.0.1', ...env, PORT: port }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  // A process that exited stops the wait too: tests of bad configuration assert on its exit.
  await waitFor('gateway process listening', async () => child.exitCode !== null || (await request(url, 'GET', '/metrics', undefined, 5000)).status === 200, 60_000).catch(
    (err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start: ${err.message}\n${output}`);
    },
  );
  return { url, child, output: () => output, exited };
}

/** `call(url, method, body?)` lives with the one HTTP client; re-exported because many tests import it from here. */
export { call } from './http';

/** metricValue under its older name, still imported by tests being written elsewhere. */
export const readMetric = metricValue;

/** The gateway user's coordinates on an etcd started by the test. */
export function etcdTarget(etcd: EtcdServer): EtcdTarget {
  return { endpoint: etcd.endpoint, username: etcd.gatewayUser, password: etcd.gatewayPassword };
}

/**
 * A private etcd + Redis for one test file (tests that count etcd calls, or restart/freeze etcd),
 * started in beforeAll and disposed in afterAll, after the gateways the file registered with `track`.
 */
export function usePrivateStack() {
  const state: { etcd?: EtcdServer; redis?: RedisServer; gateways: GatewayUnderTest[] } = { gateways: [] };
  beforeAll(async () => {
    [state.etcd, state.redis] = await Promise.all([startEtcd(), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all(state.gateways.map((g) => g.close()));
    await Promise.all([state.etcd?.dispose(), state.redis?.stop()]);
  });
  return {
    etcd: () => state.etcd!,
    redis: () => state.redis!,
    /** Starts a gateway on this stack; it is closed after the file's tests. */
    startGateway: async (overrides: Record<string, string> = {}) => {
      const gateway = await startGateway(etcdTarget(state.etcd!), state.redis!.url, overrides);
      state.gateways.push(gateway);
      return gateway;
    },
  };
}
