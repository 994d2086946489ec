/**
 * The table of scenarios, in run order. Default set: the cheap, etcd-independent measurements
 * first, the auth-bound fleets last and largest last, so that on a slow or busy machine the time
 * budget drops the most expensive scenarios (reported as skipped) rather than the whole tail.
 * Scale set: the throughput ratios and the registration rate first (short), then the 100k hold
 * (the headline: memory, renewals), then the restart and the storm, then issue 21's node-agent runs
 * (100k on one replica; 1M on three replicas and a 3-member etcd, the longest, last).
 */
import { BenchOptions } from '../cli';
import { Scenario, ScenarioSet } from '../scenario';
import { Design } from '../sim-results';
import { burstScenario } from './burst';
import { fleetScenario, replicasScenario } from './fleet';
import { agents1mScenario, agentsScenario, holdScenario, registerRateScenario, restartScenario, stormScenario } from './scale';
import { throughputScenario } from './throughput';

const DESIGNS: Design[] = ['gateway', 'after', 'before'];

export function scenarioTable(o: BenchOptions): Scenario[] {
  const fleets = o.settings.pods.flatMap((pods) => DESIGNS.filter((d) => d !== 'before' || pods <= o.settings.beforeMaxPods).map((d) => fleetScenario(o, d, pods)));
  return [
    throughputScenario(o),
    burstScenario(o),
    replicasScenario(o),
    ...fleets,
    registerRateScenario(o),
    holdScenario(o),
    restartScenario(o),
    stormScenario(o),
    agentsScenario(o),
    agents1mScenario(o),
  ];
}

/**
 * What this invocation runs: `--only` names scenarios from either set; otherwise the chosen set
 * minus `--skip` (by scenario name or by section, e.g. `fleet`).
 */
export function selectScenarios(table: Scenario[], o: BenchOptions): { set: ScenarioSet; scenarios: Scenario[] } {
  if (o.only) {
    const unknown = [...o.only].filter((n) => !table.some((s) => s.name === n));
    if (unknown.length) throw new Error(`--only: unknown scenario(s) ${unknown.join(', ')} (see --list)`);
    const scenarios = table.filter((s) => o.only!.has(s.name));
    const set: ScenarioSet = o.scale || scenarios.some((s) => !s.sets.includes('default')) ? 'scale' : 'default';
    return { set, scenarios };
  }
  const set: ScenarioSet = o.scale ? 'scale' : 'default';
  return { set, scenarios: table.filter((s) => s.sets.includes(set) && !o.skip.has(s.name) && !o.skip.has(s.section)) };
}
