import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { filterInstances, InstanceFilter, RedisSharedStore, RegistryCache, WaitOutcome } from '@app/cache';
import { InstanceRegistrar, RegistryWatch } from '@app/etcd';
import { InstanceRecord, InstanceStatus, RateLimitedError, ResolvedInstance } from '@app/registry';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { RegistryRuntimeProvider } from '../etcd/registry-runtime.provider';
import { CacheHealthReport, CacheHealthSource } from '../health/cache-health';
import { BlockingQueryOutcome, GatewayMetrics } from '../metrics/gateway-metrics';
import { RedisConnection } from '../redis/redis.provider';
import { BlockingQuery } from './resolve-query.pipe';

export interface ResolveAnswer {
  service: string;
  revision: string;
  stale: boolean;
  instances: ResolvedInstance[];
}

export interface ServiceListAnswer {
  revision: string;
  stale: boolean;
  services: Array<{ service: string; instances: number }>;
}

/** An answer and the index a blocking query passes back (X-Registry-Index). */
export interface IndexedAnswer<T> {
  index: string;
  answer: T;
}

/**
 * A full replica asks for a retry later: a held query lasts until a change or its wait, so slots
 * rarely free up within a second, and thousands of clients retrying at once must not spin.
 */
const BLOCKING_RETRY_AFTER_SECONDS = 5;

const OUTCOME_LABELS: Record<WaitOutcome, BlockingQueryOutcome> = { changed: 'changed', timeout: 'timeout', aborted: 'disconnected', closed: 'shutdown' };

/** How long a PATCH waits for its own change to come back through the watch (read-your-writes). */
const OWN_WRITE_WAIT_MS = 1_000;

/**
 * Thin Nest wrapper around the resolve cache (@app/cache) and the replica's one registry watch
 * (@app/etcd): wires them to config, Redis and metrics, and owns their lifetime.
 */
