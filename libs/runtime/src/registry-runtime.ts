import { LoadShedder } from '@app/concurrency';
import { CacheResult, CacheTier, RegistryCache, SharedStore } from '@app/cache';
import {
  ConnectionPool,
  EtcdCredentials,
  EtcdObserver,
  EtcdTlsOptions,
  InstanceDirectory,
  InstanceRegistrar,
  LeaseEngine,
  LeaseEngineOptions,
  LeaseEngineStats,
  LeaseGrantStats,
  LeaseTable,
  RegistrarHooks,
  RegistryEvent,
  RegistryStore,
  RegistryWatch,
  StoredRange,
  WorkerLeaseGranter,
} from '@app/etcd';
import { KeyLayout } from '@app/registry';

/** Everything the runtime needs to know, already validated (the gateway's config module does that). */
export interface RegistryRuntimeOptions {
  etcd: {
    endpoints: string[];
    credentials?: EtcdCredentials;
    tls?: EtcdTlsOptions;
    poolSize: number;
    requestTimeoutMs: number;
    /** Every key the gateway writes lives under it. */
    prefix: string;
  };
  renewIntervalMs: number;
  /** Redis ledger through which replicas de-duplicate lease renewals; absent = every replica renews alone. */
  renewalLedger?: LeaseEngineOptions['ledger'];
  /** Keep renewing when more than `threshold` of the instances go silent at once, for at most `maxMs`; absent = off. */
  selfPreservation?: { threshold: number; maxMs: number };
  renewalLagMaxMs: number;
  admissionMaxEventLoopDelayMs: number;
  writeConcurrency: number;
  writeQueueCapacity: number;
  regrantsPerSecond: number;
  /** Registration Puts per etcd Txn and bytes per Txn at most (see InstanceRegistrar); absent = the registrar's defaults. */
  putBatch?: { maxSize: number; maxBytes: number };
  cache: {
    ttlMs: number;
    staleAfterMs: number;
    negativeTtlMs: number;
    sharedTtlMs: number;
    lockTtlMs: number;
    backoffMinMs: number;
    backoffMaxMs: number;
  };
}

export type LogLevel = 'info' | 'warn' | 'error';

/** Where the runtime reports: metrics hooks (all optional) and one log function. */
export interface RegistryRuntimeObserver {
  etcd?: EtcdObserver;
  registrar?: RegistrarHooks;
  cacheRequest?(tier: CacheTier, result: CacheResult): void;
  instanceExpired?(): void;
  log(level: LogLevel, context: string, message: string): void;
}

/** What readiness and operators need, read from state the runtime keeps (no I/O). */
export interface RuntimeHealth {
  etcd: { readyConnections: number; poolSize: number; lastSuccessAt: number; authError?: string };
  renewals: LeaseEngineStats;
  /** LeaseGrant calls: made by the grant worker, or on the HTTP thread while it is not running. */
  grants: LeaseGrantStats;
  instancesInMemory: number;
  watch: { up: boolean; revision: number };
  /** The initial read of the registry is done (readiness: `starting` until then). */
  synced: boolean;
  cache: { warmServices: number; sharedUp: boolean };
  writeQueueDepth: number;
  eventLoopDelayMs: number;
}

/**
 * The etcd side of one gateway replica, in one place and without a framework: the pool, the lease
 * engine (lease table here, renewals in its worker thread), the registrar, the one registry watch and
 * the two-tier lookup cache. The watch's events are fanned out here to every consumer (the cache, the
 * registrar's payloads), so no consumer depends on another one to stay correct. Nest providers are
 * thin wrappers over its parts.
 *
 * close() never revokes a lease: a rolling restart deregisters nobody.
 */
export class RegistryRuntime {
  readonly pool: ConnectionPool;
  readonly store: RegistryStore;
  readonly engine: LeaseEngine;
  readonly leases: LeaseTable;
  /** Makes the registrar's LeaseGrant calls on a worker thread (see WorkerLeaseGranter). */
  readonly grants: WorkerLeaseGranter;
  readonly registrar: InstanceRegistrar;
  readonly shedder: LoadShedder;
  readonly watch: RegistryWatch;
  readonly cache: RegistryCache;
  /** Every instance and its lease, from the initial read and the watch. */
  readonly directory: InstanceDirectory;
  private watchDown = false;
  private readsFailing = false;
  private lastSharedError = '';

