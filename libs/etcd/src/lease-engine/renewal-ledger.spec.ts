import calculateSlot from 'cluster-key-slot';
import { ledgerCallGroups, ledgerKeys } from './renewal-ledger';

describe('renewal ledger key layout', () => {
  const namespace = 'registry-gateway:v1:/registry/lease:';
  const leases = Array.from({ length: 5_000 }, (_, i) => String(7_587_000_000_000_000_000n + BigInt(i * 7919)));

  it("puts a lease's record and claim in one hash slot, the lease's own", () => {
    for (const id of leases.slice(0, 200)) {
      const { record, claim } = ledgerKeys(namespace, id);
      expect(record).toBe(`${namespace}{${id}}:r`);
      expect(calculateSlot(record)).toBe(calculateSlot(claim));
      expect(calculateSlot(record)).toBe(calculateSlot(id));
    }
  });

  it('on a Cluster, gives every call the keys of ONE slot (CROSSSLOT impossible) and spreads leases over many slots', () => {
    const groups = ledgerCallGroups(leases, true, 3);
    expect(groups.flat().sort((a, b) => a - b)).toEqual(leases.map((_, i) => i));
    for (const group of groups) {
      expect(group.length).toBeLessThanOrEqual(3);
      const slots = new Set(group.flatMap((i) => Object.values(ledgerKeys(namespace, leases[i])).map((key) => calculateSlot(key))));
      expect(slots.size).toBe(1);
    }
    const slots = new Set(leases.map((id) => calculateSlot(id)));
    expect(slots.size).toBeGreaterThan(4_000);
    // A 3-primary cluster splits the slots in thirds: each third holds about a third of the leases.
    const thirds = [0, 0, 0];
    for (const id of leases) thirds[Math.floor(calculateSlot(id) / 5462)]++;
    for (const n of thirds) expect(n).toBeGreaterThan(leases.length / 4);
  });

  it('elsewhere (one server, Sentinel), batches as many leases per call as allowed', () => {
    expect(ledgerCallGroups(leases, false).map((g) => g.length)).toEqual([2_000, 2_000, 1_000]);
  });
});