@Injectable()
export class ResolveService implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown, CacheHealthSource {
  readonly watch: RegistryWatch;
  readonly cache: RegistryCache;
  private readonly logger = new Logger('Resolve');
  private watchDown = false;
  private readsFailing = false;
  private lastRedisError = '';
  // Injected as a property: keeps the blocking-query code out of the constructor's wiring.
  @Inject(GatewayMetrics) private readonly blockingMetrics: GatewayMetrics;
  private heldQueries = 0;
  private allAnswered: (() => void) | undefined;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    runtime: RegistryRuntimeProvider,
    redis: RedisConnection,
    metrics: GatewayMetrics,
    private readonly registrar: InstanceRegistrar,
  ) {
    const { pool, store } = runtime.runtime;
    this.watch = new RegistryWatch(
      pool,
      store,
      {
        events: (events) => {
          this.cache.applyEvents(events);
          this.registrar.observeWrites(events);
        },
        resync: (range) => {
          this.logger.warn(`registry watch rebuilt from one read at revision ${range.revision} (etcd compacted the revisions it missed)`);
          this.cache.resync(range);
        },
        stateChanged: (up, reason) => {
          if (up) {
            if (this.watchDown) this.logger.log('registry watch is up again');
            this.watchDown = this.readsFailing = false;
          } else if (!this.watchDown) {
            this.watchDown = true;
            this.logger.warn(`registry watch down (${reason}); answering from cache, reconnecting with backoff`);
          }
        },
      },
      {
        // Three progress answers per stale period: one lost answer does not make anything stale.
        progressIntervalMs: Math.max(100, Math.floor(config.CACHE_STALE_AFTER_MS / 3)),
        silenceTimeoutMs: config.CACHE_STALE_AFTER_MS,
      },
    );
    // The namespace includes the etcd prefix: gateways of different registries may share one Redis.
    const shared = new RedisSharedStore(redis.client, `registry-gateway:v1:${config.ETCD_PREFIX}`);
    this.cache = new RegistryCache(
      store,
      shared,
      this.watch,
      {
        ttlMs: config.CACHE_TTL_MS,
        staleAfterMs: config.CACHE_STALE_AFTER_MS,
        negativeTtlMs: config.CACHE_NEGATIVE_TTL_MS,
        sharedTtlMs: config.CACHE_L2_TTL_MS,
        lockTtlMs: config.CACHE_LOCK_TTL_MS,
        backoffMinMs: config.CACHE_BACKOFF_MIN_MS,
        backoffMaxMs: config.CACHE_BACKOFF_MAX_MS,
      },
      {
        cacheRequest: (tier, result) => metrics.cacheRequests.inc({ tier, result }),
        // Logged once per outage (until the watch is back), not once per service and attempt.
        refreshFailed: (doc, err) => {
          if (this.readsFailing) return;
          this.readsFailing = true;
          this.logger.warn(`etcd read of ${doc} failed (${(err as Error).message}); answering from cache where possible, retrying with backoff`);
        },
        // Connection errors are logged by RedisConnection; this catches the rest (e.g. a script error).
        sharedStoreFailed: (err) => {
          const message = (err as Error).message;
          if (message !== this.lastRedisError) this.logger.warn(`redis (L2) call failed: ${message}`);
          this.lastRedisError = message;
        },
      },
    );
  }

  async onModuleInit(): Promise<void> {
    this.watch.start();
    this.cache.startSweeping(this.config.CACHE_NEGATIVE_TTL_MS);
    // Documents loaded before the watch exists may miss changes (and are read again once it does):
    // wait for it briefly, but an etcd that is down at start must not block the start.
    await this.watch.whenUp(Math.min(this.config.ETCD_REQUEST_TIMEOUT_MS, 5_000));
  }

  /**
   * Shutdown, before the watch closes (beforeApplicationShutdown) and before the HTTP server waits
   * for in-flight requests: every held blocking query is answered now with the current view, which
   * the watch still confirms. Later blocking queries are answered at once.
   */
  async onModuleDestroy(): Promise<void> {
    const answered = this.heldQueries ? new Promise<void>((resolve) => (this.allAnswered = resolve)) : Promise.resolve();
    this.cache.close();
    let timer: NodeJS.Timeout | undefined;
    // Bounded: an answer may need one etcd read (a document re-read after its negative TTL).
    await Promise.race([answered, new Promise((resolve) => (timer = setTimeout(resolve, this.config.ETCD_REQUEST_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  beforeApplicationShutdown(): void {
    this.watch.close();
    this.cache.close();
  }

  async resolve(service: string, filter: InstanceFilter): Promise<ResolveAnswer> {
    return (await this.resolveBlocking(service, filter, undefined)).answer;
  }

  async listServices(): Promise<ServiceListAnswer> {
    return (await this.listServicesBlocking(undefined)).answer;
  }

  /**
   * resolve() as a blocking query: with `query`, held until the service's content index passes
   * `query.index` (see holdUntilChanged). Filters apply to the answer, not to what wakes it.
   */
  async resolveBlocking(service: string, filter: InstanceFilter, query: BlockingQuery | undefined, signal?: AbortSignal): Promise<IndexedAnswer<ResolveAnswer>> {
    const view = await this.holdUntilChanged(
      () => this.cache.resolve(service),
      (timeoutMs) => this.cache.waitForServiceChange(service, timeoutMs, signal),
      query,
    );
    return {
      index: String(view.index),
      answer: { service, revision: String(view.revision), stale: view.stale, instances: filterInstances(view.instances, filter) },
    };
  }

  /** listServices() as a blocking query: wakes when a service appears, disappears or its instance count changes. */
  async listServicesBlocking(query: BlockingQuery | undefined, signal?: AbortSignal): Promise<IndexedAnswer<ServiceListAnswer>> {
    const view = await this.holdUntilChanged(
      () => this.cache.listServices(),
      (timeoutMs) => this.cache.waitForListChange(timeoutMs, signal),
      query,
    );
    return { index: String(view.index), answer: { revision: String(view.revision), stale: view.stale, services: view.services } };
  }

  /**
   * Consul's blocking query: answers at once when the document's index is past `query.index`,
   * otherwise parks the caller (no etcd call; the watch's events wake it) until the index passes it,
   * `waitMs` plus a jitter of up to waitMs/16 runs out (so clients that started together do not all
   * come back together), the client disconnects, or shutdown. Then it answers the current view.
   * At most MAX_BLOCKING_QUERIES are held per replica; beyond that 429.
   */
  private async holdUntilChanged<V extends { index: number }>(
    read: () => Promise<V>,
    waitForChange: (timeoutMs: number) => Promise<WaitOutcome>,
    query: BlockingQuery | undefined,
  ): Promise<V> {
    let view = await read();
    if (!query) return view;
    // From here until waitForChange() parks us, nothing awaits: the watch's events arrive as I/O
    // callbacks, so no change can slip between reading the index and parking.
    if (view.index > query.index) {
      this.blockingMetrics.blockingQueries.inc({ outcome: 'immediate' });
      return view;
    }
    if (this.heldQueries >= this.config.MAX_BLOCKING_QUERIES) {
      this.blockingMetrics.blockingQueries.inc({ outcome: 'rejected' });
      throw new RateLimitedError(`this replica holds its limit of ${this.config.MAX_BLOCKING_QUERIES} blocking queries (MAX_BLOCKING_QUERIES); retry later`, BLOCKING_RETRY_AFTER_SECONDS);
    }
    const deadline = Date.now() + query.waitMs + Math.floor((Math.random() * query.waitMs) / 16);
    let outcome: WaitOutcome = 'timeout';
    this.heldQueries++;
    this.blockingMetrics.blockingQueriesHeld.inc();
    try {
      // A wake-up whose index is still not past the client's (e.g. the client came from a replica
      // whose watch is ahead of ours) parks again for the rest of the wait.
      while (view.index <= query.index) {
        const remainingMs = deadline - Date.now();
        if (remainingMs <= 0) {
          outcome = 'timeout';
          break;
        }
        outcome = await waitForChange(remainingMs);
        view = await read();
        if (outcome !== 'changed') break;
      }
    } finally {
      this.heldQueries--;
      this.blockingMetrics.blockingQueriesHeld.dec();
      this.blockingMetrics.blockingQueries.inc({ outcome: OUTCOME_LABELS[outcome] });
      if (this.heldQueries === 0) this.allAnswered?.();
    }
    return view;
  }

  /** PATCH: writes through the registrar, then waits (briefly) until this replica's cache shows it. */
  async updateInstance(
    service: string,
    id: string,
    patch: { status: InstanceStatus; metadata?: Record<string, string> },
  ): Promise<{ record: InstanceRecord; revision: string }> {
    const result = await this.registrar.updateInstance(service, id, patch);
    await this.watch.waitForRevision(Number(result.revision), OWN_WRITE_WAIT_MS);
    return result;
  }

  /** For /health/ready (provided as CACHE_HEALTH). Reads state only; never calls etcd or Redis. */
  cacheHealth(): CacheHealthReport {
    const health = this.cache.health();
    return { watch: this.watch.isUp() ? 'up' : 'down', l2: health.sharedUp ? 'up' : 'down', warmServices: health.warmServices };
  }
}
