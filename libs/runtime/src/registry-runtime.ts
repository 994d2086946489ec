import { LoadShedder } from '@app/concurrency';
import { RegistryReadModel } from '@app/cache';
import {
  ConnectionPool,
  EtcdCredentials,
  EtcdObserver,
  EtcdTlsOptions,
  HeardSetPublisher,
  HeardSetPublisherStats,
  HeardSetStore,
  InstanceDirectory,
  InstanceRegistrar,
  isCredentialRejection,
  LeaseEngine,
  LeaseEngineOptions,
  LeaseEngineStats,
  LeaseGrantStats,
  LeaseTable,
  RegistrarHooks,
  RegistryEvent,
  RegistryStore,
  RegistryWatch,
  ReplicaPresence,
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
  /** This replica's id (lowercase hex): its presence key, its heard-sets, its renewal-ledger claims. */
  replicaId: string;
  /**
   * Where this replica publishes the instances it heard, once per pass (LIVENESS_PASS_MS): what replicas
   * that expire instances themselves (shared leases) read before deleting one. Absent = not published.
   */
  heardSets?: { store: HeardSetStore; passMs: number };
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
  /** Answers the watch has not confirmed for this long are marked `stale` (the watch checks progress 3 times as often). */
  staleAfterMs: number;
}

export type LogLevel = 'info' | 'warn' | 'error';

/** Where the runtime reports: metrics hooks (all optional) and one log function. */
export interface RegistryRuntimeObserver {
  etcd?: EtcdObserver;
  registrar?: RegistrarHooks;
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
  /** `stale`: lookups are answered from memory but marked stale (the watch has not confirmed them). */
  watch: { up: boolean; revision: number; stale: boolean };
  /** This replica's presence key is in etcd (confirmed within its TTL), and its heard-sets as published so far. */
  liveness: { present: boolean; heardSets?: HeardSetPublisherStats };
  /** The initial read of the registry is done (readiness: `starting` until then). */
  synced: boolean;
  /** Services whose decoded view is in memory (looked up since the last change or read). */
  lookupViews: number;
  writeQueueDepth: number;
  eventLoopDelayMs: number;
}

