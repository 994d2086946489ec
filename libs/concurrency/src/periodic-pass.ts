/**
 * A pass that runs every `periodMs` and never overlaps itself: a run still in flight when the next is
 * due makes that one a no-op (the heard-set publisher and the expiry sweep both work this way). The
 * timer does not keep the process alive.
 */
export class PeriodicPass {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly periodMs: number,
    private readonly run: () => Promise<void>,
  ) {}

  start(): void {
    // `run` reports its own failures (both users log or count them); the timer only keeps going.
    this.timer ??= setInterval(() => void this.runOnce().catch(() => undefined), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs the pass now, unless one is in flight (then nothing happens). */
  async runOnce(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.run();
    } finally {
      this.running = false;
    }
  }
}
