/**
 * Issue 23, the Eureka door against the shared etcd + Redis, with authentication on: the real npm
 * eureka-js-client (register with Basic auth, heartbeats, registry fetch, re-register after a 404,
 * deregister), one registry behind both doors (REST <-> Eureka), JSON and XML reads and an XML
 * registration, status and metadata overrides, bad input answered in Eureka's shape, writing nothing, and
 * load shedding (503 + Retry-After) exactly as on the REST API.
 */
import { Eureka } from 'eureka-js-client';
import { etcdAdmin } from './support/etcd-admin';
import { HttpRequest, HttpResponse, rawRequest } from './support/http';
import { instancePath, useSecuredGateway } from './support/security';
import { waitFor } from './support/wait';

jest.setTimeout(90_000);

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const DATA_CENTER = { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' };

describe('Eureka door', () => {
  const ctx = useSecuredGateway();
  const basic = (name: string, token: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${name}:${token}`).toString('base64')}` });
  const admin = (): Record<string, string> => basic('ops', ctx.tokens.admin);
  const eureka = (req: HttpRequest): Promise<HttpResponse> => rawRequest(ctx.gw.url, { ...req, headers: { ...admin(), ...(req.headers as Record<string, string>) } });
  const restIds = async (service: string, query = 'status=all'): Promise<string[]> =>
    ((await rawRequest(ctx.gw.url, { method: 'GET', path: `/v1/services/${service}?${query}`, token: ctx.tokens.admin })).json.instances as Array<{ id: string }>).map((i) => i.id);
  const restInstance = async (service: string, id: string) =>
    ((await rawRequest(ctx.gw.url, { method: 'GET', path: `/v1/services/${service}?status=all`, token: ctx.tokens.admin })).json.instances as Array<Record<string, unknown>>).find(
      (i) => i.id === id,
    );
  const storedRecord = async (service: string, id: string) => {
    const value = await etcdAdmin().get(`${ctx.gw.prefix}services/${service}/${id}`);
    return value === undefined ? undefined : (JSON.parse(value) as Record<string, unknown>);
  };

  function startClient(app: string, instanceId: string, options: { heartbeatMs?: number } = {}): Promise<Eureka> {
    const base = new URL(ctx.gw.url);
    const client = new Eureka({
      instance: {
        app,
        instanceId,
        hostName: 'host-1',
        ipAddr: '10.0.0.5',
        port: { $: 8080, '@enabled': true },
        vipAddress: app.toLowerCase(),
        dataCenterInfo: DATA_CENTER,
        leaseInfo: { durationInSecs: 20 },
        metadata: { version: '1.2.0' },
      } as never,
      eureka: {
        // Basic auth in the URL, as a Eureka client is usually pointed at a secured server.
        serviceUrls: { default: [`http://ops:${ctx.tokens.admin}@${base.host}/eureka/apps/`] },
        heartbeatInterval: options.heartbeatMs ?? 300,
        registryFetchInterval: 300,
        maxRetries: 0,
        requestRetryDelay: 100,
      } as never,
      logger: silent as never,
    });
    return new Promise((resolve, reject) => client.start((err: Error | null) => (err ? reject(err) : resolve(client))));
  }
  const stop = (client: Eureka): Promise<void> => new Promise((resolve, reject) => client.stop((err: Error | null) => (err ? reject(err) : resolve())));

  it('serves eureka-js-client: register, heartbeat, registry fetch, re-register after a 404, deregister', async () => {
    // A REST-registered instance of the same service, read back through Eureka below.
    expect((await rawRequest(ctx.gw.url, { method: 'PUT', path: instancePath('orders', 'rest-1'), token: ctx.tokens.admin, body: { address: '10.0.0.9', port: 9090 } })).status).toBe(201);
    const renewals = () => ctx.gw.metric('registry_door_requests_total', { door: 'eureka', operation: 'renew', status: '200' });
    const client = await startClient('orders', 'host-1:orders:8080');
    try {
      // Spring's host:app:port id, escaped into a registry name; the TTL is leaseInfo.durationInSecs.
      expect(await restIds('orders')).toEqual(expect.arrayContaining(['host-1_3Aorders_3A8080', 'rest-1']));
      expect(await storedRecord('orders', 'host-1_3Aorders_3A8080')).toMatchObject({ address: '10.0.0.5', port: 8080, ttl: 20, metadata: { version: '1.2.0' }, status: 'UP' });

      const before = await renewals();
      await waitFor('heartbeats through the door', async () => (await renewals()) >= before + 3, 10_000, 100);

      // The client's registry copy (full fetch, JSON) has both instances, under the names they were registered with.
      await waitFor('the registry fetch to list both instances', () => client.getInstancesByAppId('ORDERS').length === 2, 10_000, 100);
      const fetched = client.getInstancesByAppId('ORDERS') as unknown as Array<Record<string, unknown>>;
      expect(fetched.map((i) => i.instanceId).sort()).toEqual(['host-1:orders:8080', 'rest-1']);
      expect(fetched.find((i) => i.instanceId === 'rest-1')).toMatchObject({ app: 'ORDERS', ipAddr: '10.0.0.9', port: { $: 9090, '@enabled': 'true' }, status: 'UP' });
      expect(client.getInstancesByVipAddress('orders')).toHaveLength(2);

      // Deleted behind its back: the next renew answers 404 and the client registers again.
      expect((await rawRequest(ctx.gw.url, { method: 'DELETE', path: instancePath('orders', 'host-1_3Aorders_3A8080'), token: ctx.tokens.admin })).status).toBe(204);
      const reregistrations = () => ctx.gw.metric('registry_door_requests_total', { door: 'eureka', operation: 'register', status: '204' });
      const registered = await reregistrations();
      await waitFor('the client to register again after its 404', async () => (await ctx.gw.metric('registry_door_requests_total', { door: 'eureka', operation: 'renew', status: '404' })) >= 1, 10_000, 100);
      await waitFor('the re-registration', async () => (await reregistrations()) > registered && (await restIds('orders')).includes('host-1_3Aorders_3A8080'), 10_000, 100);
    } finally {
      await stop(client);
    }
    expect(await restIds('orders')).toEqual(['rest-1']);
    expect(await storedRecord('orders', 'host-1_3Aorders_3A8080')).toBeUndefined();
  });

  it('answers the registry in XML without an Accept header and in JSON when asked, under /eureka and /eureka/v2', async () => {
    expect((await eureka({ method: 'POST', path: '/eureka/v2/apps/BILLING', body: { instance: { instanceId: 'b:billing:1', app: 'BILLING', ipAddr: '10.0.1.1', port: 7001 } } })).status).toBe(204);
    const xml = await eureka({ method: 'GET', path: '/eureka/apps/' });
    expect(xml.status).toBe(200);
    expect(xml.headers['content-type']).toMatch(/^application\/xml/);
    expect(xml.text).toContain('<application><name>BILLING</name><instance><instanceId>b:billing:1</instanceId>');
    expect(xml.text).toContain('<port enabled="true">7001</port>');

    for (const path of ['/eureka/apps/BILLING', '/eureka/v2/apps/billing/', '/eureka/apps/BILLING/b:billing:1', '/eureka/v2/instances/b:billing:1']) {
      const json = await eureka({ method: 'GET', path, headers: { accept: 'application/json' } });
      expect({ path, status: json.status }).toEqual({ path, status: 200 });
      const instance = json.json.application?.instance[0] ?? json.json.instance;
      expect(instance).toMatchObject({ instanceId: 'b:billing:1', app: 'BILLING', ipAddr: '10.0.1.1', hostName: '10.0.1.1', port: { $: 7001, '@enabled': 'true' }, vipAddress: 'billing' });
    }
    const all = await eureka({ method: 'GET', path: '/eureka/v2/apps', headers: { accept: 'application/json' } });
    expect(all.json.applications.apps__hashcode).toMatch(/^(\w+_\d+_)+$/);
    expect(all.json.applications.application.map((a: { name: string }) => a.name)).toContain('BILLING');
    expect((await eureka({ method: 'GET', path: '/eureka/apps/NO-SUCH-APP' })).status).toBe(404);
    expect((await eureka({ method: 'GET', path: '/eureka/apps/BILLING/nope' })).status).toBe(404);
    // No deltas: Eureka's 403 for a server with deltas disabled makes clients fetch /apps in full.
    expect((await eureka({ method: 'GET', path: '/eureka/apps/delta' })).status).toBe(403);
  });

  it('takes an XML registration with port as <port enabled="true"> and leaseInfo as the TTL, then renews and cancels it', async () => {
    const xml =
      '<instance><instanceId>xml-host:inventory:8081</instanceId><hostName>xml-host</hostName><app>INVENTORY</app><ipAddr>10.0.2.2</ipAddr>' +
      '<status>UP</status><port enabled="true">8081</port><securePort enabled="false">443</securePort><leaseInfo><durationInSecs>15</durationInSecs></leaseInfo>' +
      '<metadata><zone>z1</zone></metadata><dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo></instance>';
    const registered = await eureka({ method: 'POST', path: '/eureka/apps/INVENTORY', body: xml, headers: { 'content-type': 'application/xml' } });
    expect(registered.status).toBe(204);
    const id = 'xml-host_3Ainventory_3A8081';
    expect(await storedRecord('inventory', id)).toMatchObject({ address: '10.0.2.2', port: 8081, ttl: 15, metadata: { zone: 'z1' }, status: 'UP' });
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/INVENTORY/xml-host:inventory:8081?status=UP&lastDirtyTimestamp=1' })).status).toBe(200);
    expect((await eureka({ method: 'DELETE', path: '/eureka/apps/INVENTORY/xml-host:inventory:8081' })).status).toBe(200);
    expect(await restIds('inventory')).toEqual([]);
    // Unknown now: a renew answers 404 (the client registers again), a cancel too.
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/INVENTORY/xml-host:inventory:8081' })).status).toBe(404);
    expect((await eureka({ method: 'DELETE', path: '/eureka/apps/INVENTORY/xml-host:inventory:8081' })).status).toBe(404);
  });

  it('maps status overrides and metadata updates onto the instance', async () => {
    expect((await eureka({ method: 'POST', path: '/eureka/apps/SHIPPING', body: { instance: { instanceId: 's1', ipAddr: '10.0.3.1', port: 80, metadata: { a: '1' } } } })).status).toBe(204);
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/SHIPPING/s1/status?value=OUT_OF_SERVICE' })).status).toBe(200);
    expect(await restInstance('shipping', 's1')).toMatchObject({ status: 'DRAINING' });
    const read = await eureka({ method: 'GET', path: '/eureka/apps/SHIPPING/s1', headers: { accept: 'application/json' } });
    expect(read.json.instance.status).toBe('OUT_OF_SERVICE');
    expect((await eureka({ method: 'DELETE', path: '/eureka/apps/SHIPPING/s1/status' })).status).toBe(200);
    expect(await restInstance('shipping', 's1')).toMatchObject({ status: 'UP' });
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/SHIPPING/s1/metadata?b=2&a=3' })).status).toBe(200);
    await waitFor('the metadata change', async () => JSON.stringify((await restInstance('shipping', 's1'))?.metadata) === JSON.stringify({ a: '3', b: '2' }), 5_000, 50);
    // Outside the registration limits (a key with a space): 400, the metadata unchanged.
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/SHIPPING/s1/metadata?bad%20key=x' })).status).toBe(400);
    expect((await restInstance('shipping', 's1'))?.metadata).toEqual({ a: '3', b: '2' });
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/SHIPPING/s1/status?value=SLEEPY' })).status).toBe(400);
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/SHIPPING/s1/status' })).text).toBe('query parameter value is required');
    expect((await eureka({ method: 'PUT', path: '/eureka/apps/SHIPPING/nope/status?value=DOWN' })).status).toBe(404);
  });

  it('refuses bad input and wrong tokens in Eureka shape (status + text), writing nothing', async () => {
    const register = (instance: Record<string, unknown>, headers: Record<string, string> = {}) => eureka({ method: 'POST', path: '/eureka/apps/BAD', body: { instance }, headers });
    const valid = { instanceId: 'bad-1', ipAddr: '10.0.4.1', port: 80 };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...valid, leaseInfo: { durationInSecs: 1000 } }, /leaseInfo\.durationInSecs must be an integer from 5 to 300/],
      [{ ...valid, port: { $: 70000, '@enabled': 'true' } }, /instance\.port must be an integer from 1 to 65535/],
      [{ ...valid, port: undefined }, /instance\.port is required/],
      [{ ...valid, ipAddr: 'not an address!' }, /address must be an IP address or a host name/],
      [{ ...valid, instanceId: ':starts-with-colon' }, /instance id/],
      [{ ...valid, app: 'OTHER' }, /is not the app of the path/],
      [{ ...valid, status: 'SLEEPY' }, /instance\.status must be one of/],
    ];
    for (const [instance, message] of cases) {
      const res = await register(instance);
      expect({ instance, status: res.status, type: res.headers['content-type'] }).toEqual({ instance, status: 400, type: 'text/plain; charset=utf-8' });
      expect(res.text).toMatch(message);
    }
    const malformed = await eureka({ method: 'POST', path: '/eureka/apps/BAD', body: '<instance><port>80</instance>', headers: { 'content-type': 'application/xml' } });
    expect(malformed.status).toBe(400);
    const bomb = await eureka({ method: 'POST', path: '/eureka/apps/BAD', body: '<!DOCTYPE x [<!ENTITY a "aaaa">]><instance><ipAddr>&a;</ipAddr></instance>', headers: { 'content-type': 'text/xml' } });
    expect(bomb.status).toBe(400);
    // The body parsers' refusals, in the door's shape as well.
    for (const [body, headers, status] of [
      ['{"instance": ', { 'content-type': 'application/json' }, 400],
      ['instance=1', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
      [`<instance>${'x'.repeat(17 * 1024)}</instance>`, { 'content-type': 'application/xml' }, 413],
    ] as const) {
      const res = await eureka({ method: 'POST', path: '/eureka/apps/BAD', body, headers });
      expect({ status: res.status, type: res.headers['content-type'] }).toEqual({ status, type: 'text/plain; charset=utf-8' });
    }
    // XML is taken by the Eureka door only.
    expect((await rawRequest(ctx.gw.url, { method: 'PUT', path: instancePath('bad', 'x'), token: ctx.tokens.admin, body: '<x/>', headers: { 'content-type': 'application/xml' } })).status).toBe(415);

    const wrongToken = await register(valid, basic('ops', 'not-the-token-at-all'));
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.headers['www-authenticate']).toMatch(/^Basic /);
    expect((await register(valid, basic('dashboards', ctx.tokens.admin))).status).toBe(401); // a token under another name
    expect((await register(valid, { authorization: '' })).status).toBe(401);
    expect((await register(valid, { authorization: `Bearer ${ctx.tokens.admin}` })).status).toBe(204);
    expect((await register({ ...valid, instanceId: 'bad-2' }, basic('dashboards', ctx.tokens.reader))).status).toBe(403); // readers do not write
    // An agent acts on its own services only, and sees only those in /apps.
    const agent = basic('payments-agent', ctx.tokens.agent);
    expect((await register({ ...valid, instanceId: 'bad-3' }, agent)).status).toBe(403);
    expect((await eureka({ method: 'POST', path: '/eureka/apps/PAYMENTS', body: { instance: valid }, headers: agent })).status).toBe(204);
    const seen = await eureka({ method: 'GET', path: '/eureka/apps', headers: { ...agent, accept: 'application/json' } });
    expect(seen.json.applications.application.map((a: { name: string }) => a.name)).toEqual(['PAYMENTS']);

    expect((await restIds('bad')).sort()).toEqual(['bad-1']);
    expect(await ctx.gw.metric('registry_door_requests_total', { door: 'eureka', operation: 'register', status: '400' })).toBeGreaterThanOrEqual(cases.length + 3);
    expect(await ctx.gw.metric('registry_door_requests_total', { door: 'eureka', operation: 'register', status: '401' })).toBe(3);
  });
});

