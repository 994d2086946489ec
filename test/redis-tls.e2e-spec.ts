/**
 * Redis over TLS with a password (issue 24): a redis-server that only speaks TLS (its certificate signed
 * by a throw-away CA), the gateway configured with `rediss://` + REDIS_TLS_CA_FILE + REDIS_PASSWORD_FILE.
 * The process's Redis connection connects, and the replica's heard-sets (the liveness exchange of
 * shared leases) are published there; the password shows in no answer.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import { freePort, LOCAL_DIR } from '../tools/stack/procs';
import { RedisServer } from '../tools/stack/redis';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { request } from './support/http';
import { sharedStack } from './support/stack';
import { waitFor } from './support/wait';

describe('Redis over TLS, with a password', () => {
  const dir = path.join(LOCAL_DIR, 'test', `redis-tls-${process.pid}`);
  const password = 'tls-redis-pass-123';
  let server: RedisServer;
  let tlsPort: number;
  let gateway: GatewayUnderTest | undefined;

  beforeAll(async () => {
    fs.mkdirSync(dir, { recursive: true });
    const file = (name: string) => path.join(dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', file('ca.key'), '-out', file('ca.pem'));
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('redis.key'), '-out', file('redis.csr'));
    fs.writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', file('redis.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file('san.ext'), '-out', file('redis.pem'));
    fs.writeFileSync(file('password'), `${password}\n`, { mode: 0o600 });
    tlsPort = await freePort();
    // The stack's readiness probe speaks plain text: the server starts with a plain port too, which is
    // switched off (port 0) before the gateway connects, so only TLS is left.
    server = new RedisServer(dir, await freePort(), {
      password,
      extraArgs: ['--tls-port', String(tlsPort), '--tls-cert-file', file('redis.pem'), '--tls-key-file', file('redis.key'), '--tls-ca-cert-file', file('ca.pem'), '--tls-auth-clients', 'no'],
    });
    await server.spawnAndWait();
    const admin = new Redis({ host: '127.0.0.1', port: server.port, password, lazyConnect: true });
    await admin.connect();
    await admin.config('SET', 'port', '0');
    admin.disconnect();
  });

  afterAll(async () => {
    await gateway?.close();
    await server?.dispose();
  });

  it('connects its Redis client over TLS and publishes its heard-sets there', async () => {
    const stack = sharedStack();
    gateway = await startGateway({ endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password }, `rediss://127.0.0.1:${tlsPort}`, {
      REDIS_TLS_CA_FILE: path.join(dir, 'ca.pem'),
      REDIS_PASSWORD_FILE: path.join(dir, 'password'),
    });
    await waitFor(
      'the Redis client up over TLS',
      async () => (await gateway!.metric('registry_redis_up', { client: 'http' })) === 1,
      20_000,
    );
    const put = await request(gateway.url, 'PUT', '/v1/services/tls-svc/instances/pod-1', { address: '10.0.0.1', port: 80, ttl: 6 });
    expect(put.status).toBe(201);
    const heardSets = new Redis({ host: '127.0.0.1', port: tlsPort, password, tls: { ca: fs.readFileSync(path.join(dir, 'ca.pem')) }, lazyConnect: true });
    await heardSets.connect();
    try {
      await waitFor(
        'a heard-set published over TLS',
        async () => {
          await request(gateway!.url, 'PUT', '/v1/services/tls-svc/instances/pod-1/heartbeat');
          return (await heardSets.keys(`registry-gateway:v1:${gateway!.prefix}heard:{*}head`)).length > 0;
        },
        20_000,
        500,
      );
    } finally {
      heardSets.disconnect();
    }
    const ready = await request(gateway.url, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toContain('redis 127.0.0.1');
    expect(ready.body).toContain('tls, password set');
    expect(ready.body).not.toContain(password);
    expect((await request(gateway.url, 'GET', '/metrics')).body).not.toContain(password);
  });
});
