/**
 * One timer for a whole fleet: items (pod indexes) sit in buckets of `tickMs` keyed by when they are
 * due, and one interval drains the buckets whose time has come. 100,000 pods each sleeping on their
 * own setTimeout + promise cost the generator more CPU than the requests it was meant to send (see
 * bench/results/load-generator.md).
 *
 * Pure: no clock and no timer of its own; `due(now)` is called by the owner's interval.
 */
export class TimingWheel {
  private readonly buckets = new Map<number, number[]>();
  /** First bucket not drained yet; -1 before the first `due()`. */
  private cursor = -1;
  private count = 0;

  constructor(readonly tickMs: number) {
    if (!(tickMs > 0)) throw new Error(`tickMs must be > 0, got ${tickMs}`);
  }

  /** Items waiting. */
  get size(): number {
    return this.count;
  }

  /** `item` comes out of the first `due(now)` with now >= at (a time in the past: the next one). */
  schedule(item: number, at: number): void {
    let bucket = Math.floor(at / this.tickMs);
    if (this.cursor >= 0 && bucket < this.cursor) bucket = this.cursor;
    const list = this.buckets.get(bucket);
    if (list) list.push(item);
    else this.buckets.set(bucket, [item]);
    this.count++;
  }

  /**
   * Calls `fn` for every item whose bucket has begun by `now`, oldest bucket first, in the order
   * scheduled within a bucket. Items scheduled by `fn` into a bucket already drained come out on the
   * next call, so a callback that reschedules cannot loop.
   */
  due(now: number, fn: (item: number) => void): number {
    const last = Math.floor(now / this.tickMs);
    let first = this.cursor;
    if (first < 0) {
      first = last;
      for (const b of this.buckets.keys()) if (b < first) first = b;
    }
    if (first > last) return 0;
    this.cursor = last + 1;
    let n = 0;
    for (let bucket = first; bucket <= last; bucket++) {
      const list = this.buckets.get(bucket);
      if (!list) continue;
      this.buckets.delete(bucket);
      this.count -= list.length;
      n += list.length;
      for (const item of list) fn(item);
    }
    return n;
  }
}
