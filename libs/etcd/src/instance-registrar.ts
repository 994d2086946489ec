import { EtcdLeaseInvalidError } from 'etcd3';
import { BoundedQueue, QueueFullError, Singleflight, TokenBucket } from '@app/concurrency';
import {
  decodeRecord,
  encodeRecord,
  InstanceNotFoundError,
  InstanceRecord,
  InstanceRegistration,
  InstanceStatus,
  KeyLayout,
  OverloadedError,
  UpdateConflictError,
} from '@app/registry';
import { etcdFailure, isEtcdUnavailable } from './etcd-errors';
import { PutBatcher, PutBatcherStats } from './put-batcher';
import { RegistryStore, StoredInstance } from './registry-store';
import type { LivenessTable } from './shared-leases/expiry-sweep';
import type { LeasePlace, OwnedLease } from './shared-leases/shared-lease-pool';

/** What a heartbeat did: the instance is known and marked heard. */
export type HeartbeatOutcome = 'accepted';

/** The shared leases, as the registrar uses them (SharedLeases in the runtime). */
export interface RegistrarLeases {
  place(instanceTtlSeconds: number): Promise<LeasePlace>;
  classTtl(instanceTtlSeconds: number): number;
  /** The lease's record, if it is a shared lease (any replica's); undefined = legacy or unknown. */
  record(leaseId: string): { classTtl: number } | undefined;
  /** Whether a lease (etcd's int64, as the directory holds it) has a record: shared, not legacy. */
  hasRecord(lease: bigint): boolean;
  /** The records have been read once (a lease without one is then legacy). */
  readonly recordsKnown: boolean;
  /** etcd refused a put onto this lease: stop placing onto it. */
  invalid(leaseId: string): void;
}

export interface InstanceRegistrarOptions {
  /** etcd writes (deregister, update, re-puts) running at once, and waiting beyond that. */
  writeConcurrency: number;
  writeQueueCapacity: number;
  /**
   * Puts of concurrent registrations sent as one etcd Txn (PutBatcher): at most this many per Txn
   * (<= etcd's --max-txn-ops, 128 by default) and this many key+value bytes (< --max-request-bytes).
   */
  putBatch?: { maxSize: number; maxBytes: number };
  /**
   * Admission control: a reason to refuse NEW registrations right now (the HTTP thread saturated), or
   * undefined. Heartbeats, re-puts and deregistrations are never refused by it.
   */
  shedRegistrations?: () => string | undefined;
  /** What the watch knows about every instance (InstanceDirectory). */
  directory: {
    current(): boolean;
    has(key: string): boolean;
    /** The instance's lease as etcd's int64, without building an object (the heartbeat path). */
    leaseOf(key: string): bigint | undefined;
    get(key: string): StoredInstance | undefined;
    written(key: string, value: string, leaseId: string, now: number, modRevision?: string): string;
    /** What a key held if it was deleted within its TTL right after an etcd outage. */
    recentlyDeleted(key: string): { value: string } | undefined;
    /** Instances on `leaseId` (rows, and keys etcd deleted lately with it). */
    instancesOn(leaseId: string): Array<{ key: string; value: string }>;
  };
  /** This replica's last-heard marks (read by the expiry sweep). */
  liveness: LivenessTable;
  /**
   * Whether any replica heard `key` within `ttlMs` (this replica's marks and the heard-sets): what a
   * lost lease's re-put keeps. Absent = this replica's marks only.
   */
  heardAnywhere?(key: string, ttlMs: number, now: number): boolean;
  /**
   * Resolves once this replica's lookups show what etcd held at `revision` (the watch reached it), or
   * gives up after a bound: a registration is answered once it is visible here (read-your-writes).
   */
  visible?(revision: string): Promise<unknown>;
  /** HeardSetPublisher.heard: other replicas' sweeps learn this pod is alive. Hot path: cheap. */
  heard?(key: string, previouslyHeardAt: number): void;
  /**
   * Legacy instances (one lease per instance, written by the previous release) moved onto shared leases
   * at their next heartbeat, per second at most (MIGRATIONS_PER_SECOND): no mass rewrite at start.
   */
  migrationsPerSecond: number;
  /**
   * A legacy instance (its key on `lease`, a lease without a record) was heard and is not moved at this
   * heartbeat (budget spent, a move in flight failed): its one-key lease must be renewed until its move
   * (LegacyLeaseRenewals). Absent = nobody renews it here.
   */
  legacyHeard?(key: string, lease: bigint): void;
  now?: () => number;
}

