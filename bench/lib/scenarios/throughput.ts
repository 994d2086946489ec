/**
 * Throughput of the hot routes against a bare Fastify handler of the same shape, same run
 * (autocannon in fleet-sim): heartbeat, resolve, and the batch heartbeat route when the gateway
 * build has one (its OpenAPI document says so).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { retryDelayMs } from '../../../apps/fleet-sim/src/fleets/gateway-driver';
import { pairedRounds } from '../../../apps/fleet-sim/src/stats';
import { BenchOptions } from '../cli';
import { BenchContext } from '../bench-context';
import { ServerProcess } from '../processes';
import { Scenario, scenario } from '../scenario';
import { CannonResult, ThroughputPair } from '../sim-results';

/** Instances of the service the resolve throughput scenario looks up. */
const RESOLVE_INSTANCES = 10;
const BATCH_ROUTE = '/v1/heartbeats';

export interface ThroughputRun {
  pairs: ThroughputPair[];
  /** `POST /v1/heartbeats`, bare vs gateway, when this build has the route. */
  batch?: BatchPair;
  /** Why `POST /v1/heartbeats` was not measured (absent from this build), if it was not. */
  batchSkipped?: string;
}

/** One autocannon round of `POST /v1/heartbeats`, each request carrying `refsPerRequest` instance refs. */
export interface BatchRound {
  requestsPerSecond: number;
  /** requestsPerSecond x refsPerRequest: the figure (target >= 200,000 on one replica). */
  instanceHeartbeatsPerSecond: number;
  /** Answers other than 200, and connection errors/timeouts. */
  non200: number;
  errors: number;
  latency: { p50: number; p99: number };
}

export interface BatchPair {
  refsPerRequest: number;
  connections: number;
  rounds: { bare: BatchRound[]; gateway: BatchRound[] };
  /** gateway / bare of each round, and their median (pairedRounds). */
  ratios?: number[];
  ratio?: number;
  /** The round whose ratio is the median. */
  bare: BatchRound;
  gateway: BatchRound;
  /** Outcomes the gateway gave the same body once after its rounds (all `accepted` when every ref is live). */
  gatewayOutcomes: Record<string, number>;
}

/** Batch requests in flight: each carries 1000 refs (~45 KB), a few connections keep both servers busy. */
const BATCH_CONNECTIONS = 16;

function instancesIn(resolveBody: string): number {
  try {
    return (JSON.parse(resolveBody) as { instances?: unknown[] }).instances?.length ?? -1;
  } catch {
    return -1;
  }
}

/** PUT of one instance, tried again after Retry-After while the gateway sheds registrations (503/429). */
async function register(url: string, body: unknown): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 503 && res.status !== 429) return res.status;
    await new Promise((r) => setTimeout(r, retryDelayMs(Number(res.headers.get('retry-after') ?? NaN) || undefined, attempt)));
  }
  return 503;
}

/** Registers a few instances and captures the gateway's resolve answer (the bare server replays it). */
async function captureResolveBody(ctx: BenchContext, gatewayUrl: string, service: string): Promise<{ file?: string; skipped?: string }> {
  for (let i = 0; i < RESOLVE_INSTANCES; i++) {
    const body = { address: `10.9.0.${i + 1}`, port: 8080, ttl: 30, metadata: { version: '1.0.0' }, tags: ['sim'], zone: 'zone-a' };
    const status = await register(`${gatewayUrl}/v1/services/${service}/instances/cat-${i}`, body);
    if (status !== 200 && status !== 201) return { skipped: `registering ${service} instances answered ${status}` };
  }
  const text = await (await fetch(`${gatewayUrl}/v1/services/${service}`)).text();
  if (instancesIn(text) !== RESOLVE_INSTANCES) return { skipped: `GET /v1/services/{service} did not list the ${RESOLVE_INSTANCES} instances: the resolve endpoint is missing or broken in this build` };
  const file = path.join(ctx.workDir, 'resolve-body.json');
  fs.writeFileSync(file, text);
  return { file };
}

/** The resolve instances have no pod behind them: heartbeat them, or the gateway rightly lets them expire. */
function keepAlive(gatewayUrl: string, service: string): NodeJS.Timeout {
  const beat = () => {
    for (let i = 0; i < RESOLVE_INSTANCES; i++) void fetch(`${gatewayUrl}/v1/services/${service}/instances/cat-${i}/heartbeat`, { method: 'PUT' }).catch(() => undefined);
  };
  return setInterval(beat, 3000);
}

