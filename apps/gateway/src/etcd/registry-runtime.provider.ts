import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { RegistryRuntime } from './registry-runtime';

/** Thin Nest wrapper: starts the runtime with the module, closes it (no lease revoked) on shutdown. */
@Injectable()
export class RegistryRuntimeProvider implements OnModuleInit, OnApplicationShutdown {
  readonly runtime: RegistryRuntime;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig, metrics: GatewayMetrics) {
    this.runtime = new RegistryRuntime(config, metrics);
  }

  onModuleInit(): Promise<void> {
    return this.runtime.start();
  }

  onApplicationShutdown(): Promise<void> {
    return this.runtime.close();
  }
}
