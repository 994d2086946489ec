/**
 * `npm run bench`: the standard benchmark set on a private etcd (auth on) + Redis, written to
 * bench/results/<date>-<machine>.md with an SVG chart and the raw JSON beside it.
 *
 *   --pods 100,300,1000     fleet sizes (each run for before, after and gateway)
 *   --before-max N          largest fleet the *before* design runs with (300): it fails nearly every
 *                           beat from ~300 pods on, and a larger fleet leaves etcd minutes of bcrypt
 *                           backlog, beyond the time budget on 2 cores
 *   --duration S            heartbeat window of a fleet scenario (10)
 *   --skip a,b              leave out sections: fleet, replicas, burst, throughput
 *   --quick                 small and short: a smoke test of the whole pipeline (~1.5 min)
 *   --budget S              skip scenarios that would end later than S seconds after the start (540)
 *   --out DIR               where the report goes (bench/results)
 *   --name NAME             report file name without .md (default <date>-<cores>c-<cpu>)
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { EtcdCounters, EtcdServer, LOCAL_DIR, REPO_ROOT, RedisServer, diffCounters, fetchEtcdCounters, startEtcd, startRedis } from '@app/stack';
import { Panel, renderChart } from './lib/chart';
import { machineInfo, machineShortName, versions } from './lib/machine';
import { GatewayEnv, ServerProcess, runFleetSim, startBareServer, startGateway } from './lib/processes';
import { BenchData, BenchSettings, authCalls, renderReport } from './lib/report';
import { BurstResult, CannonResult, Design, FleetResult, FleetRun, ThroughputPair } from './lib/sim-results';

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Instances of the service the resolve throughput scenario looks up. */
const RESOLVE_INSTANCES = 10;

function instancesIn(resolveBody: string): number {
  try {
    return (JSON.parse(resolveBody) as { instances?: unknown[] }).instances?.length ?? -1;
  } catch {
    return -1;
  }
}

interface Plan {
  settings: BenchSettings;
  designs: Design[];
  replicas: { pods: number; durationSeconds: number; silentFraction: number; silentAfterSeconds: number };
  burst: { services: number; instances: number; requests: number; concurrency: number };
  throughputIds: number;
  skip: Set<string>;
  /** Scenarios that would end after this many seconds are skipped (and reported as skipped). */
  budgetSeconds: number;
  outDir: string;
  name?: string;
}

function plan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      pods: { type: 'string' },
      'before-max': { type: 'string' },
      duration: { type: 'string' },
      skip: { type: 'string' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      name: { type: 'string' },
      budget: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  const pods = (values.pods ?? (quick ? '20,60' : '100,300,1000')).split(',').map(Number);
  if (pods.some((p) => !Number.isInteger(p) || p < 1)) throw new Error(`--pods: positive integers, got ${values.pods}`);
  const durationSeconds = Number(values.duration ?? (quick ? 4 : 10));
  return {
    settings: {
      pods,
      beforeMaxPods: Number(values['before-max'] ?? (quick ? Math.max(...pods) : 300)),
      durationSeconds,
      intervalSeconds: 1,
      ttlSeconds: 5,
      callTimeoutSeconds: 5,
      services: 10,
      poolSize: 2,
      resolvers: 10,
      cannonSeconds: quick ? 3 : 8,
      cannonWarmupSeconds: quick ? 1 : 2,
      cannonRounds: quick ? 1 : 2,
      cannonConnections: 64,
    },
    designs: ['gateway', 'after', 'before'],
    replicas: quick ? { pods: 100, durationSeconds: 8, silentFraction: 0.2, silentAfterSeconds: 1 } : { pods: 1000, durationSeconds: 15, silentFraction: 0.2, silentAfterSeconds: 3 },
    burst: quick ? { services: 10, instances: 3, requests: 1000, concurrency: 200 } : { services: 20, instances: 5, requests: 5000, concurrency: 500 },
    throughputIds: 1000,
    skip: new Set((values.skip ?? '').split(',').filter(Boolean)),
    // npm run bench also builds the gateway (~10 s): 9 min here keeps the whole command under 10.
    budgetSeconds: Number(values.budget ?? 540),
    outDir: path.resolve(REPO_ROOT, values.out ?? 'bench/results'),
    name: values.name,
  };
}