describe('Eureka door under load shedding', () => {
  // One etcd write at a time and two waiting, as test/security-load-shedding: any burst overflows it.
  const ctx = useSecuredGateway({ WRITE_CONCURRENCY: '1', WRITE_QUEUE_CAPACITY: '2' });

  it('sheds a registration burst with 503 + Retry-After, as the REST API, and keeps exactly what it accepted', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `pod-${i}`);
    const results = await Promise.all(
      ids.map(async (id) => ({
        id,
        res: await rawRequest(ctx.gw.url, {
          method: 'POST',
          path: '/eureka/v2/apps/BURST',
          headers: { authorization: `Bearer ${ctx.tokens.admin}` },
          body: { instance: { instanceId: id, ipAddr: '10.0.5.1', port: 80 } },
        }),
      })),
    );
    expect(results.filter(({ res }) => res.status !== 204 && res.status !== 503).map(({ id, res }) => `${id}: ${res.status} ${res.text}`)).toEqual([]);
    const shed = results.filter(({ res }) => res.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    for (const { res } of shed) {
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
    const accepted = results.filter(({ res }) => res.status === 204).map(({ id }) => id);
    const stored = (await etcdAdmin().listKeys(`${ctx.gw.prefix}services/burst/`)).map((key) => key.split('/').pop());
    expect(stored.sort()).toEqual(accepted.sort());
  });
});
