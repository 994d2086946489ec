/**
 * The scale set (`--scale`): one replica against fleets of up to 100,000 pods (fleet-sim's `scale`
 * mode), the raw etcd3 yardstick for the registration rate, and issue 21's node-agent runs (100k on
 * one replica; 1M on three replicas and a 3-member etcd). Each runs on a fresh etcd.
 */
import { AgentSizes, BenchOptions } from '../cli';
import { BenchContext } from '../bench-context';
import { Scenario, scenario } from '../scenario';
import { pairedRounds } from '../../../apps/fleet-sim/src/stats';
import { RawRegisterResult, ScaleResult } from '../sim-results';

/** Planning guesses for a loaded 2-core machine (the issue measured 241-444/s and ~1,170/s). */
const GATEWAY_REGISTRATIONS_PER_SECOND = 250;
const RAW_REGISTRATIONS_PER_SECOND = 1000;
/** Start-up of a replica, the alive check and the fresh etcd. */
const OVERHEAD_SECONDS = 30;

export interface RegisterRateRun {
  /** The round of the median ratio. */
  raw: RawRegisterResult;
  gateway: ScaleResult;
  /** Every round in run order (raw, then gateway, each round on new key prefixes), their ratios and median (pairedRounds). */
  rounds?: Array<{ raw: RawRegisterResult; gateway: ScaleResult }>;
  ratios?: number[];
  ratio?: number;
}

/** Registrations per second of a gateway-register run (its one phase). */
export const gatewayRate = (r: ScaleResult) => r.phases[0]?.registrations?.okPerSecond ?? 0;

interface ScaleRunSpec {
  name: string;
  label: string;
  pods: number;
  storm?: number;
  ttlSeconds: number;
  intervalSeconds: number;
  holdSeconds: number;
  concurrency: number;
  stormConcurrency?: number;
  rssAt?: number[];
  /** Gateway replicas (1). */
  replicas?: number;
  /** Node agents heartbeating the pods (`POST /v1/heartbeats`); absent: each pod heartbeats itself. */
  agents?: number;
  silenceFraction?: number;
  /** The replicas' V8 heap limit in MB (the bench's default 768 when absent). */
  heapMb?: number;
}

/** `replicas` replicas on the current etcd, one fleet-sim `scale` run against them. */
async function runScaleSim(ctx: BenchContext, spec: ScaleRunSpec): Promise<ScaleResult> {
  const prefix = ctx.prefix(spec.name);
  const nodeArgs = spec.heapMb ? [`--max-old-space-size=${spec.heapMb}`] : [];
  const { gateways } = await ctx.startGateways(spec.name, prefix, spec.replicas ?? 1, undefined, nodeArgs);
  try {
    const args = ['scale', '--gateway', gateways.map((g) => g.url).join(','), '--pods', String(spec.pods), '--storm', String(spec.storm ?? 0)];
    args.push('--ttl', String(spec.ttlSeconds), '--interval', String(spec.intervalSeconds), '--hold', String(spec.holdSeconds));
    args.push('--register-concurrency', String(spec.concurrency), '--storm-concurrency', String(spec.stormConcurrency ?? 512));
    if (spec.rssAt?.length) args.push('--rss-at', spec.rssAt.join(','));
    if (spec.agents) args.push('--agents', String(spec.agents), '--silence', String(spec.silenceFraction ?? 0));
    args.push('--prefix', prefix, '--label', spec.label, '--sample-pid', ctx.pids(gateways));
    return await ctx.sim<ScaleResult>(args, spec.name);
  } finally {
    await ctx.stop(gateways);
  }
}

const registrationSeconds = (pods: number) => pods / GATEWAY_REGISTRATIONS_PER_SECOND;
const lapsed = (r: ScaleResult) => Object.values(r.cohorts).reduce((n, c) => n + c.beats404, 0);
const regrants = (r: ScaleResult) => r.phases.reduce((n, p) => n + (p.gateway?.regrants ?? 0), 0);
const describeScale = (r: ScaleResult) => `heartbeats answered 404: ${lapsed(r)}, re-grants: ${regrants(r)}`;

