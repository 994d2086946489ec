/**
 * Issue 23 acceptance: N pods heartbeating through the Consul door (TTL check passes) cost etcd no
 * more than the same pods heartbeating on the REST API. Counted on etcd's own /metrics (renewals,
 * Authenticate, reads and writes) during a steady heartbeat window, registrations excluded.
 *
 *   npm run build
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/door-etcd-cost.ts \
 *     [--pods 2000] [--ttl 30] [--interval 10] [--seconds 60] [--settle 5] [--out bench/results/door-etcd-cost.md]
 *
 * Starts its own auth-enabled etcd and Redis (tools/stack, loopback, random ports) and, per phase, one
 * gateway from dist/ (bench/lib/processes.ts) with CONSUL_API_PORT set, on a fresh key prefix; stops
 * each gateway before the next phase, and everything at the end.
 *  rest    N pods `PUT /v1/services/door-rest/instances/<id>` (TTL T), then `PUT .../heartbeat` every H s
 *  consul  N pods `PUT /v1/agent/service/register` with `Check: {TTL: "Ts"}` and a first
 *          `PUT /v1/agent/check/pass/service:<id>` (which turns them UP: one status write each, part of
 *          the registration), then that pass every H s
 * Each pod's heartbeats are spread evenly over the interval. The window opens at least `--settle` seconds
 * after the heartbeats start (the writes of the registration burst have been answered by then), halfway
 * between two renewal bursts of the registered leases, and lasts `--seconds` rounded to whole renewal
 * periods (TTL/3, the lease engine's schedule; see runPhase); etcd's counters and the gateway's CPU (/proc/<pid>/stat, all threads) are read at both
 * ends. The load goes over keep-alive sockets (node:http Agent, 32 sockets), at most 256 requests in
 * flight; a heartbeat due while 256 are in flight is counted as skipped, not queued.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { EtcdCounters, EtcdServer, LOCAL_DIR, REPO_ROOT, RedisServer, diffCounters, freePort, startEtcd, startRedis } from '@app/stack';
import { readProcess } from '../../apps/fleet-sim/src/process-sampler';
import { machineInfo, versions } from '../lib/machine';
import { GatewayEnv, ServerProcess, startGateway } from '../lib/processes';
import { table } from '../lib/report';
import { etcdCounters } from '../lib/sampling';

const log = (msg: string): void => void process.stderr.write(`[door-etcd-cost] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Options {
  pods: number;
  ttlSeconds: number;
  intervalSeconds: number;
  windowSeconds: number;
  settleSeconds: number;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { pods: { type: 'string' }, ttl: { type: 'string' }, interval: { type: 'string' }, seconds: { type: 'string' }, settle: { type: 'string' }, out: { type: 'string' } },
  });
  const int = (name: string, v: string | undefined, def: number, min: number, max: number) => {
    const n = Number(v ?? def);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: an integer in ${min}..${max}, got ${v}`);
    return n;
  };
  const o = {
    pods: int('pods', values.pods, 2000, 1, 20_000),
    ttlSeconds: int('ttl', values.ttl, 30, 5, 300),
    intervalSeconds: int('interval', values.interval, 10, 1, 300),
    windowSeconds: int('seconds', values.seconds, 60, 5, 3600),
    settleSeconds: int('settle', values.settle, 5, 0, 300),
    out: path.resolve(REPO_ROOT, values.out ?? 'bench/results/door-etcd-cost.md'),
  };
  if (o.intervalSeconds >= o.ttlSeconds) throw new Error('--interval must be shorter than --ttl');
  return o;
}

// Plain keep-alive HTTP: the load generator must stay cheap next to the gateway on 2 cores.
const agent = new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 32 });
const MAX_IN_FLIGHT = 256;
const REQUEST_TIMEOUT_MS = 10_000;

/** One PUT; resolves with the status, or 0 for a transport error or timeout. */
function put(base: string, urlPath: string, body?: unknown): Promise<{ status: number; retryAfterSeconds?: number }> {
  const url = new URL(urlPath, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'PUT', timeout: REQUEST_TIMEOUT_MS, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfterSeconds: res.headers['retry-after'] ? Number(res.headers['retry-after']) : undefined }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0 }));
    req.end(payload);
  });
}

/** One pod's registration through a door: `ok` statuses accepted, 429/503 retried after Retry-After (at most 5 tries). */
async function registerWithRetry(send: () => Promise<{ status: number; retryAfterSeconds?: number }>, ok: number[]): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const res = await send();
    if (ok.includes(res.status) || attempt >= 5 || ![0, 429, 503].includes(res.status)) return res.status;
    await sleep(Math.min(5, res.retryAfterSeconds ?? 1) * 1000 + Math.random() * 500);
  }
}

