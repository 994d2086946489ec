import type { EtcdConnection } from '../etcd-connection';
import { KeepAliveStreams, RenewalTransport } from '../keepalive-streams';
import type { RegistryStore, StoredRange } from '../registry-store';
import type { GatewayEvent } from '../registry-watch';
import { instanceKeyHash } from '../liveness/heard-sets';
import { LeasePlace, leaseClassTtl, OwnedLease, SharedLeasePool } from './shared-lease-pool';

/** What `<prefix>gateway/leases/<id>` says, and the revision an adopter and the expiry sweep compare. */
export interface LeaseRecord {
  owner: string;
  classTtl: number;
  modRevision: string;
}

export interface SharedLeasesOptions {
  replicaId: string;
  /** LEASE_TTL: the shortest lease class, seconds. */
  leaseTtlSeconds: number;
  /** LEASE_MAX_KEYS. */
  maxKeys: number;
  /** Keys the directory holds on a lease (the pool's counts). */
  countKeys(leaseId: string): number;
  /** How often due renewals, empty leases and ownerless leases are looked at. */
  tickMs?: number;
  now?: () => number;
}

export interface SharedLeasesHooks {
  /** etcd answered TTL 0 for an owned lease (expired during an outage, or revoked): re-put its live instances. */
  leaseLost(lease: Readonly<OwnedLease>): void;
  /** etcd's answer for a lease renewed on these streams by someone else (LegacyLeaseRenewals). */
  unownedAnswer?(leaseId: string, ttlSeconds: number): void;
  log(level: 'info' | 'warn', message: string): void;
}

export interface SharedLeaseStats {
  /** Leases this replica owns (renews), and the keys on them. */
  owned: number;
  keys: number;
  granted: number;
  adopted: number;
  revoked: number;
  /** Renewals by result: sent on a stream, confirmed (TTL > 0), lost (TTL 0). */
  sent: number;
  confirmed: number;
  lost: number;
  /** Owned leases whose renewal is due and unconfirmed, and how long the oldest has waited past due, ms. */
  backlog: number;
  oldestDueMs: number;
  liveStreams: number;
  totalStreams: number;
  lastAnswerAt: number;
}

/**
 * An owner must be absent this long before its leases are adopted: a replica that just started may
 * grant its first lease a moment before its presence key is written. Far inside LEASE_TTL/3 (40 s).
 */
export const ADOPT_GRACE_MS = 3_000;

/** How often due renewals, empty leases and ownerless leases are looked at, by default. */
const TICK_MS = 1_000;

/**
 * The shortest LEASE_TTL: a dead owner's leases must outlive their takeover. A lease is renewed once a
 * third of its class has passed (checked every tick), so when its owner dies it has at least
 * 2/3 x class - 1 s left; the survivors renew it once the owner's presence key has lapsed
 * (PRESENCE_TTL_SECONDS + etcd's 0.5 s lessor pass), ADOPT_GRACE_MS has passed and a tick came: <= 14.5 s
 * after the death. 30 s leaves 19 s (4.5 s to spare); below ~24 s a SIGKILLed replica's leases would
 * lapse before anyone adopts them, and their instances with them.
 */
export const MIN_LEASE_TTL_SECONDS = 30;

/** A renewal unanswered for this long is sent again (etcd answers in milliseconds; a stream may have broken). */
const RESEND_AFTER_MS = 2_000;

/**
 * The shared leases of one replica, with their I/O: places registrations (SharedLeasePool), grants a
 * lease together with its record, renews each owned lease once per classTtl/3 on KeepAliveStreams (on
 * this thread: tens of renewals per second for a million instances need no worker), revokes leases left
 * without keys, and takes over the leases of replicas whose presence key is gone.
 *
 * It learns every lease record and every present replica from the registry watch (applyGatewayEvents),
 * so ownership is cluster-wide truthful: a record naming another owner for a lease owned here (this
 * replica was frozen and someone adopted it) makes it stop renewing that lease at once.
 *
 * orphan() (shutdown) stops renewing and leaves the leases to the survivors; it never revokes a lease.
 */
