import { Inject, Injectable, Logger } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { RegistryRuntimeProvider } from '../etcd/registry-runtime.provider';
import { redisClientStates } from '../redis/redis-clients';
import { RedisConnection } from '../redis/redis.provider';
import { assessReadiness, ReadinessAssessment } from './readiness';

/**
 * Reads the runtime's health() snapshot (state it keeps anyway: channel states, the shared leases,
 * the expiry sweep, the watch, the read model) and never calls etcd or Redis: a probe must answer at once
 * even while etcd is frozen, and N replicas probed every few seconds must not add load to etcd. A
 * frozen etcd is noticed by the gRPC keepalive pings of the pooled connections (about 15 s).
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
  ) {}

  assess(): ReadinessAssessment {
    const now = Date.now();
    const health = this.etcd.runtime.health(now);
    const leases = health.leases;
    const assessment = assessReadiness({
      now,
      etcd: health.etcd,
      keepalive: {
        open: leases.liveStreams,
        total: leases.totalStreams,
        lastAnswerAt: leases.lastAnswerAt,
        backlog: leases.backlog,
        oldestDueMs: leases.oldestDueMs,
        // A third of LEASE_TTL past due: the lease has used two thirds of its life unrenewed.
        lagLimitMs: (this.config.LEASE_TTL * 1000) / 3,
        leases: leases.owned,
        leaseInstances: leases.keys,
      },
      instancesInMemory: health.instancesInMemory,
      expiry: health.expiry,
      redis: { target: this.redis.target, clients: redisClientStates(this.redis) },
      watch: { ...health.watch, lookupViews: health.lookupViews },
      synced: health.synced,
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
