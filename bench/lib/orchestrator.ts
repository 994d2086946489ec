/**
 * Runs the selected scenarios in table order within the time budget. A scenario that would end after
 * the deadline (by its estimate) is skipped; one that fails is recorded and the rest still run.
 * Every outcome becomes a record: the report is written from the records alone.
 */
import { BenchContext, log } from './bench-context';
import { Scenario, ScenarioRecord } from './scenario';
import { loadAverage } from './sampling';

export async function runScenarios(ctx: BenchContext, scenarios: Scenario[], deadline: number, budgetSeconds: number): Promise<ScenarioRecord[]> {
  const records: ScenarioRecord[] = [];
  for (const s of scenarios) {
    const base = { name: s.name, section: s.section, title: s.title };
    const load = loadAverage()[0];
    if (Date.now() + s.estimateSeconds * 1000 > deadline) {
      log(`skipping ${s.title}: it would not finish within the ${budgetSeconds} s budget (estimate ${Math.round(s.estimateSeconds)} s)`);
      records.push({ ...base, status: 'skipped', reason: `would not finish within the ${budgetSeconds} s budget (estimate ${Math.round(s.estimateSeconds)} s)`, seconds: 0, loadAverage: { start: load, end: load } });
      continue;
    }
    const started = Date.now();
    try {
      if (s.freshEtcd) await ctx.freshEtcd(s.etcdMembers);
      if (s.steps === 1) ctx.header(s.title);
      const result = await s.run(ctx);
      if (s.describe) log(`${s.title}: ${s.describe(result)}`);
      records.push({ ...base, status: 'ok', result, seconds: Math.round((Date.now() - started) / 1000), loadAverage: { start: load, end: loadAverage()[0] } });
    } catch (err) {
      const message = (err as Error).message;
      log(`${s.title} failed: ${message}`);
      await ctx.stopAll();
      records.push({ ...base, status: 'failed', reason: message.split('\n')[0], seconds: Math.round((Date.now() - started) / 1000), loadAverage: { start: load, end: loadAverage()[0] } });
    }
  }
  return records;
}
