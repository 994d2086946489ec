/**
 * Issue 23, the Consul door: the npm `consul` client (2.x) pointed at the gateway's CONSUL_API_PORT
 * with only its address and token changed, on the shared etcd + Redis with authentication on.
 * Everything a Consul client writes must be what the REST API reads (and the other way round), every
 * refusal must write nothing, and each request is counted in registry_door_requests_total.
 */
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import Consul from 'consul';
import { Etcd3 } from 'etcd3';
import { toRegistryName } from '@app/registry';
import { ConsulDoor } from '../apps/gateway/src/doors/consul/consul-door';
import { rawRequest } from './support/http';
import { useSecuredGateway } from './support/security';
import { sharedStack } from './support/stack';
import { waitFor } from './support/wait';

jest.setTimeout(90_000);

const CHECK_ID = (id: string) => `service:${id}`;
/** go-micro's tag packing: `e-` + hex(zlib(JSON)), one tag per endpoint; random bytes keep it big after zlib. */
const goMicroTag = (bytes: number) =>
  'e-' + deflateSync(Buffer.from(JSON.stringify({ name: 'Payments.Charge', request: { blob: randomBytes(bytes).toString('base64') } }))).toString('hex');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Consul answers are asserted on as JSON
type Json = any;
/** The package's typings demand a name and timeout that Consul does not need for a TTL check. */
const ttlCheck = (ttl: string, more: Record<string, string> = {}): Json => ({ ttl, ...more });

