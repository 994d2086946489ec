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
  RegistryUnavailableError,
  UpdateConflictError,
} from '@app/registry';
import { etcdFailure, isEtcdUnavailable } from './etcd-errors';
import { HeartbeatOutcome, LeaseTable, TrackedLease } from './lease-engine/lease-table';
import type { LeaseGranter } from './lease-grants/lease-granter';
import { PutBatcher, PutBatcherStats } from './put-batcher';
import { RegistryStore, StoredInstance } from './registry-store';
import type { RegistryEvent } from './registry-watch';

export interface InstanceRegistrarOptions {
  /** etcd writes (register, deregister, re-grant) running at once, and waiting beyond that. */
  writeConcurrency: number;
  writeQueueCapacity: number;
  /**
   * Puts of concurrent registrations sent as one etcd Txn (PutBatcher): at most this many per Txn
   * (<= etcd's --max-txn-ops, 128 by default; 1 = one Put per registration) and this many key+value
   * bytes (< etcd's --max-request-bytes).
   */
  putBatch?: { maxSize: number; maxBytes: number };
  /** Re-grants after lease loss, per second: an etcd outage must not end in a grant storm. */
  regrantsPerSecond: number;
  /**
   * Admission control: a reason to refuse NEW registrations right now (the HTTP thread saturated,
   * renewals lagging), or undefined. Heartbeats, re-grants and deregistrations are never refused by it.
   */
  shedRegistrations?: () => string | undefined;
  /**
   * What the watch knows about every instance (InstanceDirectory). While it is current, a heartbeat
   * for an instance this replica has not tracked yet is answered from it: no etcd read.
   */
  directory?: {
    current(): boolean;
    get(key: string): (StoredInstance & { observedAt?: number }) | undefined;
    /** What a key held if it was deleted within its TTL (see InstanceDirectory.recentlyDeleted). */
    recentlyDeleted?(key: string): { value: string } | undefined;
  };
  /**
   * Where new leases come from (register, re-grants); absent = the store, on this thread. The runtime
   * passes a WorkerLeaseGranter, which makes the LeaseGrant calls on a worker thread.
   */
  granter?: LeaseGranter;
  now?: () => number;
}

/** etcd's defaults allow 128 operations and 1.5 MiB per request; these stay well inside both. */
export const DEFAULT_PUT_BATCH = { maxSize: 100, maxBytes: 512 * 1024 };

export interface RegistrarHooks {
  registered?(created: boolean): void;
  /** A registration was refused by admission control. */
  shed?(reason: string): void;
  deregistered?(): void;
  regranted?(result: 'ok' | 'error' | 'adopted'): void;
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
 * Register, heartbeat and deregister, in etcd terms: one lease per instance, the instance key written
 * with it, renewals left to the lease engine (LeaseTable here, renewals in its worker). Any replica can take any call: an instance this
 * replica has not seen is looked up in etcd (one Range, shared by concurrent heartbeats).
 */
export class InstanceRegistrar {
  private readonly writes: BoundedQueue;
  private readonly lookups = new Singleflight<StoredInstance | undefined>();
  private readonly regrantBudget: TokenBucket;
  private readonly regranting = new Set<string>();
  private readonly now: () => number;
  private readonly puts: PutBatcher;
  /** Slots of the batched registration Puts: one per Txn, same bounds as the write queue. */
  private readonly batchWrites: BoundedQueue;
  private readonly granter: LeaseGranter;

  constructor(
    private readonly store: RegistryStore,
    private readonly leases: LeaseTable,
    private readonly options: InstanceRegistrarOptions,
    private readonly hooks: RegistrarHooks = {},
  ) {
    this.now = options.now ?? Date.now;
    this.granter = options.granter ?? { grant: (ttlSeconds) => store.grantLease(ttlSeconds) };
    this.writes = new BoundedQueue(options.writeConcurrency, options.writeQueueCapacity);
    this.regrantBudget = new TokenBucket(options.regrantsPerSecond, options.regrantsPerSecond, this.now());
    this.batchWrites = new BoundedQueue(options.writeConcurrency, options.writeQueueCapacity);
    this.puts = new PutBatcher(
      { putMany: (items) => this.batchWrites.run(() => store.putMany(items)) },
      {
        maxBatchSize: options.putBatch?.maxSize ?? DEFAULT_PUT_BATCH.maxSize,
        maxBatchBytes: options.putBatch?.maxBytes ?? DEFAULT_PUT_BATCH.maxBytes,
        // A full queue refuses single Puts just the same: fail the batch at once (503), no fallback.
        failsWholeBatch: (err) => err instanceof QueueFullError || isEtcdUnavailable(err),
      },
    );
  }

  /** Registration puts sent and the etcd requests they took (Txns and single Puts). */
  get putBatchStats(): Readonly<PutBatcherStats> {
    return this.puts.stats;
  }

  get layout(): KeyLayout {
    return this.store.layout;
  }

  get writeQueueDepth(): number {
    return this.writes.depth + this.batchWrites.depth;
  }