  constructor(
    private readonly options: RegistryRuntimeOptions,
    shared: SharedStore,
    private readonly observer: RegistryRuntimeObserver,
  ) {
    const log = observer.log;
    this.pool = new ConnectionPool({
      size: options.etcd.poolSize,
      endpoints: options.etcd.endpoints,
      credentials: options.etcd.credentials,
      tls: options.etcd.tls,
      requestTimeoutMs: options.etcd.requestTimeoutMs,
      observer: observer.etcd,
    });
    this.store = new RegistryStore(this.pool, new KeyLayout(options.etcd.prefix));
    // The one copy of every instance's value: the lease table keeps none and re-grants read it here.
    this.directory = new InstanceDirectory(this.store.layout, { retain: (key) => this.leases.has(key) });
    this.engine = new LeaseEngine(
      {
        connections: this.pool.connections,
        endpointsPerConnection: [...this.pool.endpointsPerConnection],
        tls: options.etcd.tls,
        requestTimeoutMs: options.etcd.requestTimeoutMs,
        tickMs: options.renewIntervalMs,
        ledger: options.renewalLedger,
        selfPreservation: options.selfPreservation,
      },
      {
        leaseLost: (lease) => this.registrar.regrant(lease),
        values: this.directory,
        silentInstanceDropped: () => observer.instanceExpired?.(),
        log: (level, message) => log(level, 'LeaseEngine', message),
      },
    );
    this.leases = this.engine.table;
    this.grants = new WorkerLeaseGranter({
      connections: this.pool.connections,
      endpointsPerConnection: [...this.pool.endpointsPerConnection],
      tls: options.etcd.tls,
      requestTimeoutMs: options.etcd.requestTimeoutMs,
      fallback: { grant: (ttlSeconds) => this.store.grantLease(ttlSeconds) },
      observer: observer.etcd,
      log: (level, message) => log(level, 'LeaseGrants', message),
    });
    this.shedder = new LoadShedder({
      maxEventLoopDelayMs: options.admissionMaxEventLoopDelayMs,
      renewalLagMs: () => this.engine.oldestDueMs(),
      maxRenewalLagMs: options.renewalLagMaxMs,
    });
    this.registrar = new InstanceRegistrar(
      this.store,
      this.leases,
      {
        writeConcurrency: options.writeConcurrency,
        writeQueueCapacity: options.writeQueueCapacity,
        regrantsPerSecond: options.regrantsPerSecond,
        putBatch: options.putBatch,
        // WRITE_CONCURRENCY still bounds grants in flight: the registrar's write queue wraps every grant.
        granter: this.grants,
        shedRegistrations: () => this.shedder.shouldShed(),
        directory: {
          current: () => this.directory.isSynced && this.watch.isUp(),
          get: (key) => this.directory.get(key),
          recentlyDeleted: (key) => this.directory.recentlyDeleted(key),
        },
      },
      {
        ...observer.registrar,
        error: (message, err) => log('warn', 'Registrar', `${message}: ${(err as Error).message}`),
      },
    );
    this.watch = new RegistryWatch(
      this.pool,
      this.store,
      {
        events: (events) => this.fanOut(events),
        resync: (range) => this.resync(range),
        stateChanged: (up, reason) => {
          if (up) {
            if (this.watchDown) {
              log('info', 'Watch', 'registry watch is up again');
              this.directory.outageEndedAt(Date.now());
            }
            this.watchDown = this.readsFailing = false;
          } else if (!this.watchDown) {
            this.watchDown = true;
            log('warn', 'Watch', `registry watch down (${reason}); answering from cache, reconnecting with backoff`);
          }
        },
      },
      {
        // Three progress answers per stale period: one lost answer does not make anything stale.
        progressIntervalMs: Math.max(100, Math.floor(options.cache.staleAfterMs / 3)),
        silenceTimeoutMs: options.cache.staleAfterMs,
        // One paged read of every instance first: the directory knows every lease before any event.
        initialSync: true,
        // A lagging watch member must not confirm the cache (RELIABILITY.md, finding 3).
        clusterRevision: () => this.engine.revisionSeen,
      },
    );
    this.cache = new RegistryCache(this.store, shared, this.watch, options.cache, {
      cacheRequest: observer.cacheRequest,
      // Logged once per outage (until the watch is back), not once per service and attempt.
      refreshFailed: (doc, err) => {
        if (this.readsFailing) return;
        this.readsFailing = true;
        log('warn', 'Cache', `etcd read of ${doc} failed (${(err as Error).message}); answering from cache where possible, retrying with backoff`);
      },
      sharedStoreFailed: (err) => {
        const message = (err as Error).message;
        if (message !== this.lastSharedError) log('warn', 'Cache', `redis (L2) call failed: ${message}`);
        this.lastSharedError = message;
      },
    });
  }

