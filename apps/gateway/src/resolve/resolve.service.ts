import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { filterInstances, InstanceFilter, RedisSharedStore, RegistryCache } from '@app/cache';
import { InstanceRegistrar, RegistryWatch } from '@app/etcd';
import { InstanceRecord, InstanceStatus, ResolvedInstance } from '@app/registry';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { RegistryRuntimeProvider } from '../etcd/registry-runtime.provider';
import { CacheHealthReport, CacheHealthSource } from '../health/cache-health';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { RedisConnection } from '../redis/redis.provider';

export interface ResolveAnswer {
  service: string;
  revision: string;
  stale: boolean;
  instances: ResolvedInstance[];
}

/** How long a PATCH waits for its own change to come back through the watch (read-your-writes). */
const OWN_WRITE_WAIT_MS = 1_000;

/**
 * Thin Nest wrapper around the resolve cache (@app/cache) and the replica's one registry watch
 * (@app/etcd): wires them to config, Redis and metrics, and owns their lifetime.
 */
@Injectable()
export class ResolveService implements OnModuleInit, BeforeApplicationShutdown, CacheHealthSource {
  readonly watch: RegistryWatch;
  readonly cache: RegistryCache;
  private readonly logger = new Logger('Resolve');
  private watchDown = false;
  private readsFailing = false;
  private lastRedisError = '';

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

  beforeApplicationShutdown(): void {
    this.watch.close();
    this.cache.close();
  }

  async resolve(service: string, filter: InstanceFilter): Promise<ResolveAnswer> {
    const view = await this.cache.resolve(service);
    return { service, revision: String(view.revision), stale: view.stale, instances: filterInstances(view.instances, filter) };
  }

  async listServices(): Promise<{ revision: string; stale: boolean; services: Array<{ service: string; instances: number }> }> {
    const view = await this.cache.listServices();
    return { ...view, revision: String(view.revision) };
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
