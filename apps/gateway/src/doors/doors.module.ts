import { Module } from '@nestjs/common';
import { PrometheusSdController } from './prometheus/prometheus-sd.controller';

/**
 * The protocol doors served as Nest routes: Prometheus http_sd. The Eureka door's routes are plain
 * Fastify routes (doors/eureka, wired in bootstrap.ts), because its clients need Basic auth, XML
 * bodies and Eureka's own error shape, which the global guard and error filter do not give.
 */
@Module({ controllers: [PrometheusSdController] })
export class DoorsModule {}
