import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { RedisHeardSets } from '@app/etcd';
import { RegistryRuntime } from '@app/runtime';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { redisClientStates } from '../redis/redis-clients';
import { RedisConnection } from '../redis/redis.provider';

/**
 * Thin Nest wrapper over the framework-free RegistryRuntime (@app/runtime): builds it from the
 * validated config, wires its hooks to metrics and logs, starts it with the module and closes it on
 * shutdown (its shared leases orphaned for the other replicas, never revoked).
 */
@Injectable()
export class RegistryRuntimeProvider implements OnModuleInit, OnApplicationShutdown {
  readonly runtime: RegistryRuntime;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig, metrics: GatewayMetrics, redis: RedisConnection) {
    const loggers = new Map<string, Logger>();
    const replicaId = randomBytes(6).toString('hex');
    const logger = (context: string) => loggers.get(context) ?? loggers.set(context, new Logger(context)).get(context)!;
    this.runtime = new RegistryRuntime(
      {
        etcd: {
          endpoints: config.ETCD_ENDPOINTS,
          credentials: config.ETCD_USERNAME ? { username: config.ETCD_USERNAME, password: config.ETCD_PASSWORD! } : undefined,
          tls: config.etcdTls,
          poolSize: config.ETCD_POOL_SIZE,
          requestTimeoutMs: config.ETCD_REQUEST_TIMEOUT_MS,
          prefix: config.ETCD_PREFIX,
        },
        replicaId,
        heardSets: { store: new RedisHeardSets(redis.client, `registry-gateway:v1:${config.ETCD_PREFIX}heard:`), passMs: config.LIVENESS_PASS_MS },
        leases: { ttlSeconds: config.LEASE_TTL, maxKeys: config.LEASE_MAX_KEYS },
        migrationsPerSecond: config.MIGRATIONS_PER_SECOND,
        selfPreservation: config.SELF_PRESERVATION ? { threshold: config.SELF_PRESERVATION_THRESHOLD, maxMs: config.SELF_PRESERVATION_MAX_MS } : undefined,
        admissionMaxEventLoopDelayMs: config.ADMISSION_MAX_EVENT_LOOP_DELAY_MS,
        writeConcurrency: config.WRITE_CONCURRENCY,
        writeQueueCapacity: config.WRITE_QUEUE_CAPACITY,
        putBatch: { maxSize: config.WRITE_BATCH_MAX_PUTS, maxBytes: config.WRITE_BATCH_MAX_BYTES },
        staleAfterMs: config.STALE_AFTER_MS,
      },
      {
        etcd: {
          authenticateCalled: (result) => metrics.authRequests.inc({ result }),
          requestCompleted: (method, result) => metrics.etcdRequests.inc({ method, result }),
        },
        registrar: {
          registered: (created) => metrics.registrations.inc({ kind: created ? 'created' : 'replaced' }),
          shed: (reason) => metrics.admissionRejections.inc({ reason }),
          deregistered: () => metrics.deregistrations.inc(),
          regranted: (result, count) => metrics.regrants.inc({ result }, count),
          migrated: () => metrics.migrations.inc(),
          heartbeat: (result) => metrics.countHeartbeat(result),
        },
        instancesExpired: (count) => metrics.expirations.inc(count),
        log: (level, context, message) => (level === 'error' ? logger(context).error(message) : level === 'warn' ? logger(context).warn(message) : logger(context).log(message)),
      },
    );
    metrics.observeRuntime(() => this.runtime.health());
    metrics.observeRedis(() => redisClientStates(redis));
  }

  onModuleInit(): Promise<void> {
    return this.runtime.start();
  }

  onApplicationShutdown(): Promise<void> {
    return this.runtime.close();
  }
}
