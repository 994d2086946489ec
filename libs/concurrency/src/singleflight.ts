/**
 * Concurrent calls for the same key share one execution: the first caller runs `work`, later callers
 * get the same promise until it settles. Errors propagate to every waiter, and the key is released
 * when the work settles, so nothing is cached and no waiter is left behind.
 */
export class Singleflight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): Promise<T> {
    const existing = this.inFlight.get(key);
    if (existing) return existing;
    const shared = (async () => work())().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, shared);
    return shared;
  }

  get size(): number {
    return this.inFlight.size;
  }
}
