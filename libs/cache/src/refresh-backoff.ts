/**
 * A per-key circuit for etcd reads. After a failed read of a key, the next attempt waits a window that
 * doubles with each consecutive failure (min..max, plus up to 25% jitter so replicas spread out), so
 * an unreachable etcd sees at most one attempt per service per window however many lookups arrive.
 * Time is passed in.
 */
export class RefreshBackoff {
  private readonly state = new Map<string, { failures: number; retryAt: number }>();

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  mayAttempt(key: string, now: number): boolean {
    const state = this.state.get(key);
    return !state || now >= state.retryAt;
  }

  /** Records a failure at `now`; returns the window until the next attempt. */
  failed(key: string, now: number): number {
    const failures = (this.state.get(key)?.failures ?? 0) + 1;
    const base = Math.min(this.maxMs, this.minMs * 2 ** (failures - 1));
    const window = Math.min(this.maxMs, base * (1 + this.random() / 4));
    this.state.set(key, { failures, retryAt: now + window });
    return window;
  }

  succeeded(key: string): void {
    this.state.delete(key);
  }

  /** Forgets keys whose window ended long ago (a key looked up once during an outage must not stay). */
  sweep(now: number): void {
    for (const [key, state] of this.state) if (now - state.retryAt > this.maxMs) this.state.delete(key);
  }

  get size(): number {
    return this.state.size;
  }
}
