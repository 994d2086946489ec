/**
 * Jest globalSetup of the "integration" project: ONE etcd (auth enabled) and ONE Redis for the
 * whole run, because starting etcd and bootstrapping auth costs ~1 s and tests only need isolation
 * by key prefix. Coordinates go to process.env (set here, before jest spawns workers, so every
 * worker and the in-band runner inherit them) and to .local/test-stack.json.
 * Imports are relative: jest's moduleNameMapper does not apply to globalSetup modules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdServer, startEtcd } from '../../tools/stack/etcd';
import { RedisServer, startRedis } from '../../tools/stack/redis';
import { LOCAL_DIR, livePid } from '../../tools/stack/procs';
import { STACK_ENV, STACK_FILE, StackCoordinates } from './stack';

/** Handed to global-teardown, which runs in the same process as this module. */
export interface TestStackHandles {
  etcd: EtcdServer;
  redis: RedisServer;
}
declare global {
  var __REGISTRY_TEST_STACK__: TestStackHandles | undefined;
}

/**
 * Test servers that were only stopped, not disposed (or whose jest run was killed) leave random-named
 * dirs in .local/test/. Delete those whose server is dead AND whose log has been quiet for an hour:
 * a concurrent jest run may have a server stopped just for a restart() test.
 */
function pruneDeadTestData(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const quiet = (log: string): boolean => {
    try {
      return Date.now() - fs.statSync(log).mtimeMs > 3_600_000;
    } catch {
      return true; // no log at all: never started properly
    }
  };
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    if (/^etcd-[0-9a-f]{8}$/.test(name) && quiet(`${p}.log`) && !livePid(`${p}.pid`, `--data-dir=${p}`)) {
      for (const f of [p, `${p}.pid`, `${p}.log`, `${p}.credentials.json`]) fs.rmSync(f, { recursive: true, force: true });
    } else if (/^redis-[0-9a-f]{8}$/.test(name) && quiet(path.join(p, 'redis.log')) && !livePid(path.join(p, 'redis.pid'), 'redis-server')) {
      fs.rmSync(p, { recursive: true, force: true });
    }
  }
}

export default async function globalSetup(): Promise<void> {
  pruneDeadTestData(path.join(LOCAL_DIR, 'test'));
  const [etcd, redis] = await Promise.all([startEtcd({ prefix: '/registry/' }), startRedis()]);
  globalThis.__REGISTRY_TEST_STACK__ = { etcd, redis };

  const coords: StackCoordinates = {
    etcd: {
      endpoint: etcd.endpoint,
      metricsUrl: etcd.metricsUrl,
      prefix: etcd.prefix,
      username: etcd.gatewayUser,
      password: etcd.gatewayPassword,
      rootUser: etcd.rootUser,
      rootPassword: etcd.rootPassword,
      pid: etcd.pid!,
    },
    redis: { url: redis.url, pid: redis.pid! },
  };
  const env: Record<string, string> = {
    [STACK_ENV.etcdEndpoints]: coords.etcd.endpoint,
    [STACK_ENV.etcdMetricsUrl]: coords.etcd.metricsUrl,
    [STACK_ENV.etcdPrefix]: coords.etcd.prefix,
    [STACK_ENV.etcdUsername]: coords.etcd.username,
    [STACK_ENV.etcdPassword]: coords.etcd.password,
    [STACK_ENV.etcdRootUsername]: coords.etcd.rootUser,
    [STACK_ENV.etcdRootPassword]: coords.etcd.rootPassword,
    [STACK_ENV.etcdPid]: String(coords.etcd.pid),
    [STACK_ENV.redisUrl]: coords.redis.url,
    [STACK_ENV.redisPid]: String(coords.redis.pid),
    [STACK_ENV.stackFile]: STACK_FILE,
  };
  Object.assign(process.env, env);

  fs.mkdirSync(path.dirname(STACK_FILE), { recursive: true });
  fs.writeFileSync(STACK_FILE, JSON.stringify(coords, null, 2) + '\n', { mode: 0o600 });
}