async function batchRouteMissing(gatewayUrl: string): Promise<string | undefined> {
  try {
    const doc = (await (await fetch(`${gatewayUrl}/openapi.json`)).json()) as { paths?: Record<string, Record<string, unknown>> };
    if (doc.paths?.[BATCH_ROUTE]?.post) return undefined;
    return `not in this build (GET /openapi.json lists no POST ${BATCH_ROUTE})`;
  } catch (err) {
    return `GET /openapi.json failed: ${(err as Error).message}`;
  }
}

/** The heartbeat scenario's instances (fleet-sim's pod-0..ids-1 of `service`), up to the batch limit, as one body. */
function batchBody(service: string, ids: number): string {
  const instances = Array.from({ length: Math.min(ids, 1000) }, (_, i) => ({ service, id: `pod-${i}` }));
  return JSON.stringify({ instances });
}

/**
 * autocannon in the bench process rather than fleet-sim's cannon (which knows heartbeat and resolve
 * only): one prebuilt request, so the load generator does not rebuild a 45 KB body per send.
 */
function batchRound(url: string, body: string, refs: number, seconds: number, warmupSeconds: number): Promise<BatchRound> {
  const run = (duration: number) =>
    new Promise<autocannon.Result>((resolve, reject) => {
      autocannon(
        { url, connections: BATCH_CONNECTIONS, duration, timeout: 10, requests: [{ method: 'POST', path: BATCH_ROUTE, headers: { 'content-type': 'application/json' }, body }] },
        (err, result: autocannon.Result) => (err ? reject(err) : resolve(result)),
      );
    });
  return (async () => {
    if (warmupSeconds > 0) await run(warmupSeconds);
    const r = await run(seconds);
    const ok = r.statusCodeStats?.['200']?.count ?? 0;
    const total = Object.values(r.statusCodeStats ?? {}).reduce((a, c) => a + (c.count ?? 0), 0);
    const requestsPerSecond = Math.round(ok / r.duration);
    return { requestsPerSecond, instanceHeartbeatsPerSecond: requestsPerSecond * refs, non200: total - ok, errors: r.errors + r.timeouts, latency: { p50: r.latency.p50, p99: r.latency.p99 } };
  })();
}

/** The per-round ratios, their median, and the round that has it (shown as the pair's figures). */
function medianOf<R extends { requestsPerSecond: number }>(rounds: { bare: R[]; gateway: R[] }) {
  const paired = pairedRounds(
    rounds.bare.map((r) => r.requestsPerSecond),
    rounds.gateway.map((r) => r.requestsPerSecond),
  );
  return { ratios: paired.ratios, ratio: paired.ratio, bare: rounds.bare[paired.medianRound], gateway: rounds.gateway[paired.medianRound] };
}

