import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { InstanceRegistrar } from '@app/etcd';
import { GATEWAY_CONFIG, GatewayConfig } from './config/gateway-config';
import { RegistryRuntimeProvider } from './etcd/registry-runtime.provider';
import { RegistryErrorFilter } from './http/error.filter';
import { InstancesController } from './http/instances.controller';
import { GatewayMetrics } from './metrics/gateway-metrics';
import { MetricsController } from './metrics/metrics.controller';

@Module({})
export class AppModule {
  /** The config is loaded and validated once by the caller (main.ts or a test) and injected. */
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      controllers: [InstancesController, MetricsController],
      providers: [
        { provide: GATEWAY_CONFIG, useValue: config },
        { provide: GatewayMetrics, useFactory: () => new GatewayMetrics() },
        RegistryRuntimeProvider,
        { provide: InstanceRegistrar, useFactory: (p: RegistryRuntimeProvider) => p.runtime.registrar, inject: [RegistryRuntimeProvider] },
        { provide: APP_FILTER, useClass: RegistryErrorFilter },
      ],
    };
  }
}
