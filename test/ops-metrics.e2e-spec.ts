/**
 * Issue 5: the /metrics families dashboards depend on, with values that match the traffic, and the
 * OpenAPI document and /docs page. Shared stack (read-only assertions, own key prefix).
 */
import { parsePrometheusText, PromSample } from '@app/stack';
import { forEachLimited, heartbeatPod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { sharedStack } from './support/stack';
import { request } from './support/http';
import { sleep } from './support/wait';

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };

/** The families of issue 5 and their Prometheus types. */
const FAMILIES: Record<string, string> = {
  registry_instances: 'gauge',
  registry_heartbeats_total: 'counter',
  registry_registrations_total: 'counter',
  registry_expirations_total: 'counter',
  registry_etcd_auth_requests_total: 'counter',
  registry_etcd_connections: 'gauge',
  registry_keepalive_streams: 'gauge',
  registry_lease_renewals_total: 'counter',
  registry_etcd_requests_total: 'counter',
  registry_watch_up: 'gauge',
  registry_watch_revision: 'gauge',
  registry_lookup_views: 'gauge',
  registry_http_request_duration_seconds: 'histogram',
  registry_redis_up: 'gauge',
  registry_shared_leases: 'gauge',
  registry_lease_grants_total: 'counter',
  registry_expiry_paused: 'gauge',
  registry_expiry_overdue_instances: 'gauge',
};