/** etcd's defaults allow 128 operations and 1.5 MiB per request; these stay well inside both. */
export const DEFAULT_PUT_BATCH = { maxSize: 100, maxBytes: 512 * 1024 };

export interface RegistrarHooks {
  registered?(created: boolean): void;
  /** A registration was refused by admission control. */
  shed?(reason: string): void;
  deregistered?(): void;
  /** Instances of a lost lease written again on another (`ok`), already there (`adopted`), or failed. */
  regranted?(result: 'ok' | 'error' | 'adopted', count: number): void;
  /** A legacy instance moved onto a shared lease. */
  migrated?(): void;
  heartbeat?(outcome: HeartbeatOutcome | 'not-found'): void;
  error?(message: string, err: unknown): void;
}

export interface RegistrationResult {
  record: InstanceRecord;
  leaseId: string;
  revision: string;
  created: boolean;
}

/**
 * Register, heartbeat and deregister, in shared-lease terms (docs/shared-leases.md): a registration is
 * one Put (batched into Txns) on a shared lease that already exists; a heartbeat is a timestamp in
 * memory (LivenessTable) and a mark for the heard-sets; expiry is the ExpirySweep's. Any replica can take
 * any call: an instance this replica has not written is found in the InstanceDirectory.
 */
export class InstanceRegistrar {
  private readonly writes: BoundedQueue;
  private readonly lookups = new Singleflight<StoredInstance | undefined>();
  private readonly now: () => number;
  private readonly puts: PutBatcher;
  private readonly migrations: TokenBucket;
  private readonly migrating = new Set<string>();
  /** Re-puts in flight by key, and those waiting for the end of the turn (see rewrite()). */
  private readonly rewriting = new Map<string, Promise<boolean>>();
  private rewriteQueue: Array<{ key: string; value: string; ttl: number; resolve(written: boolean): void; reject(err: unknown): void }> = [];
  private rewriteScheduled = false;

  constructor(
    private readonly store: RegistryStore,
    private readonly leases: RegistrarLeases,
    private readonly options: InstanceRegistrarOptions,
    private readonly hooks: RegistrarHooks = {},
  ) {
    this.now = options.now ?? Date.now;
    this.writes = new BoundedQueue(options.writeConcurrency, options.writeQueueCapacity);
    this.migrations = new TokenBucket(options.migrationsPerSecond, options.migrationsPerSecond, this.now());
    this.puts = new PutBatcher(
      { putMany: (items) => store.putMany(items) },
      {
        maxBatchSize: options.putBatch?.maxSize ?? DEFAULT_PUT_BATCH.maxSize,
        maxBatchBytes: options.putBatch?.maxBytes ?? DEFAULT_PUT_BATCH.maxBytes,
        // Two Txns out at once: a steady stream of registrations goes out in batches of what arrived
        // during the last round trip, a lone one at once.
        maxInFlight: 2,
        // WRITE_QUEUE_CAPACITY bounds the registrations waiting for a Txn while etcd is busy (503 beyond).
        maxWaiting: options.writeQueueCapacity,
        // A full queue refuses single Txns just the same: fail the batch at once (503), no fallback.
        failsWholeBatch: (err) => err instanceof QueueFullError || isEtcdUnavailable(err),
      },
    );
  }

  /** Registration puts sent and the etcd requests they took. */
  get putBatchStats(): Readonly<PutBatcherStats> {
    return this.puts.stats;
  }

  get layout(): KeyLayout {
    return this.store.layout;
  }

  get writeQueueDepth(): number {
    return this.writes.depth + this.puts.queued;
  }

