import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';

/**
 * The replica's one Redis connection (the shared L2 lookup cache). Redis is an optimisation, never a
 * dependency of correctness: commands fail fast while it is down (no offline queue, one retry), so a
 * dead Redis costs a lookup microseconds, not a timeout, and the connection heals in the background.
 */
@Injectable()
export class RedisConnection implements OnApplicationShutdown {
  readonly client: Redis;
  private readonly logger = new Logger('Redis');
  private lastError = '';

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.client = new Redis(config.REDIS_URL, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 1_000,
      commandTimeout: 500,
      retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    });
    this.client.on('error', (err: Error) => {
      // ioredis reports every failed reconnect; log each distinct failure once.
      if (err.message !== this.lastError) this.logger.warn(`redis error: ${err.message}`);
      this.lastError = err.message;
    });
    this.client.on('ready', () => {
      this.lastError = '';
    });
  }

  isReady(): boolean {
    return this.client.status === 'ready';
  }

  async onApplicationShutdown(): Promise<void> {
    this.client.disconnect();
  }
}
