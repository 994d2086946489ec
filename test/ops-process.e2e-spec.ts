/**
 * Issue 5 acceptance on real gateway processes (signals, exit codes, logs): config validation at
 * start, no secret in a full debug run's logs, and graceful shutdown that keeps every registration.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdServer, startEtcd } from '@app/stack';
import { gatewayEnv, GatewayProcess, startGatewayProcess } from './support/gateway';
import { rawRequest } from './support/http';
import { sharedStack } from './support/stack';
import { sleep } from './support/wait';

jest.setTimeout(180_000);

const stack = sharedStack();
const sharedTarget = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };
const secret = () => randomBytes(24).toString('base64url');

async function send(url: string, method: string, urlPath: string, init: { headers?: Record<string, string>; body?: unknown } = {}) {
  const res = await rawRequest(url, { method, path: urlPath, headers: init.headers, body: init.body });
  const json = String(res.headers['content-type'] ?? '').includes('application/json');
  return { status: res.status, body: (json ? JSON.parse(res.text) : {}) as Record<string, unknown> };
}

/** Resolves with the exit code, or rejects if the process is still running after `ms`. */
function exitWithin(proc: GatewayProcess, ms: number): Promise<number | null> {
  return Promise.race([proc.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${proc.output()}`)), ms).unref())]);
}

/** A request on a fresh TCP connection: resolves with the status, rejects when the connection is refused. */
const freshConnectionStatus = async (url: string, urlPath: string): Promise<number> => (await rawRequest(url, { method: 'GET', path: urlPath, freshConnection: true })).status;

const children: GatewayProcess[] = [];
async function gatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const proc = await startGatewayProcess(env);
  children.push(proc);
  return proc;
}
afterAll(() => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
});

describe('configuration validated at start', () => {
  it('exits non-zero naming the variable for ETCD_POOL_SIZE=abc, and never echoes the password', async () => {
    const proc = await gatewayProcess(gatewayEnv(sharedTarget, stack.redis.url, { ETCD_POOL_SIZE: 'abc' }));
    const code = await exitWithin(proc, 60_000);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(proc.output()).toMatch(/configuration error: invalid ETCD_POOL_SIZE/);
    expect(proc.output()).not.toContain(stack.etcd.password);
  });
});

describe('logs of a full debug run', () => {
  it('are JSON lines with request ids, and contain neither the etcd password nor any API token', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-logs-'));
    const adminToken = secret();
    const strangerToken = secret();
    const basicPassword = secret();
    const wrongEtcdPassword = `wrong-${secret()}`;
    fs.writeFileSync(path.join(dir, 'tokens.json'), JSON.stringify({ tokens: [{ name: 'ops-admin', token: adminToken, role: 'admin' }] }));
    fs.writeFileSync(path.join(dir, 'etcd-password'), `${stack.etcd.password}\n`);

    const env = gatewayEnv(sharedTarget, stack.redis.url, {
      LOG_LEVEL: 'debug',
      AUTH_DISABLED: 'false',
      AUTH_TOKENS_FILE: path.join(dir, 'tokens.json'),
      ETCD_PASSWORD_FILE: path.join(dir, 'etcd-password'),
    });
    delete env.ETCD_PASSWORD; // the password reaches the process through the file only
    const gw = await gatewayProcess(env);
    const admin = { authorization: `Bearer ${adminToken}` };
    const instance = '/v1/services/ops-logs/instances/pod-1';
    const notFoundId = `ops-logs-404-${randomBytes(4).toString('hex')}`;
    const deniedId = `ops-logs-401-${randomBytes(4).toString('hex')}`;

    expect((await send(gw.url, 'PUT', instance, { headers: admin, body: { address: '10.0.0.1', port: 8080, ttl: 30 } })).status).toBe(201);
    expect((await send(gw.url, 'PUT', `${instance}/heartbeat`, { headers: admin })).status).toBe(204);
    expect((await send(gw.url, 'PUT', '/v1/services/ops-logs/instances/nobody/heartbeat', { headers: { ...admin, 'x-request-id': notFoundId } })).status).toBe(404);
    expect((await send(gw.url, 'PUT', instance, { headers: admin, body: { address: '10.0.0.1', port: 'x' } })).status).toBe(400);
    const denied = await send(gw.url, 'PUT', `${instance}/heartbeat`, { headers: { authorization: `Bearer ${strangerToken}`, 'x-request-id': deniedId } });
    expect(denied.status).toBe(401);
    expect(JSON.stringify(denied.body)).not.toContain(strangerToken);
    const basic = `Basic ${Buffer.from(`ops:${basicPassword}`).toString('base64')}`;
    expect((await send(gw.url, 'PUT', instance, { headers: { authorization: basic }, body: { address: '10.0.0.1', port: 8080 } })).status).toBe(401);
    expect((await send(gw.url, 'GET', `/health/ready?access_token=${adminToken}`)).status).toBe(200);
    expect((await send(gw.url, 'GET', '/metrics', { headers: admin })).status).toBe(200);
    expect((await send(gw.url, 'DELETE', instance, { headers: admin })).status).toBe(204);
    gw.child.kill('SIGTERM');
    expect(await exitWithin(gw, 30_000)).toBe(0);

    // And a run that fails to authenticate against etcd.
    const wrong = await gatewayProcess(gatewayEnv(sharedTarget, stack.redis.url, { LOG_LEVEL: 'debug', ETCD_PASSWORD: wrongEtcdPassword }));
    expect(await exitWithin(wrong, 60_000)).not.toBe(0);
    expect(wrong.output()).toMatch(/etcd rejected the gateway's credentials \(ETCD_USERNAME\/ETCD_PASSWORD\)/);

    const logs = gw.output() + wrong.output();
    for (const value of [stack.etcd.password, stack.etcd.rootPassword, adminToken, strangerToken, basicPassword, wrongEtcdPassword]) {
      expect(logs.includes(value)).toBe(false);
    }
    expect(logs).not.toMatch(/Bearer [\x21-\x7e]{16,}/);

    // Every line of the good run is a JSON object (Node's own deprecation warnings aside).
    const lines = gw
      .output()
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('(node:') && !l.startsWith('(Use `node'));
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(5);
    expect(records.every((r) => typeof r.level === 'number' && typeof r.msg === 'string')).toBe(true);
    // Errors answered to a request are logged with its request id (x-request-id honoured).
    expect(records.find((r) => r.reqId === notFoundId)).toMatchObject({ context: 'HTTP', status: 404, level: 20 });
    expect(records.find((r) => r.reqId === deniedId)).toMatchObject({ context: 'HTTP', status: 401 });
  });
});

