import Redis, { Cluster } from 'ioredis';
import { createRedisClient, REDIS_CLIENT_DEFAULTS, redisRetryDelay, RedisClient } from './redis-client';
import { RedisTarget } from './redis-target';

describe('createRedisClient: one options object and one retry strategy for every shape', () => {
  const clients: RedisClient[] = [];
  const build = (target: RedisTarget, commandTimeoutMs?: number) => {
    // Never connected: the options are what is under test (and nothing is left open).
    const client = createRedisClient(target, { commandTimeoutMs, lazyConnect: true });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  it('one server: the defaults, the password, TLS with the CA, the database', () => {
    const client = build({ kind: 'single', endpoint: { host: '127.0.0.1', port: 1 }, db: 3, password: 'pw', tls: { ca: 'PEM' } }) as Redis;
    expect(client).toBeInstanceOf(Redis);
    expect(client.options).toMatchObject({ host: '127.0.0.1', port: 1, db: 3, password: 'pw', tls: { ca: 'PEM' }, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 500 });
    expect(client.options.retryStrategy).toBe(redisRetryDelay);
  });

  it('Sentinel: the group, both passwords, TLS to Redis and the Sentinels, the same retry strategy everywhere', () => {
    const client = build({ kind: 'sentinel', sentinels: [{ host: '127.0.0.1', port: 2 }], name: 'main', password: 'pw', sentinelPassword: 'spw', tls: {} }, 250) as Redis;
    expect(client.options).toMatchObject({
      sentinels: [{ host: '127.0.0.1', port: 2 }],
      name: 'main',
      role: 'master',
      password: 'pw',
      sentinelPassword: 'spw',
      enableTLSForSentinelMode: true,
      failoverDetector: true,
      commandTimeout: 250,
    });
    for (const strategy of ['retryStrategy', 'sentinelRetryStrategy', 'sentinelReconnectStrategy'] as const) expect(client.options[strategy]).toBe(redisRetryDelay);
  });

  it('Cluster: the nodes, per-node options from the same defaults, no offline queue, the same retry strategy', () => {
    const client = build({ kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 3 }], password: 'pw' }) as Cluster;
    expect(client).toBeInstanceOf(Cluster);
    expect(client.options).toMatchObject({ enableOfflineQueue: false, ...REDIS_CLIENT_DEFAULTS.cluster });
    expect(client.options.clusterRetryStrategy).toBe(redisRetryDelay);
    expect(client.options.redisOptions).toMatchObject({ password: 'pw', maxRetriesPerRequest: 0, commandTimeout: 500, connectTimeout: 1_000 });
  });

  it('retries from ~200 ms, doubling, capped at 2 s, with at most 20 % jitter', () => {
    for (let attempt = 1; attempt < 20; attempt++) {
      const base = Math.min(100 * 2 ** Math.max(1, attempt), 2_000);
      const delay = redisRetryDelay(attempt);
      expect(delay).toBeLessThanOrEqual(base);
      expect(delay).toBeGreaterThanOrEqual(base * 0.8 - 1);
    }
  });
});
