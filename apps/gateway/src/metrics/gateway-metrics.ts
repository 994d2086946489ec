import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Labels of registry_blocking_queries_total. */
export const BLOCKING_QUERY_OUTCOMES = ['changed', 'timeout', 'immediate', 'rejected', 'disconnected', 'shutdown'] as const;
export type BlockingQueryOutcome = (typeof BLOCKING_QUERY_OUTCOMES)[number];

/**
 * Every metric the gateway exports. Names are a contract with dashboards: change them only with a
 * note in the README. Each replica has its own Registry (tests run several replicas in one process).
 */
export class GatewayMetrics {
  readonly registry = new Registry();

  readonly instances = new Gauge({ name: 'registry_instances', help: 'Instances whose leases this replica is renewing', registers: [this.registry] });
  readonly heartbeats = new Counter({
    name: 'registry_heartbeats_total',
    help: 'Heartbeats received, by outcome',
    labelNames: ['result'] as const,
    registers: [this.registry],
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
    help: 'Instances this replica stopped renewing because their pod went silent (etcd expires their lease)',
    registers: [this.registry],
  });
  readonly regrants = new Counter({
    name: 'registry_lease_regrants_total',
    help: 'Leases re-granted for still-heartbeating instances after etcd lost them',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly authRequests = new Counter({
    name: 'registry_etcd_auth_requests_total',
    help: 'etcd Authenticate calls made by this process (equals what etcd counts)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly etcdConnections = new Gauge({ name: 'registry_etcd_connections', help: 'Pooled etcd connections whose channel is ready', registers: [this.registry] });
  readonly keepaliveStreams = new Gauge({ name: 'registry_keepalive_streams', help: 'Shared LeaseKeepAlive streams open on a connected etcd channel', registers: [this.registry] });
  readonly leaseRenewals = new Counter({ name: 'registry_lease_renewals_total', help: 'Lease renewals sent on the shared keepalive streams', registers: [this.registry] });
  readonly etcdRequests = new Counter({
    name: 'registry_etcd_requests_total',
    help: 'Unary etcd requests, by method and result',
    labelNames: ['method', 'result'] as const,
    registers: [this.registry],
  });
  readonly cacheRequests = new Counter({
    name: 'registry_cache_requests_total',
    help: 'Lookup cache requests, by tier (l1, l2) and result (hit, miss, stale)',
    labelNames: ['tier', 'result'] as const,
    registers: [this.registry],
  });
  readonly writeQueueDepth = new Gauge({ name: 'registry_etcd_write_queue_depth', help: 'etcd writes waiting for a slot', registers: [this.registry] });
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
  readonly httpDuration = new Histogram({
    name: 'registry_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Known label sets start at 0, so dashboards see a series (and rate() works) before the first event.
    for (const result of ['ok', 'error']) this.authRequests.inc({ result }, 0);
    for (const result of ['accepted', 'lease-lost', 'not-found']) this.heartbeats.inc({ result }, 0);
    for (const kind of ['created', 'replaced']) this.registrations.inc({ kind }, 0);
    for (const tier of ['l1', 'l2']) for (const result of ['hit', 'miss', 'stale']) this.cacheRequests.inc({ tier, result }, 0);
    for (const outcome of BLOCKING_QUERY_OUTCOMES) this.blockingQueries.inc({ outcome }, 0);
  }
}