  /** Idempotent upsert. Re-registering with the same TTL keeps the instance's lease. */
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
    // Only the LeaseGrant holds a write slot. The Put goes through the batcher, whose Txns take slots
    // of their own queue (one per Txn), so a registration whose lease is granted does not wait behind
    // grants queued after it, and the write slots bound etcd requests, not registrations in flight.
    const tracked = this.leases.get(key);
    const reusable = tracked && !this.leases.isLost(tracked) && tracked.ttlMs === registration.ttl * 1000 ? tracked.leaseId : undefined;
    let leaseId = reusable ?? (await this.write(() => this.granter.grant(registration.ttl)));
    let written;
    try {
      written = await this.putBatched(key, value, leaseId);
    } catch (err) {
      // The reused lease expired meanwhile (e.g. during an etcd outage): take a fresh one.
      if (!(err instanceof EtcdLeaseInvalidError) || !reusable) throw this.writeFailed(err, reusable ? undefined : leaseId);
      leaseId = await this.write(() => this.granter.grant(registration.ttl));
      try {
        written = await this.putBatched(key, value, leaseId);
      } catch (retryErr) {
        throw this.writeFailed(retryErr, leaseId);
      }
    }
    const now = this.now();
    this.leases.track(key, leaseId, registration.ttl, value, now);
    // The lease this write replaced (a new TTL) is NOT revoked: it may carry other instances (a shared
    // lease written by a replica of the shared-lease release, docs/shared-leases.md section 5), and a
    // one-key lease left without its key costs etcd nothing and expires by itself.
    this.hooks.registered?.(!written.previous);
    return { record, leaseId, revision: written.revision, created: !written.previous };
  }

  /**
   * The heartbeat of an instance this replica renews, answered in the caller's turn (no promise: the
   * HTTP handlers reply at once, as for nearly every heartbeat). Undefined when the instance is not
   * tracked here; heartbeat() then looks it up.
   */
  heartbeatTracked(service: string, id: string): Exclude<HeartbeatOutcome, 'unknown'> | undefined {
    return this.heartbeatTrackedKey(this.layout.instanceKey(service, id));
  }

  private heartbeatTrackedKey(key: string): Exclude<HeartbeatOutcome, 'unknown'> | undefined {
    const outcome = this.leases.heartbeat(key, this.now());
    if (outcome === 'unknown') return undefined;
    this.hooks.heartbeat?.(outcome);
    return outcome;
  }

  /** Marks the instance alive. Only an instance unknown to this replica costs an etcd read. */
  async heartbeat(service: string, id: string): Promise<HeartbeatOutcome> {
    const key = this.layout.instanceKey(service, id);
    const tracked = this.heartbeatTrackedKey(key);
    if (tracked) return tracked;
    const directory = this.options.directory;
    const current = directory?.current() ?? false;
    const stored = current ? directory!.get(key) : await this.etcd(() => this.lookups.run(key, () => this.store.get(key)));
    const deleted = !stored && current ? directory!.recentlyDeleted?.(key) : undefined;
    if (deleted) return this.regrantDeleted(key, deleted.value);
    const record = stored && decodeRecord(stored.value);
    if (!stored || !record || stored.leaseId === '0') {
      this.hooks.heartbeat?.('not-found');
      throw new InstanceNotFoundError(service, id);
    }
    if (!this.leases.get(key)) {
      const now = this.now();
      // A lease this replica's watch saw being written was granted about then; otherwise when etcd last
      // renewed it is unknown here: treat it as due (with several replicas the renewal ledger then
      // tells whether another replica renewed it lately).
      const observedAt = (stored as { observedAt?: number }).observedAt;
      this.leases.track(key, stored.leaseId, record.ttl, stored.value, now, observedAt && observedAt <= now ? observedAt : now - record.ttl * 1000);
    }
    const learned = this.leases.heartbeat(key, this.now());
    if (learned === 'unknown') throw new InstanceNotFoundError(service, id);
    this.hooks.heartbeat?.(learned);
    return learned;
  }

  /**
   * Removes the instance now: its key, exactly one key. Its lease is NOT revoked: a lease may carry
   * other instances (shared leases, docs/shared-leases.md section 5: revoking it would delete them all),
   * and a one-key lease left without its key expires by itself. Other replicas renewing that lease
   * stop when its pod stops heartbeating.
   */
  async deregister(service: string, id: string): Promise<void> {
    const key = this.layout.instanceKey(service, id);
    await this.write(async () => {
      const tracked = this.leases.forget(key);
      const deleted = await this.store.delete(key);
      if (!deleted && !tracked) throw new InstanceNotFoundError(service, id);
      this.hooks.deregistered?.();
    });
  }