export function registerRateScenario(o: BenchOptions): Scenario {
  const s = o.scaleSizes.registerRate;
  return scenario<RegisterRateRun>({
    name: 'register-rate',
    section: 'scale',
    sets: ['scale'],
    title: `registration rate, ${s.pods} registrations at concurrency ${s.concurrency}: raw etcd3 and gateway alternating, ${s.rounds} round(s)`,
    steps: 2 * s.rounds,
    estimateSeconds: s.rounds * (s.pods / RAW_REGISTRATIONS_PER_SECOND + registrationSeconds(s.pods) + 10) + OVERHEAD_SECONDS,
    freshEtcd: true,
    async run(ctx) {
      const rounds: NonNullable<RegisterRateRun['rounds']> = [];
      for (let round = 1; round <= s.rounds; round++) {
        const of = s.rounds > 1 ? `, round ${round}/${s.rounds}` : '';
        ctx.header(`raw etcd3 LeaseGrant+Put, ${s.pods} at concurrency ${s.concurrency}${of}`);
        const rawArgs = ['raw-register', '--pods', String(s.pods), '--register-concurrency', String(s.concurrency), '--ttl', String(s.ttlSeconds)];
        rawArgs.push('--prefix', ctx.prefix(`raw-register-${round}`), '--label', `raw etcd3 register${of}`, '--sample-pid', ctx.pids([]));
        const raw = await ctx.sim<RawRegisterResult>(rawArgs, `raw-register-${round}`);
        ctx.header(`gateway registrations, ${s.pods} at concurrency ${s.concurrency}${of}`);
        const gateway = await runScaleSim(ctx, {
          name: `gateway-register-${round}`,
          label: `gateway register${of}`,
          pods: s.pods,
          ttlSeconds: s.ttlSeconds,
          intervalSeconds: 0,
          holdSeconds: 0,
          concurrency: s.concurrency,
        });
        rounds.push({ raw, gateway });
      }
      const paired = pairedRounds(
        rounds.map((r) => r.raw.registrationsPerSecond),
        rounds.map((r) => gatewayRate(r.gateway)),
      );
      return { ...rounds[paired.medianRound], rounds, ratios: paired.ratios, ratio: paired.ratio };
    },
    describe: (r) => `median ratio ${r.ratio ?? '?'} (rounds ${r.ratios?.join(', ') ?? '?'}); median round: raw ${r.raw.registrationsPerSecond}/s, gateway ${gatewayRate(r.gateway)}/s`,
  });
}

export function holdScenario(o: BenchOptions): Scenario {
  const s = o.scaleSizes.hold;
  return scenario<ScaleResult>({
    name: 'hold',
    section: 'scale',
    sets: ['scale'],
    title: `${s.pods} instances (TTL ${s.ttlSeconds}), heartbeating every ${s.intervalSeconds} s for ${s.holdSeconds} s`,
    steps: 1,
    estimateSeconds: registrationSeconds(s.pods) + s.holdSeconds + OVERHEAD_SECONDS,
    freshEtcd: true,
    run: (ctx) =>
      runScaleSim(ctx, { name: 'hold', label: `hold ${s.pods}`, pods: s.pods, ttlSeconds: s.ttlSeconds, intervalSeconds: s.intervalSeconds, holdSeconds: s.holdSeconds, concurrency: s.concurrency, rssAt: s.rssAt }),
    describe: describeScale,
  });
}

export function stormScenario(o: BenchOptions): Scenario {
  const s = o.scaleSizes.storm;
  return scenario<ScaleResult>({
    name: 'storm',
    section: 'scale',
    sets: ['scale'],
    title: `${s.held} pods heartbeating while ${s.storm} more register (concurrency ${s.stormConcurrency})`,
    steps: 1,
    estimateSeconds: registrationSeconds(s.held + s.storm) + s.holdSeconds + OVERHEAD_SECONDS,
    freshEtcd: true,
    run: (ctx) =>
      runScaleSim(ctx, {
        name: 'storm',
        label: `storm ${s.held}+${s.storm}`,
        pods: s.held,
        storm: s.storm,
        ttlSeconds: s.ttlSeconds,
        intervalSeconds: s.intervalSeconds,
        holdSeconds: s.holdSeconds,
        concurrency: s.concurrency,
        stormConcurrency: s.stormConcurrency,
      }),
    describe: describeScale,
  });
}

