import Fastify, { FastifyInstance } from 'fastify';
import { Histogram, Registry } from 'prom-client';
import { observeRequestDurations, RequestDurationHistogram } from './request-durations';

describe('observeRequestDurations', () => {
  let app: FastifyInstance;
  let histogram: RequestDurationHistogram;
  let registry: Registry;

  beforeEach(async () => {
    app = Fastify();
    registry = new Registry();
    histogram = new RequestDurationHistogram('d', 'd', [0.001, 1], registry);
    observeRequestDurations(app, histogram);
    // A route with hooks of its own keeps them (the observer is added to them, not instead of them).
    let ownHookRuns = 0;
    app.get('/items/:id', { onResponse: (_req, _reply, done) => (ownHookRuns++, done()) }, async (req, reply) => {
      const { id } = req.params as { id: string };
      if (id === 'missing') return reply.code(404).send({ error: 'not_found' });
      if (id === 'empty') return reply.callNotFound();
      return { id, ownHookRuns };
    });
    app.put('/items/:id/heartbeat', (_req, reply) => void reply.code(204).send());
    await app.ready();
  });

  afterEach(() => app.close());

  async function counts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const v of (await histogram.get()).values) {
      if (v.metricName !== 'd_count') continue;
      out[`${v.labels.method} ${v.labels.route} ${v.labels.status}`] = v.value;
    }
    return out;
  }

  it('labels each request with its route template, method and status, once', async () => {
    await app.inject({ method: 'GET', url: '/items/a' });
    await app.inject({ method: 'GET', url: '/items/b' });
    const own = await app.inject({ method: 'GET', url: '/items/c' });
    expect(own.json()).toEqual({ id: 'c', ownHookRuns: 2 });
    await app.inject({ method: 'GET', url: '/items/missing' });
    await app.inject({ method: 'HEAD', url: '/items/a' });
    for (let i = 0; i < 3; i++) await app.inject({ method: 'PUT', url: `/items/${i}/heartbeat` });
    expect(await counts()).toEqual({
      'GET /items/:id 200': 3,
      'GET /items/:id 404': 1,
      // Fastify's HEAD route for the GET has an observer of its own: counted once, as HEAD.
      'HEAD /items/:id 200': 1,
      'PUT /items/:id/heartbeat 204': 3,
    });
  });

  it('counts requests no route matched, and those a route sent to the not-found handler, as unmatched', async () => {
    await app.inject({ method: 'GET', url: '/nowhere' });
    await app.inject({ method: 'DELETE', url: '/items/a' });
    await app.inject({ method: 'GET', url: '/items/empty' });
    expect(await counts()).toEqual({ 'GET unmatched 404': 2, 'DELETE unmatched 404': 1 });
  });

  it("exposes what prom-client's own Histogram would for the same observations", async () => {
    const buckets = [0.0005, 0.001, 0.0025, 0.5, 1, 2.5];
    const ours = new Registry();
    const theirs = new Registry();
    const fast = new RequestDurationHistogram('h_seconds', 'help text', buckets, ours);
    const reference = new Histogram({ name: 'h_seconds', help: 'help text', labelNames: ['method', 'route', 'status'], buckets, registers: [theirs] });
    const observations: Array<[string, string, number, number]> = [
      ['GET', '/a', 200, 0.0004], ['GET', '/a', 200, 0.0005], ['GET', '/a', 200, 0.7], ['GET', '/a', 404, 3],
      ['PUT', '/b/:id', 204, 0.001], ['PUT', '/b/:id', 204, 0.00101], ['PUT', '/b/:id', 204, 0],
    ];
    for (const [method, route, status, seconds] of observations) {
      fast.seriesFor(method, route, status).observe(seconds);
      reference.observe({ method, route, status: String(status) }, seconds);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});