  /**
   * Idempotent upsert onto a shared lease. Re-registering with a TTL of the same lease class keeps the
   * instance's lease; no lease is ever revoked here (a shared lease carries other instances).
   */
  async register(service: string, id: string, registration: InstanceRegistration): Promise<RegistrationResult> {
    const shedReason = this.options.shedRegistrations?.();
    if (shedReason) {
      this.hooks.shed?.(shedReason);
      // 1-3 s, spread: refused registrations of a storm must not all come back in the same second.
      throw new OverloadedError(`the gateway is shedding new registrations (${shedReason.replace('_', ' ')}); retry later`, 1 + Math.floor(Math.random() * 3));
    }
    const key = this.layout.instanceKey(service, id);
    const record: InstanceRecord = { ...registration, service, id, registeredAt: new Date(this.now()).toISOString() };
    const value = encodeRecord(record);
    let written: { leaseId: string; revision: string; previous?: StoredInstance };
    try {
      written = await this.putOnSharedLease(key, value, registration.ttl, true);
    } catch (err) {
      throw this.writeFailed(err);
    }
    this.markHeard(key);
    this.hooks.registered?.(!written.previous);
    await this.options.visible?.(written.revision);
    return { record, leaseId: written.leaseId, revision: written.revision, created: !written.previous };
  }

  /**
   * The heartbeat of an instance the directory knows, answered in the caller's turn (no promise: the
   * HTTP handlers reply at once, as for nearly every heartbeat). Undefined when the directory does not
   * know it; heartbeat() then looks further.
   */
  heartbeatTracked(service: string, id: string): HeartbeatOutcome | undefined {
    const key = this.layout.instanceKey(service, id);
    if (!this.options.directory.has(key)) return undefined;
    this.heardFrom(key);
    return 'accepted';
  }

  /** Marks the instance alive. Only an instance unknown to the directory while the watch is down costs an etcd read. */
  async heartbeat(service: string, id: string): Promise<HeartbeatOutcome> {
    const known = this.heartbeatTracked(service, id);
    if (known) return known;
    const key = this.layout.instanceKey(service, id);
    const directory = this.options.directory;
    if (directory.current()) {
      const deleted = directory.recentlyDeleted(key);
      if (deleted) return this.rewriteDeleted(key, deleted.value);
    } else {
      const stored = await this.etcd(() => this.lookups.run(key, () => this.store.get(key)));
      if (stored && decodeRecord(stored.value)) {
        this.heardFrom(key);
        return 'accepted';
      }
    }
    this.hooks.heartbeat?.('not-found');
    throw new InstanceNotFoundError(service, id);
  }

  /**
   * Removes the instance now: its key, exactly one key. Its lease is never revoked (it carries other
   * instances; a legacy one-key lease left without its key expires by itself).
   */
  async deregister(service: string, id: string): Promise<void> {
    const key = this.layout.instanceKey(service, id);
    await this.write(async () => {
      this.options.liveness.forget(key);
      const deleted = await this.store.delete(key);
      if (!deleted) throw new InstanceNotFoundError(service, id);
      this.hooks.deregistered?.();
    });
  }

  /**
   * Changes an instance's status (and, when given, replaces its metadata) in place: same key, same
   * lease. A compare-and-swap on mod_revision keeps a concurrent re-registration from being overwritten
   * by the copy read here; conflicts are retried a few times, then reported.
   */
  async updateInstance(
    service: string,
    id: string,
    patch: { status: InstanceStatus; metadata?: Record<string, string> },
  ): Promise<{ record: InstanceRecord; revision: string }> {
    const key = this.layout.instanceKey(service, id);
    return this.write(async () => {
      for (let attempt = 1; ; attempt++) {
        const current = await this.store.get(key);
        const record = current && decodeRecord(current.value);
        if (!current || !record) throw new InstanceNotFoundError(service, id);
        const updated: InstanceRecord = { ...record, status: patch.status, metadata: patch.metadata ?? record.metadata };
        const value = encodeRecord(updated);
        let result;
        try {
          result = await this.store.compareAndPut(key, value, current.leaseId, current.modRevision);
        } catch (err) {
          // The lease ran out between the read and the write: etcd has deleted the key with it.
          if (err instanceof EtcdLeaseInvalidError) throw new InstanceNotFoundError(service, id);
          throw err;
        }
        if (result.written) {
          this.options.directory.written(key, value, current.leaseId, this.now(), result.revision);
          return { record: updated, revision: result.revision };
        }
        if (attempt >= 3) throw new UpdateConflictError(service, id);
      }
    });
  }

