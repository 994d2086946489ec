import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { FastifyInstance } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { ApiAccess } from '../../auth/request-auth';
import { GATEWAY_CONFIG, GatewayConfig } from '../../config/gateway-config';
import { RegistryRuntimeProvider } from '../../etcd/registry-runtime.provider';
import { GatewayMetrics } from '../../metrics/gateway-metrics';
import { ResolveService } from '../../resolve/resolve.service';
import { buildConsulApi } from './consul-api';

/**
 * The Consul door's listener (CONSUL_API_PORT; none when unset). It listens once the registry runtime
 * has started (onApplicationBootstrap) and closes after ResolveService has answered the held blocking
 * queries (beforeApplicationShutdown comes after every onModuleDestroy), before the runtime closes.
 */
@Injectable()
export class ConsulDoor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private server: FastifyInstance | undefined;
  private readonly logger = new Logger('ConsulDoor');

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly registrar: InstanceRegistrar,
    private readonly resolver: ResolveService,
    private readonly metrics: GatewayMetrics,
    private readonly runtime: RegistryRuntimeProvider,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** `http://host:port` of the listener, once listening. */
  get url(): string | undefined {
    const address = this.server?.server.address();
    return address && typeof address === 'object' ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.CONSUL_API_PORT;
    if (port === undefined) return;
    // AuthModule is a dynamic module imported once by AppModule; its ApiAccess is found app-wide.
    const access = this.moduleRef.get(ApiAccess, { strict: false });
    const runtime = this.runtime.runtime;
    this.server = buildConsulApi({
      registrar: this.registrar,
      resolver: this.resolver,
      access,
      metrics: this.metrics,
      datacenter: this.config.CONSUL_DATACENTER,
      watchRevision: () => runtime.revision,
    });
    await this.server.listen({ port, host: this.config.HOST });
    this.logger.log(`Consul API listening on ${this.url}`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.server?.close();
  }
}
