import { randomBytes } from 'node:crypto';
import type { RegistryEvent, StoredRange } from '@app/etcd';
import { etcdFailure } from '@app/etcd';
import { Singleflight } from '@app/concurrency';
import { decodeRecord, INSTANCE_STATUSES, KeyLayout, RegistryUnavailableError, ResolvedInstance } from '@app/registry';
import type { RegistryError } from '@app/registry';
import { ChangeWaiters, WaitOutcome } from './change-waiters';
import { RefreshBackoff } from './refresh-backoff';
import { FieldOp, RevisionedMap } from './revisioned-map';
import { SharedParts } from './shared-parts';
import { SharedChange, SharedDoc, SharedStore } from './shared-store';

export interface RegistryCacheOptions {
  /** Re-read a document from etcd once its last read is this old, even while the watch keeps it current. */
  ttlMs: number;
  /** An answer not confirmed by etcd (watch progress or a read) for this long is `stale`, and refreshed. */
  staleAfterMs: number;
  /** An unknown (empty) service is answered from memory this long, then read again. */
  negativeTtlMs: number;
  /** Expiry of documents in the shared tier. */
  sharedTtlMs: number;
  /** Expiry of the shared refresh lock; a replica waits for another one's refresh at most this long. */
  lockTtlMs: number;
  /** How often a replica waiting for another one's refresh polls the shared tier. */
  lockPollMs?: number;
  /** Window after a failed etcd read of a document: doubles per failure from min to max. */
  backoffMinMs: number;
  backoffMaxMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** The etcd reads the cache makes (RegistryStore fits). */
export interface RegistrySource {
  readonly layout: KeyLayout;
  listService(service: string): Promise<StoredRange>;
  scanAll(options: { keysOnly?: boolean }): Promise<StoredRange>;
}

/** What the cache needs to know about the watch that feeds it applyEvents() (RegistryWatch fits). */
export interface WatchState {
  /** Changes when events may have been missed; documents from an older epoch are re-read. */
  readonly epoch: number;
  /** When etcd last answered on the watch stream (epoch ms), 0 while it is down. */
  readonly confirmedAt: number;
}

export type CacheTier = 'l1' | 'l2';
export type CacheResult = 'hit' | 'miss' | 'stale';

export interface RegistryCacheHooks {
  /** l1: one per lookup. l2: one per load, which concurrent lookups of a document share. */
  cacheRequest?(tier: CacheTier, result: CacheResult): void;
  refreshFailed?(doc: string, err: unknown): void;
  sharedStoreFailed?(err: unknown): void;
}

export interface ServiceView {
  service: string;
  revision: number;
  /** The revision at which this replica last saw the content change (see Entry.index): blocking queries compare it. */
  index: number;
  stale: boolean;
  /** Every instance, UP or not, in id order. */
  instances: readonly ResolvedInstance[];
}

export interface ServiceListView {
  revision: number;
  index: number;
  stale: boolean;
  services: Array<{ service: string; instances: number }>;
}

/** A document in L1 and what is known about its freshness. */
interface Entry<V> {
  doc: RevisionedMap<V>;
  /** When etcd was last read whole for this content (epoch ms; from L2, the reading replica's clock). */
  readAt: number;
  /** When this replica last confirmed it by a read (local clock). */
  verifiedAt: number;
  /** The watch epoch under which watch events keep it current. */
  epoch: number;
  /** Services only: empty when read, so answered until then and read again afterwards; 0 = not empty. */
  negativeUntil: number;
  /**
   * The revision at which this replica last saw the content change, or the revision of its first
   * read. Unlike doc.revision it does not move when a re-read (CACHE_TTL_MS, another replica's copy
   * in L2) or an identical re-put brings the same content at a newer revision: a blocking query
   * wakes only on a real change. Set by install(), applyEvents() and resync(); 0 until installed.
   */
  index: number;
}

/** How one kind of document (a service snapshot, the services list) is read, encoded and kept. */
interface DocKind<V> {
  /** Key of the document in L2, of its lock, of its singleflight and of its backoff. */
  name: string;
  flights: Singleflight<Entry<V>>;
  negativeTtlMs: number;
  get(): Entry<V> | undefined;
  set(entry: Entry<V>): void;
  fetch(): Promise<RevisionedMap<V>>;
  encode(value: V): string;
  decode(value: string): V | undefined;
}

type Buffered<V> = Array<{ revision: number; ops: FieldOp<V>[] }>;

/**
 * The resolve cache: L1 in this process, L2 shared by the replicas, etcd behind both.
 *
 * - A miss loads through a singleflight per document (one etcd read per process however many callers),
 *   and across replicas through a short L2 lock: the holder reads etcd and writes L2, the others poll
 *   L2 and take its result.
 * - The watch's events are applied to L1 and L2 documents, revision-ordered (see RevisionedMap): a
 *   delete removes one instance, never a document. Events that arrive while a document loads are
 *   buffered and applied on top of the loaded revision.
 * - Callers that have a document are answered at once, also while it is refreshed; `stale` says that
 *   etcd has not confirmed it for `staleAfterMs`. etcd is read at most once per document per backoff
 *   window, so an unreachable etcd costs neither waiting callers nor a retry storm.
 * - L2 failing (Redis down) only turns its reads into misses: L1 and etcd keep serving.
 */
export class RegistryCache {
  private readonly services = new Map<string, Entry<ResolvedInstance>>();
  private list: Entry<number> | undefined;
  private readonly serviceFlights = new Singleflight<Entry<ResolvedInstance>>();
  private readonly listFlights = new Singleflight<Entry<number>>();
  private readonly pending = new Map<string, Buffered<unknown>>();
  private readonly backoff: RefreshBackoff;
  /** The error of each document's last failed etcd read, answered again while its backoff window lasts. */
  private readonly failures = new Map<string, RegistryError>();
  private readonly listKind: DocKind<number>;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Blocking queries parked on a document (key: its name, `svc:<service>` or `services`). */
  private readonly changes = new ChangeWaiters();
  /** Tags, metadata, zones and statuses shared by the cached instances (see SharedParts). */
  private readonly parts = new SharedParts();

