import { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';

/** The Fastify route config of a protocol door's route: what registry_door_requests_total counts it as. */
export interface DoorRouteConfig {
  door: 'eureka' | 'prometheus_sd';
  operation: string;
}

/**
 * Counts every answered request of a door's routes (refusals by auth and parsers included), from the
 * route's config: Fastify routes set it directly, Nest routes through `@RouteConfig()`.
 */
export function countDoorRequests(fastify: FastifyInstance, counter: Counter<'door' | 'operation' | 'status'>): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const config = request.routeOptions.config as Partial<DoorRouteConfig> | undefined;
    if (config?.door && config.operation) counter.inc({ door: config.door, operation: config.operation, status: String(reply.statusCode) });
    done();
  });
}