export class SharedLeases {
  readonly pool: SharedLeasePool;
  private readonly streams: KeepAliveStreams;
  private readonly records = new Map<string, LeaseRecord>();
  /** The same leases as etcd's int64: the heartbeat path asks "shared or legacy?" without building a string. */
  private readonly recordIds = new Set<bigint>();
  private readonly replicas = new Set<string>();
  /** Per owned lease, when this replica became responsible for it (grant or adoption). */
  private readonly ownedSince = new Map<string, number>();
  private readonly sentAt = new Map<string, number>();
  private readonly adopting = new Set<string>();
  private readonly revoking = new Set<string>();
  /** Owned leases etcd refused a put onto, waiting for their renewal answer (see invalid()). */
  private readonly suspects = new Map<string, { classTtl: number; since: number }>();
  /** Owners named by a record and not present, since when (this replica's clock). */
  private readonly absentSince = new Map<string, number>();
  private gatewaySynced = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly counters = { granted: 0, adopted: 0, revoked: 0, sent: 0, confirmed: 0, lost: 0 };

  constructor(
    private readonly store: RegistryStore,
    connections: EtcdConnection[],
    private readonly options: SharedLeasesOptions,
    private readonly hooks: SharedLeasesHooks,
  ) {
    if (!Number.isInteger(options.leaseTtlSeconds) || options.leaseTtlSeconds < MIN_LEASE_TTL_SECONDS) {
      throw new Error(`LEASE_TTL must be an integer of at least ${MIN_LEASE_TTL_SECONDS} s: ${options.leaseTtlSeconds}`);
    }
    this.now = options.now ?? Date.now;
    this.pool = new SharedLeasePool(
      {
        grant: async (classTtl) => {
          const { leaseId, recordRevision } = await store.grantSharedLease(classTtl, options.replicaId);
          this.counters.granted++;
          // The watch brings the record too; knowing it now lets the sweep fence on it at once.
          if (!this.records.has(leaseId)) this.setRecord(leaseId, { owner: options.replicaId, classTtl, modRevision: recordRevision });
          this.ownedSince.set(leaseId, this.now());
          return leaseId;
        },
      },
      { leaseTtlSeconds: options.leaseTtlSeconds, maxKeys: options.maxKeys, countKeys: options.countKeys, now: this.now },
    );
    this.streams = new KeepAliveStreams(connections, {
      renewalAnswered: (leaseId, ttl) => this.answered(leaseId, ttl),
      // Renewals in flight on a broken stream are sent again after RESEND_AFTER_MS.
      streamReset: () => undefined,
    });
  }

  start(): void {
    this.streams.start();
    this.timer ??= setInterval(() => this.tick(), this.options.tickMs ?? TICK_MS);
    this.timer.unref();
  }

  /** Stops renewing; the leases stay in etcd for the survivors to adopt (never revoked here). */
  orphan(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.streams.close();
  }

  /** A place for one instance of this TTL (a lease granted only when none has room). */
  place(instanceTtlSeconds: number): Promise<LeasePlace> {
    return this.pool.place(instanceTtlSeconds);
  }

  classTtl(instanceTtlSeconds: number): number {
    return leaseClassTtl(instanceTtlSeconds, this.options.leaseTtlSeconds);
  }

  /** The record of a shared lease (any replica's); undefined for a lease without one (legacy, or unknown yet). */
  record(leaseId: string): Readonly<LeaseRecord> | undefined {
    return this.records.get(leaseId);
  }

  /** Whether `lease` (as the directory holds it) is a shared lease with a record. */
  hasRecord(lease: bigint): boolean {
    return this.recordIds.has(lease);
  }

  private setRecord(leaseId: string, record: LeaseRecord): void {
    this.records.set(leaseId, record);
    this.recordIds.add(BigInt(leaseId));
  }

  /** The gateway's records have been read once: a lease without a record is then known to be legacy. */
  get recordsKnown(): boolean {
    return this.gatewaySynced;
  }

  owns(leaseId: string): boolean {
    return this.pool.get(leaseId) !== undefined;
  }

  /** Owned lease ids. */
  ownedIds(): Set<string> {
    return new Set([...this.pool.owned()].map((lease) => lease.id));
  }

  /** When this replica became responsible for `leaseId` (0 = not owned). */
  responsibleSince(leaseId: string): number {
    return this.ownedSince.get(leaseId) ?? 0;
  }

  /** Replicas whose presence key is in etcd (this one included once its key is written). */
  presentReplicas(): string[] {
    return [...this.replicas];
  }

