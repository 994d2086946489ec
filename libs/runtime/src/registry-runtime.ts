import { LoadShedder } from '@app/concurrency';
import { RegistryReadModel } from '@app/cache';
import {
  ConnectionPool,
  EtcdCredentials,
  EtcdObserver,
  EtcdTlsOptions,
  ExpiryStats,
  ExpirySweep,
  HeardSetPublisher,
  HeardSetPublisherStats,
  HeardSetReader,
  HeardSetStore,
  InstanceDirectory,
  InstanceRegistrar,
  isCredentialRejection,
  LegacyLeaseRenewals,
  LegacyRenewalStats,
  LivenessTable,
  RegistrarHooks,
  RegistryEvent,
  RegistryStore,
  RegistryWatch,
  ReplicaPresence,
  SharedLeases,
  SharedLeaseStats,
  StoredRange,
} from '@app/etcd';
import { decodeRecord, KeyLayout } from '@app/registry';

/** Longest instance TTL (libs/registry limits): how long heard marks are kept. */
const LONGEST_TTL_MS = 300_000;

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
  /** This replica's id (lowercase hex): its presence key, its heard-sets, the owner in its lease records. */
  replicaId: string;
  /**
   * Where replicas publish and read the instances they heard, once per pass (LIVENESS_PASS_MS): the
   * expiry sweep deletes nothing another present replica may have heard. Absent = no exchange: with
   * other replicas present, expiry then stays paused.
   */
  heardSets?: { store: HeardSetStore; passMs: number };
  /** Shared leases: LEASE_TTL (the shortest lease class, s) and LEASE_MAX_KEYS. */
  leases: { ttlSeconds: number; maxKeys: number };
  /** Legacy (one lease per instance) instances moved onto shared leases per second at most. */
  migrationsPerSecond: number;
  /** Hold expiry deletes when more than `threshold` of the owned instances go silent at once, for at most `maxMs`; absent = off. */
  selfPreservation?: { threshold: number; maxMs: number };
  admissionMaxEventLoopDelayMs: number;
  writeConcurrency: number;
  writeQueueCapacity: number;
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
  /** Instances the expiry sweep deleted (no replica heard them for their TTL). */
  instancesExpired?(count: number): void;
  log(level: LogLevel, context: string, message: string): void;
}

/** What lookups need from the read model (RegistryReadModel); its lifecycle stays with the runtime. */
export type RegistryReads = Pick<RegistryReadModel, 'resolve' | 'listServices' | 'waitForServiceChange' | 'waitForListChange'>;

/** What readiness and operators need, read from state the runtime keeps (no I/O). */
export interface RuntimeHealth {
  etcd: { readyConnections: number; poolSize: number; lastSuccessAt: number; authError?: string };
  /** The shared leases this replica owns and their renewals. */
  leases: SharedLeaseStats;
  /** The expiry sweep: paused (heard-sets gap), overdue instances, self-preservation. */
  expiry: ExpiryStats;
  /** One-key leases of the previous release renewed here until their instances move (0 once the migration is done). */
  legacyLeases: LegacyRenewalStats;
  /** Instances in the directory (the whole registry as the watch knows it). */
  instancesInMemory: number;
  /** `stale`: lookups are answered from memory but marked stale (the watch has not confirmed them). */
  watch: { up: boolean; revision: number; stale: boolean };
  /** This replica's presence key is in etcd (confirmed within its TTL), and its heard-sets as published so far. */
  liveness: { present: boolean; replicas: number; heardSets?: HeardSetPublisherStats };
  /** The initial read of the registry is done (readiness: `starting` until then). */
  synced: boolean;
  /** Services whose decoded view is in memory (looked up since the last change or read). */
  lookupViews: number;
  writeQueueDepth: number;
  eventLoopDelayMs: number;
}