  constructor(
    private readonly source: RegistrySource,
    private readonly shared: SharedStore,
    private readonly watch: WatchState,
    private readonly options: RegistryCacheOptions,
    private readonly hooks: RegistryCacheHooks = {},
  ) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.backoff = new RefreshBackoff(options.backoffMinMs, Math.max(options.backoffMinMs, options.backoffMaxMs), options.random);
    this.listKind = {
      name: 'services',
      flights: this.listFlights,
      negativeTtlMs: 0,
      get: () => this.list,
      set: (entry) => (this.list = entry),
      // Keys only: counting instances needs no values, which keeps this read small.
      fetch: async () => toCountsDoc(await this.source.scanAll({ keysOnly: true }), this.source.layout),
      encode: String,
      decode: (value) => (Number(value) > 0 ? Number(value) : undefined),
    };
  }

  /** Drops expired negative entries and old backoff state every `intervalMs`. */
  startSweeping(intervalMs: number): void {
    this.sweepTimer = setInterval(() => this.sweep(this.now()), intervalMs);
    this.sweepTimer.unref();
  }

  /** Stops sweeping, and ends every parked waitForChange() with 'closed' (shutdown answers them). */
  close(): void {
    clearInterval(this.sweepTimer);
    this.changes.close();
  }

  /**
   * Parks the caller until the service's content changes (its view's `index` moves), `timeoutMs`
   * passes, `signal` aborts or close(). Costs no etcd call: the watch's events wake it. Call it in
   * the same synchronous step as the resolve() whose index it compares, so no change slips between.
   */
  waitForServiceChange(service: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return this.changes.wait(`svc:${service}`, timeoutMs, signal);
  }

  /** waitForServiceChange() for the services list (a service appears, disappears or changes its count). */
  waitForListChange(timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return this.changes.wait(this.listKind.name, timeoutMs, signal);
  }

