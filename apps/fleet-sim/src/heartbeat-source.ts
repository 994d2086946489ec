/**
 * Who heartbeats the pods of a scale run: each pod for itself (`PodHeartbeats`, `PUT .../heartbeat`
 * on its own schedule) or node agents for many pods at once (`NodeAgents`, `POST /v1/heartbeats`).
 * The scale scenario registers the pods, runs the phases and reads etcd; the source only sends
 * heartbeats, re-registers pods the gateway no longer knows, and accounts for each phase.
 */
import { BeatSchedule } from './results';
import { OpStats } from './stats';

/** What one phase's heartbeats did. */
export interface PhaseBeats {
  /** One entry per heartbeat call (a pod's PUT, or an agent's POST of many refs). */
  beats: OpStats;
  beatSchedule: BeatSchedule;
  /** Renewals one lease per pod would have owed etcd in the phase (PodHeartbeats; 0 for agents). */
  renewalsDue: number;
  renewalsDueByHeartbeats?: number;
  /** NodeAgents: per-instance outcomes of the batches (`accepted`, `not_found`, ..., `batch <failure>`). */
  refs?: Record<string, number>;
}

/** What the scenario counts per cohort when the gateway forgot a pod and the pod registered again. */
export interface HeartbeatEvents {
  /** A heartbeat of pod `i` was answered 404 / `not_found`. */
  lost(i: number): void;
  /** Pod `i` registered again after that (as an SDK or agent does). */
  reRegistered(i: number): void;
}

export interface HeartbeatSource {
  /** Pod `i`'s registration was answered 2xx: heartbeat it from now on. */
  registered(i: number): void;
  beginPhase(): void;
  /** The phase that began last, from `t0` to `t1` (ms), `seconds` long. */
  endPhase(t0: number, t1: number, seconds: number): PhaseBeats;
  /** One line for the progress bar. */
  progress(): string;
  /** Sends nothing more; resolves once every call is answered or after `maxWaitMs`, with notes. */
  stop(maxWaitMs: number): Promise<string[]>;
}
