/**
 * Issue 12 acceptance for the SDK's resolver, against real gateways on the shared etcd and Redis: a
 * watch sees registrations made through another replica, keeps the last answer with `stale: true`
 * while every gateway is down (never an empty list), and recovers by itself when one is back; pick()
 * strategies work on real answers.
 */
import { Resolution, resolver, Resolver, ServiceWatch } from '@app/client';
import { freePort } from '@app/stack';
import { call, gatewayEnv, GatewayProcess, GatewayUnderTest, startGateway, startGatewayProcess } from './support/gateway';
import { request } from './support/http';
import { sharedStack } from './support/stack';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(240_000);

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };

async function register(url: string, service: string, id: string, extra: Record<string, unknown> = {}): Promise<void> {
  // TTL 120 s: these instances must outlive the gateways' outage without heartbeats.
  const res = await call(`${url}/v1/services/${service}/instances/${id}`, 'PUT', { address: '10.4.0.1', port: 80, ttl: 120, ...extra });
  expect(res.status).toBe(201);
}

const ids = (r: Resolution) => r.instances.map((i) => i.id);

describe('resolver against real gateways', () => {
  let processGateway: GatewayProcess;
  let inProcess: GatewayUnderTest | undefined;
  let env: Record<string, string>;
  let lookups: Resolver;
  let watch: ServiceWatch;
  const seen: Resolution[] = [];

  beforeAll(async () => {
    env = gatewayEnv(target, stack.redis.url, { PORT: String(await freePort()) });
    [processGateway, inProcess] = await Promise.all([startGatewayProcess(env), startGateway(target, stack.redis.url, { ETCD_PREFIX: env.ETCD_PREFIX })]);
    lookups = resolver({ gateways: [processGateway.url, inProcess.url], pollIntervalMs: 500, maxBackoffMs: 2_000 });
  });
  afterAll(async () => {
    await lookups?.close();
    await inProcess?.close();
    if (processGateway && processGateway.child.exitCode === null && processGateway.child.signalCode === null) processGateway.child.kill('SIGKILL');
  });

  it('watch: sees registrations made through either replica, in the mode the gateway offers', async () => {
    watch = lookups.watch('catalog', (r) => seen.push(r), {}, { onError: (e) => console.log(`watch error: ${e.message}`) });
    await waitFor('the first answer', () => seen[0]);
    expect(ids(seen[0])).toEqual([]);
    await register(inProcess!.url, 'catalog', 'pod-1', { weight: 300, zone: 'z1' });
    await waitFor('pod-1', () => seen.find((r) => ids(r).includes('pod-1')));
    await register(processGateway.url, 'catalog', 'pod-2', { weight: 100, zone: 'z2' });
    const both = await waitFor('pod-1 and pod-2', () => seen.find((r) => ids(r).length === 2));
    expect(both).toMatchObject({ stale: false, unreachable: false });
    const offersBlocking = 'x-registry-index' in (await request(processGateway.url, 'GET', '/v1/services/catalog')).headers;
    expect(watch.mode).toBe(offersBlocking ? 'blocking' : 'polling');
    console.log(`watch mode against this gateway: ${watch.mode}`);
  });

  it('pick(): round-robin, weighted by the weight field, and zone-preferring', async () => {
    const rr = [];
    for (let i = 0; i < 4; i++) rr.push((await lookups.pick('catalog'))?.id);
    expect(rr).toEqual(['pod-1', 'pod-2', 'pod-1', 'pod-2']);
    const weighted = Array.from({ length: 8 }, () => watch.pick({ strategy: 'weighted' })?.id);
    expect(weighted.filter((id) => id === 'pod-1')).toHaveLength(6);
    expect(new Set(Array.from({ length: 4 }, () => watch.pick({ strategy: 'zone', zone: 'z2' })?.id))).toEqual(new Set(['pod-2']));
  });

  it('keeps the last answer with stale: true while every gateway is down, and recovers by itself', async () => {
    const before = seen.length;
    processGateway.child.kill('SIGKILL');
    await processGateway.exited;
    await inProcess!.close();
    inProcess = undefined;

    const stale = await waitFor('a stale answer', () => seen.slice(before).find((r) => r.stale));
    expect(stale).toMatchObject({ stale: true, unreachable: true });
    expect(ids(stale)).toEqual(['pod-1', 'pod-2']);
    expect(watch.stale).toBe(true);
    const kept = await lookups.get('catalog');
    expect(kept).toMatchObject({ stale: true, unreachable: true });
    expect(ids(kept)).toEqual(['pod-1', 'pod-2']);
    expect((await lookups.pick('catalog'))?.id).toMatch(/^pod-/);
    await sleep(3_000); // down for a while: still the same answer, never an empty list

    processGateway = await startGatewayProcess(env);
    const servingAt = Date.now();
    const fresh = await waitFor('a fresh answer', () => seen.slice(before).find((r) => !r.stale), 60_000);
    console.log(`watch fresh again ${Date.now() - servingAt} ms after the restarted gateway served its first request`);
    expect(ids(fresh)).toEqual(['pod-1', 'pod-2']);
    expect(watch.stale).toBe(false);
    // Every answer the listener got during the outage had both instances.
    expect(seen.slice(before).every((r) => ids(r).length === 2)).toBe(true);
    expect((await lookups.get('catalog')).stale).toBe(false);
    await watch.close();
  });

  it('get() without any previous answer and no gateway rejects instead of answering an empty list', async () => {
    const offline = resolver({ gateways: [`http://127.0.0.1:${await freePort()}`] });
    await expect(offline.get('catalog')).rejects.toMatchObject({ name: 'GatewaysUnavailableError' });
  });
});