/**
 * The etcd side of one gateway replica, in one place and without a framework: the pool, the shared
 * leases (placed, renewed, adopted), the Put batcher inside the registrar, the expiry sweep and the
 * liveness exchange (presence in etcd, heard-sets in Redis), the one registry watch, the instance
 * directory it keeps current and the read model derived from it. The watch's events are fanned out here
 * to every consumer. Nest providers are thin wrappers over its parts.
 *
 * close() orphans the shared leases (the survivors adopt them); it never revokes one.
 */
export class RegistryRuntime {
  /** Writes: registrations, heartbeats, deregistrations, updates (the HTTP routes and the doors). */
  readonly registrar: InstanceRegistrar;
  /** Lookups, the service list and blocking queries, derived from the directory. */
  readonly reads: RegistryReads;
  // The parts below are wired here and reached only through this class (health(), start(), close()).
  private readonly pool: ConnectionPool;
  private readonly store: RegistryStore;
  private readonly leases: SharedLeases;
  /** Renews the one-key leases of legacy instances heard here until they move onto shared leases. */
  private readonly legacyLeases: LegacyLeaseRenewals;
  private readonly liveness = new LivenessTable();
  private readonly sweep: ExpirySweep;
  private readonly shedder: LoadShedder;
  private readonly watch: RegistryWatch;
  /** Every instance and its lease, from the initial read and the watch. */
  private readonly directory: InstanceDirectory;
  private readonly readModel: RegistryReadModel;
  /** This replica's key under `<prefix>gateway/replicas/` (see ReplicaPresence). */
  private readonly presence: ReplicaPresence;
  /** The instances heard here, published once per pass (see HeardSetPublisher); absent without a store. */
  private readonly heardSets: HeardSetPublisher | undefined;
  private readonly exchange: HeardSetReader | undefined;
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
    // Values of instances heard lately are kept after etcd deletes them: a lost lease's re-put reads them.
    this.directory = new InstanceDirectory(this.store.layout, { retain: (key) => this.liveness.heardWithin(key, LONGEST_TTL_MS, Date.now()) });
    this.leases = new SharedLeases(
      this.store,
      [...this.pool.connections],
      { replicaId: options.replicaId, leaseTtlSeconds: options.leases.ttlSeconds, maxKeys: options.leases.maxKeys, countKeys: (leaseId) => this.directory.countOn(leaseId) },
      {
        leaseLost: (lease) => this.registrar.rewriteLostLease(lease),
        unownedAnswer: (leaseId, ttl) => this.legacyLeases.answered(leaseId, ttl),
        log: (level, message) => log(level, 'SharedLeases', message),
      },
    );
    this.legacyLeases = new LegacyLeaseRenewals(this.leases.transport, { leaseOf: (key) => this.directory.leaseOf(key) }, {}, {
      log: (level, message) => log(level, 'LegacyLeases', message),
    });
    const heardSets = options.heardSets;
    this.heardSets =
      heardSets &&
      new HeardSetPublisher(heardSets.store, { replicaId: options.replicaId, passMs: heardSets.passMs }, {
        failed: (err) => {
          // Once per outage: a pass every 2 s would otherwise log 30 lines a minute.
          if (!this.heardSetsFailing) log('warn', 'Liveness', `cannot publish this replica's heard-set (${err.message}); replicas' expiry pauses until it is back`);
          this.heardSetsFailing = true;
        },
        published: () => {
          if (this.heardSetsFailing) log('info', 'Liveness', 'heard-sets published again');
          this.heardSetsFailing = false;
        },
      });
    this.exchange = heardSets && new HeardSetReader(heardSets.store, { selfId: options.replicaId, passMs: heardSets.passMs, keepMs: LONGEST_TTL_MS });
    this.sweep = new ExpirySweep(
      this.liveness,
      {
        ownedLeases: () => this.leases.ownedIds(),
        responsibleSince: (leaseId) => this.leases.responsibleSince(leaseId),
        fence: (leaseId) => {
          const record = this.leases.record(leaseId);
          return record && { key: this.store.layout.leaseRecordKey(leaseId), modRevision: record.modRevision };
        },
        instancesOn: (leaseIds, visit) => this.directory.forEachOnLeases(leaseIds, visit),
        exchange: this.exchange ?? {
          // No exchange configured: alone, this replica's own marks decide; with others present, it pauses.
          refresh: () => Promise.resolve(),
          verdict: (_key, ttlMs, lastHeard, now) =>
            lastHeard > now - ttlMs ? { expire: false, reason: 'heard' } : this.leases.presentReplicas().some((id) => id !== options.replicaId) ? { expire: false, reason: 'gap' } : { expire: true },
        },
        presentReplicas: () => this.leases.presentReplicas(),
        deleteIfUnchanged: (items) => this.store.deleteIfUnchanged(items),
      },
      { passMs: heardSets?.passMs ?? 2_000, selfPreservation: options.selfPreservation },
      { expired: (count) => observer.instancesExpired?.(count), log: (level, message) => log(level, 'ExpirySweep', message) },
    );
    this.presence = new ReplicaPresence(
      this.store,
      this.pool.connections[0],
      {
        replicaId: options.replicaId,
        // What a replica of another release needs to know about this one (docs/shared-leases.md section 5).
        describe: () => ({ leaseModel: 'shared', heardSetPassMs: heardSets?.passMs ?? null, startedAt: new Date().toISOString() }),
      },
      { log: (level, message) => log(level, 'Presence', message) },
    );
    this.shedder = new LoadShedder({ maxEventLoopDelayMs: options.admissionMaxEventLoopDelayMs });
    this.registrar = new InstanceRegistrar(
      this.store,
      this.leases,
      {
        writeConcurrency: options.writeConcurrency,
        writeQueueCapacity: options.writeQueueCapacity,
        putBatch: options.putBatch,
        migrationsPerSecond: options.migrationsPerSecond,
        legacyHeard: (key, lease) => this.legacyLeases.heard(key, lease),
        shedRegistrations: () => this.shedder.shouldShed(),
        liveness: this.liveness,
        heardAnywhere: (key, ttlMs, now) => {
          const lastHeard = this.liveness.lastHeard(key);
          if (now - lastHeard <= ttlMs) return true;
          // Another replica's heard-sets, or a gap there: both keep the instance (a dead one is expired later).
          return this.exchange ? !this.exchange.verdict(key, ttlMs, lastHeard, now).expire : false;
        },
        heard: this.heardSets && ((key, before) => this.heardSets!.heard(key, before)),
        // Read-your-writes: the answer waits (1 s at most) for the watch to bring the write into lookups;
        // with the watch down it does not wait (lookups are stale then anyway).
        visible: (revision) => (this.watch.isUp() ? this.watch.waitForRevision(Number(revision), 1_000) : Promise.resolve()),
        directory: {
          current: () => this.directory.isSynced && this.watch.isUp(),
          has: (key) => this.directory.has(key),
          leaseOf: (key) => this.directory.leaseOf(key),
          get: (key) => this.directory.get(key),
          written: (key, value, leaseId, now, modRevision) => this.directory.written(key, value, leaseId, now, modRevision),
          recentlyDeleted: (key) => {
            const now = Date.now();
            const afterOutage = this.directory.recentlyDeleted(key, now);
            if (afterOutage) return afterOutage;
            // Deleted with its lease (revoked, expired) while its pod was heard: the pod's next heartbeat
            // writes it back (create-if-absent), whether or not the lease's re-put got there first.
            const deleted = this.directory.lastDeleted(key);
            const ttl = deleted && decodeRecord(deleted.value)?.ttl;
            return deleted && ttl && !this.leases.record(deleted.leaseId) && now - deleted.deletedAt <= ttl * 1000 ? { value: deleted.value } : undefined;
          },
          instancesOn: (leaseId) => {
            const found = this.directory.deletedOn(leaseId);
            this.directory.forEachOnLeases(new Set([leaseId]), (key, _lease, _rev, value) => found.push({ key, value }));
            return found;
          },
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
        clusterRevision: () => this.leases.revisionSeen,
        // Presence keys and lease records: takeover, ownership, the fence of expiry deletes.
        gateway: { events: (events) => this.leases.applyGatewayEvents(events), resync: (range) => this.leases.resyncGateway(range) },
      },
    );
    this.readModel = new RegistryReadModel(this.directory, this.watch, { staleAfterMs: options.staleAfterMs });
    this.reads = this.readModel;
  }