/**
 * Rough length of a fleet scenario on an idle 2-core machine: the window, process start-up, and
 * for the direct-to-etcd designs the auth-bound part (~30 Authenticate/s: registration for *after*,
 * etcd working off the abandoned calls for *before*).
 */
function estimateSeconds(design: Design, pods: number, s: BenchSettings): number {
  const base = s.durationSeconds + 6;
  if (design === 'before') return base + 5 + pods / 12;
  if (design === 'after') return base + pods / 25 + (pods >= 300 ? s.ttlSeconds + 1 : 0);
  return base + 3;
}

/** The command line as the user typed it (through npm or not), for the report. */
function commandLine(argv: string[]): string {
  const extra = argv.length ? ` -- ${argv.join(' ')}` : '';
  return process.env.npm_lifecycle_event === 'bench' ? `npm run bench${extra}` : `node ${path.relative(REPO_ROOT, process.argv[1])} ${argv.join(' ')}`.trim();
}

class Bench {
  private readonly runId = randomBytes(3).toString('hex');
  private readonly workDir: string;
  private readonly running = new Set<ServerProcess>();
  private step = 0;

  constructor(
    private readonly etcd: EtcdServer,
    private readonly redis: RedisServer,
    private readonly p: Plan,
    private readonly totalSteps: number,
  ) {
    this.workDir = path.join(LOCAL_DIR, 'bench', this.runId);
    fs.mkdirSync(this.workDir, { recursive: true });
  }

  private header(title: string): void {
    process.stderr.write(`\n[bench] === ${++this.step}/${this.totalSteps}: ${title} ===\n`);
  }

