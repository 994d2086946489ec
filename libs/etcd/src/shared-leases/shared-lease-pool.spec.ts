import { leaseClassTtl, SharedLeasePool } from './shared-lease-pool';

/** Grants numbered from 1, resolved when the test says (`release()`), counted. */
function setup(maxKeys = 3) {
  let next = 1;
  let now = 1_000_000;
  const held: Array<() => void> = [];
  const granted: number[] = [];
  let hold = false;
  const pool = new SharedLeasePool(
    {
      grant: async (classTtl) => {
        granted.push(classTtl);
        if (hold) await new Promise<void>((r) => held.push(r));
        return String(next++);
      },
    },
    { leaseTtlSeconds: 120, maxKeys, now: () => now },
  );
  return {
    pool,
    granted,
    holdGrants: () => (hold = true),
    releaseGrants: () => {
      hold = false;
      for (const r of held.splice(0)) r();
    },
    advance: (ms: number) => (now += ms),
  };
}

describe('leaseClassTtl', () => {
  it('keeps the classes of the default LEASE_TTL 120: TTL <= 60 s -> 120 s, <= 120 -> 240 s, ..., <= 300 -> 600 s', () => {
    expect([5, 30, 60, 61, 120, 121, 300].map((ttl) => leaseClassTtl(ttl, 120))).toEqual([120, 120, 120, 240, 240, 360, 600]);
    // The formula before LEASE_TTL became the unit, for every instance TTL: production is unchanged.
    for (let ttl = 5; ttl <= 300; ttl++) expect(leaseClassTtl(ttl, 120)).toBe(Math.max(120, 2 * Math.ceil(ttl / 60) * 60));
  });

  it('makes LEASE_TTL the unit below 120 s too: TTL 5 on LEASE_TTL 30 gets 30 s leases, not 120 s', () => {
    expect([5, 15, 16, 30, 31, 60, 300].map((ttl) => leaseClassTtl(ttl, 30))).toEqual([30, 30, 60, 60, 90, 120, 600]);
    expect([5, 30, 300].map((ttl) => leaseClassTtl(ttl, 600))).toEqual([600, 600, 600]);
    expect(leaseClassTtl(300, 3600)).toBe(3600);
  });

  it('is, for every LEASE_TTL and instance TTL, the smallest multiple of LEASE_TTL that lasts 2 instance TTLs', () => {
    const wrong: string[] = [];
    // Above 600 s (2x the longest instance TTL) every class is LEASE_TTL itself: a few such values suffice.
    const leaseTtls = [...Array.from({ length: 571 }, (_, i) => 30 + i), 601, 1000, 3599, 3600];
    for (const lease of leaseTtls) {
      for (let ttl = 5; ttl <= 300; ttl++) {
        const cls = leaseClassTtl(ttl, lease);
        // 2x: the sweep deletes a silent instance (TTL + a pass) long before etcd would, and an etcd outage
        // shorter than 2/3 of the class loses nothing; the backstop (every replica gone) is the class itself.
        const ok = cls % lease === 0 && cls >= 2 * ttl && cls - lease < 2 * ttl && cls >= ttl + 5 && (2 * ttl > lease || cls === lease);
        if (!ok) wrong.push(`LEASE_TTL ${lease}, TTL ${ttl}: ${cls}`);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});

describe('SharedLeasePool', () => {
  it('puts at most LEASE_MAX_KEYS keys on one lease, then grants the next (places in flight count)', async () => {
    const { pool, granted } = setup(3);
    const places = [];
    for (let i = 0; i < 7; i++) places.push(await pool.place(30));
    expect(places.map((p) => p.leaseId)).toEqual(['1', '1', '1', '2', '2', '2', '3']);
    expect(granted).toEqual([120, 120, 120]);
  });

  it('concurrent registrations onto a full class share one LeaseGrant, and none overshoots the cap', async () => {
    const { pool, granted, holdGrants, releaseGrants } = setup(3);
    holdGrants();
    const pending = Array.from({ length: 7 }, () => pool.place(30));
    await Promise.resolve();
    expect(granted).toHaveLength(1);
    releaseGrants();
    // The first grant serves 3; the 4 left over share the next grant, and so on.
    for (let i = 0; i < 5 && granted.length < 3; i++) {
      await new Promise((r) => setImmediate(r));
      releaseGrants();
    }
    const places = await Promise.all(pending);
    const perLease = new Map<string, number>();
    for (const p of places) perLease.set(p.leaseId, (perLease.get(p.leaseId) ?? 0) + 1);
    expect([...perLease.values()].every((n) => n <= 3)).toBe(true);
    expect(granted).toHaveLength(3);
  });

  it('a released place (a registration that was not written) frees its room; keys come from the watch', async () => {
    const { pool } = setup(2);
    const a = await pool.place(30);
    const b = await pool.place(30);
    b.release();
    b.release(); // twice is once
    pool.attached(a.leaseId);
    a.release();
    expect(pool.get(a.leaseId)).toMatchObject({ keys: 1, reserved: 0 });
    expect((await pool.place(30)).leaseId).toBe(a.leaseId);
  });

  it('keeps TTL classes apart', async () => {
    const { pool, granted } = setup(10);
    expect((await pool.place(30)).leaseId).not.toBe((await pool.place(90)).leaseId);
    expect(granted).toEqual([120, 240]);
  });

  it('lists a lease as due for renewal a third of its TTL after its last confirmation, and a TTL 0 answer removes it', async () => {
    const { pool, advance } = setup();
    const { leaseId } = await pool.place(30);
    expect(pool.due()).toEqual([]);
    advance(40_000);
    expect(pool.due().map((l) => l.id)).toEqual([leaseId]);
    expect(pool.answered(leaseId, 120)).toBeUndefined();
    expect(pool.due()).toEqual([]);
    advance(40_000);
    expect(pool.answered(leaseId, 0)).toMatchObject({ id: leaseId, classTtl: 120 });
    expect(pool.size).toBe(0);
    expect(pool.answered(leaseId, 0)).toBeUndefined();
  });

  it('offers for revocation the leases left without keys, except the one its class is filling', async () => {
    const { pool } = setup(2);
    const fill = async () => {
      const place = await pool.place(30);
      pool.attached(place.leaseId);
      place.release();
      return place.leaseId;
    };
    const a = [await fill(), await fill()];
    const b = await fill();
    expect(a).toEqual(['1', '1']);
    expect(b).toBe('2');
    expect(pool.empty()).toEqual([]);
    // Lease 1's instances all left (deregistered, expired): it is empty, lease 2 is the one being filled.
    pool.detached('1');
    pool.detached('1');
    expect(pool.empty().map((l) => l.id)).toEqual(['1']);
    // Lease 2 emptied too, lease 1 forgotten (revoked): lease 2 is the filler, kept.
    pool.forget('1');
    pool.detached('2');
    expect(pool.empty()).toEqual([]);
  });
});