export function restartScenario(o: BenchOptions): Scenario {
  const s = o.scaleSizes.restart;
  return scenario<ScaleResult>({
    name: 'restart',
    section: 'scale',
    sets: ['scale'],
    title: `${s.pods} pods starting at once (TTL ${s.ttlSeconds}, heartbeat every ${s.intervalSeconds} s, ${s.holdSeconds} s)`,
    steps: 1,
    estimateSeconds: registrationSeconds(s.pods) + s.holdSeconds + OVERHEAD_SECONDS,
    freshEtcd: true,
    run: (ctx) =>
      runScaleSim(ctx, { name: 'restart', label: `restart ${s.pods}`, pods: s.pods, ttlSeconds: s.ttlSeconds, intervalSeconds: s.intervalSeconds, holdSeconds: s.holdSeconds, concurrency: s.pods }),
    describe: describeScale,
  });
}

/** Planning guess for registrations through node-agent runs (shared leases, Txns of up to 100 puts). */
const AGENT_RUN_REGISTRATIONS_PER_SECOND = 1500;

export const agentCount = (s: AgentSizes) => Math.ceil(s.pods / s.perAgent);

export type AgentScenarioName = 'agents' | 'agents-1m';

/**
 * Issue 21, item 8: pods register, then node agents heartbeat them (`POST /v1/heartbeats` every
 * interval, one batch per agent) for the hold; etcd's own cost in the hold is the figure. `agents-1m`
 * also silences a fraction of the pods as the hold starts and watches their keys leave etcd.
 */
function agentScenario(name: AgentScenarioName, s: AgentSizes): Scenario {
  const agents = agentCount(s);
  const where = `${s.replicas} replica${s.replicas > 1 ? 's' : ''}, ${s.etcdMembers}-member etcd`;
  const silence = s.silenceFraction > 0 ? `, ${s.silenceFraction * 100} % silenced as the hold starts` : '';
  return scenario<ScaleResult>({
    name,
    section: 'scale',
    sets: ['scale'],
    title: `${s.pods} instances (TTL ${s.ttlSeconds}) heartbeated by ${agents} node agents every ${s.intervalSeconds} s for ${s.holdSeconds} s, ${where}${silence}`,
    steps: 1,
    estimateSeconds: s.pods / AGENT_RUN_REGISTRATIONS_PER_SECOND + s.holdSeconds + OVERHEAD_SECONDS * s.replicas,
    freshEtcd: true,
    etcdMembers: s.etcdMembers,
    run: (ctx) =>
      runScaleSim(ctx, {
        name,
        label: `${name} ${s.pods}`,
        pods: s.pods,
        ttlSeconds: s.ttlSeconds,
        intervalSeconds: s.intervalSeconds,
        holdSeconds: s.holdSeconds,
        concurrency: s.concurrency,
        replicas: s.replicas,
        agents,
        silenceFraction: s.silenceFraction,
        heapMb: s.heapMb,
      }),
    describe: (r) => {
      const hold = r.phases.find((p) => p.name === 'hold');
      const perSecond = hold?.etcd && hold.seconds ? (hold.etcd.leaseKeepAliveMessages / hold.seconds).toFixed(2) : '?';
      const notFound = r.phases.reduce((n, p) => n + (p.refs?.not_found ?? 0), 0);
      const gone = r.silence ? `, silenced gone ${r.silence.gone}/${r.silence.silenced} (max ${r.silence.delaySeconds.max} s after the last heartbeat)` : '';
      return `KeepAlive ${perSecond}/s in the hold, ${r.leasesAtEnd ?? '?'} leases at the end, not_found ${notFound}${gone}`;
    },
  });
}

export const agentsScenario = (o: BenchOptions): Scenario => agentScenario('agents', o.scaleSizes.agents);
export const agents1mScenario = (o: BenchOptions): Scenario => agentScenario('agents-1m', o.scaleSizes.agents1m);