describe('Consul door: the npm consul client', () => {
  const ctx = useSecuredGateway({ CONSUL_API_PORT: '0', HOST: '127.0.0.1' });
  let consulUrl: URL;
  /** An agent token whose globs cover payments and payments-*. */
  let agent: Consul;
  let reader: Consul;

  const client = (token: string) => new Consul({ host: consulUrl.hostname, port: Number(consulUrl.port), defaults: { token } });
  const rest = (path: string, token = ctx.tokens.reader) => rawRequest(ctx.gw.url, { method: 'GET', path, token });
  const etcd = new Etcd3({ hosts: sharedStack().etcd.endpoint, auth: { username: 'root', password: sharedStack().etcd.rootPassword } });
  afterAll(() => etcd.close());
  /**
   * Lookups answer what the replica's watch applied (issue 22), a few ms after a write is acknowledged:
   * a read right after a write first waits until the watch has reached etcd's current revision.
   */
  const restInstances = async (service: string): Promise<Json[]> => {
    const revision = Number((await etcd.get('/revision-probe').exec()).header.revision);
    await waitFor('the watch at etcd\'s revision', async () => (await ctx.gw.metric('registry_watch_revision')) >= revision, 10_000, 20);
    return (await rest(`/v1/services/${service}?status=all`)).json.instances;
  };
  const doorCount = (operation: string, status: string) => ctx.gw.metric('registry_door_requests_total', { door: 'consul', operation, status });
  const health = (service: string, passing = false): Promise<Json[]> => reader.health.service({ service, passing });

  beforeAll(() => {
    consulUrl = new URL(ctx.gw.app.get(ConsulDoor).url!);
    agent = client(ctx.tokens.agent);
    reader = client(ctx.tokens.reader);
  });
  afterAll(() => {
    agent?.destroy();
    reader?.destroy();
  });

  const FIRST = 'payments/api 1';
  const tags = ['v-1.4.2', goMicroTag(3_000), 'spaces and ünïcode/slash'];

  it('registers with a TTL check: critical until the first pass, then UP; the REST API reads the same instance, tags byte for byte', async () => {
    expect(tags[1].length).toBeGreaterThan(6_000);
    await agent.agent.service.register({ name: 'payments', id: FIRST, address: '10.1.2.3', port: 8443, tags, meta: { version: '1.4.2' }, check: ttlCheck('10s', { deregistercriticalserviceafter: '1m' }) });

    const [entry] = await health('payments');
    expect(entry.Service).toMatchObject({ ID: FIRST, Service: 'payments', Address: '10.1.2.3', Port: 8443, Tags: tags, Meta: { version: '1.4.2' } });
    expect(entry.Checks.find((c: Json) => c.CheckID === CHECK_ID(FIRST))).toMatchObject({ Status: 'critical', ServiceID: FIRST, Type: 'ttl' });
    expect(await health('payments', true)).toEqual([]);
    const [stored] = await restInstances('payments');
    expect(stored).toMatchObject({ id: toRegistryName(FIRST), address: '10.1.2.3', port: 8443, status: 'DOWN', tags });
    expect(stored.metadata.version).toBe('1.4.2');

    const passes = await doorCount('check.pass', '200');
    await agent.agent.check.pass(CHECK_ID(FIRST));
    expect(await doorCount('check.pass', '200')).toBe(passes + 1);
    expect((await health('payments', true)).map((e: Json) => e.Service.ID)).toEqual([FIRST]);
    expect((await rest('/v1/services/payments')).json.instances.map((i: Json) => i.id)).toEqual([toRegistryName(FIRST)]);

    // Later passes are heartbeats only: no status write.
    const registrations = await ctx.gw.metric('registry_registrations_total');
    const heartbeats = await ctx.gw.metric('registry_heartbeats_total');
    for (let i = 0; i < 5; i++) await agent.agent.check.pass(CHECK_ID(FIRST));
    expect(await ctx.gw.metric('registry_heartbeats_total')).toBe(heartbeats + 5);
    expect(await ctx.gw.metric('registry_registrations_total')).toBe(registrations);
  });

  it('a blocking health.service watch sees a second instance appear, with a larger X-Consul-Index', async () => {
    const changes: Array<{ ids: string[]; index: bigint }> = [];
    const watch = agent.watch({ method: agent.health.service, options: { service: 'payments', passing: true, wait: '10s' } as Json });
    watch.on('change', (data: Json[], res: Json) => changes.push({ ids: data.map((e) => e.Service.ID).sort(), index: BigInt(res.headers['x-consul-index']) }));
    const errors: unknown[] = [];
    watch.on('error', (err: unknown) => errors.push(err));
    try {
      await waitFor('the first answer', async () => changes.length === 1);
      await waitFor('the watch held', async () => (await ctx.gw.metric('registry_blocking_queries_held')) === 1);
      await agent.agent.service.register({ name: 'payments', id: 'payments/api 2', address: '10.1.2.4', port: 8443, check: ttlCheck('10s', { status: 'passing' }) });
      await waitFor('the change', async () => changes.length === 2);
    } finally {
      watch.end();
    }
    expect(errors).toEqual([]);
    expect(changes[0].ids).toEqual([FIRST]);
    expect(changes[1].ids).toEqual([FIRST, 'payments/api 2']);
    expect(changes[1].index).toBeGreaterThan(changes[0].index);
  });

  it('warn is DRAINING, fail is DOWN, maintenance keeps the service out of rotation until disabled', async () => {
    const status = async () => (await restInstances('payments')).find((i: Json) => i.id === toRegistryName(FIRST)).status;
    const checks = async () => (await health('payments')).find((e: Json) => e.Service.ID === FIRST).Checks.map((c: Json) => [c.CheckID, c.Status]);

    await agent.agent.check.warn(CHECK_ID(FIRST));
    expect(await status()).toBe('DRAINING');
    expect(await checks()).toContainEqual([CHECK_ID(FIRST), 'warning']);
    expect((await health('payments', true)).map((e: Json) => e.Service.ID)).toEqual(['payments/api 2']);

    await agent.agent.check.fail(CHECK_ID(FIRST));
    expect(await status()).toBe('DOWN');
    expect(await checks()).toContainEqual([CHECK_ID(FIRST), 'critical']);
    await agent.agent.check.pass(CHECK_ID(FIRST));
    expect(await status()).toBe('UP');

    await agent.agent.service.maintenance({ id: FIRST, enable: true, reason: 'deploy 42' });
    expect(await status()).toBe('DRAINING');
    const maintenance = (await health('payments')).find((e: Json) => e.Service.ID === FIRST).Checks.find((c: Json) => c.CheckID === `_service_maintenance:${FIRST}`);
    expect(maintenance).toMatchObject({ Status: 'critical', Notes: 'deploy 42' });
    await agent.agent.check.pass(CHECK_ID(FIRST));
    expect(await status()).toBe('DRAINING');
    await agent.agent.service.maintenance({ id: FIRST, enable: false });
    expect(await status()).toBe('UP');
    expect((await checks()).map(([id]: string[]) => id)).not.toContain(`_service_maintenance:${FIRST}`);
  });

  it('answers status.leader (Spring Cloud Consul\'s health indicator) with the address the client reached', async () => {
    expect(await reader.status.leader()).toBe(consulUrl.host);
  });

  it('catalog.service and catalog.services list what was registered, under the names the client used', async () => {
    const entries: Json[] = await reader.catalog.service.nodes('payments');
    expect(entries.map((e) => e.ServiceID).sort()).toEqual([FIRST, 'payments/api 2']);
    expect(entries.find((e) => e.ServiceID === FIRST)).toMatchObject({ ServiceName: 'payments', ServiceAddress: '10.1.2.3', ServicePort: 8443, ServiceTags: tags });
    const services: Record<string, string[]> = await reader.catalog.service.list();
    expect(services.payments).toEqual(tags);
  });

  it('refuses a wrong, missing, read-only or out-of-scope token with 403, and writes nothing', async () => {
    const denied = await doorCount('service.register', '403');
    const attempts: Array<[string, string]> = [
      ['not-a-token-of-this-gateway-000', 'payments-wrong'],
      ['', 'payments-missing'],
      [ctx.tokens.reader, 'payments-reader'],
      [ctx.tokens.agent, 'orders'],
    ];
    for (const [token, name] of attempts) {
      const consul = client(token);
      try {
        await expect(consul.agent.service.register({ name, port: 80, address: '10.0.0.9', check: ttlCheck('10s') })).rejects.toMatchObject({ statusCode: 403 });
      } finally {
        consul.destroy();
      }
      expect(await restInstances(name)).toEqual([]);
    }
    // The token is checked before the body: a stranger's bad body is a 403 too.
    const strangerBadBody = await rawRequest(consulUrl.origin, {
      method: 'PUT',
      path: '/v1/agent/service/register',
      headers: { 'x-consul-token': 'not-a-token-of-this-gateway-000' },
      body: { Name: 'payments-x', Port: 80, Check: { HTTP: 'http://x', Interval: '1s' } },
    });
    expect({ status: strangerBadBody.status, text: strangerBadBody.text }).toEqual({ status: 403, text: 'ACL not found' });
    expect(await doorCount('service.register', '403')).toBe(denied + attempts.length + 1);
    const stranger = client('not-a-token-of-this-gateway-000');
    try {
      await expect(stranger.agent.check.pass(CHECK_ID(FIRST))).rejects.toMatchObject({ statusCode: 403 });
      await expect(stranger.health.service('payments')).rejects.toMatchObject({ statusCode: 403 });
      await expect(stranger.agent.service.deregister(FIRST)).rejects.toMatchObject({ statusCode: 403 });
    } finally {
      stranger.destroy();
    }
    expect((await restInstances('payments')).length).toBe(2);
  });

  it('takes the token from X-Consul-Token, ?token= or Authorization: Bearer', async () => {
    const get = (path: string, headers: Record<string, string> = {}) => rawRequest(consulUrl.origin, { method: 'GET', path, headers });
    expect((await get('/v1/health/service/payments', { 'x-consul-token': ctx.tokens.reader })).status).toBe(200);
    expect((await get(`/v1/health/service/payments?token=${encodeURIComponent(ctx.tokens.reader)}`)).status).toBe(200);
    expect((await get('/v1/health/service/payments', { authorization: `Bearer ${ctx.tokens.reader}` })).status).toBe(200);
    const refused = await get('/v1/health/service/payments?token=not-a-token-of-this-gateway-000');
    expect({ status: refused.status, text: refused.text }).toEqual({ status: 403, text: 'ACL not found' });
    expect((await get('/v1/health/service/payments')).status).toBe(403);
    // Listing every service is for readers and admins, as on REST; an agent token is scoped to its services.
    expect((await get('/v1/catalog/services', { 'x-consul-token': ctx.tokens.reader })).status).toBe(200);
    expect((await get('/v1/catalog/services', { 'x-consul-token': ctx.tokens.agent })).status).toBe(403);
  });

  it('answers bad input with a plain-text 400 and writes nothing', async () => {
    const registrations = await ctx.gw.metric('registry_registrations_total');
    const register = (body: unknown) => rawRequest(consulUrl.origin, { method: 'PUT', path: '/v1/agent/service/register', body, headers: { 'x-consul-token': ctx.tokens.agent } });
    const good = { Name: 'payments-bad', ID: 'b1', Address: '10.0.0.1', Port: 80 };
    const bad: Array<[unknown, RegExp]> = [
      [{ ...good, Check: { HTTP: 'http://10.0.0.1/health', Interval: '10s' } }, /HTTP checks are not run/],
      [{ ...good, Check: { TCP: '10.0.0.1:80', Interval: '10s' } }, /TCP checks are not run/],
      [{ ...good, Checks: [{ GRPC: '10.0.0.1:80', Interval: '10s' }] }, /GRPC checks are not run/],
      [{ ...good, Check: { TTL: '1s' } }, /TTL must be a duration from 5s to 300s/],
      [{ ...good, Check: { TTL: '10 seconds' } }, /TTL must be a duration/],
      [{ ...good, Checks: [{ TTL: '10s' }, { TTL: '20s' }] }, /one TTL check per service/],
      [{ ...good, Name: undefined }, /Missing service name/],
      [{ ...good, Port: undefined }, /Port must be an integer/],
      [{ ...good, Address: 'not an address' }, /Address must be/],
      [{ ...good, Meta: { 'bad key': 'x' } }, /Meta keys/],
      [{ ...good, Tags: [goMicroTag(30_000)] }, /Tags: at most 256 tags of 32 KiB/],
      [{ ...good, Kind: 'connect-proxy' }, /Connect proxies/],
      ['{"Name": "payments-bad",', /Request decode failed/],
    ];
    for (const [body, message] of bad) {
      const answer = await register(body);
      expect({ status: answer.status, type: answer.headers['content-type'] }).toEqual({ status: 400, type: 'text/plain; charset=utf-8' });
      expect(answer.text).toMatch(message);
    }
    expect(await restInstances('payments-bad')).toEqual([]);
    expect(await ctx.gw.metric('registry_registrations_total')).toBe(registrations);
    // Unknown ids and checks: Consul's 404s.
    await expect(agent.agent.check.pass('service:nobody')).rejects.toMatchObject({ statusCode: 404 });
    await expect(agent.agent.service.deregister('nobody')).rejects.toMatchObject({ statusCode: 404 });
  });

  it("takes a body sent without a content type, as Go's Consul client sends it", async () => {
    const body = JSON.stringify({ Name: 'payments-go', ID: 'go-1', Address: '10.0.0.3', Port: 81, Check: { TTL: '15s', Status: 'passing' } });
    const answer = await rawRequest(consulUrl.origin, {
      method: 'PUT',
      path: '/v1/agent/service/register',
      headers: ['x-consul-token', ctx.tokens.agent, 'content-length', String(Buffer.byteLength(body))],
      body,
    });
    expect(answer.status).toBe(200);
    expect(await restInstances('payments-go')).toEqual([expect.objectContaining({ id: 'go-1', port: 81, status: 'UP' })]);
    await agent.agent.service.deregister('go-1');
    expect(await restInstances('payments-go')).toEqual([]);
  });

  it('re-registering an ID under another name moves it, as Consul IDs are unique per agent', async () => {
    await agent.agent.service.register({ name: 'payments-old', id: 'mover', address: '10.0.0.5', port: 80, check: ttlCheck('10s') });
    await agent.agent.service.register({ name: 'payments-new', id: 'mover', address: '10.0.0.5', port: 80, check: ttlCheck('10s') });
    expect(await restInstances('payments-old')).toEqual([]);
    expect((await restInstances('payments-new')).map((i: Json) => i.id)).toEqual(['mover']);
    await agent.agent.service.deregister('mover');
    expect(await restInstances('payments-new')).toEqual([]);
  });

  it('deregisters: gone from Consul and from the REST API', async () => {
    await agent.agent.service.deregister(FIRST);
    await agent.agent.service.deregister('payments/api 2');
    expect(await restInstances('payments')).toEqual([]);
    expect(await health('payments')).toEqual([]);
    await expect(agent.agent.check.pass(CHECK_ID(FIRST))).rejects.toMatchObject({ statusCode: 404 });
  });
});
