import { FastifyInstance, onResponseHookHandler } from 'fastify';
import { Counter } from 'prom-client';

/** The Fastify route config of a protocol door's route: what registry_door_requests_total counts it as. */
export interface DoorRouteConfig {
  door: 'eureka' | 'prometheus_sd';
  operation: string;
}

/**
 * Counts every answered request of a door's routes (refusals by auth and parsers included), from the
 * route's config: Fastify routes set it directly, Nest routes through `@RouteConfig()`. The hook is
 * added to those routes only (onRoute), never to every request: the hot routes pay nothing for it.
 * Call it before the doors' routes are registered.
 */
export function countDoorRequests(fastify: FastifyInstance, counter: Counter<'door' | 'operation' | 'status'>): void {
  fastify.addHook('onRoute', (route) => {
    const config = route.config as Partial<DoorRouteConfig> | undefined;
    if (!config?.door || !config.operation) return;
    const labels = { door: config.door, operation: config.operation };
    const count: onResponseHookHandler = (_request, reply, done) => {
      counter.inc({ ...labels, status: String(reply.statusCode) });
      done();
    };
    route.onResponse = [...(Array.isArray(route.onResponse) ? route.onResponse : route.onResponse ? [route.onResponse] : []), count];
  });
}
