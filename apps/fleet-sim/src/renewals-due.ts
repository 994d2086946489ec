/**
 * Renewals a gateway owes etcd for heartbeating pods: a lease is due one renewal every TTL/3 after
 * it was granted (the lease engine's cadence), as long as its pod keeps heartbeating. Compared with
 * the LeaseKeepAlive messages etcd counted in the same window, it tells whether renewals kept pace.
 */

/** Renewals due in (from, to] for a lease granted at `grantedAt` (all in ms). */
export function renewalsDueFor(grantedAt: number, periodMs: number, from: number, to: number): number {
  if (grantedAt >= to) return 0;
  const upTo = Math.floor((to - grantedAt) / periodMs);
  const before = from > grantedAt ? Math.floor((from - grantedAt) / periodMs) : 0;
  return Math.max(0, upTo - before);
}

/** Sum over every heartbeating lease (granted-at times in ms; undefined: not registered). */
export function renewalsDue(grantedAt: ArrayLike<number | undefined>, ttlSeconds: number, from: number, to: number): number {
  const periodMs = (ttlSeconds * 1000) / 3;
  let due = 0;
  for (let i = 0; i < grantedAt.length; i++) {
    const g = grantedAt[i];
    if (g !== undefined) due += renewalsDueFor(g, periodMs, from, to);
  }
  return due;
}

/**
 * Renewals due by the heartbeats the gateway actually received, not by the schedule: one renewal per
 * lease per TTL/3 window (counted from its grant) in which its pod's heartbeat was answered 2xx; it
 * falls due at the window's end. A heartbeat never sent, or answered after the window, makes no
 * renewal due. The answer time stands for the receive time (the gateway saw the heartbeat before it
 * answered, so a late answer can only move a heartbeat into a later window, never an earlier one).
 *
 * Kept as a histogram of due times per second, so a phase's figure is a sum over its seconds.
 */
export class HeartbeatWindows {
  private readonly periodMs: number;
  /** Per pod: the last window counted, relative to its grant; -1 = none since the (re-)grant. */
  private readonly lastWindow: Int32Array;
  private readonly dueBySecond = new Map<number, number>();

  constructor(pods: number, ttlSeconds: number) {
    this.periodMs = (ttlSeconds * 1000) / 3;
    this.lastWindow = new Int32Array(pods).fill(-1);
  }

  /** The pod got a new lease (registered, or registered again after a 404). */
  granted(pod: number): void {
    this.lastWindow[pod] = -1;
  }

  /** A heartbeat of `pod` (lease granted at `grantedAt`) was answered 2xx at `at` (ms). */
  heartbeat(pod: number, grantedAt: number, at: number): void {
    const w = Math.floor((at - grantedAt) / this.periodMs);
    if (w < 0 || w <= this.lastWindow[pod]) return;
    this.lastWindow[pod] = w;
    const second = Math.floor((grantedAt + (w + 1) * this.periodMs) / 1000);
    this.dueBySecond.set(second, (this.dueBySecond.get(second) ?? 0) + 1);
  }

  /** Renewals due in (from, to] (ms), to the second. */
  dueIn(from: number, to: number): number {
    const a = Math.floor(from / 1000);
    const b = Math.floor(to / 1000);
    let n = 0;
    for (const [second, count] of this.dueBySecond) if (second > a && second <= b) n += count;
    return n;
  }
}