  async resolve(service: string): Promise<ServiceView> {
    const now = this.now();
    const entry = this.services.get(service);
    if (entry) {
      const negativeExpired = entry.negativeUntil !== 0 && now >= entry.negativeUntil;
      // An expired negative entry is read again before answering, unless etcd looks unreachable:
      // then it is still the best answer there is, and nobody waits on etcd timeouts.
      if (!negativeExpired || !this.watchConfirmed(now)) {
        const stale = negativeExpired || this.isStale(entry, now);
        this.hooks.cacheRequest?.('l1', stale ? 'stale' : 'hit');
        if (negativeExpired || this.needsRefresh(entry, now)) this.refreshInBackground(this.serviceKind(service));
        return { service, revision: entry.doc.revision, index: entry.index, stale, instances: entry.doc.values() };
      }
    }
    this.hooks.cacheRequest?.('l1', 'miss');
    const loaded = await this.load(this.serviceKind(service));
    return { service, revision: loaded.doc.revision, index: loaded.index, stale: this.isStale(loaded, this.now()), instances: loaded.doc.values() };
  }

  async listServices(): Promise<ServiceListView> {
    const now = this.now();
    let entry = this.list;
    if (entry) {
      const stale = this.isStale(entry, now);
      this.hooks.cacheRequest?.('l1', stale ? 'stale' : 'hit');
      if (this.needsRefresh(entry, now)) this.refreshInBackground(this.listKind);
    } else {
      this.hooks.cacheRequest?.('l1', 'miss');
      entry = await this.load(this.listKind);
    }
    return {
      revision: entry.doc.revision,
      index: entry.index,
      stale: this.isStale(entry, this.now()),
      services: entry.doc.entries().map(([service, instances]) => ({ service, instances })),
    };
  }

  /** The watch's events, in revision order (one etcd watch response, whole revisions). */
  applyEvents(events: readonly RegistryEvent[]): void {
    const now = this.now();
    const sharedChanges: SharedChange[] = [];
    for (let i = 0; i < events.length; ) {
      const revision = events[i].revision;
      const byService = new Map<string, FieldOp<ResolvedInstance>[]>();
      const counts: FieldOp<number>[] = [];
      for (; i < events.length && events[i].revision === revision; i++) {
        const event = events[i];
        const record = event.type === 'put' && event.value !== undefined ? decodeRecord(event.value) : undefined;
        // A value that is not an instance record counts as no instance, as it does when read by Range.
        const op: FieldOp<ResolvedInstance> = record ? { op: 'set', field: event.id, value: toResolved(event.id, record, this.parts) } : { op: 'del', field: event.id };
        const ops = byService.get(event.service) ?? [];
        ops.push(op);
        byService.set(event.service, ops);
        if (event.type === 'delete') counts.push({ op: 'add', field: event.service, by: -1 });
        else if (event.created) counts.push({ op: 'add', field: event.service, by: 1 });
      }
      for (const [service, ops] of byService) {
        const entry = this.services.get(service);
        const changes = entry !== undefined && revision > entry.doc.revision && changesContent(entry.doc, ops, JSON.stringify);
        if (entry?.doc.apply(revision, ops)) {
          if (entry.doc.size > 0) entry.negativeUntil = 0;
          else if (!entry.negativeUntil) entry.negativeUntil = now + this.options.negativeTtlMs;
          if (changes) this.changed(`svc:${service}`, entry, revision);
        }
        sharedChanges.push(this.applyElsewhere(`svc:${service}`, revision, ops, (instance) => JSON.stringify(instance)));
      }
      if (counts.length) {
        // Counts only move on creates and deletes: every applied count op is a change.
        if (this.list?.doc.apply(revision, counts)) this.changed(this.listKind.name, this.list, revision);
        sharedChanges.push(this.applyElsewhere(this.listKind.name, revision, counts, String));
      }
    }
    // Every replica applies every event: L2 stays current as long as one replica watches, and the
    // revision check turns the other replicas' copies of the same change into no-ops.
    if (sharedChanges.length) void this.sharedOr(() => this.shared.apply(sharedChanges), undefined);
  }

