/**
 * Issue 10, "find the mechanism first": how many lease renewals per second reach etcd over a
 * grpc-js LeaseKeepAlive stream when the thread owning the stream is busy, and what changes that.
 *
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/keepalive-starvation.ts
 *     --seconds S        measured window per configuration (4)
 *     --only A,B-10ms    run only configurations whose name starts with one of these (also skips
 *                        the worker start-up timing)
 *     --json FILE        also write the rows as JSON (for medians over several runs)
 *     --cpu-profile DIR  write a V8 CPU profile of the main thread over each measured window
 *                        (summarize one with bench/experiments/profile-summary.ts)
 *     --summarize F,F,F  print the median table of earlier --json files and exit (no etcd needed)
 *
 * Starts a private auth-enabled etcd, grants 2,000 leases (TTL 60), then per configuration counts
 * over the window: LeaseKeepAlive messages etcd received (its own /metrics), answers the client got,
 * and the event-loop turns of the thread that owns the stream.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { EtcdConnection } from '@app/etcd';
import { LOCAL_DIR, REPO_ROOT, startEtcd } from '@app/stack';
import { KeepAlivePump, PumpConfig, SLOT, SLOT_COUNT, WriteMode } from './keepalive-pump';

const log = (msg: string) => process.stderr.write(`[exp] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

const LEASES = 2_000;
const WINDOW = 1_000;
const WARMUP_MS = 700;

interface Scenario {
  name: string;
  /** Who owns the stream. */
  thread: 'main' | 'worker';
  /** Synchronous work per main-thread turn; undefined = no busy loop at all (idle main thread). */
  busyMs: number | undefined;
  streams: number;
  mode: WriteMode;
  /** Open loop at this many renewals/s (see PumpConfig.ratePerS); default closed loop. */
  ratePerS?: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'A-idle', thread: 'main', busyMs: undefined, streams: 1, mode: 'ack' },
  { name: 'A-0ms', thread: 'main', busyMs: 0, streams: 1, mode: 'ack' },
  { name: 'A-2ms', thread: 'main', busyMs: 2, streams: 1, mode: 'ack' },
  { name: 'A-10ms', thread: 'main', busyMs: 10, streams: 1, mode: 'ack' },
  { name: 'B-0ms', thread: 'worker', busyMs: 0, streams: 1, mode: 'ack' },
  { name: 'B-2ms', thread: 'worker', busyMs: 2, streams: 1, mode: 'ack' },
  { name: 'B-10ms', thread: 'worker', busyMs: 10, streams: 1, mode: 'ack' },
  { name: 'C-10ms-4streams', thread: 'main', busyMs: 10, streams: 4, mode: 'ack' },
  { name: 'C-10ms-16streams', thread: 'main', busyMs: 10, streams: 16, mode: 'ack' },
  { name: 'D-10ms-burst', thread: 'main', busyMs: 10, streams: 1, mode: 'burst' },
  { name: 'D-10ms-cork', thread: 'main', busyMs: 10, streams: 1, mode: 'cork' },
  { name: 'D-2ms-frame', thread: 'main', busyMs: 2, streams: 1, mode: 'frame' },
  { name: 'D-10ms-frame', thread: 'main', busyMs: 10, streams: 1, mode: 'frame' },
  { name: 'E-10ms-worker-frame', thread: 'worker', busyMs: 10, streams: 1, mode: 'frame' },
  { name: 'G-2ms-raw-h2', thread: 'main', busyMs: 2, streams: 1, mode: 'raw' },
  { name: 'G-10ms-raw-h2', thread: 'main', busyMs: 10, streams: 1, mode: 'raw' },
  // 5,000/s = 100,000 leases renewed every TTL/3 = 20 s (issue 10's target): what does that rate cost the owner?
  { name: 'F-idle-main-5k/s', thread: 'main', busyMs: undefined, streams: 1, mode: 'ack', ratePerS: 5_000 },
  { name: 'F-10ms-worker-5k/s', thread: 'worker', busyMs: 10, streams: 1, mode: 'ack', ratePerS: 5_000 },
  { name: 'F-10ms-worker-5k/s-frame', thread: 'worker', busyMs: 10, streams: 1, mode: 'frame', ratePerS: 5_000 },
  { name: 'F-idle-main-5k/s-raw-h2', thread: 'main', busyMs: undefined, streams: 1, mode: 'raw', ratePerS: 5_000 },
];

