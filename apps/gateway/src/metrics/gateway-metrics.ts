import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { SharedLeaseStats } from '@app/etcd';
import type { RuntimeHealth } from '@app/runtime';
import { RequestDurationHistogram } from './request-durations';

/** Labels of registry_blocking_queries_total. */
export const BLOCKING_QUERY_OUTCOMES = ['changed', 'timeout', 'immediate', 'rejected', 'disconnected', 'shutdown'] as const;
export type BlockingQueryOutcome = (typeof BLOCKING_QUERY_OUTCOMES)[number];
/** Labels of registry_heartbeats_total that exist from the start. */
const HEARTBEAT_RESULTS = ['accepted', 'not-found'] as const;
/** Labels of registry_legacy_lease_renewals_total. */
const LEGACY_RENEWAL_RESULTS = ['sent', 'confirmed', 'lost', 'silent'] as const;

/**
 * Every metric the gateway exports. Names are a contract with dashboards: change them only with a
 * note in the README. Each replica has its own Registry (tests run several replicas in one process).
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private runtimeHealth: (() => RuntimeHealth) | undefined;
  private redisClients: (() => ReadonlyArray<{ client: string; up: boolean }>) | undefined;
  /** The running totals (kept by the runtime) last added to a counter, by series (see addGrowth). */
  private readonly totalsSeen = new Map<string, number>();

  /**
   * Figures the runtime keeps anyway (shared leases, expiry sweep, watch) are read
   * at scrape time rather than pushed: nothing is computed for a metric nobody scrapes.
   */
  observeRuntime(health: () => RuntimeHealth): void {
    this.runtimeHealth = health;
  }

  /** Every Redis connection of the process (see redis-clients.ts), read at scrape time. */
  observeRedis(clients: () => ReadonlyArray<{ client: string; up: boolean }>): void {
    this.redisClients = clients;
  }

  private fromLeases(pick: (stats: SharedLeaseStats) => number): (this: Gauge) => void {
    return this.fromSource(() => this.runtimeHealth?.().leases, pick);
  }

  /** A gauge's collect(): prom-client calls it at scrape time with the gauge as `this`. */
  private fromSource<T>(read: () => T | undefined, pick: (value: T) => number): (this: Gauge) => void {
    return function (this: Gauge) {
      const value = read();
      if (value !== undefined) this.set(pick(value));
    };
  }

  /**
   * A counter's collect() for a running total the runtime keeps: adds what the total grew by since the
   * last scrape. A total that went down belongs to a restarted worker counting from 0: all of it is new.
   */
  private addGrowth<L extends string>(series: string, counter: Counter<L>, labels: Partial<Record<L, string>>, total: number): void {
    const seen = this.totalsSeen.get(series) ?? 0;
    const delta = total >= seen ? total - seen : total;
    this.totalsSeen.set(series, total);
    if (delta > 0) counter.inc(labels, delta);
  }

  private countRenewals(stats: SharedLeaseStats): void {
    for (const result of ['sent', 'confirmed', 'lost'] as const) this.addGrowth(`renewals ${result}`, this.leaseRenewals, { result }, stats[result]);
  }

  /**
   * Requests served by the protocol doors (Consul agent/catalog API, Eureka, Prometheus SD), so an
   * operator sees which clients still use which protocol. The REST API has its own duration histogram.
   */
  readonly doorRequests = new Counter({
    name: 'registry_door_requests_total',
    help: 'Requests served by the protocol doors, by door, operation and HTTP status',
    labelNames: ['door', 'operation', 'status'] as const,
    registers: [this.registry],
  });

  readonly instances = new Gauge({
    name: 'registry_instances',
    help: 'Instances in this replica\'s directory (the whole registry, as its watch knows it)',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => h.instancesInMemory),
  });
  /**
   * Heartbeats are tallied in plain numbers and added to their counter at scrape time: a labelled
   * inc() per heartbeat (label check, key string) was a measurable part of the hottest route.
   */
  private readonly heartbeatsUncounted = new Map<string, number>();

  countHeartbeat(result: string): void {
    this.heartbeatsUncounted.set(result, (this.heartbeatsUncounted.get(result) ?? 0) + 1);
  }

  readonly heartbeats = new Counter({
    name: 'registry_heartbeats_total',
    help: 'Heartbeats received, by outcome',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [result, n] of this.heartbeatsUncounted) this.heartbeats.inc({ result }, n);
      this.heartbeatsUncounted.clear();
    },
  });
  readonly registrations = new Counter({
    name: 'registry_registrations_total',
    help: 'Registrations written to etcd, by kind (created or replaced)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly deregistrations = new Counter({ name: 'registry_deregistrations_total', help: 'Deregistrations', registers: [this.registry] });
  readonly expirations = new Counter({
    name: 'registry_expirations_total',
    help: 'Instances this replica deleted because no replica heard their pod for their TTL (expiry sweep)',
    registers: [this.registry],
  });
  readonly regrants = new Counter({
    name: 'registry_lease_regrants_total',
    help: 'Instances of a lost shared lease written again (ok), found already re-registered (adopted), or failed (error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly migrations = new Counter({
    name: 'registry_lease_migrations_total',
    help: 'Legacy instances (one lease per instance, previous release) moved onto a shared lease at a heartbeat',
    registers: [this.registry],
  });
  readonly authRequests = new Counter({
    name: 'registry_etcd_auth_requests_total',
    help: 'etcd Authenticate calls made by this process (equals what etcd counts)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly etcdConnections = new Gauge({
    name: 'registry_etcd_connections',
    help: 'Pooled etcd connections whose channel is ready',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => h.etcd.readyConnections),
  });
  readonly keepaliveStreams = new Gauge({
    name: 'registry_keepalive_streams',
    help: 'LeaseKeepAlive streams (one per pooled connection) open on a connected etcd channel',
    registers: [this.registry],
    collect: this.fromLeases((s) => s.liveStreams),
  });
  readonly sharedLeases = new Gauge({
    name: 'registry_shared_leases',
    help: 'Shared leases this replica owns and renews (each carries up to LEASE_MAX_KEYS instances)',
    registers: [this.registry],
    collect: this.fromLeases((s) => s.owned),
  });
  readonly sharedLeaseKeys = new Gauge({
    name: 'registry_shared_lease_instances',
    help: 'Instances on the shared leases this replica owns (it expires them when no replica hears them)',
    registers: [this.registry],
    collect: this.fromLeases((s) => s.keys),
  });
  readonly leaseGrants = new Counter({
    name: 'registry_lease_grants_total',
    help: 'Shared leases granted (one per LEASE_MAX_KEYS registrations, or to replace a lost one) and adopted from a replica that left',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: () => {
      const leases = this.runtimeHealth?.().leases;
      if (!leases) return;
      this.addGrowth('grants granted', this.leaseGrants, { kind: 'granted' }, leases.granted);
      this.addGrowth('grants adopted', this.leaseGrants, { kind: 'adopted' }, leases.adopted);
    },
  });
  readonly leaseRenewals = new Counter({
    name: 'registry_lease_renewals_total',
    help: 'Shared-lease renewals by result: sent (written to a keepalive stream), confirmed (etcd answered TTL > 0), lost (etcd answered TTL 0)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const health = this.runtimeHealth?.();
      if (health) this.countRenewals(health.leases);
    },
  });
  readonly legacyLeases = new Gauge({
    name: 'registry_legacy_leases',
    help: 'One-key leases of the previous release renewed by this replica until their instances move onto shared leases (0 once the migration is done)',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.().legacyLeases, (s) => s.leases),
  });
  readonly legacyLeaseRenewals = new Counter({
    name: 'registry_legacy_lease_renewals_total',
    help: 'Renewals of legacy one-key leases by result: sent, confirmed (TTL > 0), lost (TTL 0: moved and revoked, or lapsed), silent (given up: pod not heard for the lease TTL)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const legacy = this.runtimeHealth?.().legacyLeases;
      if (!legacy) return;
      for (const result of LEGACY_RENEWAL_RESULTS) this.addGrowth(`legacy ${result}`, this.legacyLeaseRenewals, { result }, legacy[result]);
    },
  });
  readonly renewalBacklog = new Gauge({
    name: 'registry_lease_renewal_backlog',
    help: 'Owned shared leases whose renewal is due and not confirmed by etcd yet',
    registers: [this.registry],
    collect: this.fromLeases((s) => s.backlog),
  });
  readonly renewalOldestDue = new Gauge({
    name: 'registry_lease_renewal_oldest_due_seconds',
    help: 'How long the oldest due, unconfirmed shared-lease renewal has waited past due; near LEASE_TTL*2/3 leases start to lapse',
    registers: [this.registry],
    collect: this.fromLeases((s) => s.oldestDueMs / 1000),
  });
  readonly selfPreservation = new Gauge({
    name: 'registry_self_preservation',
    help: '1 while self-preservation holds the expiry of a mass of silent instances, else 0',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.().expiry, (e) => (e.selfPreservation ? 1 : 0)),
  });
  readonly expiryPaused = new Gauge({
    name: 'registry_expiry_paused',
    help: "1 while the expiry sweep holds deletes because a present replica's heard-sets (Redis) have a gap, else 0",
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.().expiry, (e) => (e.paused ? 1 : 0)),
  });
  readonly expiryOverdue = new Gauge({
    name: 'registry_expiry_overdue_instances',
    help: 'Instances on owned leases silent here for longer than their TTL at the last pass (deleted unless another replica heard them, or held)',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.().expiry, (e) => e.overdue),
  });
  readonly redisUp = new Gauge({
    name: 'registry_redis_up',
    help: 'Per Redis connection of this process (client: http = the HTTP thread): 1 connected, 0 not',
    labelNames: ['client'] as const,
    registers: [this.registry],
    collect: () => {
      for (const { client, up } of this.redisClients?.() ?? []) this.redisUp.set({ client }, up ? 1 : 0);
    },
  });
  readonly etcdRequests = new Counter({
    name: 'registry_etcd_requests_total',
    help: 'Unary etcd requests, by method and result',
    labelNames: ['method', 'result'] as const,
    registers: [this.registry],
  });
  readonly watchUp = new Gauge({
    name: 'registry_watch_up',
    help: '1 while the registry watch is up; while it is 0, lookups are answered from memory with stale: true',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => (h.watch.up ? 1 : 0)),
  });
  readonly replicaPresent = new Gauge({
    name: 'registry_replica_present',
    help: "1 while this replica's presence key (<prefix>gateway/replicas/<id>) is in etcd, confirmed within its 10 s TTL",
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => (h.liveness.present ? 1 : 0)),
  });
  readonly heardSetPublishes = new Counter({
    name: 'registry_heard_sets_total',
    help: 'Heard-sets (the instances this replica heard during one pass) published to Redis, by result: ok, error (that pass is a gap for the readers)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const stats = this.runtimeHealth?.().liveness.heardSets;
      if (!stats) return;
      this.addGrowth('heard-sets ok', this.heardSetPublishes, { result: 'ok' }, stats.published);
      this.addGrowth('heard-sets error', this.heardSetPublishes, { result: 'error' }, stats.failed);
    },
  });
  readonly watchRevision = new Gauge({
    name: 'registry_watch_revision',
    help: 'The etcd revision the registry watch has applied: lookups answer the registry as of this revision',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => h.watch.revision),
  });
  readonly lookupViews = new Gauge({
    name: 'registry_lookup_views',
    help: 'Services whose decoded lookup answer is held in memory (built on the first lookup, patched by the watch)',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => h.lookupViews),
  });
  readonly admissionRejections = new Counter({
    name: 'registry_admission_rejections_total',
    help: 'Registrations refused with 503 by admission control, by reason (event_loop)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly eventLoopDelay = new Gauge({
    name: 'registry_event_loop_delay_seconds',
    help: "p99 event-loop delay of the gateway's HTTP thread over the last second",
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => h.eventLoopDelayMs / 1000),
  });
  readonly writeQueueDepth = new Gauge({
    name: 'registry_etcd_write_queue_depth',
    help: 'etcd writes waiting for a slot',
    registers: [this.registry],
    collect: this.fromSource(() => this.runtimeHealth?.(), (h) => h.writeQueueDepth),
  });
  readonly blockingQueriesHeld = new Gauge({
    name: 'registry_blocking_queries_held',
    help: 'Blocking resolve queries (?index=) held open on this replica, waiting for a change; bounded by MAX_BLOCKING_QUERIES',
    registers: [this.registry],
  });
  readonly blockingQueries = new Counter({
    name: 'registry_blocking_queries_total',
    help: 'Blocking resolve queries, by outcome: changed, timeout, immediate (index already behind), rejected (429), disconnected, shutdown',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new RequestDurationHistogram(
    'registry_http_request_duration_seconds',
    'HTTP request duration by route and status',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    this.registry,
  );

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Known label sets start at 0, so dashboards see a series (and rate() works) before the first event.
    for (const result of ['ok', 'error']) this.authRequests.inc({ result }, 0);
    for (const result of HEARTBEAT_RESULTS) this.heartbeats.inc({ result }, 0);
    for (const kind of ['created', 'replaced']) this.registrations.inc({ kind }, 0);
    for (const result of ['sent', 'confirmed', 'lost']) this.leaseRenewals.inc({ result }, 0);
    for (const kind of ['granted', 'adopted']) this.leaseGrants.inc({ kind }, 0);
    for (const result of LEGACY_RENEWAL_RESULTS) this.legacyLeaseRenewals.inc({ result }, 0);
    for (const reason of ['event_loop']) this.admissionRejections.inc({ reason }, 0);
    for (const outcome of BLOCKING_QUERY_OUTCOMES) this.blockingQueries.inc({ outcome }, 0);
  }
}
