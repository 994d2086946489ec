/**
 * Integration test of the test harness itself (@app/stack + test/support): if these fail, every
 * other integration test's verdict is meaningless. Read-only checks use the shared stack from
 * global-setup; anything that counts exact calls or disrupts etcd uses a private server, so it
 * cannot flake because of, or break, other test files.
 */
import { Etcd3, EtcdPermissionDeniedError } from 'etcd3';
import Redis from 'ioredis';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { EtcdServer, RedisServer, diffCounters, parsePrometheusText, startEtcd, startRedis } from '@app/stack';
import { etcdAdmin } from './support/etcd-admin';
import { STACK_ENV, sharedStack } from './support/stack';

// jest.config.js sets testTimeout inside the project entry, where jest ignores it (it is a global
// option): without this, the 5 s default applies to tests that start and restart real servers.
jest.setTimeout(60_000);

const uid = (): string => randomBytes(4).toString('hex');

describe('shared stack from global-setup', () => {
  const stack = sharedStack();
  const clients: Etcd3[] = [];
  const gatewayClient = (): Etcd3 => {
    const c = new Etcd3({
      hosts: `http://${stack.etcd.endpoint}`,
      auth: { username: stack.etcd.username, password: stack.etcd.password },
    });
    clients.push(c);
    return c;
  };
  afterAll(() => clients.forEach((c) => c.close()));

  it('is published through environment variables inherited by the test process', () => {
    expect(process.env[STACK_ENV.etcdEndpoints]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(process.env[STACK_ENV.redisUrl]).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(stack.etcd.prefix).toBe('/registry/');
    expect(fs.existsSync(process.env[STACK_ENV.stackFile]!)).toBe(true);
  });

  it('enforces etcd authentication: a request without credentials is rejected', async () => {
    const anonymous = new Etcd3({ hosts: `http://${stack.etcd.endpoint}` });
    clients.push(anonymous);
    await expect(anonymous.get('/registry/anything').string()).rejects.toThrow(/user name is empty/);
  });

  it('lets the gateway user write under the prefix and denies it everywhere else', async () => {
    const gw = gatewayClient();
    const key = `/registry/stack-e2e/${uid()}`;
    await gw.put(key).value('v1');
    expect(await gw.get(key).string()).toBe('v1');

    await expect(gw.put(`/outside-${uid()}`).value('x')).rejects.toBeInstanceOf(EtcdPermissionDeniedError);
    await expect(gw.get('/registry').string()).rejects.toBeInstanceOf(EtcdPermissionDeniedError); // no trailing '/'
    await expect(gw.getAll().prefix('/').keys()).rejects.toBeInstanceOf(EtcdPermissionDeniedError);

    const admin = etcdAdmin();
    expect(await admin.get(key)).toBe('v1');
    expect(await admin.listKeys('/registry/stack-e2e/')).toContain(key);
    expect(await admin.keysOutside('/registry/')).toEqual([]);
    expect(await admin.deletePrefix('/registry/stack-e2e/')).toBeGreaterThanOrEqual(1);
  });

  it('exposes etcd counters for the shared server', async () => {
    const c = await stack.etcdCounters();
    expect(c.authenticate).toBeGreaterThan(0); // global-setup and the tests above logged in
  });

  it('has a Redis that answers PING', async () => {
    const redis = new Redis(stack.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    await redis.quit();
  });
});

describe('private etcd', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.dispose();
  });

  it('counts exactly the calls a client makes (one Authenticate per client)', async () => {
    const before = await etcd.counters();
    const clients = [1, 2, 3].map(
      () =>
        new Etcd3({
          hosts: `http://${etcd.endpoint}`,
          auth: { username: etcd.gatewayUser, password: etcd.gatewayPassword },
        }),
    );
    try {
      for (const c of clients) {
        for (let i = 0; i < 5; i++) await c.get(`/registry/k${i}`).string();
      }
      const c0 = clients[0];
      await c0.put('/registry/leased').value('x'); // Put
      const lease = c0.lease(30, { autoKeepAlive: false });
      await lease.grant(); // LeaseGrant
      // etcd3's keepaliveOnce opens a fresh LeaseKeepAlive stream per call (the go-micro pattern).
      await lease.keepaliveOnce();
      await lease.keepaliveOnce();
      await lease.revoke(); // LeaseRevoke
      await c0.delete().key('/registry/leased'); // DeleteRange
      await c0.if('/registry/leased', 'Version', '==', 0).then(c0.put('/registry/leased').value('y')).commit(); // Txn
      const watcher = await c0.watch().prefix('/registry/').create(); // Watch stream
      await watcher.cancel();

      const d = diffCounters(before, await etcd.counters());
      expect(d.authenticate).toBe(3);
      expect(d.authenticateStarted).toBe(3);
      expect(d.range).toBe(15);
      expect(d.put).toBe(1);
      expect(d.deleteRange).toBe(1);
      expect(d.txn).toBe(1);
      expect(d.leaseGrant).toBe(1);
      expect(d.leaseRevoke).toBe(1);
      expect(d.leaseKeepAliveStreams).toBe(2);
      expect(d.leaseKeepAliveMessages).toBe(2);
      expect(d.watchStreams).toBe(1);
    } finally {
      clients.forEach((c) => c.close());
    }
  });

  it('restart() keeps data, ports and credentials', async () => {
    const key = `/registry/restart/${uid()}`;
    expect((await etcd.ctl(['put', key, 'kept'], 'gateway')).code).toBe(0);
    const { endpoint, pid } = etcd;

    await etcd.restart();
    expect(etcd.endpoint).toBe(endpoint);
    expect(etcd.pid).not.toBe(pid);
    const got = await etcd.ctl(['get', key, '--print-value-only'], 'gateway');
    expect(got.stdout.trim()).toBe('kept');
    expect((await etcd.ctl(['get', key], 'anonymous')).code).not.toBe(0); // auth survives restarts

    await etcd.kill(); // a crash, then a start on the same data dir
    expect(etcd.running).toBe(false);
    await etcd.restart();
    expect((await etcd.ctl(['get', key, '--print-value-only'], 'gateway')).stdout.trim()).toBe('kept');
  });

  it('freeze() makes etcd unresponsive until thaw()', async () => {
    etcd.freeze();
    try {
      await expect(etcd.counters()).rejects.toThrow(/timed out/);
      const frozen = await etcd.ctl(['get', '/registry/x', '--dial-timeout=1s', '--command-timeout=1s'], 'gateway');
      expect(frozen.code).not.toBe(0);
    } finally {
      etcd.thaw();
    }
    expect((await etcd.ctl(['get', '/registry/x'], 'gateway')).code).toBe(0);
    expect(await etcd.healthy()).toBe(true);
  });

  it('a second start on the same data dir reuses passwords and does not bootstrap again', async () => {
    await etcd.stop();
    const again = await startEtcd({ dataDir: etcd.dataDir });
    try {
      expect(again.rootPassword).toBe(etcd.rootPassword);
      expect(again.gatewayPassword).toBe(etcd.gatewayPassword);
      const c = await again.counters();
      expect(c.authenticate).toBe(0); // no bootstrap etcdctl calls (counters restart with the process)
      expect((await again.ctl(['get', '/registry/x'], 'gateway')).code).toBe(0);
    } finally {
      await again.stop();
    }
  });
});

