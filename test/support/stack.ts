/**
 * Coordinates of the etcd + Redis that test/support/global-setup.ts starts once per integration run.
 * Env vars are the primary channel (jest workers inherit them); the JSON file is the fallback for
 * code that runs outside jest's process tree (e.g. a debugger attached to a long-running stack).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCounters, fetchEtcdCounters } from '../../tools/stack/metrics';

export const STACK_FILE = path.resolve(__dirname, '..', '..', '.local', 'test-stack.json');

/** Environment variables published by global-setup (the names are part of the test contract). */
export const STACK_ENV = {
  etcdEndpoints: 'TEST_ETCD_ENDPOINTS',
  etcdMetricsUrl: 'TEST_ETCD_METRICS_URL',
  etcdPrefix: 'TEST_ETCD_PREFIX',
  etcdUsername: 'TEST_ETCD_USERNAME',
  etcdPassword: 'TEST_ETCD_PASSWORD',
  etcdRootUsername: 'TEST_ETCD_ROOT_USERNAME',
  etcdRootPassword: 'TEST_ETCD_ROOT_PASSWORD',
  etcdPid: 'TEST_ETCD_PID',
  redisUrl: 'TEST_REDIS_URL',
  redisPid: 'TEST_REDIS_PID',
  stackFile: 'TEST_STACK_FILE',
} as const;

export interface StackCoordinates {
  etcd: {
    /** "127.0.0.1:PORT" (the format of the gateway's ETCD_ENDPOINTS). */
    endpoint: string;
    metricsUrl: string;
    prefix: string;
    /** The least-privileged gateway user: readwrite on `prefix` only. */
    username: string;
    password: string;
    rootUser: string;
    rootPassword: string;
    pid: number;
  };
  redis: { url: string; pid: number };
}

export interface SharedStack extends StackCoordinates {
  /** etcd's server-side gRPC counters right now; diff two snapshots with diffCounters(). */
  etcdCounters(): Promise<EtcdCounters>;
}

function fromEnv(): StackCoordinates | undefined {
  const e = process.env;
  if (!e[STACK_ENV.etcdEndpoints] || !e[STACK_ENV.redisUrl]) return undefined;
  return {
    etcd: {
      endpoint: e[STACK_ENV.etcdEndpoints]!,
      metricsUrl: e[STACK_ENV.etcdMetricsUrl]!,
      prefix: e[STACK_ENV.etcdPrefix]!,
      username: e[STACK_ENV.etcdUsername]!,
      password: e[STACK_ENV.etcdPassword]!,
      rootUser: e[STACK_ENV.etcdRootUsername]!,
      rootPassword: e[STACK_ENV.etcdRootPassword]!,
      pid: Number(e[STACK_ENV.etcdPid]),
    },
    redis: { url: e[STACK_ENV.redisUrl]!, pid: Number(e[STACK_ENV.redisPid]) },
  };
}

/** The shared stack of this integration run. Throws with a hint when global-setup did not run. */
export function sharedStack(): SharedStack {
  let coords = fromEnv();
  if (!coords) {
    const file = process.env[STACK_ENV.stackFile] ?? STACK_FILE;
    if (!fs.existsSync(file)) {
      throw new Error(`no shared test stack: run through jest's "integration" project (global-setup) - ${file} missing`);
    }
    coords = JSON.parse(fs.readFileSync(file, 'utf8')) as StackCoordinates;
  }
  const metricsUrl = coords.etcd.metricsUrl;
  return { ...coords, etcdCounters: () => fetchEtcdCounters(metricsUrl) };
}
