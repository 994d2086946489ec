import { FastifyInstance, onResponseHookHandler, RouteOptions } from 'fastify';
import { Histogram } from 'prom-client';

type DurationLabels = { method: string; route: string; status: string };

/** A request no route matched (404s, requests the framework refused before routing). */
const UNMATCHED = 'unmatched';

/**
 * Observes `registry_http_request_duration_seconds` (method, route template, status) for every request.
 *
 * Each route observes through an onResponse hook of its own, added as the route is (onRoute): it knows
 * its template and keeps its label objects per status. A global hook would have to read
 * `request.routeOptions`, which Fastify builds afresh (a dozen fields) on every read: measurable on
 * the heartbeat route (bench/experiments/heartbeat-cost.ts). Requests no route matched are observed by
 * a global hook that passes routed ones by. Call it before any route is added.
 */
export function observeRequestDurations(fastify: FastifyInstance, histogram: Histogram<'method' | 'route' | 'status'>): void {
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const own = routeObserver(histogram, route.url);
    const hooks = route.onResponse;
    // A new array: Fastify copies a GET route's options for its HEAD route before onRoute hooks run,
    // and that HEAD route gets its own observer when its onRoute comes.
    route.onResponse = hooks ? [...(Array.isArray(hooks) ? hooks : [hooks]), own] : [own];
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    if (request.is404) histogram.observe({ method: request.method, route: UNMATCHED, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
}

function routeObserver(histogram: Histogram<'method' | 'route' | 'status'>, route: string): onResponseHookHandler {
  // prom-client keeps the first label object of a series: these are never changed after being observed.
  const byStatus = new Map<number, DurationLabels>();
  return function observeDuration(request, reply, done) {
    // A request sent on to the not-found handler (reply.callNotFound) ends with the not-found route's
    // hooks, not these: it is counted as unmatched, as the global hook sees it.
    let labels = byStatus.get(reply.statusCode);
    if (!labels || labels.method !== request.method) byStatus.set(reply.statusCode, (labels = { method: request.method, route, status: String(reply.statusCode) }));
    histogram.observe(labels, reply.elapsedTime / 1000);
    done();
  };
}
