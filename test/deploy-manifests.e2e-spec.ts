/**
 * The deployment files agree with the gateway they deploy (issue 14, part 4). deploy/k8s is rendered
 * with `kubectl kustomize` and docker-compose.yml resolved with `docker-compose config`, exactly as
 * an operator's tools would see them, then checked against the gateway itself: probe paths answer on
 * a live replica, every variable goes through the real config loader, the kill deadlines cover the
 * drain. Nothing here starts a container (there is no Docker engine or cluster in CI).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { GatewayConfig, loadGatewayConfig } from '../apps/gateway/src/config/gateway-config';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { request } from './support/http';
import { sharedStack } from './support/stack';

const ROOT = path.resolve(__dirname, '..');
const TOOLS_HINT = 'run `bash tools/stack/ensure-test-tools.sh` (installs kubectl, docker-compose and chromium)';

// Plain shapes of the fields we read; the manifests are parsed YAML, checked field by field.
type Labels = Record<string, string>;
type Env = Record<string, string>;
interface K8sObject {
  kind: string;
  metadata: { name: string; labels?: Labels };
  data?: Record<string, string>;
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- differs per kind; asserted below
}
interface Probe {
  httpGet?: { path: string; port: number | string };
}

/** Runs a deployment tool from the repository root; a missing tool fails with the install hint. */
function runTool(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(`${cmd} is not installed: ${TOOLS_HINT}`);
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}:\n${res.stderr}`);
  return res.stdout;
}

const isSubset = (subset: Labels | undefined, of: Labels | undefined): boolean =>
  !!subset && Object.keys(subset).length > 0 && Object.entries(subset).every(([k, v]) => of?.[k] === v);

// Variables in the container env that configure Node itself, not the gateway's config loader.
const RUNTIME_VARS = new Set(['NODE_OPTIONS']);
// The loader's `X_FILE` variables: they supply secret X from a file (gateway-config.ts).
const FILE_SECRETS = ['ETCD_PASSWORD', 'ETCD_USERNAME', 'REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'];

let tmpDir: string;
/** A temp file with `content`, standing in for a mounted secret. */
function tempFile(name: string, content: string): string {
  const file = path.join(tmpDir, `${Math.random().toString(36).slice(2)}-${name}`);
  fs.writeFileSync(file, content);
  return file;
}

/**
 * Loads `env` with the gateway's own loader, each `*_FILE` pointing at a temp file, and checks that
 * the loader took every variable with the value given: a variable it does not know (a typo, a
 * renamed setting) would be silently ignored at runtime, so it fails here.
 */
function expectLoaderTakesEveryVariable(env: Env, where: string): GatewayConfig {
  const fileContents: Env = {};
  const local: Env = {};
  for (const [name, value] of Object.entries(env)) {
    if (RUNTIME_VARS.has(name)) continue;
    if (name.endsWith('_FILE')) {
      fileContents[name] = `secret-of-${name.toLowerCase()}`;
      local[name] = tempFile(path.basename(value), fileContents[name]);
    } else {
      local[name] = value;
    }
  }
  let config: GatewayConfig;
  try {
    config = loadGatewayConfig(local);
  } catch (err) {
    throw new Error(`${where}: the gateway's config loader rejects the environment: ${(err as Error).message}`, { cause: err });
  }
  const loaded = config as unknown as Record<string, unknown>;
  const shown = (v: unknown): string | undefined => (v === undefined ? undefined : Array.isArray(v) ? v.join(',') : String(v));
  for (const [name, value] of Object.entries(local)) {
    const secret = FILE_SECRETS.find((s) => `${s}_FILE` === name);
    if (secret) expect({ [`${where}: ${secret} from ${name}`]: loaded[secret] }).toEqual({ [`${where}: ${secret} from ${name}`]: fileContents[name] });
    // An empty variable counts as unset (how an override clears the base's REDIS_URL).
    else if (value === '') expect({ [`${where}: ${name}`]: loaded[name] }).toEqual({ [`${where}: ${name}`]: undefined });
    else expect({ [`${where}: ${name}`]: shown(loaded[name]) }).toEqual({ [`${where}: ${name}`]: value });
  }
  return config;
}

/** "20s", "1m30s", "500ms" (compose durations) in milliseconds. */
function durationMs(text: string | number): number {
  if (typeof text === 'number') return text / 1e6; // compose also accepts nanoseconds
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3 };
  let total = 0;
  const rest = text.replace(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g, (_, n: string, unit: string) => {
    total += Number(n) * units[unit];
    return '';
  });
  if (rest !== '') throw new Error(`cannot parse duration ${text}`);
  return total;
}