  /**
   * The watch rebuilt from one read at `range.revision` (etcd compacted what it missed): every cached
   * document is replaced from it, under the watch's new epoch.
   */
  resync(range: StoredRange): void {
    const now = this.now();
    const revision = Number(range.revision);
    const epoch = this.watch.epoch;
    const docs = new Map<string, RevisionedMap<ResolvedInstance>>();
    for (const service of this.services.keys()) docs.set(service, new RevisionedMap(revision));
    for (const item of range.items) {
      const address = this.source.layout.parseInstanceKey(item.key);
      const record = address && docs.has(address.service) ? decodeRecord(item.value) : undefined;
      if (address && record) docs.get(address.service)!.fields.set(address.id, toResolved(address.id, record, this.parts));
    }
    for (const [service, doc] of docs) {
      const entry: Entry<ResolvedInstance> = { doc, readAt: now, verifiedAt: now, epoch, negativeUntil: doc.size ? 0 : now + this.options.negativeTtlMs, index: 0 };
      this.succeed(`svc:${service}`, this.services.get(service), entry, JSON.stringify);
      this.services.set(service, entry);
      void this.writeShared(this.serviceKind(service), entry);
    }
    if (this.list) {
      const list: Entry<number> = { doc: toCountsDoc(range, this.source.layout), readAt: now, verifiedAt: now, epoch, negativeUntil: 0, index: 0 };
      this.succeed(this.listKind.name, this.list, list, String);
      this.list = list;
      void this.writeShared(this.listKind, this.list);
    }
  }

  /** For readiness: services this replica can answer from memory, and whether L2 is reachable. */
  health(): { warmServices: number; sharedUp: boolean } {
    let warm = 0;
    for (const entry of this.services.values()) if (entry.doc.size > 0) warm++;
    return { warmServices: warm, sharedUp: this.shared.isUp() };
  }

  sweep(now: number): void {
    for (const [service, entry] of this.services) {
      // A document someone waits for stays: the watch's events only reach documents in memory.
      const name = `svc:${service}`;
      if (entry.negativeUntil && now >= entry.negativeUntil && !this.pending.has(name) && !this.changes.has(name)) this.services.delete(service);
    }
    this.backoff.sweep(now);
    for (const name of this.failures.keys()) if (this.backoff.mayAttempt(name, now)) this.failures.delete(name);
  }

  private isStale(entry: Entry<unknown>, now: number): boolean {
    const watchConfirmedAt = entry.epoch === this.watch.epoch ? this.watch.confirmedAt : 0;
    return now - Math.max(entry.verifiedAt, watchConfirmedAt) > this.options.staleAfterMs;
  }

  private watchConfirmed(now: number): boolean {
    return now - this.watch.confirmedAt <= this.options.staleAfterMs;
  }

  private needsRefresh(entry: Entry<unknown>, now: number): boolean {
    return entry.epoch !== this.watch.epoch || now - entry.readAt >= this.options.ttlMs || this.isStale(entry, now);
  }

  private refreshInBackground<V>(kind: DocKind<V>): void {
    // Joining a refresh already in flight costs nothing; a new one starts at most once per backoff window.
    if (this.backoff.mayAttempt(kind.name, this.now())) kind.flights.run(kind.name, () => this.loadWork(kind)).catch(() => undefined);
  }

  /** One load per document at a time in this process; concurrent callers share it. */
  private load<V>(kind: DocKind<V>): Promise<Entry<V>> {
    return kind.flights.run(kind.name, () => this.loadWork(kind));
  }

  private async loadWork<V>(kind: DocKind<V>): Promise<Entry<V>> {
    const buffered: Buffered<V> = [];
    this.pending.set(kind.name, buffered as Buffered<unknown>);
    try {
      const loaded = await this.fetchEntry(kind);
      return this.install(kind, loaded, buffered);
    } finally {
      this.pending.delete(kind.name);
    }
  }