/**
 * The etcd side of one gateway replica, in one place and without a framework: the pool, the lease
 * engine (lease table here, renewals in its worker thread), the registrar, the one registry watch, the
 * instance directory it keeps current and the read model derived from it (every lookup is answered
 * there, never from etcd once synced). The watch's events are fanned out here to every consumer (the
 * directory, the read model, the registrar's payloads), so no consumer depends on another one to stay
 * correct. Nest providers are thin wrappers over its parts.
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
  /** Every instance and its lease, from the initial read and the watch. */
  readonly directory: InstanceDirectory;
  /** Lookups, the service list and blocking queries, derived from the directory. */
  readonly reads: RegistryReadModel;
  /** This replica's key under `<prefix>gateway/replicas/` (see ReplicaPresence). */
  private readonly presence: ReplicaPresence;
  /** The instances heard here, published once per pass (see HeardSetPublisher); absent without a store. */
  private readonly heardSets: HeardSetPublisher | undefined;
  private heardSetsFailing = false;
  private watchDown = false;
  /** etcd's words for the failing authentication last logged; undefined while it succeeds. */
  private loggedAuthError: string | undefined;

  constructor(
    private readonly options: RegistryRuntimeOptions,
    private readonly observer: RegistryRuntimeObserver,
  ) {
    const log = observer.log;
    this.pool = new ConnectionPool({
      size: options.etcd.poolSize,
      endpoints: options.etcd.endpoints,
      credentials: options.etcd.credentials,
      tls: options.etcd.tls,
      requestTimeoutMs: options.etcd.requestTimeoutMs,
      observer: {
        ...observer.etcd,
        authenticateCalled: (result) => {
          observer.etcd?.authenticateCalled?.(result);
          this.authenticationChanged();
        },
      },
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
        // Registrations and heartbeats mark their slot; the publisher resolves the keys once per pass.
        heard: (slot) => this.heardSets?.heard(slot),
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
    const heardSets = options.heardSets;
    this.heardSets =
      heardSets &&
      new HeardSetPublisher(heardSets.store, { replicaId: options.replicaId, passMs: heardSets.passMs, keyOf: (slot) => this.leases.keyOf(slot) }, {
        failed: (err) => {
          // Once per outage: a pass every 2 s would otherwise log 30 lines a minute.
          if (!this.heardSetsFailing) log('warn', 'Liveness', `cannot publish this replica's heard-set (${err.message}); replicas expiring instances themselves pause until it is back`);
          this.heardSetsFailing = true;
        },
        published: () => {
          if (this.heardSetsFailing) log('info', 'Liveness', 'heard-sets published again');
          this.heardSetsFailing = false;
        },
      });
    this.presence = new ReplicaPresence(
      this.store,
      this.pool.connections[0],
      {
        replicaId: options.replicaId,
        // What a replica of another release needs to know about this one (docs/shared-leases.md section 5).
        describe: () => ({ leaseModel: 'per-instance', heardSetPassMs: heardSets?.passMs ?? null, startedAt: new Date().toISOString() }),
      },
      { log: (level, message) => log(level, 'Presence', message) },
    );
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
            this.watchDown = false;
          } else if (!this.watchDown) {
            this.watchDown = true;
            log('warn', 'Watch', `registry watch down (${reason}); answering lookups from memory (stale), reconnecting with backoff`);
          }
        },
      },
      {
        // Three progress answers per stale period: one lost answer does not make anything stale.
        progressIntervalMs: Math.max(100, Math.floor(options.staleAfterMs / 3)),
        silenceTimeoutMs: options.staleAfterMs,
        // One paged read of every instance first: the directory knows every lease before any event.
        initialSync: true,
        // A lagging watch member must not confirm what lookups answer (RELIABILITY.md, finding 3).
        clusterRevision: () => this.engine.revisionSeen,
      },
    );
    this.reads = new RegistryReadModel(this.directory, this.watch, { staleAfterMs: options.staleAfterMs });
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
      if (isCredentialRejection(err)) {
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
    // Neither blocks the start: an etcd or Redis that is down is retried every tick / pass.
    void this.presence.start();
    this.heardSets?.start();
    // Lookups answer `starting` until the initial read is applied: wait for it briefly, but an etcd
    // that is down at start must not block the start.
    await this.watch.whenUp(Math.min(this.options.etcd.requestTimeoutMs, 5_000));
  }

  health(now = Date.now()): RuntimeHealth {
    return {
      etcd: { readyConnections: this.pool.readyCount(), poolSize: this.pool.connections.length, lastSuccessAt: this.pool.lastSuccessAt(), authError: this.pool.authError() },
      renewals: this.engine.snapshot(now),
      grants: this.grants.stats(),
      instancesInMemory: this.leases.size,
      watch: { up: this.watch.isUp(), revision: this.watch.revision, stale: this.reads.isStale() },
      liveness: { present: this.presence.isPresent(now), heardSets: this.heardSets?.stats },
      synced: this.directory.isSynced,
      lookupViews: this.reads.viewsInMemory,
      writeQueueDepth: this.registrar.writeQueueDepth,
      eventLoopDelayMs: this.shedder.eventLoopDelayMs(),
    };
  }

  /** Stops everything this replica runs; leases are kept (any replica renews them next). */
  async close(): Promise<void> {
    this.watch.close();
    this.reads.close();
    this.shedder.stop();
    this.heardSets?.stop();
    await Promise.all([this.engine.close(), this.grants.close(), this.presence.leave()]);
    this.pool.close();
  }

  /**
   * Logged once per change, not per attempt: etcd refusing the gateway's credentials (a changed
   * password) is what an operator must act on, and nothing else in the replica stops working loudly
   * (lookups go on from memory, heartbeats of known instances too).
   */
  private authenticationChanged(): void {
    const authError = this.pool.authError();
    if (authError === this.loggedAuthError) return;
    if (authError) {
      this.observer.log('error', 'EtcdAuth', `etcd refuses the gateway's credentials: ${authError} (check ETCD_USERNAME/ETCD_PASSWORD); lookups are answered from memory, writes are refused with 503 until it succeeds`);
    } else {
      this.observer.log('info', 'EtcdAuth', 'etcd accepts the gateway\'s credentials again');
    }
    this.loggedAuthError = authError;
  }

  /** One watch response, in revision order, to every consumer. */
  private fanOut(events: RegistryEvent[]): void {
    this.directory.apply(events);
    this.reads.applyEvents(events);
    this.registrar.observeWrites(events);
  }

  private resync(range: StoredRange): void {
    if (this.directory.isSynced) {
      this.observer.log('warn', 'Watch', `registry watch rebuilt from one read at revision ${range.revision} (etcd compacted the revisions it missed)`);
    } else {
      this.observer.log('info', 'Watch', `initial read of the registry: ${range.items.length} instances at revision ${range.revision}`);
    }
    this.directory.replace(range);
    this.reads.resynced(Number(range.revision));
  }
}
