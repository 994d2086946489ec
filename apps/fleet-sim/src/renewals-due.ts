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
