import { IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import { ReopenTimer } from '@app/concurrency';
import { prefixRangeEnd } from '@app/registry';
import { ConnectionPool } from './connection-pool';
import { EtcdConnection } from './etcd-connection';
import { isStaleTokenCancel, isStaleTokenRejection } from './etcd-errors';
import { RegistryStore, StoredRange } from './registry-store';

/** One change of an instance key, as the watch delivers it. */
export interface RegistryEvent {
  type: 'put' | 'delete';
  service: string;
  id: string;
  /** The stored value (puts only). */
  value?: string;
  /** The lease the key is written with (puts only; '0' = none). */
  leaseId?: string;
  /** The etcd revision of this change. */
  revision: number;
  /** A put that created the key (version 1), as opposed to one that replaced it. */
  created: boolean;
}

/** One change of a key under `<prefix>gateway/` (presence keys, lease records). */
export interface GatewayEvent {
  type: 'put' | 'delete';
  kind: 'replica' | 'lease';
  /** The replica id or the lease id the key names. */
  id: string;
  value?: string;
  revision: number;
}

/** The watch's second audience: the gateway's own records, delivered in the same order as instance events. */
export interface GatewayWatchHooks {
  events(events: GatewayEvent[]): void;
  /** Every gateway record at one revision (initial read, rebuild after a compaction). */
  resync(range: StoredRange): void;
}

export interface RegistryWatchHooks {
  /** One etcd watch response: events in revision order, all events of a revision in the same call. */
  events(events: RegistryEvent[]): void;
  /**
   * The watch could not resume because etcd compacted the revisions it missed: `range` is the whole
   * registry at one revision and replaces whatever the listener derived from earlier events.
   */
  resync(range: StoredRange): void;
  /** The stream is up (created by etcd) or down (broken, silent, canceled); `reason` when down. */
  stateChanged?(up: boolean, reason?: string): void;
}

export interface RegistryWatchOptions {
  /** How often etcd is asked for a progress notification: any answer proves stream and etcd alive. */
  progressIntervalMs: number;
  /** No answer for this long: the stream counts as dead (e.g. etcd frozen) and is reopened. */
  silenceTimeoutMs: number;
  /** Reopen backoff: doubles from min to max, jittered so replicas don't reconnect in step. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Keys per page of the rebuild read after a compaction. */
  rebuildPageSize?: number;
  /**
   * Start with one (paged) read of the whole registry, delivered through `resync`, and watch from the
   * revision after it: consumers know every instance before the first event, not only later changes.
   */
  initialSync?: boolean;
  /**
   * The highest revision this replica has seen etcd reach elsewhere (the lease engine's keepalive
   * answers, from whichever member its streams use); 0 = unknown. A progress answer from a member
   * behind it does not confirm the cache (see confirmedAt).
   */
  clusterRevision?: () => number;
  /**
   * Also watch `<prefix>gateway/` (presence keys, lease records): the stream then covers the whole
   * prefix, and the initial read / rebuild reads the gateway records too (store.scanGateway).
   */
  gateway?: GatewayWatchHooks;
  now?: () => number;
}

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

/**
 * ONE etcd Watch stream per replica on the registry prefix. It resumes from the last delivered
 * revision + 1 after any break, so no change is missed; when etcd has compacted those revisions it
 * rebuilds from one (paged) Range instead and tells the listener to replace its state.
 *
 * Health: the stream is asked for a progress notification every `progressIntervalMs`; silence for
 * `silenceTimeoutMs` (a frozen etcd keeps the TCP connection open) counts as a break.
 *
 * `confirmedAt` is when etcd last proved that what the watch delivered is current, which is what a
 * cache needs to tell current answers from stale ones. An answer alone does not prove it: etcd 3.4
 * answers a progress request at once with its member's own revision, also while that member is
 * catching up after a stall (a thawed member, a partition healed) and while a resumed watcher has
 * not sent its backlog yet. Taking such an answer as confirmation let a replica serve instances
 * deleted meanwhile as `stale: false` (RELIABILITY.md, finding 3). So an answer confirms only when
 * - its member has reached the revision the rest of the cluster had reached one progress interval
 *   earlier (`clusterRevision`, sampled when the previous progress request was sent: a member that
 *   lags by less than that counts as current, so ordinary follower lag never makes answers stale);
 * - and, after the stream resumed from an older revision, one progress interval has passed since
 *   its creation (etcd syncs a lagging watcher every 100 ms; the interval is ten of those).
 */
export class RegistryWatch {
  private stream: WatchStream | undefined;
  private created = false;
  private lastRevision = 0;
  private continuity = 0;
  private lastHeardAt = 0;
  private lastConfirmedAt = 0;
  /** Answers confirm only from members at or past this revision (see the class comment). */
  private progressFloor = 0;
  private nextProgressFloor = 0;
  /** Answers confirm only from this time on (a resumed stream's backlog window). */
  private confirmableFrom = 0;
  /** The next creation starts from a read just made (no backlog window). */
  private justRead = false;
  private openedAt = 0;
  private readonly reopen: ReopenTimer;
  private needsRebuild = false;
  private authRefresh: Promise<void> = Promise.resolve();
  private progressTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly upWaiters = new Set<() => void>();
  private readonly revisionWaiters = new Set<{ revision: number; done: () => void }>();
  private readonly now: () => number;

  constructor(
    private readonly pool: Pick<ConnectionPool, 'pick'>,
    private readonly store: Pick<RegistryStore, 'scanAll' | 'layout'> & Partial<Pick<RegistryStore, 'scanGateway'>>,
    private readonly hooks: RegistryWatchHooks,
    private readonly options: RegistryWatchOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.reopen = new ReopenTimer({ minMs: options.backoffMinMs ?? 100, maxMs: options.backoffMaxMs ?? 5_000, jitter: 0.5 }, () => void this.open());
  }

  /**
   * Bumped whenever changes may have been missed: the first creation and every rebuild. State derived
   * under an older epoch may lack changes; state derived under the current one is kept current.
   */
  get epoch(): number {
    return this.continuity;
  }

  /** The last revision whose changes were delivered (0 before the first creation). */
  get revision(): number {
    return this.lastRevision;
  }

  /** When etcd last confirmed that the delivered changes are current (epoch ms); 0 while the stream is down. */
  get confirmedAt(): number {
    return this.isUp() ? this.lastConfirmedAt : 0;
  }

  isUp(): boolean {
    return this.created && this.stream !== undefined;
  }

  start(): void {
    if (this.options.initialSync && !this.lastRevision) this.needsRebuild = true;
    this.progressTimer = setInterval(() => this.checkProgress(), this.options.progressIntervalMs);
    this.progressTimer.unref();
    void this.open();
  }

  /** Resolves true once the stream is created, false after `timeoutMs` (etcd down at start is not fatal). */
  whenUp(timeoutMs: number): Promise<boolean> {
    return this.waitFor(this.upWaiters, () => this.isUp(), (done) => done, timeoutMs);
  }

  /** Resolves true once changes up to `revision` were delivered (read-your-writes), false after `timeoutMs`. */
  waitForRevision(revision: number, timeoutMs: number): Promise<boolean> {
    return this.waitFor(this.revisionWaiters, () => this.lastRevision >= revision, (done) => ({ revision, done }), timeoutMs);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.progressTimer);
    this.reopen.close();
    const stream = this.stream;
    this.stream = undefined;
    this.created = false;
    stream?.cancel();
    for (const done of this.upWaiters) done();
    for (const waiter of this.revisionWaiters) waiter.done();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    await this.authRefresh;
    let connection: EtcdConnection;
    let stream: WatchStream;
    let token: string | undefined;
    try {
      if (this.needsRebuild) await this.rebuild();
      connection = this.pool.pick();
      token = await connection.currentToken();
      stream = await connection.watch.watch();
    } catch (err) {
      this.reopen.schedule();
      return;
    }
    if (this.closed) {
      stream.cancel();
      return;
    }
    this.stream = stream;
    this.created = false;
    this.openedAt = this.now();
    stream.on('data', (res) => this.onResponse(stream, res, connection, token));
    stream.on('error', (err) => {
      if (isStaleTokenRejection(err)) this.refreshAuth(connection, token);
      this.drop(stream, err.message);
    });
    stream.on('end', () => this.drop(stream, 'stream ended'));
    // With the gateway's records: one watch over the whole prefix (services/ and gateway/ both live there).
    const root = this.options.gateway ? this.store.layout.prefix : this.store.layout.servicesRoot;
    stream.write({
      create_request: {
        key: Buffer.from(root),
        range_end: prefixRangeEnd(root),
        // Resume exactly after the last change we delivered; the first creation starts "now".
        start_revision: this.lastRevision ? this.lastRevision + 1 : undefined,
      },
    });
  }

  private onResponse(stream: WatchStream, res: IWatchResponse, connection: EtcdConnection, token: string | undefined): void {
    if (stream !== this.stream) return;
    const now = this.now();
    this.lastHeardAt = now;
    if (res.compact_revision && res.compact_revision !== '0') {
      // etcd no longer has the revisions we missed: rebuild from one Range, then watch from there.
      this.needsRebuild = true;
      this.drop(stream, `revisions up to ${res.compact_revision} were compacted`, true);
      return;
    }
    if (res.canceled) {
      // After an etcd restart the old token is unknown and etcd cancels the watch at creation with
      // "invalid auth token" (or "permission denied", which 3.4 also reports for a bad token).
      const reason = res.cancel_reason || 'watch canceled by etcd';
      if (isStaleTokenCancel(reason)) this.refreshAuth(connection, token);
      this.drop(stream, reason);
      return;
    }
    if (res.created) {
      this.created = true;
      this.reopen.succeeded();
      const resumed = this.lastRevision > 0;
      if (!resumed) {
        this.lastRevision = Number(res.header.revision);
        this.continuity++;
      }
      // Right after a read (first creation, initial sync, rebuild) the backlog is milliseconds long.
      this.confirmableFrom = resumed && !this.justRead ? now + this.options.progressIntervalMs : now;
      this.justRead = false;
      this.hooks.stateChanged?.(true);
      this.settle();
    }
    if (res.events.length) this.deliver(res);
    if (now >= this.confirmableFrom && Number(res.header?.revision ?? 0) >= this.progressFloor) this.lastConfirmedAt = now;
  }

  private deliver(res: IWatchResponse): void {
    const events: RegistryEvent[] = [];
    const gatewayEvents: GatewayEvent[] = [];
    for (const event of res.events) {
      const revision = Number(event.kv.mod_revision);
      this.lastRevision = Math.max(this.lastRevision, revision);
      const key = event.kv.key.toString();
      const put = event.type === 'Put';
      const address = this.store.layout.parseInstanceKey(key);
      if (!address) {
        const record = this.options.gateway && this.store.layout.parseGatewayKey(key);
        if (record) gatewayEvents.push({ type: put ? 'put' : 'delete', kind: record.kind, id: record.id, value: put ? event.kv.value.toString() : undefined, revision });
        continue; // otherwise not an instance key (written by hand): nothing to apply
      }
      events.push({
        type: put ? 'put' : 'delete',
        service: address.service,
        id: address.id,
        value: put ? event.kv.value.toString() : undefined,
        leaseId: put ? String(event.kv.lease) : undefined,
        revision,
        created: put && String(event.kv.version) === '1',
      });
    }
    // Gateway records first: an instance event may name a lease whose record arrived in the same response.
    if (gatewayEvents.length) this.options.gateway!.events(gatewayEvents);
    if (events.length) this.hooks.events(events);
    this.settle();
  }

  private async rebuild(): Promise<void> {
    // Instances first: the watch resumes after their revision, so a gateway record changed before the
    // second read is delivered again by the watch (replayed in order, it ends in the same state).
    const range = await this.store.scanAll({ pageSize: this.options.rebuildPageSize });
    const gateway = this.options.gateway && this.store.scanGateway ? await this.store.scanGateway() : undefined;
    if (gateway) this.options.gateway!.resync(gateway);
    this.needsRebuild = false;
    this.justRead = true;
    this.lastRevision = Number(range.revision);
    this.continuity++;
    this.hooks.resync(range);
    this.settle();
  }

  private checkProgress(): void {
    const stream = this.stream;
    if (!stream) return;
    const silentFor = this.now() - Math.max(this.lastHeardAt, this.openedAt);
    if (silentFor > this.options.silenceTimeoutMs) {
      this.drop(stream, `no answer from etcd for ${silentFor} ms`);
      return;
    }
    if (!this.created) return;
    // The floor lags one interval behind what the cluster reached (see the class comment).
    this.progressFloor = this.nextProgressFloor;
    this.nextProgressFloor = this.options.clusterRevision?.() ?? 0;
    stream.write({ progress_request: {} });
  }

  /** Forgets `stream` (if still current), cancels it and schedules a reopen. */
  private drop(stream: WatchStream, reason: string, immediately = false): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    this.created = false;
    stream.cancel(); // its own 'error'/'end' now find it is no longer current and are ignored
    this.hooks.stateChanged?.(false, reason);
    this.reopen.schedule(immediately ? 0 : undefined);
  }

  /** Re-authenticates (once per connection, see EtcdConnection.invalidateToken) before reopening. */
  private refreshAuth(connection: EtcdConnection, usedToken: string | undefined): void {
    connection.invalidateToken(usedToken);
    this.authRefresh = connection.currentToken().then(
      () => undefined,
      () => undefined,
    );
  }

  private settle(): void {
    if (this.isUp()) for (const done of this.upWaiters) done();
    for (const waiter of this.revisionWaiters) if (this.lastRevision >= waiter.revision) waiter.done();
  }

  private waitFor<W>(waiters: Set<W>, ready: () => boolean, make: (done: () => void) => W, timeoutMs: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(ready());
      };
      const waiter = make(finish);
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      waiters.add(waiter);
    });
  }
}
