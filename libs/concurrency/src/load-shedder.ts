import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export type ShedReason = 'event_loop';

export interface LoadShedderOptions {
  /** p99 event-loop delay of this thread over the last window beyond which new work is refused. */
  maxEventLoopDelayMs: number;
  /** Window of the event-loop delay figure. */
  windowMs?: number;
}

/**
 * Admission control for NEW work (registrations): refuses it while this thread is saturated, so that
 * live instances keep their share of the gateway. Heartbeats are never refused by it: overload sheds
 * registrations, never live instances. (Renewals are tens per second per cluster with shared leases: they
 * no longer need a lag signal here.)
 *
 * Why not @fastify/under-pressure: it answers 503 to every route once a limit is passed, and the one
 * route we must keep answering under pressure is the heartbeat. The signal is the same (Node's own
 * event-loop delay histogram), the decision is per route.
 */
export class LoadShedder {
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = 0;

  constructor(private readonly options: LoadShedderOptions) {}

  start(): void {
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      // percentile() is in nanoseconds; the window restarts so that a past spike ends with it.
      this.delayMs = this.histogram!.percentile(99) / 1e6;
      this.histogram!.reset();
    }, this.options.windowMs ?? 1_000);
    this.timer.unref();
  }

  /** p99 event-loop delay of the last window, ms. */
  eventLoopDelayMs(): number {
    return this.delayMs;
  }

  /** Why new work must wait right now, or undefined when it may go ahead. */
  shouldShed(): ShedReason | undefined {
    if (this.delayMs > this.options.maxEventLoopDelayMs) return 'event_loop';
    return undefined;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
  }
}