  /**
   * etcd lost a shared lease (TTL 0: it expired during an outage, or was revoked): its instances heard
   * within their TTL are written again on other shared leases, in batched create-if-absent Txns (a
   * re-registration through another replica meanwhile is never overwritten). Values come from the
   * directory, which keeps what etcd deleted with the lease.
   */
  rewriteLostLease(lost: Readonly<OwnedLease>): void {
    const now = this.now();
    const live: Array<{ key: string; value: string; ttl: number }> = [];
    for (const { key, value } of this.options.directory.instancesOn(lost.id)) {
      const record = decodeRecord(value);
      if (record && this.heardWithin(key, record.ttl * 1000, now)) live.push({ key, value, ttl: record.ttl });
    }
    if (live.length === 0) return;
    void this.rewrite(live).catch((err) => this.hooks.error?.(`re-writing ${live.length} instances of lost lease ${lost.id} failed`, err));
  }

  /**
   * Create-if-absent re-puts, coalesced: the keys asked for in one event-loop turn (a lost lease's
   * instances, heartbeats racing with it) go out as one batch of nested Txns, and a key already being
   * re-put shares that write instead of sending its own.
   */
  private rewrite(items: ReadonlyArray<{ key: string; value: string; ttl: number }>): Promise<unknown> {
    const waits: Array<Promise<boolean>> = [];
    for (const item of items) {
      let pending = this.rewriting.get(item.key);
      if (!pending) {
        pending = new Promise<boolean>((resolve, reject) => this.rewriteQueue.push({ ...item, resolve, reject }));
        this.rewriting.set(item.key, pending);
        const key = item.key;
        pending.finally(() => this.rewriting.delete(key)).catch(() => undefined);
      }
      waits.push(pending);
    }
    if (!this.rewriteScheduled && this.rewriteQueue.length) {
      this.rewriteScheduled = true;
      setImmediate(() => this.flushRewrites());
    }
    return Promise.all(waits);
  }

  private flushRewrites(): void {
    this.rewriteScheduled = false;
    const batch = this.rewriteQueue.splice(0);
    if (!batch.length) return;
    this.write(() => this.putIfAbsentOnSharedLeases(batch)).then(
      (written) => {
        const ok = written.filter(Boolean).length;
        if (ok) this.hooks.regranted?.('ok', ok);
        if (ok < written.length) this.hooks.regranted?.('adopted', written.length - ok);
        batch.forEach((item, i) => item.resolve(written[i]));
      },
      (err) => {
        this.hooks.regranted?.('error', batch.length);
        for (const item of batch) item.reject(err);
      },
    );
  }

  private heardWithin(key: string, ttlMs: number, now: number): boolean {
    return this.options.heardAnywhere?.(key, ttlMs, now) ?? this.options.liveness.heardWithin(key, ttlMs, now);
  }

  /**
   * A heartbeat for an instance deleted right after an etcd outage (its lease lapsed meanwhile), on a
   * replica that did not rewrite it: write it again on a shared lease, create-if-absent, instead of a
   * 404 that makes the pod register again.
   */
  private async rewriteDeleted(key: string, value: string): Promise<HeartbeatOutcome> {
    const record = decodeRecord(value);
    if (!record) throw new InstanceNotFoundError(...this.addressOf(key));
    await this.rewrite([{ key, value, ttl: record.ttl }]);
    this.heardFrom(key);
    return 'accepted';
  }

