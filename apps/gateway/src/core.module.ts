import { DynamicModule, Global, Module } from '@nestjs/common';
import { InstanceRegistrar } from '@app/etcd';
import { GATEWAY_CONFIG, GatewayConfig } from './config/gateway-config';
import { RegistryRuntimeProvider } from './etcd/registry-runtime.provider';
import { GatewayMetrics } from './metrics/gateway-metrics';
import { RedisConnection } from './redis/redis.provider';

/** What every feature module may inject: config, metrics, the etcd runtime and the Redis connection. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    const providers = [
      { provide: GATEWAY_CONFIG, useValue: config },
      { provide: GatewayMetrics, useFactory: () => new GatewayMetrics() },
      RegistryRuntimeProvider,
      RedisConnection,
      { provide: InstanceRegistrar, useFactory: (p: RegistryRuntimeProvider) => p.runtime.registrar, inject: [RegistryRuntimeProvider] },
    ];
    return { module: CoreModule, providers, exports: providers.map((p) => ('provide' in p ? p.provide : p)) };
  }
}
