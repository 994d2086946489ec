import calculateSlot from 'cluster-key-slot';
import { LEDGER_BUCKETS, ledgerBucket, ledgerCallGroups, ledgerKeys } from './renewal-ledger';

describe('renewal ledger key layout', () => {
  const namespace = 'registry-gateway:v1:/registry/lease:';
  const leases = Array.from({ length: 5_000 }, (_, i) => String(7_587_000_000_000_000_000n + BigInt(i * 7919)));

  it("puts a lease's record and claim in one hash slot, its bucket's", () => {
    for (const id of leases.slice(0, 200)) {
      const { record, claim } = ledgerKeys(namespace, id);
      expect(record).toBe(`${namespace}{b${ledgerBucket(id)}}${id}:r`);
      expect(calculateSlot(record)).toBe(calculateSlot(claim));
      expect(calculateSlot(record)).toBe(calculateSlot(`b${ledgerBucket(id)}`));
    }
  });

  it('on a Cluster, gives every call the keys of ONE slot (CROSSSLOT impossible), at most one call per bucket and size limit', () => {
    const groups = ledgerCallGroups(leases, true, 3);
    expect(groups.flat().sort((a, b) => a - b)).toEqual(leases.map((_, i) => i));
    for (const group of groups) {
      expect(group.length).toBeLessThanOrEqual(3);
      const slots = new Set(group.flatMap((i) => Object.values(ledgerKeys(namespace, leases[i])).map((key) => calculateSlot(key))));
      expect(slots.size).toBe(1);
    }
    // 5,000 leases in at most 64 calls when a call may take them all: not one call per lease.
    expect(ledgerCallGroups(leases, true).length).toBe(LEDGER_BUCKETS);
  });

  it('spreads the buckets evenly, and over every third of the slot space (3 primaries)', () => {
    const perBucket = new Array(LEDGER_BUCKETS).fill(0);
    for (const id of leases) perBucket[ledgerBucket(id)]++;
    for (const n of perBucket) expect(n).toBeGreaterThan(leases.length / LEDGER_BUCKETS / 2);
    const thirds = [0, 0, 0];
    for (let b = 0; b < LEDGER_BUCKETS; b++) thirds[Math.floor(calculateSlot(`b${b}`) / 5462)]++;
    for (const n of thirds) expect(n).toBeGreaterThan(LEDGER_BUCKETS / 5);
  });

  it('elsewhere (one server, Sentinel), batches as many leases per call as allowed', () => {
    expect(ledgerCallGroups(leases, false).map((g) => g.length)).toEqual([2_000, 2_000, 1_000]);
  });
});
