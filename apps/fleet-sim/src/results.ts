/**
 * The JSON a run writes with `--json FILE`. bench/ reads it (bench/lib/sim-results.ts mirrors the
 * fields it uses): add fields freely, rename none without updating the bench.
 */
import { Design } from './fleets/fleet-driver';
import { EtcdCounters } from './etcd-probe';
import { ProcessUsage } from './process-sampler';
import { OpStats } from './stats';

export interface EtcdPhases {
  /** Registration phase (before the heartbeat window; includes heartbeats of pods already registered). */
  register: EtcdCounters;
  /** Heartbeat window, plus the wait for etcd to finish Authenticate calls still in progress. */
  heartbeats: EtcdCounters;
  total: EtcdCounters;
  /** Seconds waited after the window until etcd had no Authenticate in progress. */
  settleSeconds: number;
  /** Authenticate calls still in progress when the wait gave up (0 normally). */
  authInFlightAtEnd: number;
}

export interface FleetParams {
  pods: number;
  services: number;
  intervalSeconds: number;
  durationSeconds: number;
  ttlSeconds: number;
  callTimeoutSeconds: number;
  registerConcurrency: number;
  silentFraction: number;
  silentAfterSeconds: number;
  resolvers: number;
  resolveIntervalSeconds: number;
  gateways: string[];
  spread: string;
  prefix: string;
}

export interface FleetResult {
  kind: 'fleet';
  design: Design;
  label: string;
  description: string;
  params: FleetParams;
  /** `beatsMeanwhile`: heartbeats of already registered pods while the rest still registered. */
  registration: { seconds: number; stats: OpStats; beatsMeanwhile: OpStats };
  heartbeats: { seconds: number; successRate: number; stats: OpStats };
  resolves?: { stats?: OpStats; skipped?: string };
  /** Ground truth from etcd after the window: instance keys of non-silent pods that exist. */
  alive?: { expected: number; found: number; silent: number; silentStillPresent: number };
  etcd?: EtcdPhases;
  processes: { registration: ProcessUsage[]; heartbeats: ProcessUsage[] };
  /** The simulator's own CPU over the heartbeat window (100 = one core): is the client a bottleneck? */
  simulatorCpuPercent: number;
  notes: string[];
}

export interface CannonResult {
  kind: 'cannon';
  label: string;
  target: string;
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
  /** Share of responses with the expected status. */
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

export type SimResult = FleetResult | CannonResult | BurstResult;
