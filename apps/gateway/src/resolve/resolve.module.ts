import { Global, Module } from '@nestjs/common';
import { InstanceStatusController } from './instance-status.controller';
import { ResolveController } from './resolve.controller';
import { ResolveService } from './resolve.service';

/**
 * Resolve path: `GET /v1/services`, `GET /v1/services/{service}` and instance status changes
 * (`PATCH /v1/services/{service}/instances/{id}`).
 */
@Global()
@Module({
  controllers: [ResolveController, InstanceStatusController],
  providers: [ResolveService],
  exports: [ResolveService],
})
export class ResolveModule {}
