import type { RenewalTransport } from '../keepalive-streams';

export interface LegacyLeaseRenewalsSources {
  /** The lease the directory holds for `key` now (etcd's int64); undefined = no such instance any more. */
  leaseOf(key: string): bigint | undefined;
}

export interface LegacyLeaseRenewalsOptions {
  /**
   * Legacy leases tracked at most. Only instances heard here and waiting for their move are tracked,
   * so this is never reached in a rollout of a fleet the previous release could hold; beyond it a
   * newly heard legacy instance is left to its old rule (its lease lapses unless moved), and it is logged.
   */
  maxLeases?: number;
  /**
   * Renewals sent and not answered yet, at most: a burst (a replica hearing thousands of legacy pods
   * for the first time, streams back after an etcd outage) goes out at the pace etcd answers, the
   * leases renewed longest ago first. The previous release's renewal engine had the same kind of bound.
   */
  maxInFlight?: number;
  tickMs?: number;
  now?: () => number;
}

export interface LegacyLeaseRenewalsHooks {
  log(level: 'info' | 'warn', message: string): void;
}

export interface LegacyRenewalStats {
  /** Legacy leases renewed here now (instances heard within their TTL, not moved yet). */
  leases: number;
  /** Renewals by result: sent on a stream, confirmed (TTL > 0), lost (TTL 0: moved and revoked, or lapsed). */
  sent: number;
  confirmed: number;
  lost: number;
  /** Leases given up because their pod was not heard here for the lease's TTL (left to lapse). */
  silent: number;
  /** Legacy instances heard while `maxLeases` were tracked (not renewed here). */
  refused: number;
}

/** A renewal unanswered for this long is sent again (etcd answers in milliseconds; a stream may have broken). */
const RESEND_AFTER_MS = 2_000;

/** Before etcd's first answer the lease's TTL is unknown: an entry is kept at most the longest instance TTL. */
const LONGEST_TTL_MS = 300_000;

interface LegacyLease {
  readonly key: string;
  readonly lease: bigint;
  /** When this replica last heard the pod, and sent / got confirmed its last renewal (epoch ms; 0 = never). */
  heardAt: number;
  sentAt: number;
  renewedAt: number;
  /** The lease's TTL as etcd answered it (the previous release granted the instance's TTL); 0 = no answer yet. */
  ttlMs: number;
}

/**
 * Keeps the one-key leases of the previous release (one lease per instance) alive while their instances
 * wait to be moved onto shared leases (docs/shared-leases.md section 5): the moves are paced
 * (MIGRATIONS_PER_SECOND) and happen at a heartbeat, so a pod whose heartbeat finds the budget spent,
 * or whose heartbeat interval is long, could otherwise outlive its lease once the replicas of the
 * previous release, which renewed it, are gone.
 *
 * Only instances heard here are renewed, by the previous release's rule: a lease is renewed at once
 * the first time its pod is heard here (when it was renewed last is unknown), then once a third of its
 * TTL after the last renewal if the pod was heard since. Every heartbeat is thus followed by a renewal
 * within TTL/3, so the lease outlives the pod's last heartbeat by its TTL at least; renewals never
 * outnumber heartbeats. A lease whose pod is not heard here for its TTL is dropped and left to lapse:
 * that is its expiry, as before. One that moved (the directory shows another lease for its key) or is
 * gone in etcd (TTL 0: revoked after its move) is dropped too.
 *
 * Renewals go over the replica's KeepAliveStreams (etcd3's Lease class would open a stream per lease).
 * Cost: O(legacy instances heard here and not moved), nothing at all once the migration is done: the
 * timer runs only while a lease is tracked. Deleted by the release after the one that moves legacy
 * instances (registry_legacy_leases 0 everywhere).
 */
export class LegacyLeaseRenewals {
  private readonly leases = new Map<bigint, LegacyLease>();
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private refusedLogged = false;
  private startLogged = false;
  private readonly now: () => number;
  private readonly maxLeases: number;
  private readonly maxInFlight: number;
  private readonly counters = { sent: 0, confirmed: 0, lost: 0, silent: 0, refused: 0 };

  constructor(
    private readonly transport: RenewalTransport,
    private readonly sources: LegacyLeaseRenewalsSources,
    private readonly options: LegacyLeaseRenewalsOptions,
    private readonly hooks: LegacyLeaseRenewalsHooks,
  ) {
    this.now = options.now ?? Date.now;
    this.maxLeases = options.maxLeases ?? 200_000;
    this.maxInFlight = options.maxInFlight ?? 1_000;
  }