/** Mebibytes of a Kubernetes quantity such as 1Gi or 384Mi. */
function mebibytes(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

describe('deployment files', () => {
  let objects: K8sObject[];
  let compose: { services: Record<string, any>; secrets: Record<string, { file: string }> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- resolved compose file
  let gateway: GatewayUnderTest;

  beforeAll(async () => {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-manifests-'));
    objects = parseAllDocuments(runTool('kubectl', ['kustomize', 'deploy/k8s']))
      .map((d) => d.toJS() as K8sObject)
      .filter(Boolean);
    runTool('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q']);
    // The resolved form (anchors merged, defaults filled in) is what Docker would run.
    compose = parse(runTool('docker-compose', ['-f', 'docker-compose.yml', 'config']));
    const stack = sharedStack();
    gateway = await startGateway({ endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password }, stack.redis.url);
  });

  afterAll(async () => {
    await gateway?.close();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  });

  const only = (kind: string): K8sObject => {
    const found = objects.filter((o) => o.kind === kind);
    expect({ kind, count: found.length }).toEqual({ kind, count: 1 });
    return found[0];
  };
  const deployment = () => only('Deployment');
  const podSpec = () => deployment().spec.template.spec;
  const container = () => {
    const containers = podSpec().containers as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any -- Kubernetes container
    expect(containers).toHaveLength(1);
    return containers[0];
  };
  /** The API's port (named http); the Consul door's is checked on its own. */
  const containerPort = (): number => resolvePort('http');
  /** A port given by number or by the container port's name. */
  const resolvePort = (port: number | string): number => {
    if (typeof port === 'number') return port;
    const named = (container().ports as Array<{ name?: string; containerPort: number }>).find((p) => p.name === port);
    if (!named) throw new Error(`no container port named ${port}`);
    return named.containerPort;
  };
  /** The container's environment: its ConfigMap (envFrom) plus literal `env` entries. */
  const k8sEnv = (): Env => {
    const env: Env = {};
    for (const source of (container().envFrom ?? []) as Array<{ configMapRef?: { name: string } }>) {
      const map = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === source.configMapRef?.name);
      if (!map) throw new Error(`envFrom names ConfigMap ${source.configMapRef?.name}, which the render does not contain`);
      Object.assign(env, map.data);
    }
    for (const entry of (container().env ?? []) as Array<{ name: string; value?: string }>) {
      if (entry.value === undefined) throw new Error(`env ${entry.name} is not a literal value`);
      env[entry.name] = entry.value;
    }
    return env;
  };
  const preStopSleepMs = (): number => {
    const preStop = container().lifecycle?.preStop as { exec?: { command: string[] }; sleep?: { seconds: number } } | undefined;
    if (preStop?.sleep) return preStop.sleep.seconds * 1000;
    const command = preStop?.exec?.command ?? [];
    if (command.length !== 2 || command[0] !== 'sleep') throw new Error(`preStop is not a sleep: ${JSON.stringify(preStop)}`);
    return Number(command[1]) * 1000;
  };

  describe('Kubernetes (kubectl kustomize deploy/k8s)', () => {
    it('renders a Deployment, a Service, a PodDisruptionBudget, a ConfigMap and a Secret', () => {
      expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
      expect(deployment().spec.replicas).toBeGreaterThanOrEqual(2);
    });

    it('probes the health routes on the container port that PORT configures, and the routes answer 200', async () => {
      const spec = container();
      const probes: Record<string, Probe | undefined> = { readiness: spec.readinessProbe, liveness: spec.livenessProbe, startup: spec.startupProbe };
      expect(probes.readiness?.httpGet?.path).toBe('/health/ready');
      expect(probes.liveness?.httpGet?.path).toBe('/health/live');
      expect(Number(k8sEnv().PORT)).toBe(containerPort());
      for (const [kind, probe] of Object.entries(probes)) {
        if (!probe) continue;
        expect({ kind, port: resolvePort(probe.httpGet!.port) }).toEqual({ kind, port: containerPort() });
        // Kubernetes counts 200-399 as success; the gateway answers these with exactly 200 when up.
        const res = await request(gateway.url, 'GET', probe.httpGet!.path);
        expect({ kind, path: probe.httpGet!.path, status: res.status }).toEqual({ kind, path: probe.httpGet!.path, status: 200 });
      }
    });

    it("passes every variable through the gateway's config loader, which takes each with the value given", () => {
      const env = k8sEnv();
      for (const name of ['ETCD_ENDPOINTS', 'ETCD_USERNAME', 'ETCD_PASSWORD_FILE', 'REDIS_URL', 'AUTH_TOKENS_FILE', 'ETCD_POOL_SIZE', 'SHUTDOWN_GRACE_MS', 'PORT']) {
        expect({ [name]: typeof env[name] }).toEqual({ [name]: 'string' });
      }
      const config = expectLoaderTakesEveryVariable(env, 'deploy/k8s');
      expect(config.AUTH_DISABLED).toBe(false);
      // The heap limit must fit in the container's memory limit, or the OOM killer strikes first.
      const heapMb = Number(/--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS ?? '')?.[1]);
      expect(heapMb).toBeLessThan(mebibytes(container().resources.limits.memory));
      expect(mebibytes(container().resources.requests.memory)).toBeLessThanOrEqual(mebibytes(container().resources.limits.memory));
    });

    it('opens the Consul door on the container port named consul, which CONSUL_API_PORT configures (8500)', () => {
      expect(Number(k8sEnv().CONSUL_API_PORT)).toBe(resolvePort('consul'));
      expect(resolvePort('consul')).toBe(8500);
    });

    it('reads secrets from files of the mounted Secret, never from env values', () => {
      const env = k8sEnv();
      const secret = only('Secret');
      for (const name of ['ETCD_PASSWORD_FILE', 'AUTH_TOKENS_FILE']) {
        const file = env[name];
        const mount = (container().volumeMounts as Array<{ name: string; mountPath: string }>).find((m) => path.posix.dirname(file) === m.mountPath);
        expect({ [name]: mount?.mountPath }).toEqual({ [name]: path.posix.dirname(file) });
        const volume = (podSpec().volumes as Array<{ name: string; secret?: { secretName: string } }>).find((v) => v.name === mount!.name);
        expect(volume?.secret?.secretName).toBe(secret.metadata.name);
        expect(Object.keys(secret.data ?? {})).toContain(path.posix.basename(file));
      }
      for (const name of ['ETCD_PASSWORD', 'ETCD_USERNAME_FILE', 'REDIS_URL_FILE', 'AUTH_DISABLED']) expect(env).not.toHaveProperty(name);
    });

    it('gives the pod preStop + SHUTDOWN_GRACE_MS before it is killed', () => {
      const env = k8sEnv();
      const graceMs = Number(env.SHUTDOWN_GRACE_MS);
      // 0 means "no limit": the deadline below would then cut the drain short at an unknown point.
      expect(graceMs).toBeGreaterThan(Number(env.ETCD_REQUEST_TIMEOUT_MS ?? 3000));
      expect(preStopSleepMs()).toBeGreaterThan(0);
      expect(podSpec().terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(preStopSleepMs() + graceMs);
    });

    it("has a PodDisruptionBudget and a Service that select the Deployment's pods", () => {
      const podLabels = deployment().spec.template.metadata.labels as Labels;
      expect(isSubset(deployment().spec.selector.matchLabels, podLabels)).toBe(true);
      const pdb = only('PodDisruptionBudget');
      expect(isSubset(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
      // The budget must allow a drain to proceed: at least one pod may go.
      if (pdb.spec.maxUnavailable !== undefined) expect(pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
      else expect(pdb.spec.minAvailable).toBeLessThan(deployment().spec.replicas);
      const service = only('Service');
      expect(isSubset(service.spec.selector, podLabels)).toBe(true);
      const targets = (service.spec.ports as Array<{ targetPort: number | string }>).map((port) => resolvePort(port.targetPort)).sort();
      expect(targets).toEqual([containerPort(), Number(k8sEnv().CONSUL_API_PORT)].sort());
    });

    it('runs as a non-root user without privilege escalation', () => {
      expect(podSpec().securityContext.runAsNonRoot).toBe(true);
      expect(podSpec().securityContext.runAsUser).toBeGreaterThan(0);
      expect(container().securityContext.allowPrivilegeEscalation).toBe(false);
      expect(container().securityContext.capabilities.drop).toEqual(['ALL']);
    });
  });

  describe('docker-compose.yml (docker-compose config)', () => {
    // Services built from this repository's Dockerfile are the gateway replicas.
    const gatewayServices = () => Object.entries(compose.services).filter(([, s]) => s.build);
    const composeEnv = (service: { environment?: Env }): Env => Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));

    it('runs 3 etcd members, Redis, a load balancer and at least 2 gateway replicas', () => {
      expect(gatewayServices().length).toBeGreaterThanOrEqual(2);
      const members = Object.values(compose.services).filter((s) => s.environment?.ETCD_NAME);
      expect(members).toHaveLength(3);
      expect(Object.values(compose.services).some((s) => String(s.image).startsWith('redis:'))).toBe(true);
      expect(Object.values(compose.services).some((s) => /^(haproxy|nginx):/.test(String(s.image)))).toBe(true);
    });

    it('gives every gateway replica the same variables as the Kubernetes Deployment, accepted by the config loader', () => {
      const k8sNames = Object.keys(k8sEnv()).filter((n) => !RUNTIME_VARS.has(n)).sort();
      for (const [name, service] of gatewayServices()) {
        const env = composeEnv(service);
        expect({ service: name, variables: Object.keys(env).sort() }).toEqual({ service: name, variables: k8sNames });
        expectLoaderTakesEveryVariable(env, `docker-compose ${name}`);
        // The same values where both must agree with the etcd role and the drain.
        for (const shared of ['ETCD_USERNAME', 'ETCD_PREFIX', 'PORT', 'SHUTDOWN_GRACE_MS']) expect({ [shared]: env[shared] }).toEqual({ [shared]: k8sEnv()[shared] });
      }
    });

    it('mounts the *_FILE variables from compose secrets kept in git-ignored files', () => {
      for (const [name, service] of gatewayServices()) {
        const mounted = (service.secrets as Array<{ source: string; target?: string }>).map((s) => `/run/secrets/${s.target ?? s.source}`);
        for (const [variable, value] of Object.entries(composeEnv(service)).filter(([k]) => k.endsWith('_FILE'))) {
          expect({ service: name, variable, mounted: mounted.includes(value) }).toEqual({ service: name, variable, mounted: true });
        }
      }
      for (const [secret, { file }] of Object.entries(compose.secrets)) {
        expect({ secret, dir: path.relative(ROOT, path.dirname(file)) }).toEqual({ secret, dir: 'deploy/compose/secrets' });
        const ignored = spawnSync('git', ['check-ignore', '-q', path.relative(ROOT, file)], { cwd: ROOT });
        expect({ secret, ignoredByGit: ignored.status === 0 }).toEqual({ secret, ignoredByGit: true });
      }
    });

    it('points ETCD_ENDPOINTS at the three members and bootstraps the role for the gateway user and prefix', () => {
      const members = Object.values(compose.services).filter((s) => s.environment?.ETCD_NAME);
      const memberEndpoints = members.map((m) => new URL(String(m.environment.ETCD_ADVERTISE_CLIENT_URLS)).host).sort();
      const bootstrap = Object.values(compose.services).find((s) => s.environment?.GATEWAY_USER);
      for (const [, service] of gatewayServices()) {
        const env = composeEnv(service);
        expect(env.ETCD_ENDPOINTS.split(',').sort()).toEqual(memberEndpoints);
        expect(bootstrap?.environment.GATEWAY_USER).toBe(env.ETCD_USERNAME);
        expect(bootstrap?.environment.ETCD_PREFIX).toBe(env.ETCD_PREFIX);
        expect(service.depends_on?.['etcd-bootstrap']?.condition).toBe('service_completed_successfully');
      }
    });

    it('opens every replica\'s Consul door on 8500, behind the load balancer\'s :8500', () => {
      const lb = Object.values(compose.services).find((s) => String(s.image).startsWith('haproxy:'));
      expect(JSON.stringify(lb.ports)).toMatch(/8500/);
      const cfg = fs.readFileSync(path.resolve(__dirname, '..', 'deploy', 'compose', 'haproxy.cfg'), 'utf8');
      for (const [name, service] of gatewayServices()) {
        expect(composeEnv(service).CONSUL_API_PORT).toBe('8500');
        expect(cfg).toMatch(new RegExp(`^\\s*server ${name} ${name}:8500\\b`, 'm'));
      }
    });

    it('lets each replica drain for SHUTDOWN_GRACE_MS before Docker kills it', () => {
      for (const [name, service] of gatewayServices()) {
        const graceMs = Number(composeEnv(service).SHUTDOWN_GRACE_MS);
        expect({ service: name, stopGraceMs: durationMs(service.stop_grace_period ?? '10s') > graceMs }).toEqual({ service: name, stopGraceMs: true });
      }
    });

    it('health-checks every replica on /health/ready, in compose and in the load balancer', () => {
      const lb = Object.values(compose.services).find((s) => String(s.image).startsWith('haproxy:'));
      // docker-compose 1.x resolves bind mounts to "source:target[:mode]" strings; 2.x to objects.
      const mounts = (lb.volumes as Array<string | { source: string; target: string }>).map((v) =>
        typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v,
      );
      const cfgMount = mounts.find((v) => v.target.endsWith('haproxy.cfg'));
      const cfg = fs.readFileSync(cfgMount!.source, 'utf8');
      expect(cfg).toMatch(/http-check send meth GET uri \/health\/ready\b/);
      for (const [name, service] of gatewayServices()) {
        expect(JSON.stringify(service.healthcheck.test)).toContain('/health/ready');
        expect(cfg).toMatch(new RegExp(`^\\s*server ${name} ${name}:${composeEnv(service).PORT}\\b`, 'm'));
      }
    });
  });

  describe('Redis behind Sentinel (deploy/k8s-redis-sentinel, deploy/compose/redis-sentinel.yml)', () => {
    it('the Kubernetes overlay renders the base with the Sentinel variables, both passwords as files of the Secret', () => {
      const rendered = parseAllDocuments(runTool('kubectl', ['kustomize', 'deploy/k8s-redis-sentinel']))
        .map((d) => d.toJS() as K8sObject)
        .filter(Boolean);
      expect(rendered.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
      const deployed = rendered.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0];
      const env: Env = { ...rendered.find((o) => o.kind === 'ConfigMap')!.data };
      for (const entry of deployed.env as Array<{ name: string; value: string }>) env[entry.name] = entry.value;
      expect(env).not.toHaveProperty('REDIS_URL');
      const config = expectLoaderTakesEveryVariable(env, 'deploy/k8s-redis-sentinel');
      expect(config.redis).toMatchObject({ kind: 'sentinel', name: 'registry', password: expect.any(String), sentinelPassword: expect.any(String) });
      const secretKeys = Object.keys(rendered.find((o) => o.kind === 'Secret')!.data ?? {});
      for (const name of ['REDIS_PASSWORD_FILE', 'REDIS_SENTINEL_PASSWORD_FILE']) {
        expect(path.posix.dirname(env[name])).toBe('/var/run/secrets/registry-gateway');
        expect(secretKeys).toContain(path.posix.basename(env[name]));
      }
    });

    it('the compose override gives every replica the Sentinel variables, accepted by the loader, with mounted, git-ignored secrets', () => {
      const files = ['-f', 'docker-compose.yml', '-f', 'deploy/compose/redis-sentinel.yml'];
      runTool('docker-compose', [...files, 'config', '-q']);
      const merged = parse(runTool('docker-compose', [...files, 'config'])) as typeof compose;
      const sentinels = Object.entries(merged.services).filter(([, s]) => s.environment?.SENTINEL_HOSTNAME);
      expect(sentinels).toHaveLength(3);
      const gateways = Object.entries(merged.services).filter(([, s]) => s.build);
      expect(gateways.length).toBeGreaterThanOrEqual(2);
      for (const [name, service] of gateways) {
        const env: Env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));
        const config = expectLoaderTakesEveryVariable(env, `redis-sentinel.yml ${name}`);
        expect(config.redis.kind).toBe('sentinel');
        expect(env.REDIS_SENTINELS.split(',').map((e) => e.split(':')[0]).sort()).toEqual(sentinels.map(([n]) => n).sort());
        const mounted = (service.secrets as Array<{ source: string; target?: string }>).map((s) => `/run/secrets/${s.target ?? s.source}`);
        for (const variable of Object.keys(env).filter((k) => k.endsWith('_FILE'))) expect({ name, variable, mounted: mounted.includes(env[variable]) }).toEqual({ name, variable, mounted: true });
      }
      for (const [secret, { file }] of Object.entries(merged.secrets)) {
        const ignored = spawnSync('git', ['check-ignore', '-q', path.relative(ROOT, file)], { cwd: ROOT });
        expect({ secret, ignoredByGit: ignored.status === 0 }).toEqual({ secret, ignoredByGit: true });
      }
    });
  });
});
