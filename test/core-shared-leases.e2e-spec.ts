/**
 * Shared leases (issue 21): etcd's lease work follows leases, not instances. Registrations are batched
 * Puts onto a few shared leases (LeaseGrant only when one fills), each lease is renewed once per
 * classTtl/3 whatever the heartbeat rate, a lease etcd loses is replaced and its live instances written
 * again in a few Txns, and a deregistration deletes exactly one key. Counts from etcd's own /metrics.
 */
import { Etcd3 } from 'etcd3';
import { diffCounters } from '@app/stack';
import { forEachLimited, heartbeatPod, Pod, pods, request } from './support/fleet';
import { GatewayUnderTest, usePrivateStack } from './support/gateway';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(120_000);

describe('shared leases (private etcd)', () => {
  const stack = usePrivateStack();
  let root: Etcd3;

  const register = (gateway: GatewayUnderTest, pod: Pod, ttl: number) =>
    request(gateway.url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}`, { address: '10.0.0.1', port: 8080, ttl });
  const keyOf = (gateway: GatewayUnderTest, pod: Pod) => `${gateway.prefix}services/${pod.service}/${pod.id}`;
  /** Every instance key of this gateway and the lease it is held by, as etcd has them. */
  const leasesInEtcd = async (gateway: GatewayUnderTest) => {
    const kvs = await root.getAll().prefix(`${gateway.prefix}services/`).exec();
    return new Map(kvs.kvs.map((kv) => [kv.key.toString(), String(kv.lease)]));
  };
  const recordOf = async (gateway: GatewayUnderTest, leaseId: string) => {
    const value = await root.get(`${gateway.prefix}gateway/leases/${leaseId}`).string();
    return value ? (JSON.parse(value) as { owner: string; classTtl: number }) : undefined;
  };
  /** A started replica whose presence key (its own small lease) is written: later counts are the instances' alone. */
  const startGateway = async (overrides: Record<string, string> = {}) => {
    const gateway = await stack.startGateway({ RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0', ...overrides });
    await waitFor('the presence key', async () => (await gateway.metric('registry_replica_present')) === 1);
    return gateway;
  };

  beforeAll(() => {
    const etcd = stack.etcd();
    root = new Etcd3({ hosts: etcd.clientUrl, auth: { username: etcd.rootUser, password: etcd.rootPassword } });
  });
  afterAll(() => root?.close());

  it('300 concurrent registrations make one LeaseGrant: every key on one shared lease of the 120 s class, with its record', async () => {
    const gateway = await startGateway();
    const fleet = pods(3, 100, 'share');
    const before = await stack.etcd().counters();
    const answers = await forEachLimited(fleet, fleet.length, (pod) => register(gateway, pod, 30));
    const used = diffCounters(before, await stack.etcd().counters());
    process.stdout.write(`300 registrations: etcd counted ${used.leaseGrant} LeaseGrant, ${used.put} Put, ${used.txn} Txn\n`);
    expect(answers.filter((a) => a.status !== 201)).toEqual([]);
    expect(used.leaseGrant).toBe(1);
    // Never a plain Put onto a shared lease (etcd checks every key already on it): Txns only.
    expect(used.put).toBe(0);
    expect(used.txn).toBeLessThan(300);

    const leases = await leasesInEtcd(gateway);
    expect(leases.size).toBe(300);
    const [leaseId] = new Set(leases.values());
    expect(new Set(leases.values()).size).toBe(1);
    const ttl = await root.leaseClient.leaseTimeToLive({ ID: leaseId, keys: true });
    expect(Number(ttl.grantedTTL)).toBe(120);
    // 300 instances and the lease record.
    expect(ttl.keys).toHaveLength(301);
    expect(await recordOf(gateway, leaseId)).toMatchObject({ classTtl: 120 });
    for (const [i] of fleet.entries()) expect(JSON.parse(answers[i].body).leaseId).toBe(leaseId);
  });

  it('fills leases one at a time up to LEASE_MAX_KEYS, and longer instance TTLs get a longer class', async () => {
    const gateway = await startGateway({ LEASE_MAX_KEYS: '100' });
    const before = await stack.etcd().counters();
    await forEachLimited(pods(1, 250, 'cap'), 50, (pod) => register(gateway, pod, 30));
    await forEachLimited(pods(1, 10, 'long'), 10, (pod) => register(gateway, pod, 90));
    const used = diffCounters(before, await stack.etcd().counters());
    expect(used.leaseGrant).toBe(4);
    const counts = new Map<string, number>();
    for (const leaseId of (await leasesInEtcd(gateway)).values()) counts.set(leaseId, (counts.get(leaseId) ?? 0) + 1);
    expect([...counts.values()].sort((a, b) => a - b)).toEqual([10, 50, 100, 100]);
    const classes = await Promise.all([...counts.keys()].map(async (id) => (await recordOf(gateway, id))!.classTtl));
    expect(classes.sort()).toEqual([120, 120, 120, 240]);
  });

  it('renews leases, not instances: 2,400 heartbeats cost etcd no LeaseKeepAlive of their own', async () => {
    const gateway = await startGateway();
    const fleet = pods(2, 100, 'beat');
    await forEachLimited(fleet, 50, (pod) => register(gateway, pod, 30));
    const before = await stack.etcd().counters();
    const started = Date.now();
    // 200 pods heartbeating every second for 12 s: 2,400 heartbeats.
    while (Date.now() - started < 12_000) {
      const beats = await forEachLimited(fleet, 50, (pod) => heartbeatPod(gateway.url, pod));
      expect(beats.filter((b) => b.status !== 204)).toEqual([]);
      await sleep(1_000);
    }
    const used = diffCounters(before, await stack.etcd().counters());
    process.stdout.write(`12 s of 200 heartbeating pods: ${used.leaseKeepAliveMessages} LeaseKeepAlive messages\n`);
    // The shared lease (class 120 s, the shortest) is renewed every 40 s: at most once here; the presence
    // lease of each of the file's 4 replicas every ~3.3 s (~15). One lease per instance: ~240 more.
    expect(used.leaseKeepAliveMessages).toBeLessThanOrEqual(20);
    expect(used.range + used.put + used.leaseGrant).toBe(0);
  });

  it('a lease revoked with etcdctl is replaced and its live instances re-put in a few Txns, no 404', async () => {
    const gateway = await startGateway();
    const fleet = pods(2, 100, 'lost');
    await forEachLimited(fleet, 50, (pod) => register(gateway, pod, 30));
    const [oldLease] = new Set((await leasesInEtcd(gateway)).values());
    const before = await stack.etcd().counters();
    await root.leaseClient.leaseRevoke({ ID: oldLease });
    const beats = forEachLimited(fleet, 20, (pod) => heartbeatPod(gateway.url, pod));
    await waitFor('every instance written again', async () => (await leasesInEtcd(gateway)).size === fleet.length, 15_000, 100);
    expect((await beats).filter((b) => b.status !== 204)).toEqual([]);
    const used = diffCounters(before, await stack.etcd().counters());
    process.stdout.write(`lost lease of 200 instances: ${used.leaseGrant} LeaseGrant, ${used.txn} Txn\n`);
    const leases = new Set((await leasesInEtcd(gateway)).values());
    expect(leases.has(oldLease)).toBe(false);
    expect(leases.size).toBe(1);
    expect(used.leaseGrant).toBeLessThanOrEqual(2);
    // 200 re-puts are 4 requests of 64 nested Txns; heartbeats racing with them join the same writes.
    expect(used.txn).toBeLessThanOrEqual(12);
    expect(await gateway.metric('registry_lease_regrants_total', { result: 'error' })).toBe(0);
  });

  it('deregistering one instance deletes exactly one key and revokes nothing', async () => {
    const gateway = await startGateway();
    const fleet = pods(1, 20, 'dereg');
    await forEachLimited(fleet, 20, (pod) => register(gateway, pod, 30));
    const before = await stack.etcd().counters();
    expect((await request(gateway.url, 'DELETE', `/v1/services/${fleet[0].service}/instances/${fleet[0].id}`)).status).toBe(204);
    const used = diffCounters(before, await stack.etcd().counters());
    expect(used.leaseRevoke).toBe(0);
    const left = await leasesInEtcd(gateway);
    expect(left.size).toBe(19);
    expect(left.has(keyOf(gateway, fleet[0]))).toBe(false);
  });
});