  /** L2 if it holds a recent enough read, else etcd (under the L2 lock); on failure the best old copy. */
  private async fetchEntry<V>(kind: DocKind<V>): Promise<Entry<V>> {
    const now = this.now();
    const epoch = this.watch.epoch;
    const current = kind.get();
    // What counts as recent enough: within the TTL, newer than ours, and while the watch cannot
    // confirm anything, recent enough not to be stale itself.
    let minReadAt = now - this.options.ttlMs;
    if (current) minReadAt = Math.max(minReadAt, current.readAt + 1);
    if (!this.watchConfirmed(now)) minReadAt = Math.max(minReadAt, now - this.options.staleAfterMs);

    let l2: CacheResult = 'miss';
    let fallback = current;
    try {
      const shared = await this.readShared(kind, minReadAt, epoch);
      if (shared.usable) {
        l2 = 'hit';
        return shared.usable;
      }
      if (shared.old && (!fallback || shared.old.doc.revision > fallback.doc.revision)) fallback = shared.old;
      if (!this.backoff.mayAttempt(kind.name, this.now())) throw this.failures.get(kind.name) ?? new RegistryUnavailableError('etcd is unavailable; retry later');
      const refreshed = await this.refreshFromEtcd(kind, minReadAt, epoch);
      if (refreshed.fromShared) l2 = 'hit';
      return refreshed.entry;
    } catch (err) {
      if (!fallback) throw err;
      if (fallback !== current) l2 = 'stale';
      return fallback;
    } finally {
      this.hooks.cacheRequest?.('l2', l2);
    }
  }

  private async refreshFromEtcd<V>(kind: DocKind<V>, minReadAt: number, epoch: number): Promise<{ entry: Entry<V>; fromShared: boolean }> {
    const token = randomBytes(9).toString('base64url');
    let locked = await this.sharedOr(() => this.shared.tryLock(kind.name, token, this.options.lockTtlMs), undefined);
    if (locked === false) {
      const waited = await this.waitForPeer(kind, minReadAt, epoch, token);
      if (waited.entry) return { entry: waited.entry, fromShared: true };
      locked = waited.locked;
    }
    try {
      if (locked) {
        // Another replica may have refreshed between our L2 read and taking the lock.
        const again = await this.readShared(kind, minReadAt, epoch);
        if (again.usable) return { entry: again.usable, fromShared: true };
      }
      const readAt = this.now();
      let doc: RevisionedMap<V>;
      try {
        doc = await kind.fetch();
      } catch (err) {
        this.backoff.failed(kind.name, this.now());
        this.hooks.refreshFailed?.(kind.name, err);
        // Only unreachability is "unavailable"; an etcd that answers with an error (e.g. a service too
        // large for one gRPC message, permission denied) is reported as such. Unknown errors keep the
        // old meaning.
        const failure = etcdFailure(err, `reading ${kind.name}`) ?? new RegistryUnavailableError('etcd is unavailable; retry later');
        this.failures.set(kind.name, failure);
        throw failure;
      }
      this.backoff.succeeded(kind.name);
      this.failures.delete(kind.name);
      const entry: Entry<V> = { doc, readAt, verifiedAt: this.now(), epoch, negativeUntil: 0, index: 0 };
      // Before unlocking: the replicas waiting for this refresh poll L2 for it.
      await this.writeShared(kind, entry);
      return { entry, fromShared: false };
    } finally {
      if (locked) void this.sharedOr(() => this.shared.unlock(kind.name, token), undefined);
    }
  }