interface Row {
  name: string;
  /** LeaseKeepAlive messages etcd received per second (etcd's grpc_server_msg_received_total). */
  etcdReceivedPerS: number;
  /** Answers the client received per second. */
  answeredPerS: number;
  /**
   * Event-loop turns per second of the thread owning the streams: the busy loop's turns when the
   * owner is a busy main thread (every turn), else turns with stream activity (an answer or an
   * http2 write), since idle turns deliver nothing either way.
   */
  ownerTurnsPerS: number;
  renewalsPerOwnerTurn: number;
  http2WritesPerOwnerTurn: number;
  /** Renewals carried by one http2Stream.write(): 1 through grpc-js's write path. */
  renewalsPerHttp2Write: number;
  /** Average messages waiting in Node's Writable buffer (all streams), sampled once per active turn. */
  avgWritableBacklog: number;
  /** Average messages waiting in grpc-js RetryingCall.writeBuffer, not yet handed to http2. */
  avgRetryBacklog: number;
  /** Event-loop utilisation of the stream-owning thread over the window (0..1). */
  ownerElu: number;
  /** Answers with TTL 0 in the window: must be 0, or the renewals did not renew anything. */
  ttlZeroAnswers: number;
}

class BusyLoop {
  turns = 0;
  private running = false;

  constructor(private readonly busyMs: number) {}

  start(): void {
    this.running = true;
    const turn = () => {
      if (!this.running) return;
      this.turns++;
      const until = performance.now() + this.busyMs;
      while (performance.now() < until) {
        // The point is to hold the thread, as a saturated gateway's request handling does.
      }
      setImmediate(turn);
    };
    setImmediate(turn);
  }

  stop(): void {
    this.running = false;
  }
}

interface Owner {
  counters: Float64Array;
  elu(): ReturnType<typeof performance.eventLoopUtilization>;
  eluSince(prev: ReturnType<typeof performance.eventLoopUtilization>): number;
  stop(): Promise<void>;
}

const TS_WORKER = path.join(__dirname, 'keepalive-worker.ts');

/** ts-node in a worker: the worker has no -r flags of its own, so it registers the hooks itself. */
function tsWorkerCode(file: string): string {
  return [
    `process.env.TS_NODE_PROJECT = ${JSON.stringify(path.join(REPO_ROOT, 'tsconfig.json'))};`,
    `require(${JSON.stringify(require.resolve('ts-node/register/transpile-only'))});`,
    `require(${JSON.stringify(require.resolve('tsconfig-paths/register'))});`,
    `require(${JSON.stringify(file)});`,
  ].join('\n');
}

async function startOwner(scenario: Scenario, cfg: PumpConfig): Promise<Owner> {
  const shared = new SharedArrayBuffer(SLOT_COUNT * 8);
  const counters = new Float64Array(shared);
  if (scenario.thread === 'main') {
    const pump = new KeepAlivePump(cfg, shared);
    await pump.start();
    return {
      counters,
      elu: () => performance.eventLoopUtilization(),
      eluSince: (prev) => performance.eventLoopUtilization(prev).utilization,
      stop: async () => pump.stop(),
    };
  }
  const worker = new Worker(tsWorkerCode(TS_WORKER), { eval: true, workerData: { cfg, shared } });
  await new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (m: { type: string; message?: string }) => (m.type === 'error' ? reject(new Error(m.message)) : undefined));
    const poll = setInterval(() => {
      if (counters[SLOT.ready] !== 1) return;
      clearInterval(poll);
      resolve();
    }, 20);
  });
  return {
    counters,
    elu: () => worker.performance.eventLoopUtilization(),
    eluSince: (prev) => worker.performance.eventLoopUtilization(prev).utilization,
    stop: async () => {
      const stopped = new Promise<void>((resolve) => worker.on('message', (m: { type: string }) => m.type === 'stopped' && resolve()));
      worker.postMessage({ type: 'stop' });
      await Promise.race([stopped, sleep(2_000)]);
      await worker.terminate();
    },
  };
}