  /**
   * Create-if-absent puts on shared leases (batched nested Txns). A lease that turns out gone (the lost
   * lease itself, placed onto before its TTL-0 answer arrived) is given up and the puts re-placed once.
   */
  private async putIfAbsentOnSharedLeases(items: ReadonlyArray<{ key: string; value: string; ttl: number }>, retry = true): Promise<boolean[]> {
    const places = await Promise.all(items.map((item) => this.leases.place(item.ttl)));
    try {
      const written = await this.store.putManyIfAbsent(items.map((item, i) => ({ key: item.key, value: item.value, leaseId: places[i].leaseId })));
      const at = this.now();
      written.forEach((done, i) => done && this.options.directory.written(items[i].key, items[i].value, places[i].leaseId, at));
      return written;
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError) || !retry) throw err;
      for (const place of places) this.leases.invalid(place.leaseId);
    } finally {
      for (const place of places) place.release();
    }
    return this.putIfAbsentOnSharedLeases(items, false);
  }

  /** A heartbeat of a known instance: marked, published, and a legacy instance moved (paced). */
  private heardFrom(key: string): void {
    this.markHeard(key);
    this.hooks.heartbeat?.('accepted');
    if (!this.leases.recordsKnown) return;
    const lease = this.options.directory.leaseOf(key);
    if (lease === undefined || lease === 0n || this.leases.hasRecord(lease) || this.migrating.has(key)) return;
    const stored = this.migrations.tryTake(this.now()) ? this.options.directory.get(key) : undefined;
    if (!stored || !this.migrate(stored)) this.options.legacyHeard?.(key, lease);
  }

  private markHeard(key: string): void {
    const before = this.options.liveness.heard(key, this.now());
    this.options.heard?.(key, before);
  }

  /**
   * Moves a legacy instance (its own one-key lease, from the previous release) onto a shared lease: a
   * Txn compare mod_revision -> the same value on a shared lease, then revokes the old one-key lease
   * (no key left on it). A concurrent change wins; the next heartbeat tries again. Returns whether a
   * move started; one that leaves the key on its legacy lease (failed, or the compare lost to a stale
   * revision) hands it to the legacy renewals, as a heartbeat without budget does.
   */
  private migrate(stored: StoredInstance): boolean {
    const record = decodeRecord(stored.value);
    if (!record || stored.modRevision === '0') return false;
    const legacyLease = BigInt(stored.leaseId);
    this.migrating.add(stored.key);
    void this.write(async () => {
      const place = await this.leases.place(record.ttl);
      try {
        const result = await this.store.compareAndPut(stored.key, stored.value, place.leaseId, stored.modRevision);
        if (!result.written) return;
        this.options.directory.written(stored.key, stored.value, place.leaseId, this.now(), result.revision);
        this.hooks.migrated?.();
        this.store.revokeLease(stored.leaseId).catch(() => undefined);
      } finally {
        place.release();
      }
    })
      .catch((err) => this.hooks.error?.(`moving ${stored.key} onto a shared lease failed`, err))
      .finally(() => {
        this.migrating.delete(stored.key);
        if (this.options.directory.leaseOf(stored.key) === legacyLease) this.options.legacyHeard?.(stored.key, legacyLease);
      });
    return true;
  }

  /**
   * The Put of a registration on a shared lease of its class: the instance's current lease when it is a
   * shared lease of that class (a re-registration keeps it), else a place on this replica's leases. A
   * lease etcd no longer has (lost meanwhile) is given up and the put re-sent once on a fresh place.
   */
  private async putOnSharedLease(key: string, value: string, ttlSeconds: number, retry: boolean): Promise<{ leaseId: string; revision: string; previous?: StoredInstance }> {
    const current = this.options.directory.get(key);
    // The retry never keeps: the kept lease is the one etcd just refused (lost, maybe another replica's).
    const keep = retry && current && current.leaseId !== '0' && this.leases.record(current.leaseId)?.classTtl === this.leases.classTtl(ttlSeconds) ? current.leaseId : undefined;
    const place = keep ? undefined : await this.etcd(() => this.leases.place(ttlSeconds));
    const leaseId = keep ?? place!.leaseId;
    try {
      const outcome = await this.puts.put({ key, value, leaseId });
      this.options.directory.written(key, value, leaseId, this.now(), outcome.revision);
      return { leaseId, ...outcome };
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError) || !retry) throw err;
      this.leases.invalid(leaseId);
    } finally {
      place?.release();
    }
    return this.putOnSharedLease(key, value, ttlSeconds, false);
  }

  private addressOf(key: string): [string, string] {
    const address = this.layout.parseInstanceKey(key);
    return [address?.service ?? '', address?.id ?? ''];
  }

  /** The error a registration's failed Put means for the client (typed like every other write). */
  private writeFailed(err: unknown): unknown {
    if (err instanceof QueueFullError) return new OverloadedError(`too many etcd writes in progress (${err.capacity} queued); retry later`, 1);
    return etcdFailure(err, 'handling an instance write or lookup') ?? err;
  }

  private async write<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await this.writes.run(() => this.etcd(task));
    } catch (err) {
      if (err instanceof QueueFullError) {
        throw new OverloadedError(`too many etcd writes in progress (${err.capacity} queued); retry later`, 1);
      }
      throw err;
    }
  }

  /**
   * etcd failures as typed errors: unreachable is `registry_unavailable` (retry), any other etcd status
   * is `etcd_error` naming it and what the store was doing (see etcdFailure); the rest passes through.
   */
  private async etcd<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (err) {
      throw etcdFailure(err, 'handling an instance write or lookup') ?? err;
    }
  }
}
