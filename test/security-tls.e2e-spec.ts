/**
 * Issue 7 etcd over TLS: a private etcd 3.4 that only speaks TLS and requires client certificates
 * (--client-cert-auth), plus password authentication as in production. The gateway reaches it with
 * ETCD_TLS_CA_FILE/CERT/KEY and registers through it; without a client certificate, or without TLS,
 * it cannot. Certificates are generated here with openssl; tools/stack's startEtcd() has no TLS
 * options, so the server is spawned directly (with its process helpers).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts, httpGet, SpawnedProcess, spawnTracked, terminate, waitUntil } from '../tools/stack/procs';
import { GatewayProcess, gatewayEnv, startGateway, startGatewayProcess } from './support/gateway';
import { instancePath, validRegistration } from './support/security';
import { sharedStack } from './support/stack';
import { rawRequest } from './support/http';

jest.setTimeout(180_000);

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

interface TlsFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A throw-away CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256: fast). */
function makeCertificates(dir: string): TlsFiles {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=registry-test-ca');
  const issue = (name: string, cn: string, ext: string) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  issue('server', 'etcd-test', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  issue('client', 'registry-gateway', 'extendedKeyUsage=clientAuth\n');
  const f = (name: string) => path.join(dir, name);
  return { ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

class TlsEtcd {
  readonly rootPassword = randomBytes(18).toString('base64url');
  readonly gatewayPassword = randomBytes(18).toString('base64url');
  readonly endpoint: string;
  private proc?: SpawnedProcess;

  constructor(
    private readonly dir: string,
    private readonly tls: TlsFiles,
    private readonly ports: number[],
  ) {
    this.endpoint = `127.0.0.1:${ports[0]}`;
  }

  async start(): Promise<void> {
    const [client, peer, metrics] = this.ports;
    const logFile = path.join(this.dir, 'etcd.log');
    this.proc = spawnTracked(
      'etcd',
      [
        '--name=default',
        `--data-dir=${path.join(this.dir, 'data')}`,
        `--listen-client-urls=https://127.0.0.1:${client}`,
        `--advertise-client-urls=https://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=default=http://127.0.0.1:${peer}`,
        `--listen-metrics-urls=http://127.0.0.1:${metrics}`,
        '--logger=zap',
        `--cert-file=${this.tls.serverCert}`,
        `--key-file=${this.tls.serverKey}`,
        `--trusted-ca-file=${this.tls.ca}`,
        '--client-cert-auth',
      ],
      logFile,
    );
    await waitUntil('etcd (TLS)', this.proc, logFile, async () => /"health":\s*"true"/.test((await httpGet(`http://127.0.0.1:${metrics}/health`, 1000)).body));
    const steps: Array<[string[], string?]> = [
      [['user', 'add', 'root', '--interactive=false'], this.rootPassword],
      [['role', 'add', 'root']],
      [['user', 'grant-role', 'root', 'root']],
      [['role', 'add', 'registry-gateway']],
      [['role', 'grant-permission', 'registry-gateway', 'readwrite', '/registry/', '--prefix=true']],
      [['user', 'add', 'registry-gateway', '--interactive=false'], this.gatewayPassword],
      [['user', 'grant-role', 'registry-gateway', 'registry-gateway']],
      [['auth', 'enable']],
    ];
    for (const [args, input] of steps) this.ctl(args, false, input);
  }

  /** etcdctl over TLS with the client certificate; as root (password) when `asRoot`. */
  ctl(args: string[], asRoot: boolean, input?: string): string {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ETCDCTL_API: '3',
      ETCDCTL_ENDPOINTS: `https://${this.endpoint}`,
      ETCDCTL_CACERT: this.tls.ca,
      ETCDCTL_CERT: this.tls.clientCert,
      ETCDCTL_KEY: this.tls.clientKey,
    };
    delete env.ETCDCTL_USER;
    if (asRoot) env.ETCDCTL_USER = `root:${this.rootPassword}`;
    const res = spawnSync('etcdctl', ['--dial-timeout=5s', '--command-timeout=10s', ...args], { env, input: input ? `${input}\n` : '', encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`etcdctl ${args.slice(0, 2).join(' ')} failed: ${res.stderr}`);
    return res.stdout;
  }

  async stop(): Promise<void> {
    if (this.proc) await terminate(this.proc);
  }
}

(hasOpenssl ? describe : describe.skip)('etcd over TLS with client certificates', () => {
  const redisUrl = sharedStack().redis.url;
  let dir: string;
  let tls: TlsFiles;
  let etcd: TlsEtcd;
  const target = () => ({ endpoint: etcd.endpoint, username: 'registry-gateway', password: etcd.gatewayPassword });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-tls-'));
    tls = makeCertificates(dir);
    etcd = new TlsEtcd(dir, tls, await freePorts(3));
    await etcd.start();
  });
  afterAll(async () => {
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('registers through TLS with ETCD_TLS_CA_FILE/CERT/KEY, and logs neither the password nor the key', async () => {
    let proc: GatewayProcess | undefined;
    try {
      const env = gatewayEnv(target(), redisUrl, {
        LOG_LEVEL: 'trace',
        ETCD_TLS_CA_FILE: tls.ca,
        ETCD_TLS_CERT_FILE: tls.clientCert,
        ETCD_TLS_KEY_FILE: tls.clientKey,
      });
      proc = await startGatewayProcess(env);
      const res = await rawRequest(proc.url, { method: 'PUT', path: instancePath('payments', 'tls-1'), body: validRegistration });
      expect(res.status).toBe(201);

      const stored = etcd.ctl(['get', `${env.ETCD_PREFIX}services/payments/tls-1`, '--print-value-only'], true);
      expect(JSON.parse(stored)).toMatchObject({ service: 'payments', id: 'tls-1', address: validRegistration.address });

      proc.child.kill('SIGTERM');
      await proc.exited;
      const keyBody = fs.readFileSync(tls.clientKey, 'utf8').split('\n')[1];
      expect(proc.output()).toMatch(/Nest application successfully started/); // the logs were captured
      expect(proc.output()).not.toContain(etcd.gatewayPassword);
      expect(proc.output()).not.toContain(keyBody);
    } finally {
      if (proc && proc.child.exitCode === null) {
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
    }
  });

  it.each([
    ['without a client certificate', () => ({ ETCD_TLS_CA_FILE: tls.ca })],
    ['without TLS', () => ({})],
  ])('cannot reach etcd %s (503, nothing written)', async (_what, tlsEnv) => {
    const gw = await startGateway(target(), redisUrl, { ETCD_REQUEST_TIMEOUT_MS: '1000', LOG_LEVEL: 'fatal', ...tlsEnv() });
    try {
      const res = await rawRequest(gw.url, { method: 'PUT', path: instancePath('payments', 'no-tls'), body: validRegistration });
      expect(res.status).toBe(503);
      expect(res.json).toMatchObject({ error: 'registry_unavailable' });
      expect(etcd.ctl(['get', gw.prefix, '--prefix', '--keys-only'], true).trim()).toBe('');
    } finally {
      await gw.close();
    }
  });
});