  /**
   * Authenticates the pool, starts the renewals, the watch, presence and the liveness exchange. etcd
   * being down is not fatal (the gateway serves what it can and keeps retrying); wrong credentials are,
   * since they never heal.
   */
  async start(): Promise<void> {
    try {
      await this.pool.connect();
    } catch (err) {
      const message = (err as Error).message;
      if (isCredentialRejection(err)) throw new Error(`etcd rejected the gateway's credentials (ETCD_USERNAME/ETCD_PASSWORD): ${message}`, { cause: err });
      this.observer.log('warn', 'RegistryRuntime', `etcd not reachable at start (${message}); continuing and retrying in the background`);
    }
    this.leases.start();
    this.shedder.start();
    this.watch.start();
    // Neither blocks the start: an etcd or Redis that is down is retried every tick / pass.
    void this.presence.start();
    this.heardSets?.start();
    this.sweep.start();
    // Lookups answer `starting` until the initial read is applied: wait for it briefly, but an etcd
    // that is down at start must not block the start.
    await this.watch.whenUp(Math.min(this.options.etcd.requestTimeoutMs, 5_000));
  }

  health(now = Date.now()): RuntimeHealth {
    return {
      etcd: { readyConnections: this.pool.readyCount(), poolSize: this.pool.connections.length, lastSuccessAt: this.pool.lastSuccessAt(), authError: this.pool.authError() },
      leases: this.leases.stats(now),
      expiry: this.sweep.stats,
      legacyLeases: this.legacyLeases.stats,
      instancesInMemory: this.directory.size,
      watch: { up: this.watch.isUp(), revision: this.watch.revision, stale: this.readModel.isStale() },
      liveness: { present: this.presence.isPresent(now), replicas: this.leases.presentReplicas().length, heardSets: this.heardSets?.stats },
      synced: this.directory.isSynced,
      lookupViews: this.readModel.viewsInMemory,
      writeQueueDepth: this.registrar.writeQueueDepth,
      eventLoopDelayMs: this.shedder.eventLoopDelayMs(),
    };
  }