/** Runs `count` tasks, `concurrency` at a time; returns how many answered each status. */
async function runBounded(count: number, concurrency: number, task: (i: number) => Promise<number>): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const status = await task(next++);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

interface Door {
  name: 'rest' | 'consul';
  title: string;
  register(i: number): Promise<number>;
  heartbeat(i: number): Promise<{ status: number }>;
}

function restDoor(gateway: ServerProcess, ttlSeconds: number): Door {
  const instance = (i: number) => `/v1/services/door-rest/instances/pod-${i}`;
  return {
    name: 'rest',
    title: 'REST API (`PUT .../heartbeat`)',
    register: (i) => registerWithRetry(() => put(gateway.url, instance(i), { address: `10.7.${i >> 8}.${i & 255}`, port: 8080, ttl: ttlSeconds }), [200, 201]),
    heartbeat: (i) => put(gateway.url, `${instance(i)}/heartbeat`),
  };
}

function consulDoor(door: string, ttlSeconds: number): Door {
  const id = (i: number) => `door-consul-${i}`;
  const pass = (i: number) => put(door, `/v1/agent/check/pass/${encodeURIComponent(`service:${id(i)}`)}`);
  return {
    name: 'consul',
    title: 'Consul door (`check/pass`)',
    register: async (i) => {
      const body = { Name: 'door-consul', ID: id(i), Address: `10.8.${i >> 8}.${i & 255}`, Port: 8080, Check: { TTL: `${ttlSeconds}s` } };
      const status = await registerWithRetry(() => put(door, '/v1/agent/service/register', body), [200]);
      // Registered critical, as in Consul: the first pass turns the pod UP (one status write), so it belongs to the registration.
      return status === 200 ? registerWithRetry(() => pass(i), [200]) : status;
    },
    heartbeat: pass,
  };
}

interface PhaseResult {
  door: Door['name'];
  title: string;
  registrations: Record<string, number>;
  registrationSeconds: number;
  windowSeconds: number;
  etcd: EtcdCounters;
  heartbeats: { sent: number; skipped: number; statuses: Record<string, number> };
  gatewayCpuPercent: number;
  etcdCpuPercent: number;
}

/**
 * Heartbeats every pod every `intervalSeconds`, pod i at offset i/N of the interval, from now until
 * `stop()`; the answers counted are those that arrive while `counting()` is true.
 */
function startHeartbeats(door: Door, o: Options, counting: () => boolean) {
  const tally = { sent: 0, skipped: 0, statuses: {} as Record<string, number> };
  let inFlight = 0;
  let stopped = false;
  const startedAt = Date.now();
  const periodMs = o.intervalSeconds * 1000;
  let sentUpTo = 0; // heartbeats scheduled so far (pod = n % N, round = n / N)
  const tick = () => {
    const due = Math.floor(((Date.now() - startedAt) / periodMs) * o.pods);
    for (; sentUpTo < due && !stopped; sentUpTo++) {
      const count = counting();
      if (inFlight >= MAX_IN_FLIGHT) {
        if (count) tally.skipped++;
        continue;
      }
      inFlight++;
      if (count) tally.sent++;
      void door.heartbeat(sentUpTo % o.pods).then(({ status }) => {
        inFlight--;
        if (count) tally.statuses[status] = (tally.statuses[status] ?? 0) + 1;
      });
    }
  };
  const timer = setInterval(tick, 20);
  return {
    tally,
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      for (let waited = 0; inFlight > 0 && waited < REQUEST_TIMEOUT_MS + 1000; waited += 50) await sleep(50);
    },
  };
}

function cpuSeconds(pid: number | undefined): number {
  const sample = pid ? readProcess(pid) : undefined;
  if (!sample) throw new Error(`process ${pid} is gone`);
  return sample.cpuSeconds;
}