  /**
   * Another replica holds the refresh lock: poll L2 until its result is there. If the lock goes away
   * without a result (the holder's read failed, or it died), take the lock over; after a whole lock TTL
   * give up waiting. Returns the entry, or whether we now hold the lock.
   */
  private async waitForPeer<V>(kind: DocKind<V>, minReadAt: number, epoch: number, token: string): Promise<{ entry?: Entry<V>; locked: boolean }> {
    const pollMs = this.options.lockPollMs ?? 20;
    for (let waited = 0; waited < this.options.lockTtlMs; waited += pollMs) {
      await this.sleep(pollMs);
      const polled = await this.sharedOr(() => this.shared.poll(kind.name), undefined);
      if (!polled) return { locked: false };
      if (polled.stamp && polled.stamp.readAt >= minReadAt) {
        const shared = await this.readShared(kind, minReadAt, epoch);
        if (shared.usable) return { entry: shared.usable, locked: false };
      }
      if (!polled.locked) {
        const taken = await this.sharedOr(() => this.shared.tryLock(kind.name, token, this.options.lockTtlMs), undefined);
        if (taken !== false) return { locked: taken === true };
      }
    }
    return { locked: false };
  }

  private async readShared<V>(kind: DocKind<V>, minReadAt: number, epoch: number): Promise<{ usable?: Entry<V>; old?: Entry<V> }> {
    const stored = await this.sharedOr(() => this.shared.read(kind.name), undefined);
    if (!stored) return {};
    const doc = new RevisionedMap<V>(stored.revision);
    for (const [field, encoded] of Object.entries(stored.fields)) {
      const value = kind.decode(encoded);
      if (value !== undefined) doc.fields.set(field, value);
    }
    const entry: Entry<V> = { doc, readAt: stored.readAt, verifiedAt: Math.min(this.now(), stored.readAt), epoch, negativeUntil: 0, index: 0 };
    return stored.readAt >= minReadAt ? { usable: entry } : { old: entry };
  }

  private async writeShared<V>(kind: DocKind<V>, entry: Entry<V>): Promise<void> {
    const fields: SharedDoc['fields'] = {};
    for (const [field, value] of entry.doc.fields) fields[field] = kind.encode(value);
    const ttl = kind.negativeTtlMs && entry.doc.size === 0 ? kind.negativeTtlMs : this.options.sharedTtlMs;
    await this.sharedOr(() => this.shared.replace(kind.name, { revision: entry.doc.revision, readAt: entry.readAt, fields }, ttl), undefined);
  }

  /** Buffers a revision's changes for a load of the document in flight; returns them encoded for L2. */
  private applyElsewhere<V>(name: string, revision: number, ops: FieldOp<V>[], encode: (value: V) => string): SharedChange {
    (this.pending.get(name) as Buffered<V> | undefined)?.push({ revision, ops });
    const encoded = ops.map((op): FieldOp<string> => (op.op === 'set' ? { op: 'set', field: op.field, value: encode(op.value) } : op));
    return { doc: name, revision, ops: encoded };
  }

  /** Puts `loaded` into L1 with the changes that arrived while it loaded; keeps L1 if that is newer. */
  private install<V>(kind: DocKind<V>, loaded: Entry<V>, buffered: Buffered<V>): Entry<V> {
    const current = kind.get();
    if (loaded === current) return current;
    for (const change of buffered) loaded.doc.apply(change.revision, change.ops);
    if (current && current.doc.revision > loaded.doc.revision) {
      current.readAt = Math.max(current.readAt, loaded.readAt);
      current.verifiedAt = Math.max(current.verifiedAt, loaded.verifiedAt);
      current.epoch = loaded.epoch;
      return current;
    }
    loaded.negativeUntil = kind.negativeTtlMs && loaded.doc.size === 0 ? this.now() + kind.negativeTtlMs : 0;
    this.succeed(kind.name, current, loaded, kind.encode);
    kind.set(loaded);
    return loaded;
  }

  /** `next` replaces `previous` (a reload or a resync): it keeps the index unless the content differs. */
  private succeed<V>(name: string, previous: Entry<V> | undefined, next: Entry<V>, encode: (value: V) => string): void {
    if (!previous) next.index = next.doc.revision;
    else if (sameContent(previous.doc, next.doc, encode)) next.index = previous.index;
    else this.changed(name, next, next.doc.revision);
  }

