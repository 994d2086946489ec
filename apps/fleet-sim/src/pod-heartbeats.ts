/**
 * Each pod heartbeats for itself: `PUT .../heartbeat` every interval from its registration on, over
 * the driver's raw socket pool. One timing wheel for the whole fleet and a callback per answer, not a
 * sleeping promise chain per pod (see bench/results/load-generator.md for what that cost at 100k pods).
 * A pod answered 404 registers again on its next tick (GatewayDriver.beatRaw), as an SDK does.
 */
import { GatewayDriver } from './fleets/gateway-driver';
import { HeartbeatEvents, HeartbeatSource, PhaseBeats } from './heartbeat-source';
import { PodTable } from './pod-table';
import { sleep } from './progress';
import { HeartbeatWindows, renewalsDue } from './renewals-due';
import { BeatSchedule } from './results';
import { OpRecorder } from './stats';
import { TimingWheel } from './timing-wheel';

/** Resolution of the heartbeat schedule: 100k pods at 20 s is ~50 due per tick. */
const WHEEL_TICK_MS = 10;

export class PodHeartbeats implements HeartbeatSource {
  private readonly intervalMs: number;
  private readonly wheel = new TimingWheel(WHEEL_TICK_MS);
  private readonly nextTick: Float64Array;
  private readonly beatNo: Uint32Array;
  private readonly outstanding: Uint8Array;
  /** When the lease one-lease-per-pod would renew was granted (ms); undefined while it has none. */
  private readonly grantedAt: Array<number | undefined>;
  private readonly windows: HeartbeatWindows;
  private readonly timer: NodeJS.Timeout;
  private rec = new OpRecorder();
  private schedule: BeatSchedule = { scheduled: 0, sent: 0, written: 0, answered: 0 };
  private written0 = 0;
  private stopAt = Infinity;
  private inFlight = 0;

  constructor(
    private readonly table: PodTable,
    private readonly driver: GatewayDriver,
    intervalSeconds: number,
    private readonly ttlSeconds: number,
    private readonly events: HeartbeatEvents,
  ) {
    this.intervalMs = intervalSeconds * 1000;
    this.nextTick = new Float64Array(table.count);
    this.beatNo = new Uint32Array(table.count);
    this.outstanding = new Uint8Array(table.count);
    this.grantedAt = new Array<number | undefined>(table.count).fill(undefined);
    this.windows = new HeartbeatWindows(table.count, ttlSeconds);
    this.timer = setInterval(() => this.wheel.due(Date.now(), (i) => this.fire(i)), WHEEL_TICK_MS);
  }

  registered(i: number): void {
    this.grantedAt[i] = Date.now();
    this.windows.granted(i);
    if (this.intervalMs <= 0) return;
    this.nextTick[i] = Date.now() + Math.random() * this.intervalMs; // pods are not in lockstep
    this.wheel.schedule(i, this.nextTick[i]);
  }

  beginPhase(): void {
    this.rec = new OpRecorder();
    this.schedule = { scheduled: 0, sent: 0, written: 0, answered: 0 };
    this.written0 = this.driver.heartbeatsWritten;
  }

  endPhase(t0: number, t1: number, seconds: number): PhaseBeats {
    this.schedule.written = this.driver.heartbeatsWritten - this.written0;
    return {
      beats: this.rec.summarize(seconds),
      beatSchedule: this.schedule,
      renewalsDue: this.intervalMs > 0 ? renewalsDue(this.grantedAt, this.ttlSeconds, t0, t1) : 0,
      renewalsDueByHeartbeats: this.intervalMs > 0 ? this.windows.dueIn(t0, t1) : 0,
    };
  }

  progress(): string {
    return `beats ok ${this.rec.okCount} failed ${this.rec.failedCount}`;
  }

  async stop(maxWaitMs: number): Promise<string[]> {
    this.stopAt = Date.now();
    clearInterval(this.timer);
    for (let waited = 0; this.inFlight > 0 && waited < maxWaitMs; waited += 100) await sleep(100);
    return this.inFlight > 0 ? [`${this.inFlight} heartbeats were still unanswered ${maxWaitMs / 1000} s after the end`] : [];
  }

  private fire(i: number): void {
    const tick = this.nextTick[i];
    if (tick >= this.stopAt) return;
    this.nextTick[i] = tick + this.intervalMs;
    this.wheel.schedule(i, tick + this.intervalMs);
    const n = ++this.beatNo[i];
    const rec = this.rec;
    const schedule = this.schedule;
    schedule.scheduled++;
    // A pod's heartbeat loop is sequential: a tick that comes while its last call is unanswered never happens.
    if (this.outstanding[i]) return rec.recordMissed();
    this.outstanding[i] = 1;
    this.inFlight++;
    schedule.sent++;
    this.driver.beatRaw(this.table.pod(i), n, (r) => {
      const now = Date.now();
      this.outstanding[i] = 0;
      this.inFlight--;
      schedule.answered++;
      // From the tick, not from the send: time spent waiting for a socket counts.
      rec.record(r.ok, r.outcome, now - tick);
      if (r.outcome === '404') {
        this.events.lost(i);
        this.grantedAt[i] = undefined;
      } else if (r.outcome === 're-registered') {
        this.events.reRegistered(i);
        this.table.markRegistered(i, now);
        this.grantedAt[i] = now;
        this.windows.granted(i);
      } else if (r.ok && this.grantedAt[i] !== undefined) {
        this.windows.heartbeat(i, this.grantedAt[i]!, now);
      }
    });
  }
}
