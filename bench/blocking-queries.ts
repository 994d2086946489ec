/**
 * Blocking queries (issue 12) on real processes: a private etcd (auth on) + Redis and two gateway
 * replicas from the build. Measures, on replica A:
 * - the extra RSS of N concurrent blocking queries (default 5,000) and the etcd calls they cost
 *   while held (etcd's own counters; expected 0);
 * - the latency from a registration sent to replica B to the held answers on A: once with all N
 *   held queries woken by one change (fan-out), and over `--rounds` changes with `--watchers` held
 *   queries each (the p50/p99 a watcher sees).
 * Latencies are measured by this client from "PUT sent" to "answer received", so they include the
 * registration's own etcd write; the PUT's duration is reported beside them.
 *
 *   npm run build && node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/blocking-queries.ts
 *     --held N        concurrent blocking queries on replica A (5000)
 *     --rounds N      changes for the watcher-latency figures (30)
 *     --watchers N    blocking queries held per round (100)
 *     --out FILE      report (bench/results/blocking-queries.md)
 *     --cpu-prof DIR  replica A runs with `--cpu-prof --cpu-prof-dir=DIR` (written when it stops)
 *     --keep-alive    the client keeps its connections open after an answer (default: closes them)
 *     --probe         replica A preloads bench/lib/fan-out-probe.js: the fan-out's server-side times
 *                     (watch event applied, waiters woken, answers handed to the sockets) in the report
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { diffCounters, EtcdCounters, LOCAL_DIR, REPO_ROOT, startEtcd, startRedis } from '@app/stack';
import { readMachine, readProcess } from '../apps/fleet-sim/src/process-sampler';
import { machineInfo, versions } from './lib/machine';
import { GatewayEnv, startGateway, ServerProcess } from './lib/processes';

const log = (msg: string) => process.stderr.write(`[blocking-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Connections opened per step: stays below the listen backlog (511), so no SYN is dropped and retried. */
const OPEN_BATCH = 250;

const { values } = parseArgs({
  options: {
    held: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '30' },
    watchers: { type: 'string', default: '100' },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results', 'blocking-queries.md') },
    'cpu-prof': { type: 'string' },
    probe: { type: 'boolean', default: false },
    'keep-alive': { type: 'boolean', default: false },
  },
});
const HELD = Number(values.held);
const ROUNDS = Number(values.rounds);
const WATCHERS = Number(values.watchers);
const PROBE_FILE = path.join(REPO_ROOT, 'bench', 'lib', 'fan-out-probe.js');

// One connection per held query, as separate clients would have; closed after its answer unless
// --keep-alive (what the SDK's fetch and Consul's clients do).
const agent = new http.Agent({ keepAlive: values['keep-alive'], maxSockets: Infinity });

interface HeldAnswer {
  status: number;
  index: string;
  receivedAt: number;
  body: { instances: Array<{ id: string }> };
}

