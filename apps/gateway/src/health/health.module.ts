import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { ReadinessService } from './readiness.service';
import { GracefulShutdown } from './graceful-shutdown';

/**
 * `GET /health/live`, `GET /health/ready` (see readiness.ts for what "ready" means) and the
 * graceful shutdown (see graceful-shutdown.ts). Terminus's own logger is off: it would log every failing probe at error
 * level; ReadinessService logs readiness changes once instead.
 */
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [ReadinessService, GracefulShutdown],
})
export class HealthModule {}