async function batchOutcomes(url: string, body: string): Promise<Record<string, number>> {
  const res = await fetch(url + BATCH_ROUTE, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const counts: Record<string, number> = {};
  if (res.status !== 200) return { [`status ${res.status}`]: 1 };
  for (const { result } of ((await res.json()) as { results: Array<{ result: string }> }).results) counts[result] = (counts[result] ?? 0) + 1;
  return counts;
}

async function runThroughput(ctx: BenchContext, o: BenchOptions): Promise<ThroughputRun> {
  const s = o.settings;
  await ctx.waitForIdleEtcd();
  const { gateways } = await ctx.startGateways('throughput', ctx.prefix('throughput'), 1);
  const gateway = gateways[0];
  let bare: ServerProcess | undefined;
  const timer = keepAlive(gateway.url, 'catalog');
  try {
    const captured = await captureResolveBody(ctx, gateway.url, 'catalog');
    const batchSkipped = await batchRouteMissing(gateway.url);
    const bareServer = await ctx.startBare(captured.file);
    bare = bareServer;
    const cannon = (server: ServerProcess, who: 'bare' | 'gateway', scenarioName: 'heartbeat' | 'resolve', round: number, extra: string[]) => {
      const label = `${scenarioName} throughput, ${who}, round ${round}/${s.cannonRounds}`;
      ctx.header(label);
      const args = ['cannon', '--url', server.url, '--scenario', scenarioName, '--connections', String(s.cannonConnections)];
      args.push('--duration', String(s.cannonSeconds), '--warmup', String(s.cannonWarmupSeconds), '--label', label);
      args.push('--sample-pid', `server=${server.pid},etcd=${ctx.etcd.pid}` + (who === 'gateway' ? Object.entries(ctx.redis.pids).map(([name, pid]) => `,${name}=${pid}`).join('') : ''), ...extra);
      return ctx.sim<CannonResult>(args, `cannon-${scenarioName}-${who}-${round}`);
    };
    // Bare and gateway alternate (B G B G ...); the median of the per-round ratios counts
    // (pairedRounds): a burst of unrelated load on the machine then costs one pair, not the comparison.
    const compare = async (scenarioName: 'heartbeat' | 'resolve', bareArgs: string[], gatewayArgs: (round: number) => string[]): Promise<ThroughputPair> => {
      const rounds = { bare: [] as CannonResult[], gateway: [] as CannonResult[] };
      for (let round = 1; round <= s.cannonRounds; round++) {
        rounds.bare.push(await cannon(bareServer, 'bare', scenarioName, round, bareArgs));
        rounds.gateway.push(await cannon(gateway, 'gateway', scenarioName, round, gatewayArgs(round)));
      }
      return { scenario: scenarioName, rounds, ...medianOf(rounds) };
    };
    const hbArgs = ['--service', 'hb', '--ids', String(o.throughputIds)];
    const heartbeat = await compare('heartbeat', hbArgs, (round) => [...hbArgs, ...(round === 1 ? ['--preregister', '--ttl', '30'] : [])]);
    // Right after the heartbeat pair, while its pre-registered instances are still live (TTL 30).
    let batch: BatchPair | undefined;
    if (!batchSkipped) {
      const body = batchBody('hb', o.throughputIds);
      const refs = Math.min(o.throughputIds, 1000);
      const rounds: BatchPair['rounds'] = { bare: [], gateway: [] };
      for (let round = 1; round <= s.cannonRounds; round++) {
        ctx.header(`batch heartbeat throughput, bare, round ${round}/${s.cannonRounds}`);
        rounds.bare.push(await batchRound(bareServer.url, body, refs, s.cannonSeconds, s.cannonWarmupSeconds));
        ctx.header(`batch heartbeat throughput, gateway, round ${round}/${s.cannonRounds}`);
        rounds.gateway.push(await batchRound(gateway.url, body, refs, s.cannonSeconds, s.cannonWarmupSeconds));
      }
      batch = { refsPerRequest: refs, connections: BATCH_CONNECTIONS, rounds, ...medianOf(rounds), gatewayOutcomes: await batchOutcomes(gateway.url, body) };
    }
    let resolve: ThroughputPair = { scenario: 'resolve' };
    if (captured.skipped) {
      resolve.skipped = captured.skipped;
    } else {
      resolve = await compare('resolve', ['--service', 'catalog'], () => ['--service', 'catalog']);
      resolve.instancesInAnswer = {
        bare: instancesIn(await (await fetch(`${bareServer.url}/v1/services/catalog`)).text()),
        gateway: instancesIn(await (await fetch(`${gateway.url}/v1/services/catalog`)).text()),
      };
    }
    return { pairs: [heartbeat, resolve], batch, batchSkipped };
  } finally {
    clearInterval(timer);
    await ctx.stop([bare, ...gateways]);
  }
}

const ratio = (p: ThroughputPair) => (p.bare && p.gateway ? (p.gateway.requestsPerSecond / p.bare.requestsPerSecond).toFixed(2) : 'n/a');

export function throughputScenario(o: BenchOptions): Scenario {
  return scenario<ThroughputRun>({
    name: 'throughput',
    section: 'throughput',
    sets: ['default', 'scale'],
    title: 'throughput vs bare Fastify',
    steps: 6 * o.settings.cannonRounds,
    estimateSeconds: 15 + 6 * o.settings.cannonRounds * (o.settings.cannonSeconds + o.settings.cannonWarmupSeconds + 4),
    run: (ctx) => runThroughput(ctx, o),
    describe: (r) =>
      [
        ...r.pairs.map((p) => `${p.scenario} gateway/bare ${ratio(p)}`),
        r.batch
          ? `batch ${r.batch.gateway.instanceHeartbeatsPerSecond} vs bare ${r.batch.bare.instanceHeartbeatsPerSecond} instance heartbeats/s = ${(r.batch.gateway.requestsPerSecond / r.batch.bare.requestsPerSecond).toFixed(2)} (outcomes ${JSON.stringify(r.batch.gatewayOutcomes)})`
          : `batch: ${r.batchSkipped}`,
      ].join(', '),
  });
}