interface Snapshot {
  at: number;
  etcdReceived: number;
  counters: number[];
  mainTurns: number;
}

async function snapshot(etcdReceived: () => Promise<number>, owner: Owner, busy: BusyLoop | undefined): Promise<Snapshot> {
  const before = performance.now();
  const countersBefore = Array.from(owner.counters);
  const turnsBefore = busy?.turns ?? 0;
  const received = await etcdReceived();
  const after = performance.now();
  // etcd rendered its counter somewhere between request and answer (a few turns apart when the
  // thread is busy): client-side counts are taken as the mean of both ends, at the same midpoint.
  const mid = (a: number, b: number) => (a + b) / 2;
  return {
    at: mid(before, after),
    etcdReceived: received,
    counters: Array.from(owner.counters, (v, i) => mid(countersBefore[i], v)),
    mainTurns: mid(turnsBefore, busy?.turns ?? 0),
  };
}

/** V8's profiler over exactly the measured window (`node --cpu-prof` would also cover start-up). */
class WindowProfiler {
  private readonly session = new Session();

  constructor(private readonly file: string) {}

  async start(): Promise<void> {
    this.session.connect();
    await this.post('Profiler.enable');
    await this.post('Profiler.start');
  }

  async stop(): Promise<void> {
    const { profile } = (await this.post('Profiler.stop')) as { profile: object };
    fs.writeFileSync(this.file, JSON.stringify(profile));
    this.session.disconnect();
  }

  private post(method: string): Promise<unknown> {
    return new Promise((resolve, reject) => this.session.post(method, (err, res) => (err ? reject(err) : resolve(res))));
  }
}

async function runScenario(
  scenario: Scenario,
  base: Omit<PumpConfig, 'streams' | 'mode' | 'ratePerS'>,
  seconds: number,
  etcdReceived: () => Promise<number>,
  profileDir: string | undefined,
): Promise<Row> {
  const busy = scenario.busyMs === undefined ? undefined : new BusyLoop(scenario.busyMs);
  busy?.start();
  const owner = await startOwner(scenario, { ...base, streams: scenario.streams, mode: scenario.mode, ratePerS: scenario.ratePerS });
  await sleep(WARMUP_MS);
  const profiler = profileDir ? new WindowProfiler(path.join(profileDir, `${scenario.name.replace(/[^\w.-]+/g, '_')}.main.cpuprofile`)) : undefined;
  await profiler?.start();
  const s0 = await snapshot(etcdReceived, owner, busy);
  const elu0 = owner.elu();
  await sleep(seconds * 1000);
  const s1 = await snapshot(etcdReceived, owner, busy);
  const ownerElu = owner.eluSince(elu0);
  await profiler?.stop();
  await owner.stop();
  busy?.stop();
  const d = (slot: number) => s1.counters[slot] - s0.counters[slot];
  const secs = (s1.at - s0.at) / 1000;
  const ownerTurns = Math.max(1, scenario.thread === 'main' && busy ? s1.mainTurns - s0.mainTurns : d(SLOT.activeTurns));
  const samples = Math.max(1, d(SLOT.samples));
  return {
    name: scenario.name,
    etcdReceivedPerS: (s1.etcdReceived - s0.etcdReceived) / secs,
    answeredPerS: d(SLOT.answered) / secs,
    ownerTurnsPerS: ownerTurns / secs,
    renewalsPerOwnerTurn: d(SLOT.answered) / ownerTurns,
    http2WritesPerOwnerTurn: d(SLOT.http2Writes) / ownerTurns,
    renewalsPerHttp2Write: d(SLOT.answered) / Math.max(1, d(SLOT.http2Writes)),
    avgWritableBacklog: d(SLOT.sumWritableBuffered) / samples,
    avgRetryBacklog: d(SLOT.sumRetryBacklog) / samples,
    ownerElu,
    ttlZeroAnswers: d(SLOT.ttlZero),
  };
}

