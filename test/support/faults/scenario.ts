/**
 * What every reliability scenario does around its fault: a fleet through all replicas, etcd's
 * counters before and after, a final check that no live pod is missing through any replica, and a
 * one-paragraph summary (printed, and collected for RELIABILITY.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCounters } from '../../../tools/stack/metrics';
import { FleetDriver, FleetOptions, FleetReport, summarize } from './fleet';
import { FaultStack } from './stack';
import { waitFor } from '../wait';

export interface ScenarioResult {
  report: FleetReport;
  etcd: EtcdCounters;
}

/** Where scenario summaries are appended (one JSON line each), when RELIABILITY_REPORT names a file. */
const REPORT_FILE = process.env.RELIABILITY_REPORT;
/** Where each replica's log goes after a scenario (<name>-<replica>.log), when REPLICA_LOG_DIR names a folder. */
const LOG_DIR = process.env.REPLICA_LOG_DIR;

export async function runScenario(
  stack: FaultStack,
  name: string,
  fleetOptions: Omit<FleetOptions, 'name'>,
  fault: (fleet: FleetDriver) => Promise<void>,
): Promise<ScenarioResult> {
  const fleet = new FleetDriver(stack.http, () => stack.urls, { name, ...fleetOptions });
  await fleet.start();
  const before = await stack.counters.totals();
  let report: FleetReport | undefined;
  try {
    await fault(fleet);
    // No registration lost: every live pod is listed through every replica (after the watch caught up).
    for (const replica of stack.replicas) {
      await waitFor(`every live pod listed through ${replica.name}`, async () => (await fleet.missingVia(replica.url)).length === 0, 20_000, 500);
    }
  } finally {
    report = await fleet.stop({ deregister: true });
  }
  const after = await stack.counters.totals();
  const etcd = Object.fromEntries(Object.keys(after).map((k) => [k, after[k as keyof EtcdCounters] - before[k as keyof EtcdCounters]])) as unknown as EtcdCounters;
  const text = `[${name}]\n${summarize(report)}\netcd (all members): Authenticate ${etcd.authenticate}, Range ${etcd.range}, Txn ${etcd.txn}, LeaseGrant ${etcd.leaseGrant}, keepalive messages ${etcd.leaseKeepAliveMessages}`;
  process.stdout.write(text + '\n');
  if (LOG_DIR) {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    for (const replica of stack.replicas) fs.writeFileSync(path.join(LOG_DIR, `${name}-${replica.name}.log`), replica.output());
  }
  if (REPORT_FILE) {
    fs.mkdirSync(path.dirname(REPORT_FILE), { recursive: true });
    fs.appendFileSync(REPORT_FILE, JSON.stringify({ name, at: new Date().toISOString(), summary: text, worstGapMs: report.worstGapMs, etcd, report: { ...report, gaps: report.gaps.slice(0, 10) } }) + '\n');
  }
  return { report, etcd };
}
