/**
 * What the bench reads from fleet-sim's `--json` output (the simulator's own result types), plus
 * what the bench records around each scenario.
 */
import { EtcdCounters } from '@app/stack';
import type { CannonResult, FleetResult } from '../../apps/fleet-sim/src/results';

export type { BurstResult, CannonResult, FleetResult, RawRegisterResult, ScaleResult, ScalePhase, CohortOutcome } from '../../apps/fleet-sim/src/results';
export type { ProcessUsage } from '../../apps/fleet-sim/src/process-sampler';
export type { OpStats } from '../../apps/fleet-sim/src/stats';
export type Design = FleetResult['design'];

/** A fleet scenario as the bench records it: fleet-sim's result plus what happened around it. */
export interface FleetRun {
  result: FleetResult;
  /** etcd calls made while the gateway replica(s) started (pool authentication, watch), before any pod. */
  gatewayStartup?: EtcdCounters;
  replicas: number;
  elapsedSeconds: number;
}

export interface ThroughputPair {
  scenario: 'heartbeat' | 'resolve';
  /** Every measured round, in the order run (bare and gateway alternate). */
  rounds?: { bare: CannonResult[]; gateway: CannonResult[] };
  /** gateway / bare of each round, and their median: the comparison's figure (pairedRounds). */
  ratios?: number[];
  ratio?: number;
  /** resolve: instances in the answer of each server, checked after its run (same body shape?). */
  instancesInAnswer?: { bare: number; gateway: number };
  /** The round whose ratio is the median (results before 2026-12-03 evening: each side's best round). */
  bare?: CannonResult;
  gateway?: CannonResult;
  skipped?: string;
}