/** Time from `new Worker` until the worker's modules are loaded ('loaded' message), main thread idle. */
async function timeWorkerStart(make: () => Worker): Promise<number> {
  const t0 = performance.now();
  const worker = make();
  await new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (m: { type: string }) => m.type === 'loaded' && resolve());
  });
  const ms = performance.now() - t0;
  await worker.terminate();
  return ms;
}

async function measureWorkerStarts(): Promise<Record<string, number>> {
  const kinds: Record<string, () => Worker> = {
    'empty worker (plain JS, eval)': () => new Worker(`require('node:worker_threads').parentPort.postMessage({ type: 'loaded' })`, { eval: true }),
    'plain JS: grpc-js + etcd3 + rpc.proto': () => new Worker(path.join(__dirname, 'worker-deps-only.js')),
    // Without a configuration the worker only loads its modules and reports.
    'ts-node eval: keepalive-worker.ts': () => new Worker(tsWorkerCode(TS_WORKER), { eval: true, workerData: { cfg: null } }),
  };
  const out: Record<string, number> = {};
  for (const [name, make] of Object.entries(kinds)) {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push(await timeWorkerStart(make));
    out[name] = median(times);
    log(`worker start, ${name}: ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
  }
  return out;
}

async function grantLeases(conn: EtcdConnection, count: number): Promise<string[]> {
  const ids: string[] = [];
  let started = 0;
  const grantInTurn = async (): Promise<void> => {
    while (started < count) {
      started++;
      ids.push(String((await conn.lease.leaseGrant({ TTL: 60, ID: 0 })).ID));
    }
  };
  await Promise.all(Array.from({ length: 32 }, grantInTurn));
  return ids;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

const COLUMNS: Array<[string, (r: Row) => string]> = [
  ['configuration', (r) => r.name],
  ['etcd received /s', (r) => fmt(r.etcdReceivedPerS)],
  ['answered /s', (r) => fmt(r.answeredPerS)],
  ['owner turns /s', (r) => fmt(r.ownerTurnsPerS)],
  ['renewals / turn', (r) => fmt(r.renewalsPerOwnerTurn, 1)],
  ['http2 writes / turn', (r) => fmt(r.http2WritesPerOwnerTurn, 1)],
  ['renewals / http2 write', (r) => fmt(r.renewalsPerHttp2Write, 1)],
  ['avg waiting in Writable', (r) => fmt(r.avgWritableBacklog)],
  ['avg waiting in RetryingCall', (r) => fmt(r.avgRetryBacklog)],
  ['owner ELU', (r) => fmt(r.ownerElu, 2)],
  ['TTL-0 answers', (r) => fmt(r.ttlZeroAnswers)],
];

function renderTable(rows: Row[]): string {
  const lines = [`| ${COLUMNS.map(([h]) => h).join(' | ')} |`, `| ${COLUMNS.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) lines.push(`| ${COLUMNS.map(([, f]) => f(r)).join(' | ')} |`);
  return lines.join('\n');
}

/** Per configuration and column, the median over runs (each column on its own). */
function medianRows(runs: Row[][]): Row[] {
  return runs[0].map((first) => {
    const same = runs.map((rows) => rows.find((r) => r.name === first.name)).filter((r): r is Row => !!r);
    const out = { name: first.name } as Row;
    for (const key of Object.keys(first) as Array<keyof Row>) {
      if (key === 'name') continue;
      const values = same.map((r) => r[key]).filter((v): v is number => typeof v === 'number');
      (out as unknown as Record<string, number | undefined>)[key] = values.length ? median(values) : undefined;
    }
    return out;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'string' },
      summarize: { type: 'string' },
      'cpu-profile': { type: 'string' },
    },
  });
  if (values.summarize) {
    const runs = values.summarize.split(',').map((f) => (JSON.parse(fs.readFileSync(f, 'utf8')) as { rows: Row[] }).rows);
    process.stdout.write(`Medians of ${runs.length} runs (each column on its own):\n\n${renderTable(medianRows(runs))}\n`);
    const perRun = runs[0].map((r) => `| ${r.name} | ${runs.map((rows) => fmt(rows.find((x) => x.name === r.name)?.etcdReceivedPerS)).join(' | ')} |`);
    process.stdout.write(`\netcd received /s in each run:\n\n| configuration | ${runs.map((_, i) => `run ${i + 1}`).join(' | ')} |\n| --- |${' ---: |'.repeat(runs.length)}\n${perRun.join('\n')}\n`);
    return;
  }
  const seconds = Number(values.seconds ?? 4);
  const only = values.only?.split(',');
  const profileDir = values['cpu-profile'] ? path.resolve(values['cpu-profile']) : undefined;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const scenarios = SCENARIOS.filter((s) => !only || only.some((o) => s.name.startsWith(o)));
  const started = performance.now();
  log(`load average before the run: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const workerStarts = only ? {} : await measureWorkerStarts();
  const etcd = await startEtcd({ dataDir: path.join(LOCAL_DIR, 'exp', `etcd-${randomBytes(3).toString('hex')}`) });
  try {
    const admin = new EtcdConnection({
      endpoints: [etcd.endpoint],
      credentials: { username: etcd.gatewayUser, password: etcd.gatewayPassword },
      requestTimeoutMs: 10_000,
    });
    const leaseIds = await grantLeases(admin, LEASES);
    admin.close();
    log(`etcd ${etcd.endpoint} up, ${leaseIds.length} leases granted (TTL 60)`);
    const base = { endpoint: etcd.endpoint, username: etcd.gatewayUser, password: etcd.gatewayPassword, leaseIds, window: WINDOW };
    const etcdReceived = async () => (await etcd.counters()).leaseKeepAliveMessages;
    const rows: Row[] = [];
    for (const scenario of scenarios) {
      const row = await runScenario(scenario, base, seconds, etcdReceived, profileDir);
      rows.push(row);
      log(`${row.name}: etcd received ${fmt(row.etcdReceivedPerS)}/s, answered ${fmt(row.answeredPerS)}/s, ${fmt(row.renewalsPerOwnerTurn, 1)} per owner turn`);
      await sleep(300); // let etcd finish with the stream that just closed
    }
    process.stdout.write(`\n${renderTable(rows)}\n`);
    for (const [name, ms] of Object.entries(workerStarts)) process.stdout.write(`worker start, ${name}: ${fmt(ms)} ms (median of 3)\n`);
    process.stdout.write(`whole run: ${fmt((performance.now() - started) / 1000)} s\n`);
    const fake = rows.filter((r) => r.ttlZeroAnswers > 0);
    // Hand-framed renewals (`frame`, `raw`) count only if etcd really renewed the lease.
    if (fake.length) throw new Error(`answers with TTL 0 in ${fake.map((r) => r.name).join(', ')}: those renewals did not renew`);
    if (values.json) {
      fs.writeFileSync(values.json, JSON.stringify({ loadavg: os.loadavg(), seconds, workerStarts, rows }, null, 2) + '\n');
    }
  } finally {
    await etcd.dispose();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
