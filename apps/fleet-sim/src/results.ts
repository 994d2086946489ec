/**
 * The JSON a run writes with `--json FILE`. bench/ reads it (bench/lib/sim-results.ts mirrors the
 * fields it uses): add fields freely, rename none without updating the bench.
 */
import { Design } from './fleets/fleet-driver';
import { EtcdCounters } from './etcd-probe';
import type { RetryStats } from './fleets/gateway-driver';
import type { GatewayCounters, GatewayGaugePeaks } from './gateway-probe';
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

export interface RawRegisterResult {
  kind: 'raw-register';
  label: string;
  pods: number;
  concurrency: number;
  ttlSeconds: number;
  seconds: number;
  registrationsPerSecond: number;
  stats: OpStats;
  etcd?: EtcdCounters;
  processes: ProcessUsage[];
  notes: string[];
}

export interface ScaleParams {
  /** Replica URLs: a pod registers (and heartbeats itself) through gateways[index % length]. */
  gateways: string[];
  /** The held cohort: registers first, then heartbeats throughout. */
  pods: number;
  /** Pods registering during the storm phase (0: no storm). */
  storm: number;
  services: number;
  ttlSeconds: number;
  /** Heartbeat interval; 0 = pods do not heartbeat (registration rate only). */
  intervalSeconds: number;
  holdSeconds: number;
  registerConcurrency: number;
  stormConcurrency: number;
  sockets: number;
  callTimeoutSeconds: number;
  registerDeadlineSeconds: number;
  /** Registered-instance counts at which the replica's RSS is read. */
  rssAt: number[];
  prefix: string;
  label: string;
  /** Node agents heartbeating the pods with `POST /v1/heartbeats` (0: each pod heartbeats itself). */
  agents: number;
  /** A pod joins its agent's batches this long after its registration was answered (NodeAgents). */
  agentGraceMs: number;
  /** Fraction of the pods the agents stop naming when the hold starts (agents only; 0: none). */
  silenceFraction: number;
}

/** The pods silenced at the start of the hold, and when their keys left etcd (a watch's delete events). */
export interface SilenceOutcome {
  silenced: number;
  ttlSeconds: number;
  /** Silenced pods whose delete event arrived during the hold. */
  gone: number;
  /** Of those, gone within TTL + 5 s of the last heartbeat the gateway accepted for them. */
  goneWithinTtlPlus5: number;
  /** From the send of the last batch answered `accepted` for the pod to its delete event. */
  delaySeconds: { min: number; p50: number; p99: number; max: number };
  /** From the start of the hold (the silencing) to the delete event. */
  sinceSilenceSeconds: { p50: number; max: number };
  /** Delete events of pods that were not silenced: live instances lost. */
  liveDeleted: number;
  watchDisconnects: number;
}

/** The fleet's heartbeat schedule in a phase: did the generator deliver it? */
export interface BeatSchedule {
  /** Ticks that came due (every registered pod, every interval). */
  scheduled: number;
  /** Ticks that became a call (the rest: the pod's previous call was still unanswered, "missed"). */
  sent: number;
  /** Heartbeat requests written to a socket (a call may wait for a free socket first). */
  written: number;
  /** Calls answered (any status) or failed (timeout, network error). */
  answered: number;
}

export interface ScalePhase {
  name: 'register' | 'storm' | 'hold';
  seconds: number;
  /** The phase's registrations (register, storm): `okPerSecond` is the registration rate. */
  registrations?: OpStats;
  /** Heartbeats of every registered pod during the phase. */
  beats: OpStats;
  /** Heartbeat ticks scheduled / sent / written / answered (absent in results of older builds). */
  beatSchedule?: BeatSchedule;
  /**
   * Renewals the gateway owed etcd in the phase by the schedule: one per registered pod every third of
   * the TTL after its grant, whether or not its heartbeats were sent. The target uses this one.
   */
  renewalsDue: number;
  /**
   * Renewals due by the heartbeats actually answered 2xx: one per lease per TTL/3 window (from its
   * grant) with such a heartbeat, due at the window's end (HeartbeatWindows).
   */
  renewalsDueByHeartbeats?: number;
  instancesAtEnd: number;
  /** NodeAgents: per-instance outcomes of the batches of the phase (`accepted`, `not_found`, ...). */
  refs?: Record<string, number>;
  /** Summed over the members; `etcdMembers` per member (multi-member runs). */
  etcd?: EtcdCounters;
  etcdMembers?: EtcdCounters[];
  gateway?: GatewayCounters;
  gatewayPeaks?: GatewayGaugePeaks;
  processes: ProcessUsage[];
  simulatorCpuPercent: number;
}

export interface CohortOutcome {
  pods: number;
  registered: number;
  /** Heartbeats answered 404: the pod's lease lapsed while it was heartbeating. */
  beats404: number;
  /** Registrations made again after a 404 (as an SDK does). */
  reRegistered: number;
  /** Instance keys of the cohort's live (not silenced) pods in etcd after the last phase. */
  aliveAtEnd?: number;
  /** Pods of the cohort silenced at the start of the hold, and how many of their keys were left at the end. */
  silenced?: number;
  silencedPresentAtEnd?: number;
}

export interface ScaleResult {
  kind: 'scale';
  label: string;
  params: ScaleParams;
  phases: ScalePhase[];
  /** RSS of the replica at instance-count checkpoints (heartbeats flowing). */
  rss: Array<{ instances: number; rssMb: number; when: string }>;
  retries: RetryStats;
  cohorts: { held: CohortOutcome; storm?: CohortOutcome };
  /** Node agents (absent when each pod heartbeats itself). */
  agents?: { agents: number; perAgent: number; replicas: number; graceMs: number };
  silence?: SilenceOutcome;
  /** Leases alive in etcd after the last phase (LeaseLeases), and the fleet's instance keys then. */
  leasesAtEnd?: number;
  keysAtEnd?: number;
  notes: string[];
}

export type SimResult = FleetResult | CannonResult | BurstResult | RawRegisterResult | ScaleResult;
