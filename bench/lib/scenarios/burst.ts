/** Cold cache: a lookup stampede over two fresh replicas, counting etcd Range calls. */
import { EtcdCounters } from '@app/stack';
import { BenchOptions } from '../cli';
import { Scenario, scenario } from '../scenario';
import { BurstResult } from '../sim-results';

export interface BurstRun {
  result: BurstResult;
  gatewayStartup: EtcdCounters;
}

export function burstScenario(o: BenchOptions): Scenario {
  const b = o.burst;
  return scenario<BurstRun>({
    name: 'burst',
    section: 'burst',
    sets: ['default'],
    title: `cold-cache burst, ${b.requests} lookups of ${b.services} services over 2 replicas`,
    steps: 1,
    estimateSeconds: 20,
    async run(ctx) {
      await ctx.waitForIdleEtcd();
      const { gateways, startup } = await ctx.startGateways('burst', ctx.prefix('burst'), 2);
      try {
        const args = ['burst', '--gateway', gateways.map((g) => g.url).join(','), '--services', String(b.services), '--instances', String(b.instances)];
        args.push('--requests', String(b.requests), '--concurrency', String(b.concurrency), '--sample-pid', ctx.pids(gateways), '--label', 'cold-cache burst');
        return { result: await ctx.sim<BurstResult>(args, 'burst'), gatewayStartup: startup };
      } finally {
        await ctx.stop(gateways);
      }
    },
    describe: (r) => `etcd Range during the burst: ${r.result.etcd?.range ?? '?'}`,
  });
}