  /**
   * etcd refused a Txn with a put onto `leaseId` (lease not found; a Txn does not say which of its leases):
   * stop placing onto it and ask etcd at once. A TTL > 0 answer takes it back (it was another lease of
   * the Txn); TTL 0 is a loss like any other.
   */
  invalid(leaseId: string): void {
    const lease = this.pool.get(leaseId);
    if (!lease) return;
    this.suspects.set(leaseId, { classTtl: lease.classTtl, since: this.ownedSince.get(leaseId) ?? this.now() });
    this.pool.forget(leaseId);
    this.renew(leaseId, this.now(), true);
  }

  stats(now = this.now()): SharedLeaseStats {
    let keys = 0;
    let backlog = 0;
    let oldestDueMs = 0;
    for (const lease of this.pool.owned()) {
      keys += this.pool.keysOf(lease);
      const overdue = now - lease.renewedAt - (lease.classTtl * 1000) / 3;
      if (overdue > RESEND_AFTER_MS) {
        backlog++;
        oldestDueMs = Math.max(oldestDueMs, overdue);
      }
    }
    return {
      owned: this.pool.size,
      keys,
      ...this.counters,
      backlog,
      oldestDueMs,
      liveStreams: this.streams.liveCount(),
      totalStreams: this.streams.streamCount,
      lastAnswerAt: this.streams.lastAnswerAt,
    };
  }

  /**
   * The keepalive streams, for renewals of leases this replica does not own (LegacyLeaseRenewals):
   * their answers come back through `hooks.unownedAnswer`. No second set of streams.
   */
  get transport(): RenewalTransport {
    return this.streams;
  }

  /** The highest revision a renewal answer carried (the watch's lag check). */
  get revisionSeen(): number {
    return this.streams.revisionSeen;
  }

  applyGatewayEvents(events: readonly GatewayEvent[]): void {
    for (const event of events) {
      if (event.kind === 'replica') {
        if (event.type === 'put') this.replicas.add(event.id);
        else this.replicas.delete(event.id);
        continue;
      }
      if (event.type === 'delete') {
        this.records.delete(event.id);
        this.recordIds.delete(BigInt(event.id));
        // The record lives on its lease: gone without our revoke means the lease is likely gone (revoked,
        // expired). Ask etcd now rather than at the next renewal: a TTL 0 answer starts the re-put.
        if (this.pool.get(event.id) && !this.revoking.has(event.id)) this.renew(event.id, this.now(), true);
        continue;
      }
      const record = parseRecord(event.value, String(event.revision));
      if (!record) continue;
      this.setRecord(event.id, record);
      if (record.owner !== this.options.replicaId && this.pool.get(event.id)) {
        // Adopted by another replica while this one was frozen (or slow): it renews and expires it now.
        this.hooks.log('warn', `shared lease ${event.id} is now owned by replica ${record.owner}; no longer renewing it here`);
        this.pool.forget(event.id);
        this.ownedSince.delete(event.id);
      }
    }
    if (events.some((e) => e.kind === 'replica' && e.type === 'delete')) this.adoptOrphans();
  }

  resyncGateway(range: StoredRange): void {
    this.records.clear();
    this.recordIds.clear();
    this.replicas.clear();
    const events: GatewayEvent[] = [];
    for (const item of range.items) {
      const parsed = this.store.layout.parseGatewayKey(item.key);
      if (parsed) events.push({ type: 'put', kind: parsed.kind, id: parsed.id, value: item.value, revision: Number(item.modRevision) });
    }
    this.applyGatewayEvents(events);
    this.gatewaySynced = true;
  }

  /** One timer turn: renew what is due, revoke empty leases, adopt leases nobody present owns. */
  tick(now = this.now()): void {
    for (const lease of this.pool.due(now)) this.renew(lease.id, now);
    for (const leaseId of this.suspects.keys()) this.renew(leaseId, now);
    for (const lease of this.pool.empty()) this.revoke(lease.id);
    this.adoptOrphans();
  }

  private renew(leaseId: string, now: number, urgent = false): void {
    const sent = this.sentAt.get(leaseId);
    if (!urgent && sent !== undefined && now - sent < RESEND_AFTER_MS) return;
    if (this.streams.send(leaseId, Number(BigInt(leaseId) % BigInt(Math.max(1, this.streams.streamCount)))) < 0) return;
    this.sentAt.set(leaseId, now);
    this.counters.sent++;
  }