  private changed(name: string, entry: Entry<unknown>, revision: number): void {
    entry.index = revision;
    this.changes.notify(name);
  }

  /** Runs an L2 operation; an unreachable L2 yields `otherwise` (a miss), never an error. */
  private async sharedOr<T, U>(operation: () => Promise<T>, otherwise: U): Promise<T | U> {
    if (!this.shared.isUp()) return otherwise;
    try {
      return await operation();
    } catch (err) {
      this.hooks.sharedStoreFailed?.(err);
      return otherwise;
    }
  }

  private serviceKind(service: string): DocKind<ResolvedInstance> {
    return {
      name: `svc:${service}`,
      flights: this.serviceFlights,
      negativeTtlMs: this.options.negativeTtlMs,
      get: () => this.services.get(service),
      set: (entry) => this.services.set(service, entry),
      fetch: async () => toServiceDoc(await this.source.listService(service), this.source.layout, this.parts),
      encode: (instance) => JSON.stringify(instance),
      decode: (value) => decodeInstance(value, this.parts),
    };
  }
}

/** Whether applying `ops` to `doc` would change what it answers (an identical re-put does not). */
function changesContent<V>(doc: RevisionedMap<V>, ops: readonly FieldOp<V>[], encode: (value: V) => string): boolean {
  return ops.some((op) => {
    const current = doc.fields.get(op.field);
    if (op.op === 'set') return current === undefined || encode(current) !== encode(op.value);
    if (op.op === 'del') return current !== undefined;
    return op.by !== 0;
  });
}

function sameContent<V>(a: RevisionedMap<V>, b: RevisionedMap<V>, encode: (value: V) => string): boolean {
  if (a.size !== b.size) return false;
  for (const [field, value] of a.fields) {
    const other = b.fields.get(field);
    if (other === undefined || encode(other) !== encode(value)) return false;
  }
  return true;
}

function toResolved(id: string, record: NonNullable<ReturnType<typeof decodeRecord>>, parts: SharedParts): ResolvedInstance {
  const { address, port, metadata, tags, zone, weight, status, registeredAt } = record;
  return { id, address, port, metadata: parts.object(metadata), tags: parts.object(tags), zone: parts.string(zone), weight, status: parts.string(status), registeredAt };
}

function toServiceDoc(range: StoredRange, layout: KeyLayout, parts: SharedParts): RevisionedMap<ResolvedInstance> {
  const doc = new RevisionedMap<ResolvedInstance>(Number(range.revision));
  for (const item of range.items) {
    const address = layout.parseInstanceKey(item.key);
    const record = address && decodeRecord(item.value);
    if (address && record) doc.fields.set(address.id, toResolved(address.id, record, parts));
  }
  return doc;
}

function toCountsDoc(range: StoredRange, layout: KeyLayout): RevisionedMap<number> {
  const doc = new RevisionedMap<number>(Number(range.revision));
  for (const item of range.items) {
    const address = layout.parseInstanceKey(item.key);
    if (address) doc.fields.set(address.service, (doc.fields.get(address.service) ?? 0) + 1);
  }
  return doc;
}

/** An instance as L2 holds it; anything malformed (another version, a hand edit) is skipped. */
function decodeInstance(value: string, parts: SharedParts): ResolvedInstance | undefined {
  try {
    const parsed = JSON.parse(value) as ResolvedInstance;
    const valid =
      typeof parsed.id === 'string' &&
      typeof parsed.address === 'string' &&
      typeof parsed.port === 'number' &&
      (INSTANCE_STATUSES as readonly string[]).includes(parsed.status) &&
      Array.isArray(parsed.tags) &&
      (parsed.registeredAt === undefined || typeof parsed.registeredAt === 'string') &&
      typeof parsed.metadata === 'object';
    return valid ? { ...parsed, metadata: parts.object(parsed.metadata), tags: parts.object(parsed.tags), zone: parts.string(parsed.zone), status: parts.string(parsed.status) } : undefined;
  } catch {
    return undefined;
  }
}
