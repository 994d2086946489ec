/**
 * The parts of fleet-sim's `--json` output the bench reads. bench/ may not import from apps/ (lint
 * rule), so this mirrors apps/fleet-sim/src/results.ts: keep the two in step.
 */
import { EtcdCounters } from '@app/stack';

export interface OpStats {
  attempted: number;
  ok: number;
  failed: number;
  outcomes: Record<string, number>;
  latency: { count: number; p50: number; p99: number; max: number; mean: number };
  okPerSecond: number;
}

export interface ProcessUsage {
  name: string;
  pid: number;
  cpuPercent: number;
  cpuPercentPeak: number;
  rssMbPeak: number;
  rssMbEnd: number;
}

export type Design = 'before' | 'after' | 'gateway';

export interface FleetResult {
  kind: 'fleet';
  design: Design;
  label: string;
  description: string;
  params: {
    pods: number;
    services: number;
    intervalSeconds: number;
    durationSeconds: number;
    ttlSeconds: number;
    callTimeoutSeconds: number;
    silentFraction: number;
    silentAfterSeconds: number;
    resolvers: number;
    resolveIntervalSeconds: number;
    gateways: string[];
    spread: string;
  };
  registration: { seconds: number; stats: OpStats; beatsMeanwhile: OpStats };
  heartbeats: { seconds: number; successRate: number; stats: OpStats };
  resolves?: { stats?: OpStats; skipped?: string };
  alive?: { expected: number; found: number; silent: number; silentStillPresent: number };
  etcd?: { register: EtcdCounters; heartbeats: EtcdCounters; total: EtcdCounters; settleSeconds: number; authInFlightAtEnd: number };
  processes: { registration: ProcessUsage[]; heartbeats: ProcessUsage[] };
  simulatorCpuPercent: number;
  notes: string[];
}

export interface CannonResult {
  kind: 'cannon';
  label: string;
  scenario: 'heartbeat' | 'resolve';
  method: string;
  pathExample: string;
  expectedStatus: number;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  distinctPaths: number;
  requests: number;
  requestsPerSecond: number;
  expectedStatusRate: number;
  statusCounts: Record<string, number>;
  errors: number;
  timeouts: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  responseBytesPerRequest: number;
  etcd?: EtcdCounters;
  processes: ProcessUsage[];
  notes: string[];
}

export interface BurstResult {
  kind: 'burst';
  label: string;
  gateways: string[];
  services: number;
  instancesPerService: number;
  requests: number;
  concurrency: number;
  stats?: OpStats;
  skipped?: string;
  seconds: number;
  etcd?: EtcdCounters;
  processes: ProcessUsage[];
  notes: string[];
}

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
  /** Every measured round, in the order run (bare and gateway alternate); `bare`/`gateway` are the best. */
  rounds?: { bare: CannonResult[]; gateway: CannonResult[] };
  /** resolve: instances in the answer of each server, checked after its run (same body shape?). */
  instancesInAnswer?: { bare: number; gateway: number };
  bare?: CannonResult;
  gateway?: CannonResult;
  skipped?: string;
}