async function runPhase(name: Door['name'], o: Options, etcd: EtcdServer, redis: RedisServer, workDir: string): Promise<PhaseResult> {
  const consulPort = await freePort();
  const env: GatewayEnv & { CONSUL_API_PORT: string } = {
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_USERNAME: etcd.gatewayUser,
    ETCD_PASSWORD: etcd.gatewayPassword,
    ETCD_PREFIX: `/registry/door-cost-${name}-${Date.now()}/`,
    ETCD_POOL_SIZE: '2',
    REDIS_URL: redis.url,
    CONSUL_API_PORT: String(consulPort),
  };
  const gateway = await startGateway(env, path.join(workDir, `gateway-${name}.log`));
  try {
    const door = name === 'rest' ? restDoor(gateway, o.ttlSeconds) : consulDoor(`http://127.0.0.1:${consulPort}`, o.ttlSeconds);
    log(`${name}: registering ${o.pods} pods`);
    const regStarted = Date.now();
    const registrations = await runBounded(o.pods, 64, door.register);
    const registrationSeconds = (Date.now() - regStarted) / 1000;
    log(`${name}: registrations ${JSON.stringify(registrations)} in ${registrationSeconds.toFixed(1)} s; heartbeats every ${o.intervalSeconds} s; the window opens between two renewal bursts, at least ${o.settleSeconds} s from now`);

    let counting = false;
    const heartbeats = startHeartbeats(door, o, () => counting);
    // The lease engine renews each lease TTL/3 after its last renewal, whatever the heartbeats: the
    // registration burst comes back as a renewal burst every period. A window of whole periods that
    // opens halfway between two bursts counts each lease's renewals exactly once per period (a 15 s
    // window at TTL 30 counted one burst in one phase and two in the other).
    const periodMs = (o.ttlSeconds * 1000) / 3;
    const burstMiddle = (regStarted + Date.now()) / 2;
    let opensAt = burstMiddle + periodMs / 2;
    while (opensAt < Date.now() + o.settleSeconds * 1000) opensAt += periodMs;
    const windowMs = Math.max(1, Math.round((o.windowSeconds * 1000) / periodMs)) * periodMs;
    await sleep(opensAt - Date.now());
    const [c0, gw0, etcd0, t0] = [await etcdCounters(etcd.metricsUrl), cpuSeconds(gateway.pid), cpuSeconds(etcd.pid), Date.now()];
    counting = true;
    await sleep(windowMs - (Date.now() - t0));
    counting = false;
    const [c1, gw1, etcd1, t1] = [await etcdCounters(etcd.metricsUrl), cpuSeconds(gateway.pid), cpuSeconds(etcd.pid), Date.now()];
    await heartbeats.stop();
    const seconds = (t1 - t0) / 1000;
    const result: PhaseResult = {
      door: name,
      title: door.title,
      registrations,
      registrationSeconds,
      windowSeconds: seconds,
      etcd: diffCounters(c0, c1),
      heartbeats: heartbeats.tally,
      gatewayCpuPercent: ((gw1 - gw0) / seconds) * 100,
      etcdCpuPercent: ((etcd1 - etcd0) / seconds) * 100,
    };
    log(`${name}: ${JSON.stringify({ etcd: result.etcd, heartbeats: result.heartbeats, gatewayCpuPercent: result.gatewayCpuPercent.toFixed(1) })}`);
    return result;
  } finally {
    await gateway.stop();
  }
}

const fmt = (x: number, digits = 1) => (Number.isInteger(x) ? String(x) : x.toFixed(digits));
const ratio = (consul: number, rest: number) => (rest === 0 ? (consul === 0 ? '0 / 0' : 'rest 0') : `${(consul / rest).toFixed(2)}`);