  /** The last revision the watch delivered (what lookups on this replica reflect). */
  get revision(): number {
    return this.watch.revision;
  }

  /** Resolves true once lookups here include the change at `revision` (read-your-writes), false after `timeoutMs`. */
  waitForRevision(revision: number, timeoutMs: number): Promise<boolean> {
    return this.watch.waitForRevision(revision, timeoutMs);
  }

  /**
   * Answers every held blocking query now, and later ones at once (shutdown: before the HTTP server
   * waits for requests in flight). close() does it too; a second call changes nothing.
   */
  answerHeldQueries(): void {
    this.readModel.close();
  }

  /**
   * Stops everything this replica runs. The shared leases are orphaned, not revoked: the presence key
   * is deleted first thing, so the survivors adopt them within seconds, with every key on them.
   */
  async close(): Promise<void> {
    this.sweep.stop();
    this.legacyLeases.orphan();
    this.leases.orphan();
    this.watch.close();
    this.answerHeldQueries();
    this.shedder.stop();
    this.heardSets?.stop();
    await this.presence.leave();
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
    this.readModel.applyEvents(events);
  }

  private resync(range: StoredRange): void {
    if (this.directory.isSynced) {
      this.observer.log('warn', 'Watch', `registry watch rebuilt from one read at revision ${range.revision} (etcd compacted the revisions it missed)`);
    } else {
      this.observer.log('info', 'Watch', `initial read of the registry: ${range.items.length} instances at revision ${range.revision}`);
    }
    this.directory.replace(range);
    this.readModel.resynced(Number(range.revision));
  }
}
