/**
 * Issue 23: Prometheus's Consul service discovery (discovery/consul in Prometheus, Go's Consul API
 * client), replayed request for request against the Consul door, since Debian's Prometheus build has
 * no consul_sd_configs: `GET /v1/agent/self` for the datacenter, then blocking
 * `/v1/catalog/services` and `/v1/health/service/{svc}` with `index`, `stale=` and `wait=120000ms`,
 * exactly as Go's url.Values encodes them, with the token in X-Consul-Token. Two replicas share one
 * registry: changes made through the other replica (REST or its Consul door) wake the held queries.
 */
import { toRegistryName } from '@app/registry';
import { ConsulDoor } from '../apps/gateway/src/doors/consul/consul-door';
import { RegistryRuntimeProvider } from '../apps/gateway/src/etcd/registry-runtime.provider';
import { GatewayUnderTest } from './support/gateway';
import { rawRequest } from './support/http';
import { startSecuredGateway, TestTokens, writeTokenFile } from './support/security';
import { waitFor } from './support/wait';

jest.setTimeout(90_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Consul answers are asserted on as JSON
type Json = any;

interface ConsulAnswer {
  status: number;
  index: string;
  body: Json;
  headers: Record<string, string | string[] | undefined>;
}

describe('Consul door: the calls of Prometheus consul_sd_configs, replayed', () => {
  let tokens: TestTokens;
  let a: GatewayUnderTest;
  let b: GatewayUnderTest;
  const doorOf = (gw: GatewayUnderTest) => gw.app.get(ConsulDoor).url!;

  /** A GET as Go's Consul client sends it: no body, the token in X-Consul-Token, gzip accepted. */
  async function prometheusGet(gw: GatewayUnderTest, path: string): Promise<ConsulAnswer> {
    const res = await rawRequest(doorOf(gw), {
      method: 'GET',
      path,
      headers: { 'x-consul-token': tokens.reader, 'user-agent': 'Go-http-client/1.1', 'accept-encoding': 'gzip' },
      timeoutMs: 180_000,
    });
    return { status: res.status, index: res.headers['x-consul-index'] as string, body: res.json, headers: res.headers };
  }
  const restPut = (gw: GatewayUnderTest, service: string, id: string, body: Json) =>
    rawRequest(gw.url, { method: 'PUT', path: `/v1/services/${service}/instances/${id}`, token: tokens.admin, body });
  const held = (gw: GatewayUnderTest) => gw.metric('registry_blocking_queries_held');
  const targets = (answer: ConsulAnswer) => answer.body.map((e: Json) => `${e.Service.Address || e.Node.Address}:${e.Service.Port}`).sort();

  beforeAll(async () => {
    tokens = writeTokenFile();
    a = await startSecuredGateway(tokens, { CONSUL_API_PORT: '0', HOST: '127.0.0.1' });
    b = await startSecuredGateway(tokens, { CONSUL_API_PORT: '0', HOST: '127.0.0.1', ETCD_PREFIX: a.prefix });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    tokens?.remove();
  });

  it('answers every call as Go\'s client parses it, and wakes held queries on changes made through the other replica', async () => {
    // 1. The datacenter, from the agent (Prometheus: info["Config"]["Datacenter"].(string)).
    const self = await prometheusGet(a, '/v1/agent/self');
    expect(self.status).toBe(200);
    expect(self.body.Config.Datacenter).toBe('dc1');

    // 2. The first catalog call has no index (WaitIndex 0 is not sent).
    const first = await prometheusGet(a, '/v1/catalog/services?stale=&wait=120000ms');
    expect(first.status).toBe(200);
    expect(Number(first.index)).toBeGreaterThanOrEqual(1);
    // Go's parseQueryMeta fails an answer whose X-Consul-LastContact is not an unsigned integer.
    expect(first.headers['x-consul-lastcontact']).toMatch(/^\d+$/);
    expect(first.headers['x-consul-knownleader']).toBe('true');
    expect(first.body['prom-web']).toBeUndefined();

    // 3. Held until a service appears through the REST API of the other replica.
    const catalogWatch = prometheusGet(a, `/v1/catalog/services?index=${first.index}&stale=&wait=120000ms`);
    await waitFor('the catalog query held on a', async () => (await held(a)) === 1);
    expect((await restPut(b, 'prom-web', 'w1', { address: '10.2.0.1', port: 9100, tags: ['metrics', 'team=web'] })).status).toBe(201);
    const catalog = await catalogWatch;
    expect(Number(catalog.index)).toBeGreaterThan(Number(first.index));
    expect(catalog.body['prom-web']).toEqual(['metrics', 'team=web']);

    // 4. The service's health, first without an index.
    const health = await prometheusGet(a, '/v1/health/service/prom-web?stale=&wait=120000ms');
    expect(health.status).toBe(200);
    expect(targets(health)).toEqual(['10.2.0.1:9100']);
    const [entry] = health.body;
    expect(entry.Node).toMatchObject({ Node: '10.2.0.1', Address: '10.2.0.1', Datacenter: 'dc1', TaggedAddresses: { lan: '10.2.0.1', wan: '10.2.0.1' } });
    expect(entry.Service).toMatchObject({ ID: 'w1', Service: 'prom-web', Tags: ['metrics', 'team=web'], Port: 9100 });
    expect(entry.Checks.every((c: Json) => c.Status === 'passing')).toBe(true);

    // 5. Held until an instance registers through the OTHER replica's Consul door.
    const healthWatch = prometheusGet(a, `/v1/health/service/prom-web?index=${health.index}&stale=&wait=120000ms`);
    await waitFor('the health query held on a', async () => (await held(a)) === 1);
    const registered = await rawRequest(doorOf(b), {
      method: 'PUT',
      path: '/v1/agent/service/register',
      headers: { 'x-consul-token': tokens.admin },
      body: { Name: 'prom-web', ID: 'prom-web:10.2.0.2:9100', Address: '10.2.0.2', Port: 9100, Meta: { scheme: 'http' }, Check: { TTL: '30s', Status: 'passing' } },
    });
    expect(registered.status).toBe(200);
    const grown = await healthWatch;
    expect(Number(grown.index)).toBeGreaterThan(Number(health.index));
    expect(targets(grown)).toEqual(['10.2.0.1:9100', '10.2.0.2:9100']);
    expect(grown.body.find((e: Json) => e.Service.ID === 'prom-web:10.2.0.2:9100').Service.Meta).toEqual({ scheme: 'http' });

    // 6. Held until one is deregistered (REST, other replica): Prometheus drops the target.
    const shrinkWatch = prometheusGet(a, `/v1/health/service/prom-web?index=${grown.index}&stale=&wait=120000ms`);
    await waitFor('the health query held on a', async () => (await held(a)) === 1);
    expect((await rawRequest(b.url, { method: 'DELETE', path: '/v1/services/prom-web/instances/w1', token: tokens.admin })).status).toBe(204);
    const shrunk = await shrinkWatch;
    expect(Number(shrunk.index)).toBeGreaterThan(Number(grown.index));
    expect(targets(shrunk)).toEqual(['10.2.0.2:9100']);
  });

  it('holds a query on an unchanged service for its wait, then answers the same content with the same index', async () => {
    const current = await prometheusGet(b, '/v1/health/service/prom-web?stale=&wait=120000ms');
    const started = Date.now();
    const unchanged = await prometheusGet(b, `/v1/health/service/prom-web?index=${current.index}&stale=&wait=2s`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(unchanged.index).toBe(current.index);
    expect(unchanged.body).toEqual(current.body);
  });

  it("keeps a client's index for content it already has, though this replica labels it lower; an index it never saw is not echoed", async () => {
    const watchRevision = (gw: GatewayUnderTest) => gw.app.get(RegistryRuntimeProvider).runtime.revision;
    const r1 = Number((await restPut(a, 'prom-idx', 'i1', { address: '10.4.0.1', port: 80 })).json.revision);
    const onB = await prometheusGet(b, '/v1/health/service/prom-idx');
    expect(Number(onB.index)).toBe(r1);
    // Another service changes at r2. A replica that read prom-idx from etcd after r2 (a cold one, without
    // the Redis copy) labels the same content r2; its client then moves to b with that index.
    const r2 = Number((await restPut(a, 'prom-idx-other', 'o1', { address: '10.4.0.2', port: 80 })).json.revision);
    expect(r2).toBeGreaterThan(r1);
    await waitFor("b's watch past r2", async () => watchRevision(b) >= r2);
    const moved = await prometheusGet(b, `/v1/health/service/prom-idx?index=${r2}&stale=&wait=1s`);
    expect({ index: moved.index, body: moved.body }).toEqual({ index: String(r2), body: onB.body });
    // An index from elsewhere (another registry, a real Consul): the real one comes back and the client starts over.
    const foreign = await prometheusGet(b, `/v1/health/service/prom-idx?index=${r2 + 1_000_000}&stale=&wait=1s`);
    expect(foreign.index).toBe(String(r1));
  });

  it('answers a held query when its replica shuts down, then closes the Consul listener', async () => {
    const c = await startSecuredGateway(tokens, { CONSUL_API_PORT: '0', HOST: '127.0.0.1', ETCD_PREFIX: a.prefix });
    const doorUrl = doorOf(c);
    const current = await prometheusGet(c, '/v1/health/service/prom-web?stale=&wait=120000ms');
    const heldQuery = prometheusGet(c, `/v1/health/service/prom-web?index=${current.index}&stale=&wait=120000ms`);
    await waitFor('the query held on c', async () => (await held(c)) === 1);
    await c.close();
    const answer = await heldQuery;
    expect({ status: answer.status, index: answer.index }).toEqual({ status: 200, index: current.index });
    expect(answer.body).toEqual(current.body);
    await expect(rawRequest(doorUrl, { method: 'GET', path: '/v1/agent/self', freshConnection: true, timeoutMs: 5_000 })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('passes at once through the other replica what was just registered through one (a round-robin load balancer)', async () => {
    const door = (gw: GatewayUnderTest, path: string, body?: Json) => rawRequest(doorOf(gw), { method: 'PUT', path, body, headers: { 'x-consul-token': tokens.admin } });
    const pods = Array.from({ length: 20 }, (_, i) => `rr:10.3.0.${i}:80`);
    const answers = await Promise.all(
      pods.map(async (id, i) => {
        const registered = await door(a, '/v1/agent/service/register', { Name: 'prom-rr', ID: id, Address: `10.3.0.${i}`, Port: 80, Check: { TTL: '30s' } });
        const passed = await door(b, `/v1/agent/check/pass/${encodeURIComponent(`service:${id}`)}`);
        return [registered.status, passed.status];
      }),
    );
    expect(answers).toEqual(pods.map(() => [200, 200]));
    const stored = await rawRequest(a.url, { method: 'GET', path: '/v1/services/prom-rr?status=all', token: tokens.reader });
    expect(stored.json.instances.map((i: Json) => i.status)).toEqual(pods.map(() => 'UP'));
  });

  it('passes and fails a check through the replica that did not take the registration', async () => {
    const pass = (gw: GatewayUnderTest, verb: string) =>
      rawRequest(doorOf(gw), { method: 'PUT', path: `/v1/agent/check/${verb}/${encodeURIComponent('service:prom-web:10.2.0.2:9100')}`, headers: { 'x-consul-token': tokens.admin } });
    expect((await pass(a, 'pass')).status).toBe(200);
    expect((await pass(a, 'fail')).status).toBe(200);
    const stored = await rawRequest(b.url, { method: 'GET', path: '/v1/services/prom-web?status=all', token: tokens.reader });
    expect(stored.json.instances.find((i: Json) => i.id === toRegistryName('prom-web:10.2.0.2:9100')).status).toBe('DOWN');
    const critical = await prometheusGet(a, '/v1/health/service/prom-web?passing=1');
    expect(critical.body).toEqual([]);
  });
});