  get stats(): LegacyRenewalStats {
    return { leases: this.leases.size, ...this.counters };
  }

  /** The pod of a legacy instance (its key is on `lease`, which has no lease record) was heard here and is not being moved now. */
  heard(key: string, lease: bigint): void {
    if (this.stopped) return;
    const now = this.now();
    let entry = this.leases.get(lease);
    if (!entry) {
      if (this.leases.size >= this.maxLeases) {
        this.counters.refused++;
        if (!this.refusedLogged) this.hooks.log('warn', `${this.leases.size} legacy leases renewed here already; ${key} is left to its lease until its move`);
        this.refusedLogged = true;
        return;
      }
      entry = { key, lease, heardAt: now, sentAt: 0, renewedAt: 0, ttlMs: 0 };
      this.leases.set(lease, entry);
      if (!this.startLogged) this.hooks.log('info', 'renewing the one-key leases of legacy instances heard here until they move onto shared leases');
      this.startLogged = true;
      this.schedule();
    }
    entry.heardAt = now;
    // A long heartbeat interval: renew at the heartbeat, not a tick later.
    if (!entry.sentAt && this.due(entry, now) && this.inFlight < this.maxInFlight) this.send(entry, now);
  }

  /** etcd's answer for a lease SharedLeases does not own; false when it is not one of these either. */
  answered(leaseId: string, ttlSeconds: number): boolean {
    let lease: bigint;
    try {
      lease = BigInt(leaseId);
    } catch {
      return false;
    }
    const entry = this.leases.get(lease);
    if (!entry) return false;
    if (entry.sentAt) this.inFlight--;
    if (ttlSeconds <= 0) {
      // Revoked by its move (here or on another replica), or it lapsed before anyone renewed it.
      this.counters.lost++;
      this.leases.delete(lease);
      return true;
    }
    this.counters.confirmed++;
    entry.renewedAt = entry.sentAt || this.now();
    entry.sentAt = 0;
    entry.ttlMs = ttlSeconds * 1000;
    return true;
  }

  /** One timer turn: drops what moved or went silent, renews what is due (oldest renewal first), re-sends what went unanswered. */
  tick(now = this.now()): void {
    const due: LegacyLease[] = [];
    for (const entry of this.leases.values()) {
      if (this.sources.leaseOf(entry.key) !== entry.lease) {
        this.drop(entry);
        continue;
      }
      if (now - entry.heardAt > (entry.ttlMs || LONGEST_TTL_MS)) {
        this.counters.silent++;
        this.drop(entry);
        continue;
      }
      if (entry.sentAt) {
        if (now - entry.sentAt < RESEND_AFTER_MS) continue;
        entry.sentAt = 0;
        this.inFlight--;
      }
      if (this.due(entry, now)) due.push(entry);
    }
    due.sort((a, b) => a.renewedAt - b.renewedAt);
    for (const entry of due) {
      if (this.inFlight >= this.maxInFlight) break;
      this.send(entry, now);
    }
    if (this.leases.size === 0) this.unschedule();
  }

  /** Stops renewing (shutdown); the leases are left to lapse unless another replica hears their pods. */
  orphan(): void {
    this.stopped = true;
    this.unschedule();
    this.leases.clear();
    this.inFlight = 0;
  }

  /** Never renewed here (its last renewal is unknown: now), or heard since the last renewal and a third of the TTL old. */
  private due(entry: LegacyLease, now: number): boolean {
    return entry.renewedAt === 0 || (entry.heardAt > entry.renewedAt && now - entry.renewedAt >= entry.ttlMs / 3);
  }

  private send(entry: LegacyLease, now: number): void {
    const streams = Math.max(1, this.transport.streamCount);
    if (this.transport.send(String(entry.lease), Number(entry.lease % BigInt(streams))) < 0) return;
    entry.sentAt = now;
    this.inFlight++;
    this.counters.sent++;
  }

  private drop(entry: LegacyLease): void {
    if (entry.sentAt) this.inFlight--;
    this.leases.delete(entry.lease);
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.tick(), this.options.tickMs ?? 500);
    this.timer.unref();
  }

  private unschedule(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
