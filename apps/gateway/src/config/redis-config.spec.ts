import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeRedisTarget } from '@app/redis';
import { loadGatewayConfig } from './gateway-config';

describe('Redis configuration: one URL, Sentinel or Cluster, exactly one at a time', () => {
  const secrets = () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-cfg-'));
    writeFileSync(join(dir, 'redis'), 'data-s3cret\n');
    writeFileSync(join(dir, 'sentinel'), 'sentinel-s3cret\n');
    return { REDIS_PASSWORD_FILE: join(dir, 'redis'), REDIS_SENTINEL_PASSWORD_FILE: join(dir, 'sentinel') };
  };

  it('defaults to one Redis on 127.0.0.1:6379', () => {
    expect(loadGatewayConfig({}).redis).toEqual({ kind: 'single', endpoint: { host: '127.0.0.1', port: 6379 }, db: 0 });
  });

  it('reads a URL with user, password, database and TLS (rediss://)', () => {
    expect(loadGatewayConfig({ REDIS_URL: 'rediss://gw:p%40ss@redis.example:6380/2' }).redis).toEqual({
      kind: 'single',
      endpoint: { host: 'redis.example', port: 6380 },
      db: 2,
      username: 'gw',
      password: 'p@ss',
      tls: {},
    });
  });

  it('reads a Sentinel group with both passwords from files, TLS by flag', () => {
    const config = loadGatewayConfig({ REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379', REDIS_SENTINEL_NAME: 'main', REDIS_TLS: 'true', ...secrets() });
    expect(config.redis).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      name: 'main',
      password: 'data-s3cret',
      sentinelPassword: 'sentinel-s3cret',
      tls: {},
    });
    expect(describeRedisTarget(config.redis)).toBe('sentinel group "main" via 10.0.0.1:26379,10.0.0.2:26379, tls, password set');
    expect(describeRedisTarget(config.redis)).not.toContain('s3cret');
  });

  it('reads Cluster nodes with a password', () => {
    expect(loadGatewayConfig({ REDIS_CLUSTER_NODES: 'a:7000,b:7001', REDIS_PASSWORD: 'pw' }).redis).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      password: 'pw',
    });
  });

  it.each([
    [{ REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:2' }, /^REDIS_URL and REDIS_CLUSTER_NODES are all set; set exactly one of/],
    [{ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2', REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINELS and REDIS_CLUSTER_NODES are all set/],
    [{ REDIS_SENTINELS: 'a:1' }, /^REDIS_SENTINEL_NAME must be set with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_PASSWORD: 'x' }, /^REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS/],
    [{ REDIS_SENTINELS: 'a', REDIS_SENTINEL_NAME: 'm' }, /^invalid REDIS_SENTINELS: a comma list of host:port/],
    [{ REDIS_CLUSTER_NODES: ',' }, /^invalid REDIS_CLUSTER_NODES: a comma list of host:port/],
    [{ REDIS_TLS: 'yes' }, /^invalid REDIS_TLS:/],
    [{ REDIS_URL: 'redis://:pw@a:1', REDIS_PASSWORD: 'pw2' }, /^REDIS_URL carries a password and REDIS_PASSWORD is set too/],
    [{ REDIS_URL: 'redis://:pw@a:1/x' }, /^invalid REDIS_URL: the path must be a database number/],
    [{ REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, /^REDIS_TLS_CA_FILE: cannot read/],
    [{ ETCD_PREFIX: '/a{b}/' }, /^invalid ETCD_PREFIX: must not contain/],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadGatewayConfig(env)).toThrow(message);
  });

  it('never echoes a password in an error', () => {
    for (const env of [{ REDIS_URL: 'redis://:hunter2@a:1/x' }, { REDIS_URL: 'redis://:hunter2@a:1', REDIS_PASSWORD: 'hunter3' }, { REDIS_URL: 'redis://:hunter2@[bad' }]) {
      expect(() => loadGatewayConfig(env)).toThrow();
      try {
        loadGatewayConfig(env);
      } catch (err) {
        expect(String(err)).not.toMatch(/hunter/);
      }
    }
  });
});
