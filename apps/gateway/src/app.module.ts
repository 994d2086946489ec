import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthModule } from './auth/auth.module';
import { GatewayConfig } from './config/gateway-config';
import { CoreModule } from './core.module';
import { ConsulModule } from './doors/consul/consul.module';
import { DoorsModule } from './doors/doors.module';
import { HealthModule } from './health/health.module';
import { RegistryErrorFilter } from './http/error.filter';
import { HeartbeatBatchController } from './http/heartbeat-batch.controller';
import { InstancesController } from './http/instances.controller';
import { MetricsController } from './metrics/metrics.controller';
import { ResolveModule } from './resolve/resolve.module';
import { UiModule } from './ui/ui.module';

@Module({})
export class AppModule {
  /** The config is loaded and validated once by the caller (main.ts or a test) and injected. */
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(config),
        // feature modules: one line each
        ResolveModule,
        AuthModule.forRoot(config),
        HealthModule,
        UiModule,
        DoorsModule,
        ConsulModule,
      ],
      controllers: [InstancesController, HeartbeatBatchController, MetricsController],
      providers: [{ provide: APP_FILTER, useClass: RegistryErrorFilter }],
    };
  }
}
