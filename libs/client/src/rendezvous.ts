import { createHash } from 'node:crypto';

/**
 * Highest-random-weight (rendezvous) order of `gateways` for `key`: every process computes the same
 * order from the same inputs without coordination, so a pod's heartbeats stick to one replica, and
 * removing or adding one URL only moves the keys that ranked it first (a mod-N hash would reshuffle
 * almost everyone). SHA-1 is used for spread, not for security.
 */
export function rendezvousOrder(key: string, gateways: readonly string[]): string[] {
  const scored = gateways.map((gateway) => ({ gateway, score: createHash('sha1').update(`${key}\n${gateway}`).digest().readBigUInt64BE(0) }));
  scored.sort((a, b) => (a.score === b.score ? a.gateway.localeCompare(b.gateway) : a.score > b.score ? -1 : 1));
  return scored.map((s) => s.gateway);
}
