import { FastifyInstance, onResponseHookHandler, RouteOptions } from 'fastify';
import { MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';

/** A request no route matched (404s, requests the framework refused before routing). */
const UNMATCHED = 'unmatched';

type DurationLabels = { method: string; route: string; status: string };

/** One label set's buckets (not cumulative: summed up at scrape time), sum and count. */
export class DurationSeries {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly labels: DurationLabels,
    private readonly upperBounds: readonly number[],
  ) {
    this.counts = new Float64Array(upperBounds.length + 1);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.upperBounds.length && seconds > this.upperBounds[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }

  values(name: string): Array<MetricValueWithName<string>> {
    const out: Array<MetricValueWithName<string>> = [];
    let cumulative = 0;
    this.upperBounds.forEach((le, i) => {
      cumulative += this.counts[i];
      out.push({ metricName: `${name}_bucket`, labels: { le, ...this.labels }, value: cumulative });
    });
    out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...this.labels }, value: this.count });
    out.push({ metricName: `${name}_sum`, labels: this.labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels: this.labels, value: this.count });
    return out;
  }
}

/**
 * `registry_http_request_duration_seconds{method,route,status}`: a histogram in prom-client's registry,
 * in the same exposition as prom-client's own, observed through series objects the callers keep.
 *
 * prom-client's Histogram.observe() takes a label object per call and validates and hashes it into
 * a key string (plus a closure and a pair object): on the heartbeat route that was the largest cost
 * left after the route itself (bench/experiments/heartbeat-cost.ts). Here a route's observer finds
 * its series by status and observes with no allocation at all.
 */
export class RequestDurationHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, DurationSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The series of one label set, made on first use (callers keep it: this lookup builds a key). */
  seriesFor(method: string, route: string, status: number): DurationSeries {
    const key = `${method} ${route} ${status}`;
    let series = this.series.get(key);
    if (!series) this.series.set(key, (series = new DurationSeries({ method, route, status: String(status) }, this.upperBounds)));
    return series;
  }

  /** Called by prom-client's registry at scrape time. */
  get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values = [...this.series.values()].flatMap((s) => s.values(this.name));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values } as unknown as MetricObjectWithValues<MetricValueWithName<string>>);
  }
}

/**
 * Observes every request's duration by method, route template and status.
 *
 * Each route observes through an onResponse hook of its own, added as the route is (onRoute): it knows
 * its template and keeps its series per status. A global hook would have to read
 * `request.routeOptions`, which Fastify builds afresh (a dozen fields) on every read. Requests no
 * route matched are observed by a global hook that passes routed ones by. Call it before any route is
 * added.
 */
export function observeRequestDurations(fastify: FastifyInstance, histogram: RequestDurationHistogram): void {
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const own = routeObserver(histogram, route.url);
    const hooks = route.onResponse;
    // A new array: Fastify copies a GET route's options for its HEAD route before onRoute hooks run,
    // and that HEAD route gets its own observer when its onRoute comes.
    route.onResponse = hooks ? [...(Array.isArray(hooks) ? hooks : [hooks]), own] : [own];
  });
  const unmatched = routeObserver(histogram, UNMATCHED);
  fastify.addHook('onResponse', function observeUnmatched(request, reply, done) {
    if (request.is404) return unmatched.call(this, request, reply, done);
    done();
  });
}

function routeObserver(histogram: RequestDurationHistogram, route: string): onResponseHookHandler {
  const byStatus = new Map<number, DurationSeries>();
  return function observeDuration(request, reply, done) {
    // A request sent on to the not-found handler (reply.callNotFound) ends with the not-found route's
    // hooks, not these: it is counted as unmatched, as the global hook sees it.
    let series = byStatus.get(reply.statusCode);
    if (!series || series.labels.method !== request.method) byStatus.set(reply.statusCode, (series = histogram.seriesFor(request.method, route, reply.statusCode)));
    series.observe(reply.elapsedTime / 1000);
    done();
  };
}