const sum = (samples: PromSample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

describe('metrics and OpenAPI', () => {
  let gateway: GatewayUnderTest;
  beforeAll(async () => {
    gateway = await startGateway(target, stack.redis.url, { ETCD_POOL_SIZE: '2' });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('exposes every family of issue 5, and default process metrics, with values that match the traffic', async () => {
    const fleet = pods(2, 5, 'ops-metrics');
    const silent = { service: 'ops-metrics-silent', id: 'pod-silent' };
    expect((await forEachLimited(fleet, 8, (p) => registerPod(gateway.url, p, 6))).map((r) => r.status)).toEqual(fleet.map(() => 201));
    expect((await registerPod(gateway.url, silent, 5)).status).toBe(201);
    const replaced = await registerPod(gateway.url, fleet[0], 6);
    expect(replaced.status).toBe(200); // replaced
    expect((await heartbeatPod(gateway.url, { service: 'ops-metrics-none', id: 'nobody' })).status).toBe(404);
    for (let i = 0; i < 3; i++) expect((await request(gateway.url, 'GET', '/v1/services/ops-metrics-0')).status).toBe(200);

    // Heartbeats for 12 s: the one shared lease (class 120 s: the shortest) is renewed every 40 s
    // whatever the heartbeats; the silent pod (TTL 5 s) is deleted by the expiry sweep one pass after its TTL.
    let beats = 0;
    for (const until = Date.now() + 12_000; Date.now() < until; ) {
      const results = await forEachLimited(fleet, 8, (p) => heartbeatPod(gateway.url, p));
      expect(results.map((r) => r.status)).toEqual(fleet.map(() => 204));
      beats += results.length;
      await sleep(500);
    }
    await sleep(300); // one more scheduler pass for the gauges

    const text = (await request(gateway.url, 'GET', '/metrics')).body;
    for (const [name, type] of Object.entries(FAMILIES)) expect(text).toContain(`# TYPE ${name} ${type}\n`);
    const s = parsePrometheusText(text);

    expect(sum(s, 'registry_instances')).toBe(fleet.length);
    expect(sum(s, 'registry_heartbeats_total', { result: 'accepted' })).toBe(beats);
    expect(sum(s, 'registry_heartbeats_total', { result: 'not-found' })).toBe(1);
    expect(sum(s, 'registry_registrations_total', { kind: 'created' })).toBe(fleet.length + 1);
    expect(sum(s, 'registry_registrations_total', { kind: 'replaced' })).toBe(1);
    expect(sum(s, 'registry_expirations_total')).toBe(1);
    expect(sum(s, 'registry_etcd_auth_requests_total', { result: 'ok' })).toBe(2); // one per pooled connection
    expect(sum(s, 'registry_etcd_auth_requests_total', { result: 'error' })).toBe(0);
    expect(sum(s, 'registry_etcd_connections')).toBe(2);
    expect(sum(s, 'registry_keepalive_streams')).toBe(2);
    // Every Redis connection of the process (the HTTP thread's: heard-sets).
    expect(sum(s, 'registry_redis_up', { client: 'http' })).toBe(1);
    // 12 s of heartbeats and one shared lease renewed every 40 s: no renewal is due yet (one lease per
    // instance renewed every TTL/3 made ~50 here).
    expect(sum(s, 'registry_lease_renewals_total', { result: 'sent' })).toBe(0);
    expect(sum(s, 'registry_lease_renewals_total', { result: 'lost' })).toBe(0);
    expect(sum(s, 'registry_shared_leases')).toBe(1);
    expect(sum(s, 'registry_shared_lease_instances')).toBe(fleet.length);
    expect(sum(s, 'registry_lease_grants_total', { kind: 'granted' })).toBe(1);
    expect(sum(s, 'registry_expiry_paused')).toBe(0);
    // The shared lease and the presence key's own lease.
    expect(sum(s, 'registry_etcd_requests_total', { method: 'leaseGrant', result: 'ok' })).toBe(2);
    // Registration Puts go to etcd batched into Txns (PutBatcher): at most one call per write, plus the
    // lease record's Txn, the presence key's Put and the expiry's guarded delete.
    const writeCalls = sum(s, 'registry_etcd_requests_total', { method: 'put', result: 'ok' }) + sum(s, 'registry_etcd_requests_total', { method: 'txn', result: 'ok' });
    expect(writeCalls).toBeGreaterThanOrEqual(1);
    expect(writeCalls).toBeLessThanOrEqual(fleet.length + 5);
    expect(sum(s, 'registry_etcd_requests_total', { result: 'error' })).toBe(0);
    // Lookups come from the directory the watch keeps: the watch is up at a revision past the
    // registrations, and the one service looked up has its decoded view in memory.
    expect(sum(s, 'registry_watch_up')).toBe(1);
    // At least the revision of the last registration (Puts batched into one Txn share a revision).
    expect(sum(s, 'registry_watch_revision')).toBeGreaterThanOrEqual(Number(JSON.parse(replaced.body).revision));
    expect(sum(s, 'registry_lookup_views')).toBe(1);
    expect(sum(s, 'registry_http_request_duration_seconds_count', { method: 'GET', route: '/v1/services/:service', status: '200' })).toBe(3);

    const route = '/v1/services/:service/instances/:id';
    expect(sum(s, 'registry_http_request_duration_seconds_count', { method: 'PUT', route, status: '201' })).toBe(fleet.length + 1);
    expect(sum(s, 'registry_http_request_duration_seconds_count', { method: 'PUT', route: `${route}/heartbeat`, status: '204' })).toBe(beats);
    expect(sum(s, 'registry_http_request_duration_seconds_count', { route: `${route}/heartbeat`, status: '404' })).toBe(1);
    const inf = sum(s, 'registry_http_request_duration_seconds_bucket', { route: `${route}/heartbeat`, status: '204', le: '+Inf' });
    expect(inf).toBe(beats);

    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
      expect(sum(s, name)).toBeGreaterThan(0);
    }
    expect(s.some((x) => x.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('serves the OpenAPI document with the v1 and health paths and described schemas', async () => {
    const res = await request(gateway.url, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.body);
    expect(doc.openapi).toMatch(/^3\./);
    const instancePath = doc.paths['/v1/services/{service}/instances/{id}'];
    expect(Object.keys(instancePath)).toEqual(expect.arrayContaining(['delete', 'put']));
    expect(doc.paths['/v1/services/{service}/instances/{id}/heartbeat'].put.responses).toHaveProperty('404');
    expect(instancePath.put.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/RegisterInstanceDto');
    expect(instancePath.put.responses['201'].content['application/json'].schema.$ref).toMatch(/^#\/components\/schemas\//);
    expect(instancePath.put.responses).toHaveProperty('400');
    expect(doc.components.schemas.RegisterInstanceDto.required).toEqual(expect.arrayContaining(['address', 'port']));
    expect(doc.paths['/health/ready'].get.responses).toHaveProperty('503');
    expect(doc.paths['/health/live'].get.responses).toHaveProperty('200');
    expect(doc.paths['/v1/services/{service}'].get.responses['200'].content['application/json'].schema.$ref).toMatch(/^#\/components\/schemas\//);
    expect(doc.paths).not.toHaveProperty('/metrics');
  });

  it('serves a /docs page whose scripts and styles load', async () => {
    const page = await request(gateway.url, 'GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const html = page.body;
    expect(html).toMatch(/swagger-ui/i);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => new URL(m[1], `${gateway.url}/docs`));
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      const res = await request(asset.origin, 'GET', asset.pathname + asset.search);
      expect([asset.href, res.status]).toEqual([asset.href, 200]);
    }
  });
});
