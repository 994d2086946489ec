import { Singleflight } from '@app/concurrency';

/**
 * The lease class of an instance TTL: the smallest multiple of LEASE_TTL that is at least twice the
 * instance TTL. Twice, so that a silent instance is always expired by the gateway (at TTL + a pass) long
 * before etcd would drop its lease, and an etcd outage shorter than 2/3 of the class loses no key; a
 * multiple of LEASE_TTL, so that LEASE_TTL is the real unit of the backstop (every replica gone: keys of
 * instance TTLs up to LEASE_TTL/2 are gone within LEASE_TTL) and classes stay few (at most
 * 600 / LEASE_TTL for instance TTLs of 5-300 s). With the default 120 s: TTL <= 60 s -> 120 s leases,
 * <= 120 s -> 240 s, ..., <= 300 s -> 600 s (docs/shared-leases.md section 2).
 */
export function leaseClassTtl(instanceTtlSeconds: number, leaseTtlSeconds: number): number {
  return leaseTtlSeconds * Math.max(1, Math.ceil((2 * instanceTtlSeconds) / leaseTtlSeconds));
}

/** Where shared leases come from: a LeaseGrant (and, in the gateway, the lease record written with it). */
export interface SharedLeaseGrants {
  grant(classTtlSeconds: number): Promise<string>;
}

export interface SharedLeasePoolOptions {
  /** LEASE_TTL: the shortest lease class. */
  leaseTtlSeconds: number;
  /** LEASE_MAX_KEYS: keys per lease at most (reservations in flight included). */
  maxKeys: number;
  /**
   * Keys etcd holds on a lease, read from the InstanceDirectory (fed by the watch, so truthful after a
   * takeover or a restart); absent = the pool's own count (attached()/detached()).
   */
  countKeys?: (leaseId: string) => number;
  now?: () => number;
}

/** One lease this replica owns: what etcd holds on it and when etcd last confirmed it. */
export interface OwnedLease {
  readonly id: string;
  readonly classTtl: number;
  /** Keys etcd holds on it (from the watch: attached/detached). */
  keys: number;
  /** Registrations that took a place on it and have not been written (or given up) yet. */
  reserved: number;
  /** Epoch ms of the grant or the last renewal etcd answered with TTL > 0. */
  renewedAt: number;
}

/** A place on a lease for one registration: commit once its Put is sent, cancel if it is not. */
export interface LeasePlace {
  readonly leaseId: string;
  readonly classTtl: number;
  release(): void;
}

/**
 * The leases this replica owns, per lease class (pure bookkeeping: the runtime does the I/O). A
 * registration takes a place on the fullest lease of its class that has room (`place()`), so leases
 * fill one at a time and stay few (instances / LEASE_MAX_KEYS, plus one filling per class); only when
 * none has room is a lease granted, and concurrent registrations share that one LeaseGrant. Counts
 * include places taken and not yet written, so concurrent registrations never overshoot the cap.
 *
 * Renewals: `due(now)` lists the leases whose last confirmation is a third of their TTL old (a few per
 * class: tens of renewals per second for a million instances); `answered()` records etcd's answer, and a
 * TTL 0 answer removes the lease and returns it (the caller replaces it and re-puts its live instances).
 */
export class SharedLeasePool {
  private readonly leases = new Map<string, OwnedLease>();
  /** Per class, the lease registrations fill now: checked first, so a place costs O(1) until it is full. */
  private readonly filling = new Map<number, OwnedLease>();
  private readonly grants = new Singleflight<OwnedLease>();
  private readonly now: () => number;

  constructor(
    private readonly source: SharedLeaseGrants,
    private readonly options: SharedLeasePoolOptions,
  ) {
    if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) throw new Error(`LEASE_MAX_KEYS must be a positive integer: ${options.maxKeys}`);
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.leases.size;
  }

  get(leaseId: string): Readonly<OwnedLease> | undefined {
    return this.leases.get(leaseId);
  }

  /** A place for one instance of this TTL on a lease of its class; grants a lease only when none has room. */
  async place(instanceTtlSeconds: number): Promise<LeasePlace> {
    const classTtl = leaseClassTtl(instanceTtlSeconds, this.options.leaseTtlSeconds);
    for (;;) {
      const lease = this.roomiest(classTtl) ?? (await this.grants.run(String(classTtl), () => this.grant(classTtl)));
      // Waiters of one grant all come back here: each takes a place only if the lease still has room.
      if (this.leases.get(lease.id) !== lease || this.keysOf(lease) + lease.reserved >= this.options.maxKeys) continue;
      lease.reserved++;
      let released = false;
      return {
        leaseId: lease.id,
        classTtl,
        release: () => {
          if (released) return;
          released = true;
          lease.reserved--;
        },
      };
    }
  }

  /** The watch saw a key put on / removed from a lease (only owned leases are counted). */
  attached(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (lease) lease.keys++;
  }

  detached(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (lease && lease.keys > 0) lease.keys--;
  }

  /** Leases whose last confirmation is at least a third of their TTL old: renew them now. */
  due(now = this.now()): OwnedLease[] {
    return [...this.leases.values()].filter((lease) => now - lease.renewedAt >= (lease.classTtl * 1000) / 3);
  }

  /** etcd's answer to a renewal. TTL 0: the lease is gone; it is removed and returned. */
  answered(leaseId: string, ttlSeconds: number, now = this.now()): OwnedLease | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    if (ttlSeconds > 0) {
      lease.renewedAt = now;
      return undefined;
    }
    this.leases.delete(leaseId);
    return lease;
  }

  /** Leases with no key and no place taken, except the one a class is filling: revoke them (no keys, no permission checks, no lessor entry). */
  empty(): OwnedLease[] {
    return [...this.leases.values()].filter((lease) => this.keysOf(lease) === 0 && lease.reserved === 0 && this.roomiest(lease.classTtl) !== lease);
  }

  /** Every owned lease. */
  owned(): IterableIterator<Readonly<OwnedLease>> {
    return this.leases.values();
  }

  keysOf(lease: Readonly<OwnedLease>): number {
    return this.options.countKeys ? this.options.countKeys(lease.id) : lease.keys;
  }

  /** Stops owning a lease (revoked, or adopted by another replica). */
  forget(leaseId: string): void {
    this.leases.delete(leaseId);
  }

  /** Starts owning a lease granted elsewhere (a takeover), confirmed at `renewedAt`. */
  adopt(leaseId: string, classTtl: number, keys: number, renewedAt: number): void {
    this.leases.set(leaseId, { id: leaseId, classTtl, keys, reserved: 0, renewedAt });
  }

  /** The fullest lease of the class that still has room (leases fill one at a time). */
  private roomiest(classTtl: number): OwnedLease | undefined {
    const filling = this.filling.get(classTtl);
    if (filling && this.leases.get(filling.id) === filling && this.keysOf(filling) + filling.reserved < this.options.maxKeys) return filling;
    let best: OwnedLease | undefined;
    for (const lease of this.leases.values()) {
      if (lease.classTtl !== classTtl || this.keysOf(lease) + lease.reserved >= this.options.maxKeys) continue;
      if (!best || this.keysOf(lease) + lease.reserved > this.keysOf(best) + best.reserved) best = lease;
    }
    if (best) this.filling.set(classTtl, best);
    else this.filling.delete(classTtl);
    return best;
  }

  private async grant(classTtl: number): Promise<OwnedLease> {
    const id = await this.source.grant(classTtl);
    const lease: OwnedLease = { id, classTtl, keys: 0, reserved: 0, renewedAt: this.now() };
    this.leases.set(id, lease);
    return lease;
  }
}
