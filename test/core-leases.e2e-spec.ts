/**
 * Issue 3 acceptance on lease behaviour, with shared leases (issue 21), against the shared
 * auth-enabled etcd: silent pods are expired by the gateway, live pods never are (no gap), a replica
 * that leaves hands its leases to another (no re-put), a lost lease's live instances are written
 * again on another, and a deregistered pod is never resurrected by another replica.
 */
import { Etcd3 } from 'etcd3';
import { etcdAdmin } from './support/etcd-admin';
import { forEachLimited, heartbeatPod, Pod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { sharedStack } from './support/stack';
import { request } from './support/http';
import { sleep, waitFor } from './support/wait';

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };
const admin = etcdAdmin();
const root = new Etcd3({ hosts: stack.etcd.endpoint, auth: { username: stack.etcd.rootUser, password: stack.etcd.rootPassword } });

const keyOf = (gw: GatewayUnderTest, pod: Pod) => `${gw.prefix}services/${pod.service}/${pod.id}`;
async function present(gw: GatewayUnderTest, fleet: Pod[]): Promise<boolean[]> {
  const keys = new Set(await admin.instanceKeys(gw.prefix));
  return fleet.map((p) => keys.has(keyOf(gw, p)));
}
async function leaseOf(key: string): Promise<string | undefined> {
  const res = await root.getAll().prefix(key).exec();
  const kv = res.kvs.find((k) => k.key.toString() === key);
  return kv ? String(kv.lease) : undefined;
}

afterAll(() => {
  root.close();
});