  /**
   * Changes an instance's status (and, when given, replaces its metadata) in place: same key, same
   * lease, so the pod's heartbeats keep renewing it. A compare-and-swap on mod_revision keeps a
   * concurrent re-registration from being overwritten by the copy read here; conflicts are retried
   * a few times, then reported. The directory learns the value at once (LeaseTable.written), so a
   * later re-grant writes the patched record, not the registered one.
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
          this.leases.written(key, value, current.leaseId, this.now());
          return { record: updated, revision: result.revision };
        }
        if (attempt >= 3) throw new UpdateConflictError(service, id);
      }
    });
  }

  /**
   * Follows leases replaced through another replica. (Values need nothing here: a re-grant reads the
   * directory, which the same watch events keep equal to what etcd holds, PATCHes through another
   * replica included.)
   */
  observeWrites(events: readonly RegistryEvent[]): void {
    for (const event of events) {
      if (event.type !== 'put' || event.value === undefined) continue;
      const tracked = this.leases.get(this.layout.instanceKey(event.service, event.id));
      if (!tracked) continue;
      // Re-registered through another replica under a new lease (e.g. another TTL): renew that one
      // from now on; it was granted just now.
      if (event.leaseId && event.leaseId !== '0' && event.leaseId !== tracked.leaseId) this.leases.replaceLease(tracked.key, event.leaseId, this.now());
    }
  }

  /**
   * The lease of a still-heartbeating instance is gone (it expired during an etcd outage, or another
   * replica replaced it): write the instance again under a new lease, unless someone else already
   * wrote it, in which case adopt their lease. Rate-limited; a heartbeat that finds the budget empty
   * leaves the re-grant to the next heartbeat.
   */
  regrant(lost: TrackedLease): void {
    if (this.regranting.has(lost.key) || !this.regrantBudget.tryTake(this.now())) return;
    this.regranting.add(lost.key);
    const ttlSeconds = lost.ttlMs / 1000;
    void this.write(async () => {
      // The latest value this replica knows (a PATCH through another replica included), read when the
      // write runs: the lease table keeps no copy of it (InstanceDirectory does).
      const value = this.leases.latestValue(lost.key);
      if (value === undefined) throw new Error('its value is not known on this replica');
      const leaseId = await this.granter.grant(ttlSeconds);
      const { written, current } = await this.store.putIfAbsent(lost.key, value, leaseId);
      if (written) {
        this.leases.replaceLease(lost.key, leaseId, this.now());
        this.hooks.regranted?.('ok');
      } else {
        this.revokeQuietly(leaseId);
        if (current && current.leaseId !== '0') {
          this.leases.replaceLease(lost.key, current.leaseId, this.now() - ttlSeconds * 1000);
        }
        this.hooks.regranted?.('adopted');
      }
    })
      .catch((err) => {
        this.hooks.regranted?.('error');
        this.hooks.error?.(`re-grant of ${lost.key} failed`, err);
      })
      .finally(() => this.regranting.delete(lost.key));
  }

  /**
   * A heartbeat for an instance whose key was deleted within its TTL, on a replica that did not track
   * it (after an etcd outage every lease expires at once, and the pod's next heartbeat may land on any
   * replica): write it again under a new lease, exactly as the replica that tracked it would, instead
   * of a 404 that makes the pod register again. Rate-limited with the other re-grants; a pod that
   * deregistered stops heartbeating first (the SDK does), so it is not brought back.
   */
  private async regrantDeleted(key: string, value: string): Promise<HeartbeatOutcome> {
    const record = decodeRecord(value);
    if (!record) throw new InstanceNotFoundError(...this.addressOf(key));
    if (!this.regrantBudget.tryTake(this.now())) throw new RegistryUnavailableError('re-granting lost leases after an etcd outage; retry shortly');
    await this.write(async () => {
      const leaseId = await this.granter.grant(record.ttl);
      const { written, current } = await this.store.putIfAbsent(key, value, leaseId);
      const now = this.now();
      if (written) {
        this.leases.track(key, leaseId, record.ttl, value, now);
        this.hooks.regranted?.('ok');
        return;
      }
      this.revokeQuietly(leaseId);
      if (current && current.leaseId !== '0') this.leases.track(key, current.leaseId, record.ttl, current.value, now, now - record.ttl * 1000);
      this.hooks.regranted?.('adopted');
    });
    const outcome = this.leases.heartbeat(key, this.now());
    if (outcome === 'unknown') throw new InstanceNotFoundError(...this.addressOf(key));
    this.hooks.heartbeat?.(outcome);
    return outcome;
  }

  private addressOf(key: string): [string, string] {
    const address = this.layout.parseInstanceKey(key);
    return [address?.service ?? '', address?.id ?? ''];
  }

  private revokeQuietly(leaseId: string): void {
    // Best effort: an orphaned lease without keys costs etcd nothing and expires by itself.
    this.store.revokeLease(leaseId).catch(() => undefined);
  }

  private putBatched(key: string, value: string, leaseId: string): Promise<{ revision: string; previous?: StoredInstance }> {
    return this.puts.put({ key, value, leaseId });
  }

  /**
   * The error a registration's failed Put means for the client (typed like every other write). A lease
   * granted for it is revoked when the Put surely did not happen; after a timeout it may have, and the
   * lease then keeps the key until its TTL (or the pod's heartbeats) decide.
   */
  private writeFailed(err: unknown, grantedLease: string | undefined): unknown {
    if (grantedLease && !isEtcdUnavailable(err)) this.revokeQuietly(grantedLease);
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
