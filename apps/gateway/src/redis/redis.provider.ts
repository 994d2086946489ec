import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { createRedisClient, describeRedisTarget, RedisClient, redisClientReady } from '@app/redis';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';

/**
 * The HTTP thread's Redis connection (REDIS_URL, Sentinel or Cluster alike, built by @app/redis from
 * the same target as the lease engine worker's ledger). Redis is an optimisation, never a dependency of
 * correctness: commands fail fast while it is down (no offline queue), so a dead Redis costs a caller
 * microseconds, not a timeout, and the connection heals in the background.
 */
@Injectable()
export class RedisConnection implements OnApplicationShutdown {
  /** Its name in readiness and in `registry_redis_up{client}`. */
  static readonly CLIENT = 'http';
  readonly client: RedisClient;
  /** Where it connects, without secrets (readiness shows it). */
  readonly target: string;
  private readonly logger = new Logger('Redis');
  private lastError = '';

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.target = describeRedisTarget(config.redis);
    this.client = createRedisClient(config.redis, { connectionName: 'registry-gateway-http' });
    this.client.on('error', (err: Error) => {
      // ioredis reports every failed reconnect; log each distinct failure once.
      if (err.message !== this.lastError) this.logger.warn(`redis error (${this.target}): ${err.message}`);
      this.lastError = err.message;
    });
    this.client.on('ready', () => {
      if (this.lastError) this.logger.log(`redis connected again (${this.target})`);
      this.lastError = '';
    });
  }

  isReady(): boolean {
    return redisClientReady(this.client);
  }

  async onApplicationShutdown(): Promise<void> {
    this.client.disconnect();
  }
}