describe('lease lifecycle', () => {
  let gateway: GatewayUnderTest;
  afterEach(async () => gateway?.close());

  it('expires silent pods once their TTL passes and never drops a pod that keeps heartbeating', async () => {
    gateway = await startGateway(target, stack.redis.url);
    const fleet = pods(2, 10, 'expiry');
    const live = fleet.filter((_, i) => i % 2 === 0);
    const silent = fleet.filter((_, i) => i % 2 === 1);
    expect((await forEachLimited(fleet, 16, (p) => registerPod(gateway.url, p, 10))).every((r) => r.status === 201)).toBe(true);

    // Everyone heartbeats for 4 s, then half go silent; the live half keeps going every second.
    const silentSince = Date.now() + 4000;
    const deadline = silentSince + 10_000 + 10_000 / 3 + 3_000;
    let silentGoneAt = 0;
    while (Date.now() < deadline) {
      const beating = Date.now() < silentSince ? fleet : live;
      const beats = await forEachLimited(beating, 16, (p) => heartbeatPod(gateway.url, p));
      expect(beats.map((b) => b.status)).toEqual(beating.map(() => 204));
      const [livePresent, silentPresent] = await Promise.all([present(gateway, live), present(gateway, silent)]);
      expect(livePresent.every(Boolean)).toBe(true); // no gap, ever
      if (!silentGoneAt && Date.now() > silentSince && silentPresent.every((p) => !p)) silentGoneAt = Date.now();
      await sleep(1000);
    }
    expect(silentGoneAt).toBeGreaterThan(0);
    // Not before the TTL: the last renewal happened at or after the last heartbeat.
    expect(silentGoneAt - silentSince).toBeGreaterThanOrEqual(9_000);
    // A pod that expired is unknown: it must register again.
    expect((await heartbeatPod(gateway.url, silent[0])).status).toBe(404);
  });

  it('adopts on a second replica the shared lease of an instance registered on the first, once the first is gone', async () => {
    const first = await startGateway(target, stack.redis.url);
    const second = await startGateway(target, stack.redis.url, { ETCD_PREFIX: first.prefix });
    gateway = second;
    const pod = { service: 'multi', id: 'pod-1' };
    expect((await registerPod(first.url, pod, 5)).status).toBe(201);
    const lease = await leaseOf(keyOf(first, pod));
    await first.close();

    // Heartbeats go on through the takeover (the first replica's presence key is deleted as it stops).
    await waitFor('the second replica to adopt and renew the lease', async () => {
      expect((await heartbeatPod(second.url, pod)).status).toBe(204);
      return (await second.metric('registry_lease_renewals_total', { result: 'confirmed' })) >= 1;
    }, 20_000, 500);
    expect(await leaseOf(keyOf(first, pod))).toBe(lease);
    // The second replica learned the instance (and its lease) through its watch: its only etcd reads are
    // its initial read of the registry and of the gateway's records at start, none per heartbeat.
    expect(await second.metric('registry_etcd_requests_total', { method: 'range' })).toBe(2);
    // It adopted the first replica's lease (same lease, no re-put) and renewed it at once.
    expect(await second.metric('registry_lease_grants_total', { kind: 'adopted' })).toBe(1);
    expect(await second.metric('registry_lease_renewals_total', { result: 'confirmed' })).toBeGreaterThanOrEqual(1);
  });

  it('re-writes on another shared lease an instance whose lease was lost while its pod kept heartbeating', async () => {
    gateway = await startGateway(target, stack.redis.url);
    const pod = { service: 'regrant', id: 'pod-1' };
    const key = keyOf(gateway, pod);
    const registered = await request(gateway.url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}`, {
      address: '10.1.2.3',
      port: 9000,
      ttl: 6,
      metadata: { version: '7' },
    });
    expect(registered.status).toBe(201);
    const oldLease = (await leaseOf(key))!;

    // What an etcd outage longer than the TTL does: the lease (and so the key) is gone.
    await root.leaseClient.leaseRevoke({ ID: oldLease });
    expect(await leaseOf(key)).toBeUndefined();

    let newLease: string | undefined;
    for (let i = 0; i < 15 && !newLease; i++) {
      expect((await heartbeatPod(gateway.url, pod)).status).toBe(204);
      await sleep(700);
      newLease = await leaseOf(key);
    }
    expect(newLease).toBeDefined();
    expect(newLease).not.toBe(oldLease);
    expect(JSON.parse((await admin.get(key))!)).toMatchObject({ address: '10.1.2.3', port: 9000, metadata: { version: '7' } });
    expect(await gateway.metric('registry_lease_regrants_total', { result: 'ok' })).toBe(1);

    // And the new lease is one of this replica's shared leases (its record names the owner), alive in etcd.
    const record = JSON.parse((await root.get(`${gateway.prefix}gateway/leases/${newLease}`).string())!);
    const present = await root.getAll().prefix(`${gateway.prefix}gateway/replicas/`).keys();
    expect(present.map((k) => k.split('/').pop())).toEqual([record.owner]);
    expect(Number((await root.leaseClient.leaseTimeToLive({ ID: newLease! })).TTL)).toBeGreaterThan(60);
    expect((await heartbeatPod(gateway.url, pod)).status).toBe(204);
    expect(await leaseOf(key)).toBe(newLease);
  });

  it('does not resurrect an instance deregistered through another replica', async () => {
    const first = await startGateway(target, stack.redis.url);
    const second = await startGateway(target, stack.redis.url, { ETCD_PREFIX: first.prefix });
    const pod = { service: 'dereg', id: 'pod-1' };
    try {
      expect((await registerPod(first.url, pod, 5)).status).toBe(201);
      expect((await heartbeatPod(first.url, pod)).status).toBe(204);
      expect((await request(second.url, 'DELETE', `/v1/services/${pod.service}/instances/${pod.id}`)).status).toBe(204);
      // The first replica heard it, but its lease lives on (shared): nothing to re-write.
      await sleep(4000);
      expect(await leaseOf(keyOf(first, pod))).toBeUndefined();
      expect(await first.metric('registry_lease_regrants_total')).toBe(0);
      expect((await request(second.url, 'DELETE', `/v1/services/${pod.service}/instances/${pod.id}`)).status).toBe(404);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('keeps the lease when a pod registers again with the same TTL', async () => {
    gateway = await startGateway(target, stack.redis.url);
    const pod = { service: 'idempotent', id: 'pod-1' };
    expect((await registerPod(gateway.url, pod, 10)).status).toBe(201);
    const lease = await leaseOf(keyOf(gateway, pod));
    const again = await registerPod(gateway.url, pod, 10);
    expect(again.status).toBe(200);
    expect(await leaseOf(keyOf(gateway, pod))).toBe(lease);
    expect(await gateway.metric('registry_registrations_total', { kind: 'replaced' })).toBe(1);
  });
});