  /** etcd starved by bcrypt answers /metrics slowly: generous timeout, a few tries. */
  private async counters(): Promise<EtcdCounters> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchEtcdCounters(this.etcd.metricsUrl, 20_000);
      } catch (err) {
        if (attempt >= 4) throw err;
        await sleep(1000);
      }
    }
  }

  /**
   * Each scenario starts on an idle etcd: no Authenticate left over from the previous one (etcd
   * finishes every bcrypt check it started, even for clients long gone). Returns a note if it gave up.
   */
  async waitForIdleEtcd(maxMs = 90_000): Promise<string | undefined> {
    const started = Date.now();
    for (;;) {
      const c = await fetchEtcdCounters(this.etcd.metricsUrl, 5_000).catch(() => undefined);
      if (c && c.authenticateStarted === c.authenticate) return undefined;
      if (Date.now() - started > maxMs) return `etcd was still busy with earlier Authenticate calls when this scenario started (waited ${Math.round(maxMs / 1000)} s)`;
      await sleep(500);
    }
  }

  private prefix(name: string): string {
    return `/registry/bench-${this.runId}-${name}/`;
  }

  private simEnv(): Record<string, string> {
    return {
      ETCD_ENDPOINTS: this.etcd.endpoint,
      ETCD_USERNAME: this.etcd.gatewayUser,
      ETCD_PASSWORD: this.etcd.gatewayPassword,
      ETCD_METRICS_URL: this.etcd.metricsUrl,
    };
  }

  private gatewayEnv(prefix: string): GatewayEnv {
    return {
      ETCD_ENDPOINTS: this.etcd.endpoint,
      ETCD_USERNAME: this.etcd.gatewayUser,
      ETCD_PASSWORD: this.etcd.gatewayPassword,
      ETCD_PREFIX: prefix,
      ETCD_POOL_SIZE: String(this.p.settings.poolSize),
      REDIS_URL: this.redis.url,
    };
  }

  /** Starts `count` replicas on one prefix; returns them and what their start-up cost etcd. */
  private async startGateways(name: string, prefix: string, count: number): Promise<{ gateways: ServerProcess[]; startup: EtcdCounters }> {
    const c0 = await this.counters();
    const gateways = await Promise.all(
      Array.from({ length: count }, (_, i) => startGateway(this.gatewayEnv(prefix), path.join(this.workDir, `gateway-${name}-${i}.log`))),
    );
    gateways.forEach((g) => this.running.add(g));
    const c1 = await this.counters();
    return { gateways, startup: diffCounters(c0, c1) };
  }

  private async stopGateways(gateways: ServerProcess[]): Promise<void> {
    await Promise.all(gateways.map((g) => g.stop()));
    gateways.forEach((g) => this.running.delete(g));
  }

  private pids(gateways: ServerProcess[], extra: Record<string, number | undefined> = {}): string {
    const named: Record<string, number | undefined> = { etcd: this.etcd.pid, redis: gateways.length ? this.redis.pid : undefined, ...extra };
    gateways.forEach((g, i) => (named[gateways.length === 1 ? 'gateway' : `gateway-${i + 1}`] = g.pid));
    return Object.entries(named)
      .filter(([, pid]) => pid)
      .map(([n, pid]) => `${n}=${pid}`)
      .join(',');
  }

  async fleet(design: Design, pods: number, replicaCount = 1, extra: string[] = [], title?: string): Promise<FleetRun> {
    const s = this.p.settings;
    const label = title ?? `${design}, ${pods} pods`;
    this.header(label);
    const busy = await this.waitForIdleEtcd();
    const started = Date.now();
    const name = `${design}-${pods}-${replicaCount}`;
    const prefix = this.prefix(name);
    let gateways: ServerProcess[] = [];
    let startup: EtcdCounters | undefined;
    if (design === 'gateway') ({ gateways, startup } = await this.startGateways(name, prefix, replicaCount));
    try {
      const args = [
        design,
        ...['--pods', String(pods), '--services', String(s.services), '--interval', String(s.intervalSeconds), '--duration', String(s.durationSeconds)],
        ...['--ttl', String(s.ttlSeconds), '--call-timeout', String(s.callTimeoutSeconds), '--prefix', prefix, '--label', label],
        ...['--sample-pid', this.pids(gateways)],
        ...(design === 'gateway' ? ['--gateway', gateways.map((g) => g.url).join(','), '--resolvers', String(s.resolvers)] : []),
        ...extra,
      ];
      const result = await runFleetSim<FleetResult>(args, this.simEnv(), path.join(this.workDir, `${name}.json`));
      if (busy) result.notes.push(busy);
      const run: FleetRun = { result, gatewayStartup: startup, replicas: replicaCount, elapsedSeconds: Math.round((Date.now() - started) / 1000) };
      log(`${label}: heartbeat success ${(result.heartbeats.successRate * 100).toFixed(1)} %, etcd Authenticate ${authCalls(run)}`);
      return run;
    } finally {
      await this.stopGateways(gateways);
      // The *after* pods' leases are still alive when their clients close: let them expire now
      // rather than as background work in etcd during the next scenario.
      if (design === 'after' && pods >= 300) await sleep((s.ttlSeconds + 1) * 1000);
    }
  }

  async burst(): Promise<{ result: BurstResult; gatewayStartup: EtcdCounters }> {
    const b = this.p.burst;
    this.header(`cold-cache burst, ${b.requests} lookups of ${b.services} services over 2 replicas`);
    await this.waitForIdleEtcd();
    const { gateways, startup } = await this.startGateways('burst', this.prefix('burst'), 2);
    try {
      const args = ['burst', '--gateway', gateways.map((g) => g.url).join(','), '--services', String(b.services), '--instances', String(b.instances)];
      args.push('--requests', String(b.requests), '--concurrency', String(b.concurrency), '--sample-pid', this.pids(gateways), '--label', 'cold-cache burst');
      const result = await runFleetSim<BurstResult>(args, this.simEnv(), path.join(this.workDir, 'burst.json'));
      return { result, gatewayStartup: startup };
    } finally {
      await this.stopGateways(gateways);
    }
  }

  /** Registers a few instances and captures the gateway's resolve answer (the bare server replays it). */
  private async captureResolveBody(gatewayUrl: string, service: string): Promise<{ file?: string; skipped?: string }> {
    for (let i = 0; i < RESOLVE_INSTANCES; i++) {
      const res = await fetch(`${gatewayUrl}/v1/services/${service}/instances/cat-${i}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ address: `10.9.0.${i + 1}`, port: 8080, ttl: 30, metadata: { version: '1.0.0' }, tags: ['sim'], zone: 'zone-a' }),
      });
      if (res.status !== 200 && res.status !== 201) return { skipped: `registering ${service} instances answered ${res.status}` };
    }
    const text = await (await fetch(`${gatewayUrl}/v1/services/${service}`)).text();
    if (instancesIn(text) !== RESOLVE_INSTANCES) return { skipped: `GET /v1/services/{service} did not list the ${RESOLVE_INSTANCES} instances: the resolve endpoint is missing or broken in this build` };
    const file = path.join(this.workDir, 'resolve-body.json');
    fs.writeFileSync(file, text);
    return { file };
  }

  /** The resolve instances have no pod behind them: heartbeat them, or the gateway rightly lets them expire. */
  private keepAlive(gatewayUrl: string, service: string): NodeJS.Timeout {
    const beat = () => {
      for (let i = 0; i < RESOLVE_INSTANCES; i++) void fetch(`${gatewayUrl}/v1/services/${service}/instances/cat-${i}/heartbeat`, { method: 'PUT' }).catch(() => undefined);
    };
    return setInterval(beat, 3000);
  }

  async throughput(): Promise<ThroughputPair[]> {
    const s = this.p.settings;
    await this.waitForIdleEtcd();
    const { gateways } = await this.startGateways('throughput', this.prefix('throughput'), 1);
    const gateway = gateways[0];
    let bare: ServerProcess | undefined;
    const keepAlive = this.keepAlive(gateway.url, 'catalog');
    try {
      const captured = await this.captureResolveBody(gateway.url, 'catalog');
      bare = await startBareServer(captured.file, path.join(this.workDir, 'bare-server.log'));
      this.running.add(bare);
      const cannon = (server: ServerProcess, who: 'bare' | 'gateway', scenario: 'heartbeat' | 'resolve', round: number, extra: string[]) => {
        const label = `${scenario} throughput, ${who}, round ${round}/${s.cannonRounds}`;
        this.header(label);
        const args = ['cannon', '--url', server.url, '--scenario', scenario, '--connections', String(s.cannonConnections)];
        args.push('--duration', String(s.cannonSeconds), '--warmup', String(s.cannonWarmupSeconds), '--label', label);
        args.push('--sample-pid', `server=${server.pid},etcd=${this.etcd.pid}` + (who === 'gateway' ? `,redis=${this.redis.pid}` : ''), ...extra);
        return runFleetSim<CannonResult>(args, this.simEnv(), path.join(this.workDir, `cannon-${scenario}-${who}-${round}.json`));
      };
      // Bare and gateway alternate (B G B G ...), each server's best round counts: a burst of
      // unrelated load on the machine then costs one round, not the comparison.
      const compare = async (scenario: 'heartbeat' | 'resolve', bareArgs: string[], gatewayArgs: (round: number) => string[]): Promise<ThroughputPair> => {
        const pair: ThroughputPair = { scenario, rounds: { bare: [], gateway: [] } };
        for (let round = 1; round <= s.cannonRounds; round++) {
          pair.rounds!.bare.push(await cannon(bare!, 'bare', scenario, round, bareArgs));
          pair.rounds!.gateway.push(await cannon(gateway, 'gateway', scenario, round, gatewayArgs(round)));
        }
        const best = (rs: CannonResult[]) => rs.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
        pair.bare = best(pair.rounds!.bare);
        pair.gateway = best(pair.rounds!.gateway);
        return pair;
      };
      const hbArgs = ['--service', 'hb', '--ids', String(this.p.throughputIds)];
      const heartbeat = await compare('heartbeat', hbArgs, (round) => [...hbArgs, ...(round === 1 ? ['--preregister', '--ttl', '30'] : [])]);
      let resolve: ThroughputPair = { scenario: 'resolve' };
      if (captured.skipped) {
        resolve.skipped = captured.skipped;
      } else {
        resolve = await compare('resolve', ['--service', 'catalog'], () => ['--service', 'catalog']);
        resolve.instancesInAnswer = {
          bare: instancesIn(await (await fetch(`${bare.url}/v1/services/catalog`)).text()),
          gateway: instancesIn(await (await fetch(`${gateway.url}/v1/services/catalog`)).text()),
        };
      }
      return [heartbeat, resolve];
    } finally {
      clearInterval(keepAlive);
      if (bare) {
        await bare.stop();
        this.running.delete(bare);
      }
      await this.stopGateways(gateways);
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map((p) => p.stop()));
    this.running.clear();
  }

  cleanUpWorkDir(): void {
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

function chart(d: BenchData): string {
  const colors: Record<Design, string> = { before: '#d62728', after: '#ff7f0e', gateway: '#2ca02c' };
  const names: Record<Design, string> = { before: 'before: fresh client per beat', after: 'after: client per pod', gateway: 'gateway (pool of 2)' };
  const designs: Design[] = ['before', 'after', 'gateway'];
  const dashes: Record<Design, string | undefined> = { before: undefined, after: '7 5', gateway: undefined };
  const series = (y: (r: FleetRun) => number) =>
    designs.map((des) => ({
      name: names[des],
      color: colors[des],
      dash: dashes[des],
      points: d.fleet.filter((f) => f.result.design === des).map((f) => ({ x: f.result.params.pods, y: y(f) })),
    }));
  const panels: Panel[] = [
    { title: 'etcd Authenticate calls (whole scenario)', yLabel: 'Authenticate calls (log scale)', scale: 'log', series: series(authCalls) },
    { title: 'Heartbeat success', yLabel: 'ticks confirmed / scheduled (%)', scale: 'percent', series: series((f) => f.result.heartbeats.successRate * 100) },
  ];
  const s = d.settings;
  const subtitle = `heartbeat every ${s.intervalSeconds} s for ${s.durationSeconds} s, TTL ${s.ttlSeconds} s, etcd ${d.versions.etcd} with auth, ${d.machine.cores} cores (${d.machine.cpuModel}); ${d.startedAt.toISOString().slice(0, 10)}`;
  return renderChart('etcd Authenticate calls and heartbeat success vs. pods', subtitle, s.pods, panels);
}

/** Busy CPU of the whole machine over `ms` (100 = one core), from /proc/stat. */
async function machineBusyPercent(ms: number): Promise<number> {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + f[4];
    return { busy: f.reduce((a, b) => a + b, 0) - idle - (f[8] ?? 0) - (f[9] ?? 0), at: Date.now() };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  return Math.round(((b.busy - a.busy) / 100 / ((b.at - a.at) / 1000)) * 100);
}

async function main(): Promise<void> {
  // etcd and Redis are unref'd children (@app/stack): while waiting for a slow etcd to exit, nothing
  // else may keep the event loop alive, and Node would quit silently before writing the report.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    await runBench();
  } finally {
    clearInterval(keepAlive);
  }
}

async function runBench(): Promise<void> {
  const argv = process.argv.slice(2);
  const p = plan(argv);
  const startedAt = new Date();
  const machine = machineInfo();
  const name = p.name ?? `${startedAt.toISOString().slice(0, 10)}-${machineShortName(machine)}`;
  const steps =
    (p.skip.has('fleet') ? 0 : p.settings.pods.flatMap((n) => p.designs.filter((d) => d !== 'before' || n <= p.settings.beforeMaxPods)).length) + (p.skip.has('replicas') ? 0 : 1) + (p.skip.has('burst') ? 0 : 1) + (p.skip.has('throughput') ? 0 : 4 * p.settings.cannonRounds);
  log(`${machine.cores} cores, ${machine.cpuModel}; report: ${path.relative(REPO_ROOT, path.join(p.outDir, name + '.md'))}`);
  const idleCheckCpuPercent = await machineBusyPercent(3000);
  if (idleCheckCpuPercent > 30) log(`warning: the machine is already ${idleCheckCpuPercent} % busy (100 % = one core): results will be pessimistic`);

  const runDir = path.join(LOCAL_DIR, 'bench', `stack-${randomBytes(3).toString('hex')}`);
  const [etcd, redis] = await Promise.all([startEtcd({ dataDir: path.join(runDir, 'etcd') }), startRedis({ dir: path.join(runDir, 'redis') })]);
  log(`etcd ${etcd.endpoint} (metrics ${etcd.metricsUrl}), redis ${redis.url}`);
  const bench = new Bench(etcd, redis, p, steps);
  const data: BenchData = {
    idleCheckCpuPercent,
    startedAt,
    finishedAt: startedAt,
    command: commandLine(argv),
    machine,
    versions: versions(),
    settings: p.settings,
    fleet: [],
    throughput: [],
    chartFile: `${name}.svg`,
    rawFile: `${name}.json`,
    failures: [],
    skipped: [],
  };
  // A failed scenario is reported, not fatal: the rest of the set still runs.
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      log(`${what} failed: ${(err as Error).message}`);
      data.failures.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
      await bench.stopAll();
      return undefined;
    }
  };
  // Order: the cheap, etcd-independent measurements first, the auth-bound fleets last, largest
  // last, so that on a slow or busy machine the time budget skips the most expensive scenarios
  // (reported as skipped) rather than the whole tail of the set.
  const deadline = startedAt.getTime() + p.budgetSeconds * 1000;
  const fits = (what: string, estimateSeconds: number): boolean => {
    if (Date.now() + estimateSeconds * 1000 <= deadline) return true;
    log(`skipping ${what}: it would not finish within the ${p.budgetSeconds} s budget`);
    data.skipped.push(what);
    return false;
  };
  try {
    if (!p.skip.has('throughput') && fits('throughput', 90)) data.throughput = (await attempt('throughput', () => bench.throughput())) ?? [];
    if (!p.skip.has('burst') && fits('cold-cache burst', 20)) data.burst = await attempt('cold-cache burst', () => bench.burst());
    if (!p.skip.has('replicas')) {
      const r = p.replicas;
      const extra = ['--silent', String(r.silentFraction), '--silent-after', String(r.silentAfterSeconds), '--duration', String(r.durationSeconds), '--spread', 'round-robin'];
      const title = `gateway, ${r.pods} pods, 2 replicas round-robin, ${r.silentFraction * 100} % go silent`;
      if (fits(title, r.durationSeconds + 15)) data.replicas = await attempt('two replicas', () => bench.fleet('gateway', r.pods, 2, extra, title));
    }
    if (!p.skip.has('fleet')) {
      for (const pods of p.settings.pods) {
        for (const design of p.designs) {
          if (design === 'before' && pods > p.settings.beforeMaxPods) continue;
          if (!fits(`${design}, ${pods} pods`, estimateSeconds(design, pods, p.settings))) continue;
          const run = await attempt(`${design}, ${pods} pods`, () => bench.fleet(design, pods));
          if (run) data.fleet.push(run);
        }
      }
    }
  } finally {
    await bench.stopAll();
    await Promise.all([etcd.dispose(), redis.dispose()]);
    fs.rmSync(runDir, { recursive: true, force: true });
    bench.cleanUpWorkDir();
  }
  data.finishedAt = new Date();

  fs.mkdirSync(p.outDir, { recursive: true });
  const mdFile = path.join(p.outDir, `${name}.md`);
  fs.writeFileSync(path.join(p.outDir, data.chartFile), chart(data));
  fs.writeFileSync(path.join(p.outDir, data.rawFile), JSON.stringify({ ...data, versions: data.versions, machine: { ...machine, hostname: undefined } }, null, 2) + '\n');
  fs.writeFileSync(mdFile, renderReport(data));
  const seconds = Math.round((data.finishedAt.getTime() - startedAt.getTime()) / 1000);
  log(`done in ${Math.floor(seconds / 60)} min ${seconds % 60} s: ${path.relative(REPO_ROOT, mdFile)}`);
  if (data.failures.length) process.exitCode = 1;
}

main().catch((err: Error) => {
  log(err.stack ?? err.message);
  process.exit(1); // @app/stack's exit hook kills etcd, Redis and every tracked child
});