  /**
   * Authenticates the pool, starts the lease engine and the watch. etcd being down is not fatal (the
   * gateway serves what it can and keeps retrying); wrong credentials are, since they never heal.
   */
  async start(): Promise<void> {
    // The workers load while the pool authenticates. A grant worker that does not start is not fatal:
    // grants are then made on this thread, as before it existed.
    const engineStarted = this.engine.start();
    const grantsStarted = this.grants.start().catch((err: Error) => this.observer.log('warn', 'LeaseGrants', `${err.message}; granting leases on the HTTP thread`));
    let connected = false;
    try {
      await this.pool.connect();
      connected = true;
    } catch (err) {
      const message = (err as Error).message;
      if (/authentication failed|invalid user ID or password|user name not found/i.test(message)) {
        await Promise.all([this.engine.close(), this.grants.close()]);
        throw new Error(`etcd rejected the gateway's credentials (ETCD_USERNAME/ETCD_PASSWORD): ${message}`, { cause: err });
      }
      this.observer.log('warn', 'RegistryRuntime', `etcd not reachable at start (${message}); continuing and retrying in the background`);
    }
    await Promise.all([engineStarted, grantsStarted]);
    // With etcd reachable, the streams are up a moment later: start serving when renewals can flow.
    if (connected) await this.engine.whenStreamsLive(Math.min(this.options.etcd.requestTimeoutMs, 5_000));
    this.shedder.start();
    this.watch.start();
    this.cache.startSweeping(this.options.cache.negativeTtlMs);
    // Documents loaded before the watch exists may miss changes (and are read again once it does):
    // wait for it briefly, but an etcd that is down at start must not block the start.
    await this.watch.whenUp(Math.min(this.options.etcd.requestTimeoutMs, 5_000));
  }

  health(now = Date.now()): RuntimeHealth {
    const cache = this.cache.health();
    return {
      etcd: { readyConnections: this.pool.readyCount(), poolSize: this.pool.connections.length, lastSuccessAt: this.pool.lastSuccessAt(), authError: this.pool.authError() },
      renewals: this.engine.snapshot(now),
      grants: this.grants.stats(),
      instancesInMemory: this.leases.size,
      watch: { up: this.watch.isUp(), revision: this.watch.revision },
      synced: this.directory.isSynced,
      cache: { warmServices: cache.warmServices, sharedUp: cache.sharedUp },
      writeQueueDepth: this.registrar.writeQueueDepth,
      eventLoopDelayMs: this.shedder.eventLoopDelayMs(),
    };
  }

  /** Stops everything this replica runs; leases are kept (any replica renews them next). */
  async close(): Promise<void> {
    this.watch.close();
    this.cache.close();
    this.shedder.stop();
    await Promise.all([this.engine.close(), this.grants.close()]);
    this.pool.close();
  }

  /** One watch response, in revision order, to every consumer. */
  private fanOut(events: RegistryEvent[]): void {
    this.directory.apply(events);
    this.cache.applyEvents(events);
    this.registrar.observeWrites(events);
  }

  private resync(range: StoredRange): void {
    if (this.directory.isSynced) {
      this.observer.log('warn', 'Watch', `registry watch rebuilt from one read at revision ${range.revision} (etcd compacted the revisions it missed)`);
    } else {
      this.observer.log('info', 'Watch', `initial read of the registry: ${range.items.length} instances at revision ${range.revision}`);
    }
    this.directory.replace(range);
    this.cache.resync(range);
  }
}