describe('graceful shutdown (private etcd)', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    etcd?.thaw();
    await etcd?.dispose();
  });

  it('SIGTERM: stops accepting, finishes the in-flight request, exits 0 and revokes no lease', async () => {
    const target = { endpoint: etcd.endpoint, username: etcd.gatewayUser, password: etcd.gatewayPassword };
    const env = gatewayEnv(target, stack.redis.url, { LOG_LEVEL: 'info', ETCD_REQUEST_TIMEOUT_MS: '4000' });
    const [gw, stuck] = await Promise.all([gatewayProcess(env), gatewayProcess({ ...env, SHUTDOWN_GRACE_MS: '1000', ETCD_REQUEST_TIMEOUT_MS: '20000' })]);
    const prefix = env.ETCD_PREFIX;

    const leases = new Map<string, string>();
    for (let i = 0; i < 6; i++) {
      const res = await send(gw.url, 'PUT', `/v1/services/ops-shutdown/instances/pod-${i}`, { body: { address: '10.0.0.1', port: 8080, ttl: 120 } });
      expect(res.status).toBe(201);
      leases.set(`${prefix}services/ops-shutdown/pod-${i}`, String(res.body.leaseId));
      expect((await send(gw.url, 'PUT', `/v1/services/ops-shutdown/instances/pod-${i}/heartbeat`)).status).toBe(204);
    }

    // A frozen etcd makes a registration slow: it is in flight when SIGTERM arrives.
    etcd.freeze();
    const inFlight = send(gw.url, 'PUT', '/v1/services/ops-shutdown/instances/late', { body: { address: '10.0.0.1', port: 8080, ttl: 120 } });
    const stuckInFlight = send(stuck.url, 'PUT', '/v1/services/ops-shutdown/instances/stuck', { body: { address: '10.0.0.1', port: 8080, ttl: 120 } }).catch(
      (err: Error) => err,
    );
    await sleep(500);
    const signalledAt = Date.now();
    gw.child.kill('SIGTERM');
    stuck.child.kill('SIGTERM');
    await sleep(500);

    // Not accepting any more: a new connection is refused (or answered 503 while the listener closes).
    await expect(freshConnectionStatus(gw.url, '/health/live').catch(() => 'refused')).resolves.toEqual(expect.stringMatching(/^(refused|503)$/));
    // The in-flight request still gets its answer (etcd timed out: 503), then the process exits 0.
    const answered = await inFlight;
    expect(answered.status).toBe(503);
    expect(answered.body.error).toBe('registry_unavailable');
    expect(await exitWithin(gw, 30_000)).toBe(0);
    expect(gw.output()).toContain('SIGTERM: draining');

    // The replica whose drain hangs longer than SHUTDOWN_GRACE_MS is cut short, with code 1.
    expect(await exitWithin(stuck, 15_000)).toBe(1);
    expect(Date.now() - signalledAt).toBeLessThan(15_000);
    expect(stuck.output()).toMatch(/shutdown did not finish within SHUTDOWN_GRACE_MS=1000/);
    expect(await stuckInFlight).not.toHaveProperty('status'); // cut off: the connection died with the process

    // Root's view of etcd: every instance key is there, attached to a lease that is still alive (the
    // replicas' presence keys under gateway/ could not be deleted while etcd was frozen: they expire).
    etcd.thaw();
    const keys = await etcd.ctl(['get', `${prefix}services/`, '--prefix', '--keys-only'], 'root');
    expect(keys.code).toBe(0);
    expect(keys.stdout.split('\n').filter(Boolean).sort()).toEqual([...leases.keys()].sort());
    for (const [key, leaseId] of leases) {
      const ttl = await etcd.ctl(['lease', 'timetolive', BigInt(leaseId).toString(16), '--keys'], 'root');
      expect(ttl.code).toBe(0);
      // TTL 120 s instances sit on a shared lease of the 240 s class.
      expect(ttl.stdout).toMatch(/granted with TTL\(240s\), remaining\((\d+)s\)/);
      expect(Number(/remaining\((\d+)s\)/.exec(ttl.stdout)![1])).toBeGreaterThan(60);
      expect(ttl.stdout).toContain(key);
    }
  });
});
