import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { RegistryRuntimeProvider } from '../etcd/registry-runtime.provider';
import { RedisConnection } from '../redis/redis.provider';
import { CACHE_HEALTH, CacheHealthSource } from './cache-health';
import { assessReadiness, ReadinessAssessment } from './readiness';

/**
 * Reads the state the replica already keeps (channel states, open streams, the lease table) and
 * never calls etcd or Redis: a probe must answer at once even while etcd is frozen, and N replicas
 * probed every few seconds must not add load to etcd. A frozen etcd is noticed by the gRPC
 * keepalive pings of the pooled connections (about 15 s, see EtcdConnection).
 */
@Injectable()
export class ReadinessService {
  private readonly logger = new Logger('Health');
  private lastServing: boolean | undefined;
  private lastDown = '';

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly etcd: RegistryRuntimeProvider,
    private readonly redis: RedisConnection,
    @Optional() @Inject(CACHE_HEALTH) private readonly cache?: CacheHealthSource,
  ) {}

  assess(): ReadinessAssessment {
    const { pool, engine, leases } = this.etcd.runtime;
    const now = Date.now();
    const renewals = engine.snapshot(now);
    const assessment = assessReadiness({
      now,
      etcd: { readyConnections: pool.readyCount(), poolSize: pool.connections.length, lastSuccessAt: pool.lastSuccessAt() },
      keepalive: {
        open: renewals.liveStreams,
        total: renewals.totalStreams,
        lastAnswerAt: renewals.lastAnswerAt,
        backlog: renewals.backlog,
        oldestDueMs: renewals.oldestDueMs,
        lagLimitMs: this.config.RENEWAL_LAG_MAX_MS,
      },
      instancesInMemory: leases.size,
      redis: { ready: this.redis.isReady(), state: this.redis.client.status },
      cache: this.cache?.cacheHealth(),
    });
    this.logTransition(assessment);
    return assessment;
  }

  /** One log line per change, not one per probe. */
  private logTransition({ serving, indicators }: ReadinessAssessment): void {
    const down = indicators
      .flatMap((r) => Object.entries(r))
      .filter(([, v]) => v.status === 'down')
      .map(([k]) => k)
      .join(',');
    if (serving === this.lastServing && down === this.lastDown) return;
    const first = this.lastServing === undefined;
    this.lastServing = serving;
    this.lastDown = down;
    if (!serving) this.logger.warn(`readiness: NOT ready, cannot answer (down: ${down})`);
    else if (down) this.logger.warn(`readiness: ready but degraded (down: ${down})`);
    else if (!first) this.logger.log('readiness: ready, all dependencies up');
  }
}
