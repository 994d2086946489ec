/**
 * A benchmark scenario as one row of the table in scenarios/index.ts: its name (for --only/--skip),
 * the report section its result goes to, how many progress steps and seconds it is expected to
 * take, and what it runs. The orchestrator derives the step count, the time budget and the report
 * from these rows alone.
 */
import type { BenchContext } from './bench-context';

export type Section = 'throughput' | 'burst' | 'replicas' | 'fleet' | 'scale';
/** `default`: `npm run bench`; `scale`: `npm run bench -- --scale`. */
export type ScenarioSet = 'default' | 'scale';

export interface Scenario<R = unknown> {
  name: string;
  section: Section;
  sets: ScenarioSet[];
  title: string;
  /**
   * fleet-sim runs it makes (the `n/total` progress headers): the orchestrator prints the header of
   * a one-step scenario, a scenario of several steps prints its own (ctx.header).
   */
  steps: number;
  /** Rough length on an idle 2-core machine, for the time budget. */
  estimateSeconds: number;
  /** Runs on a new empty etcd (large fleets leave leases that would expire during the next one). */
  freshEtcd?: boolean;
  /** Members of that fresh etcd (1; 3 for a cluster on loopback, auth on). */
  etcdMembers?: number;
  run(ctx: BenchContext): Promise<R>;
  /** One line for the log when it is done. */
  describe?(result: R): string;
}

export interface ScenarioRecord<R = unknown> {
  name: string;
  section: Section;
  title: string;
  status: 'ok' | 'failed' | 'skipped';
  result?: R;
  /** Why it failed or was skipped. */
  reason?: string;
  seconds: number;
  /** 1-minute load average when it started and when it ended. */
  loadAverage: { start: number; end: number };
}

/** A typed scenario in a table of mixed result types. */
export function scenario<R>(s: Scenario<R>): Scenario {
  return s as unknown as Scenario;
}