  private answered(leaseId: string, ttlSeconds: number): void {
    this.sentAt.delete(leaseId);
    const suspect = this.suspects.get(leaseId);
    if (!suspect && !this.pool.get(leaseId)) {
      this.hooks.unownedAnswer?.(leaseId, ttlSeconds);
      return;
    }
    if (suspect) {
      this.suspects.delete(leaseId);
      if (ttlSeconds > 0) {
        this.pool.adopt(leaseId, suspect.classTtl, 0, this.now());
        return;
      }
      this.pool.adopt(leaseId, suspect.classTtl, 0, 0);
    }
    if (ttlSeconds > 0) {
      if (this.pool.get(leaseId)) this.counters.confirmed++;
      this.pool.answered(leaseId, ttlSeconds);
      return;
    }
    const lost = this.pool.answered(leaseId, 0);
    if (!lost) return;
    this.counters.lost++;
    this.ownedSince.delete(leaseId);
    this.hooks.log('warn', `shared lease ${leaseId} (class ${lost.classTtl} s) is gone in etcd (expired or revoked); re-writing its live instances on another lease`);
    this.hooks.leaseLost(lost);
  }

  private revoke(leaseId: string): void {
    if (this.revoking.has(leaseId)) return;
    this.revoking.add(leaseId);
    // No keys left: revoking it costs etcd nothing and leaves no lessor entry (its record goes with it).
    this.pool.forget(leaseId);
    this.ownedSince.delete(leaseId);
    this.counters.revoked++;
    this.store
      .revokeLease(leaseId)
      .catch(() => undefined)
      .finally(() => this.revoking.delete(leaseId));
  }

  /**
   * Leases whose owner has no presence key: the present replicas split them by hash(leaseId) mod their
   * number (every replica computes the same split from the same watch), each adopting its share with a
   * compare-Txn on the record (exactly one wins) and renewing it at once.
   */
  private adoptOrphans(): void {
    if (!this.gatewaySynced) return;
    const now = this.now();
    const survivors = [...new Set([...this.replicas, this.options.replicaId])].sort();
    const self = survivors.indexOf(this.options.replicaId);
    const absent = new Set<string>();
    for (const [leaseId, record] of this.records) {
      if (record.owner === this.options.replicaId || this.replicas.has(record.owner)) continue;
      absent.add(record.owner);
      const since = this.absentSince.get(record.owner) ?? this.absentSince.set(record.owner, now).get(record.owner)!;
      if (now - since < ADOPT_GRACE_MS || this.adopting.has(leaseId) || this.pool.get(leaseId)) continue;
      if (instanceKeyHash(leaseId)[0] % survivors.length !== self) continue;
      this.adopting.add(leaseId);
      this.store
        .adoptSharedLease(leaseId, record.classTtl, this.options.replicaId, record.modRevision)
        .then((revision) => {
          if (!revision) return;
          this.setRecord(leaseId, { owner: this.options.replicaId, classTtl: record.classTtl, modRevision: revision });
          // Its last renewal may be classTtl/3 old: renewedAt 0 makes it due now.
          this.pool.adopt(leaseId, record.classTtl, 0, 0);
          this.ownedSince.set(leaseId, this.now());
          this.counters.adopted++;
          this.hooks.log('info', `adopted shared lease ${leaseId} of replica ${record.owner} (gone)`);
          this.renew(leaseId, this.now());
        })
        .catch((err: Error) => this.hooks.log('warn', `adopting shared lease ${leaseId} failed (${err.message}); retrying`))
        .finally(() => this.adopting.delete(leaseId));
    }
    for (const owner of this.absentSince.keys()) if (!absent.has(owner)) this.absentSince.delete(owner);
  }
}

function parseRecord(value: string | undefined, modRevision: string): LeaseRecord | undefined {
  try {
    const parsed = JSON.parse(value ?? '') as { owner?: unknown; classTtl?: unknown };
    if (typeof parsed.owner !== 'string' || typeof parsed.classTtl !== 'number') return undefined;
    return { owner: parsed.owner, classTtl: parsed.classTtl, modRevision };
  } catch {
    return undefined;
  }
}