describe('private redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it('answers PING, survives freeze/thaw and restarts empty on the same port', async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 500 });
    await client.connect();
    await client.set('k', 'v');
    redis.freeze();
    try {
      await expect(client.ping()).rejects.toThrow(/timed out/i);
    } finally {
      redis.thaw();
    }
    expect(await client.get('k')).toBe('v');
    client.disconnect();

    const pid = redis.pid;
    await redis.restart();
    expect(redis.pid).not.toBe(pid);
    const again = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await again.connect();
    expect(await again.get('k')).toBeNull(); // no persistence: a restart is a cold cache
    await again.quit();
  });
});

describe('parsePrometheusText', () => {
  it('parses labels with escapes, special values and timestamps', () => {
    const samples = parsePrometheusText(
      [
        '# HELP x_total help',
        '# TYPE x_total counter',
        'x_total{a="1",b="q\\"u,o\\\\te"} 3',
        'y 4.5e+02 1700000000000',
        'z{le="+Inf"} +Inf',
      ].join('\n'),
    );
    expect(samples).toEqual([
      { name: 'x_total', labels: { a: '1', b: 'q"u,o\\te' }, value: 3 },
      { name: 'y', labels: {}, value: 450 },
      { name: 'z', labels: { le: '+Inf' }, value: Infinity },
    ]);
  });
});