function request(method: string, url: string, body?: unknown): Promise<HeldAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const receivedAt = performance.now();
        resolve({ status: res.statusCode ?? 0, index: String(res.headers['x-registry-index'] ?? ''), receivedAt, body: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

async function metric(gw: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function waitForHeld(gw: ServerProcess, count: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await metric(gw, 'registry_blocking_queries_held')) !== count) {
    if (Date.now() > deadline) throw new Error(`replica did not reach ${count} held queries`);
    await sleep(100);
  }
}

/** Opens `count` blocking queries, a batch at a time, and waits until the replica holds all of them. */
async function hold(gw: ServerProcess, url: string, count: number, alreadyHeld = 0): Promise<Array<Promise<HeldAnswer>>> {
  const answers: Array<Promise<HeldAnswer>> = [];
  while (answers.length < count) {
    const batch = Math.min(OPEN_BATCH, count - answers.length);
    for (let i = 0; i < batch; i++) answers.push(request('GET', url));
    await waitForHeld(gw, alreadyHeld + answers.length);
  }
  return answers;
}

const sumCpu = (u: NodeJS.CpuUsage) => u.user + u.system;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const ms = (v: number) => `${v.toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const unaryCalls = (d: EtcdCounters) => d.range + d.txn + d.put + d.deleteRange + d.leaseGrant + d.leaseRevoke + d.authenticate;

async function rssSample(gw: ServerProcess, samples = 5): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(await metric(gw, 'process_resident_memory_bytes'));
    await sleep(500);
  }
  return values.sort((x, y) => x - y)[Math.floor(values.length / 2)];
}

/** What bench/lib/fan-out-probe.js printed for the first fan-out (epoch ms). */
interface ProbeBurst {
  appliedAt: number;
  wokenAt: number;
  answers: number;
  firstEnd: number;
  lastEnd: number;
  lastFinish: number;
}

async function probeLine(logFile: string): Promise<ProbeBurst | undefined> {
  await sleep(1_500);
  const line = fs.readFileSync(logFile, 'utf8').split('\n').find((l) => l.startsWith('[fan-out-probe] '));
  return line ? (JSON.parse(line.slice('[fan-out-probe] '.length)) as ProbeBurst) : undefined;
}

/** The probe's epoch times on this client's clock (performance.now()), from the PUT sent. */
function probeRows(p: ProbeBurst, sentAt: number, latencies: number[]): string {
  const at = (epochMs: number) => ms(epochMs - performance.timeOrigin - sentAt);
  return `| replica A (probe): watch event applied to the read model | ${at(p.appliedAt)} |
| replica A (probe): every waiter woken (applyEvents returned) | ${at(p.wokenAt)} |
| replica A (probe): ${p.answers} answers handed to their sockets (first / last res.end) | ${at(p.firstEnd)} / ${at(p.lastEnd)} |
| replica A (probe): last answer's 'finish' | ${at(p.lastFinish)} |
| this client: last answer read | ${ms(latencies.at(-1)!)} |
`;
}

async function main(): Promise<void> {
  const started = new Date();
  const load = os.loadavg();
  log('starting etcd, Redis and two gateway replicas (from dist/)');
  const [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
  const env: GatewayEnv = {
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_USERNAME: etcd.gatewayUser,
    ETCD_PASSWORD: etcd.gatewayPassword,
    ETCD_PREFIX: '/registry/bench/',
    ETCD_POOL_SIZE: '2',
    REDIS_URL: redis.url,
  };
  const logDir = path.join(LOCAL_DIR, 'bench');
  const envA: GatewayEnv & { MAX_BLOCKING_QUERIES: string } = { ...env, MAX_BLOCKING_QUERIES: String(HELD + WATCHERS) };
  const nodeArgsA = [...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : []), ...(values.probe ? ['-r', PROBE_FILE] : [])];
  const logA = path.join(logDir, 'blocking-a.log');
  fs.rmSync(logA, { force: true });
  const a = await startGateway(envA, logA, undefined, nodeArgsA);
  const b = await startGateway(env, path.join(logDir, 'blocking-b.log'));
  try {
    const instanceUrl = (id: string) => `${b.url}/v1/services/watched/instances/${id}`;
    const put = async (id: string) => {
      const sentAt = performance.now();
      const res = await request('PUT', instanceUrl(id), { address: '10.0.0.1', port: 8080, ttl: 300 });
      if (res.status !== 201) throw new Error(`registration answered ${res.status}`);
      return { sentAt, tookMs: res.receivedAt - sentAt };
    };
    await put('seed');
    const current = async () => (await request('GET', `${a.url}/v1/services/watched`)).index;
    // Warm A: its cache holds the service, its code paths are compiled.
    for (let i = 0; i < 200; i++) await current();
    await sleep(2_000);

    log(`RSS of replica A before: sampling`);
    const rssBefore = await rssSample(a);
    const countersBefore = await etcd.counters();
    const index = await current();
    log(`opening ${HELD} blocking queries on replica A`);
    const held = await hold(a, `${a.url}/v1/services/watched?index=${index}&wait=10m`, HELD);
    log('holding for 10 s');
    await sleep(10_000);
    const rssHeld = await rssSample(a);
    const heldCost = diffCounters(countersBefore, await etcd.counters());
    const client = process.memoryUsage().rss;

    log(`fan-out: one registration through replica B wakes all ${HELD}`);
    // CPU over the fan-out (PUT sent -> last answer read): who was busy, replica A or this client.
    const cpuBefore = { a: readProcess(a.pid), client: process.cpuUsage(), machine: readMachine() };
    const fanOutWrite = await put('fan-out');
    const fanOut = await Promise.all(held);
    const fanOutCpu = {
      wallMs: performance.now() - fanOutWrite.sentAt,
      aMs: ((readProcess(a.pid)?.cpuSeconds ?? NaN) - (cpuBefore.a?.cpuSeconds ?? NaN)) * 1000,
      clientMs: sumCpu(process.cpuUsage(cpuBefore.client)) / 1000,
      machineMs: ((readMachine()?.cpuSeconds ?? NaN) - (cpuBefore.machine?.cpuSeconds ?? NaN)) * 1000,
    };
    const fanOutCost = diffCounters(countersBefore, await etcd.counters());
    const fanOutOk = fanOut.filter((r) => r.status === 200 && r.body.instances.some((i) => i.id === 'fan-out')).length;
    const fanOutLatencies = fanOut.map((r) => r.receivedAt - fanOutWrite.sentAt).sort((x, y) => x - y);
    const probe = values.probe ? await probeLine(logA) : undefined;

    log(`${ROUNDS} rounds: ${WATCHERS} watchers each, one registration through replica B`);
    const latencies: number[] = [];
    const writes: number[] = [];
    let roundsOk = 0;
    const roundsBefore = await etcd.counters();
    for (let round = 0; round < ROUNDS; round++) {
      const watchers = await hold(a, `${a.url}/v1/services/watched?index=${await current()}&wait=60s`, WATCHERS);
      await sleep(100);
      const write = await put(`round-${round}`);
      const answers = await Promise.all(watchers);
      if (answers.every((r) => r.status === 200 && r.body.instances.some((i) => i.id === `round-${round}`))) roundsOk++;
      for (const answer of answers) latencies.push(answer.receivedAt - write.sentAt);
      writes.push(write.tookMs);
    }
    const roundsCost = diffCounters(roundsBefore, await etcd.counters());
    latencies.sort((x, y) => x - y);
    writes.sort((x, y) => x - y);

    const m = machineInfo();
    const v = versions();
    const report = `# Blocking queries: memory, etcd cost and watcher latency

Produced by \`bench/blocking-queries.ts\` on ${started.toISOString()}:

\`\`\`bash
npm run build && node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/blocking-queries.ts --held ${HELD} --rounds ${ROUNDS} --watchers ${WATCHERS}${values['keep-alive'] ? ' --keep-alive' : ''}${values.probe ? ' --probe' : ''}${values['cpu-prof'] ? ` --cpu-prof ${values['cpu-prof']}` : ''}
\`\`\`

Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGb} GB, ${m.kernel}; load average at the start
${load.map((l) => l.toFixed(2)).join(' / ')} (the machine was shared with other work: latencies are
upper bounds, not a quiet-machine figure). Node ${v.node}, etcd ${v.etcd}, Redis ${v.redis}, commit ${v.commit}.
Setup: a private etcd (auth on) and Redis, two gateway replicas from \`dist/\` (\`ETCD_POOL_SIZE=2\`),
this client in a third process. One service, \`watched\`; registrations go to replica B, blocking
queries (\`GET /v1/services/watched?index=<X-Registry-Index>&wait=…\`) to replica A, one TCP
connection each.

## ${HELD} blocking queries held on one replica

| figure | value |
| --- | --- |
| replica A RSS before (median of 5 samples) | ${mib(rssBefore)} |
| replica A RSS with ${HELD} held queries, after 10 s | ${mib(rssHeld)} |
| **extra RSS** | **${mib(rssHeld - rssBefore)}** (${((rssHeld - rssBefore) / HELD / 1024).toFixed(1)} KiB per held query, sockets included) |
| etcd calls while they were opened and held (Range / all unary calls, etcd's counters) | **${heldCost.range}** / ${unaryCalls(heldCost)} |
| one registration through B, then all ${HELD} answered: answers with the new instance | ${fanOutOk} / ${HELD} |
| etcd Range calls from the first held query to the last answer | ${fanOutCost.range} |
| fan-out latency, PUT sent to B -> answer received from A (p50 / p99 / max) | ${ms(percentile(fanOutLatencies, 50))} / ${ms(percentile(fanOutLatencies, 99))} / ${ms(fanOutLatencies.at(-1)!)} |
| that PUT's own duration | ${ms(fanOutWrite.tookMs)} |
| first answer received (PUT sent -> first answer) | ${ms(fanOutLatencies[0])} |
| CPU from the PUT sent to the last answer read (${ms(fanOutCpu.wallMs)} wall, ${m.cores} cores): replica A / this client / whole machine | ${ms(fanOutCpu.aMs)} / ${ms(fanOutCpu.clientMs)} / ${ms(fanOutCpu.machineMs)} |
${probe ? probeRows(probe, fanOutWrite.sentAt, fanOutLatencies) : ''}
The fan-out latency is dominated by writing ${HELD} HTTP answers (and this client reading them) on
a shared 2-core machine: the last answer leaves the replica after all the others.

## Watcher latency: ${ROUNDS} changes, ${WATCHERS} held queries each

| figure | value |
| --- | --- |
| rounds in which every watcher saw the new instance | ${roundsOk} / ${ROUNDS} |
| latency, registration sent to B -> held answer received from A (p50 / p99 / max, ${latencies.length} answers) | **${ms(percentile(latencies, 50))} / ${ms(percentile(latencies, 99))}** / ${ms(latencies.at(-1)!)} |
| the registrations' own duration (p50 / p99) | ${ms(percentile(writes, 50))} / ${ms(percentile(writes, 99))} |
| etcd Range calls during the rounds | ${roundsCost.range} |

The latency includes the registration itself (LeaseGrant + Put through B's write queue), etcd's
watch delivery to A, A's read-model update and the answers. Lookups are answered from the directory
the watch keeps, so the Range calls during the rounds should be 0. This client's own RSS at ${HELD} open
requests was ${mib(client)} (not part of the figures above).
`;
    fs.mkdirSync(path.dirname(values.out!), { recursive: true });
    fs.writeFileSync(values.out!, report);
    log(`report written to ${values.out}`);
    process.stdout.write(report);
  } finally {
    agent.destroy();
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([etcd.dispose(), redis.dispose()]);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`[blocking-bench] failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
