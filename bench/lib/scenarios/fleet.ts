/** Fleet scenarios: the same pods against each design (before, after, gateway), and two replicas. */
import { BenchOptions } from '../cli';
import { BenchContext } from '../bench-context';
import { authCalls } from '../report';
import { Scenario, scenario } from '../scenario';
import { Design, FleetResult, FleetRun } from '../sim-results';
import { ServerProcess } from '../processes';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Rough length on an idle 2-core machine: the window, process start-up, and for the direct-to-etcd
 * designs the auth-bound part (~30 Authenticate/s: registration for *after*, etcd working off the
 * abandoned calls for *before*).
 */
function estimateSeconds(design: Design, pods: number, o: BenchOptions): number {
  const s = o.settings;
  const base = s.durationSeconds + 6;
  if (design === 'before') return base + 5 + pods / 12;
  if (design === 'after') return base + pods / 25 + (pods >= 300 ? s.ttlSeconds + 1 : 0);
  return base + 3;
}

async function runFleet(ctx: BenchContext, o: BenchOptions, design: Design, pods: number, replicaCount: number, extra: string[], label: string): Promise<FleetRun> {
  const s = o.settings;
  const busy = await ctx.waitForIdleEtcd();
  const started = Date.now();
  const name = `${design}-${pods}-${replicaCount}`;
  const prefix = ctx.prefix(name);
  let gateways: ServerProcess[] = [];
  let startup;
  if (design === 'gateway') ({ gateways, startup } = await ctx.startGateways(name, prefix, replicaCount));
  try {
    const args = [
      design,
      ...['--pods', String(pods), '--services', String(s.services), '--interval', String(s.intervalSeconds), '--duration', String(s.durationSeconds)],
      ...['--ttl', String(s.ttlSeconds), '--call-timeout', String(s.callTimeoutSeconds), '--prefix', prefix, '--label', label],
      ...['--sample-pid', ctx.pids(gateways)],
      ...(design === 'gateway' ? ['--gateway', gateways.map((g) => g.url).join(','), '--resolvers', String(s.resolvers)] : []),
      ...extra,
    ];
    const result = await ctx.sim<FleetResult>(args, name);
    if (busy) result.notes.push(busy);
    return { result, gatewayStartup: startup, replicas: replicaCount, elapsedSeconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    await ctx.stop(gateways);
    // The *after* pods' leases are still alive when their clients close: let them expire now
    // rather than as background work in etcd during the next scenario.
    if (design === 'after' && pods >= 300) await sleep((s.ttlSeconds + 1) * 1000);
  }
}

const describeRun = (run: FleetRun) => `heartbeat success ${(run.result.heartbeats.successRate * 100).toFixed(1)} %, etcd Authenticate ${authCalls(run)}`;

/** One design at one fleet size. */
export function fleetScenario(o: BenchOptions, design: Design, pods: number): Scenario {
  const title = `${design}, ${pods} pods`;
  return scenario<FleetRun>({
    name: `fleet-${design}-${pods}`,
    section: 'fleet',
    sets: ['default'],
    title,
    steps: 1,
    estimateSeconds: estimateSeconds(design, pods, o),
    run: (ctx) => runFleet(ctx, o, design, pods, 1, [], title),
    describe: describeRun,
  });
}

/** Two replicas, each call to the next one, a fifth of the pods going silent. */
export function replicasScenario(o: BenchOptions): Scenario {
  const r = o.replicas;
  const extra = ['--silent', String(r.silentFraction), '--silent-after', String(r.silentAfterSeconds), '--duration', String(r.durationSeconds), '--spread', 'round-robin'];
  const title = `gateway, ${r.pods} pods, 2 replicas round-robin, ${r.silentFraction * 100} % go silent`;
  return scenario<FleetRun>({
    name: 'replicas',
    section: 'replicas',
    sets: ['default'],
    title,
    steps: 1,
    estimateSeconds: r.durationSeconds + 15,
    run: (ctx) => runFleet(ctx, o, 'gateway', r.pods, 2, extra, title),
    describe: describeRun,
  });
}
