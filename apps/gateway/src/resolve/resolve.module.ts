import { Global, Module } from '@nestjs/common';
import { CACHE_HEALTH } from '../health/cache-health';
import { InstanceStatusController } from './instance-status.controller';
import { ResolveController } from './resolve.controller';
import { ResolveService } from './resolve.service';

/**
 * Resolve path: `GET /v1/services`, `GET /v1/services/{service}` and instance status changes
 * (`PATCH /v1/services/{service}/instances/{id}`). Global so that HealthModule can inject
 * CACHE_HEALTH without importing this module.
 */
@Global()
@Module({
  controllers: [ResolveController, InstanceStatusController],
  providers: [ResolveService, { provide: CACHE_HEALTH, useExisting: ResolveService }],
  exports: [ResolveService, CACHE_HEALTH],
})
export class ResolveModule {}