function renderReport(o: Options, command: string, started: Date, phases: PhaseResult[], load: number[]): string {
  const [rest, consul] = phases;
  const m = machineInfo();
  const v = versions();
  const perSecond = (p: PhaseResult, k: keyof EtcdCounters) => p.etcd[k] / p.windowSeconds;
  const rows: string[][] = [];
  const counter = (label: string, k: keyof EtcdCounters, rate: boolean) => {
    const [r, c] = rate ? [perSecond(rest, k), perSecond(consul, k)] : [rest.etcd[k], consul.etcd[k]];
    rows.push([label, fmt(r), fmt(c), ratio(c, r)]);
  };
  counter('LeaseKeepAlive messages / s', 'leaseKeepAliveMessages', true);
  counter('Authenticate', 'authenticate', false);
  counter('Range', 'range', false);
  counter('Put', 'put', false);
  counter('Txn', 'txn', false);
  counter('LeaseGrant', 'leaseGrant', false);
  counter('DeleteRange', 'deleteRange', false);
  counter('LeaseRevoke', 'leaseRevoke', false);
  const hbRate = (p: PhaseResult) => p.heartbeats.sent / p.windowSeconds;
  rows.push(['heartbeats sent / s', fmt(hbRate(rest)), fmt(hbRate(consul)), ratio(hbRate(consul), hbRate(rest))]);
  rows.push(['heartbeat answers by status', JSON.stringify(rest.heartbeats.statuses), JSON.stringify(consul.heartbeats.statuses), '']);
  rows.push(['heartbeats skipped (256 in flight)', String(rest.heartbeats.skipped), String(consul.heartbeats.skipped), '']);
  rows.push(['gateway CPU, % of one core', fmt(rest.gatewayCpuPercent), fmt(consul.gatewayCpuPercent), ratio(consul.gatewayCpuPercent, rest.gatewayCpuPercent)]);
  rows.push(['etcd CPU, % of one core', fmt(rest.etcdCpuPercent), fmt(consul.etcdCpuPercent), ratio(consul.etcdCpuPercent, rest.etcdCpuPercent)]);
  const noMore = (['leaseKeepAliveMessages', 'authenticate', 'range', 'put', 'txn', 'leaseGrant', 'deleteRange'] as const).every((k) => consul.etcd[k] <= rest.etcd[k] * 1.05 + 1);
  return [
    `# etcd cost of heartbeats: Consul door vs REST API (${started.toISOString().slice(0, 10)}, ${m.cores} cores)`,
    '',
    `Generated by \`bench/experiments/door-etcd-cost.ts\`; do not edit by hand, run it again. Issue 23 acceptance: ${o.pods} pods heartbeating through the Consul door (check/pass) cost etcd no more than the same pods on the REST API.`,
    '',
    '```',
    command,
    '```',
    '',
    `${o.pods} pods per phase, TTL ${o.ttlSeconds} s, a heartbeat every ${o.intervalSeconds} s per pod (spread evenly), window of whole renewal periods (TTL/3) opened halfway between two renewal bursts, at least ${o.settleSeconds} s after the heartbeats started (registrations and the Consul pods' first pass excluded). ` +
      'Each phase has its own gateway (from dist/, pool of 2, one replica) on a fresh prefix against the same etcd (auth on) and Redis; etcd figures are the difference of etcd\'s own /metrics counters across the window.',
    '',
    table(['per window', 'REST', 'Consul', 'Consul / REST'], rows),
    '',
    `Registrations: REST ${JSON.stringify(rest.registrations)} in ${fmt(rest.registrationSeconds)} s, Consul ${JSON.stringify(consul.registrations)} in ${fmt(consul.registrationSeconds)} s (register + first pass). ` +
      `Window lengths: REST ${fmt(rest.windowSeconds)} s, Consul ${fmt(consul.windowSeconds)} s.`,
    '',
    `Verdict (every etcd counter above, Consul <= REST + 5 % + 1): **${noMore ? 'no more' : 'MORE'}**.`,
    '',
    '## Machine',
    '',
    table(
      ['what', 'value'],
      [
        ['CPU', `${m.cpuModel}, ${m.cores} cores`],
        ['memory', `${m.memoryGb} GiB`],
        ['OS', m.kernel],
        ['node', v.node],
        ['etcd', `${v.etcd} (single member, auth enabled)`],
        ['redis', `${v.redis}, one server`],
        ['gateway', `${v.gateway}, commit ${v.commit}`],
        ['load average at start (1/5/15 min)', load.map((x) => x.toFixed(2)).join(' / ')],
      ],
    ),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parseOptions(argv);
  const command = `node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/door-etcd-cost.ts ${argv.join(' ')}`.trim();
  const started = new Date();
  const load = os.loadavg();
  const workDir = path.join(LOCAL_DIR, 'bench', `door-etcd-cost-${process.pid}`);
  fs.mkdirSync(workDir, { recursive: true });
  const [etcd, redis] = await Promise.all([startEtcd({ dataDir: path.join(workDir, 'etcd') }), startRedis({ dir: path.join(workDir, 'redis') })]);
  log(`etcd ${etcd.endpoint} (metrics ${etcd.metricsUrl}), redis ${redis.url}; logs in ${workDir}`);
  try {
    const phases = [await runPhase('rest', o, etcd, redis, workDir), await runPhase('consul', o, etcd, redis, workDir)];
    fs.mkdirSync(path.dirname(o.out), { recursive: true });
    fs.writeFileSync(o.out, renderReport(o, command, started, phases, load));
    log(`report: ${path.relative(REPO_ROOT, o.out)}`);
  } finally {
    agent.destroy();
    await Promise.all([etcd.dispose(), redis.dispose()]);
  }
  fs.rmSync(workDir, { recursive: true, force: true }); // kept after a failure: the gateways' logs say why
}

// etcd and Redis are unref'd children (@app/stack): keep the loop alive while they stop.
const keepAlive = setInterval(() => undefined, 60_000);
main()
  .catch((err: Error) => {
    log(err.stack ?? err.message);
    process.exitCode = 1;
  })
  .finally(() => clearInterval(keepAlive));
