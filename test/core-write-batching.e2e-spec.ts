/**
 * Registration Puts are batched (issue 10, item 4) onto shared leases (issue 21): the Puts of
 * concurrent registrations reach etcd as Txns (never a plain Put: etcd checks every key already on a
 * lease for one), the created / replaced answers stay right, and a lease etcd lost never fails a
 * registration. Counts come from etcd's own /metrics.
 */
import { Etcd3 } from 'etcd3';
import { diffCounters, parsePrometheusText, sumSamples } from '@app/stack';
import { forEachLimited, Pod, pods, request } from './support/fleet';
import { call, GatewayUnderTest, usePrivateStack } from './support/gateway';

describe('batched registration writes (private etcd)', () => {
  const stack = usePrivateStack();
  const fleet = pods(3, 100, 'batch'); // 300 pods
  let gateway: GatewayUnderTest;
  let root: Etcd3;

  const register = (pod: Pod, ttl: number) =>
    request(gateway.url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}`, { address: '10.0.0.1', port: 8080, ttl });
  const keyOf = (pod: Pod) => `${gateway.prefix}services/${pod.service}/${pod.id}`;
  /** Every instance key of this gateway and the lease it is held by, as etcd has them. */
  const leasesInEtcd = async () => {
    const kvs = await root.getAll().prefix(`${gateway.prefix}services/`).exec();
    return new Map(kvs.kvs.map((kv) => [kv.key.toString(), String(kv.lease)]));
  };
  const timeToLive = (leaseId: string) => root.leaseClient.leaseTimeToLive({ ID: leaseId, keys: true });
  /** Txns etcd refused with NOT_FOUND (a lease that does not exist), from its own /metrics. */
  const refusedTxns = async () => {
    const text = (await call(`${stack.etcd().metricsUrl}/metrics`, 'GET')).body as string;
    return sumSamples(parsePrometheusText(text), 'grpc_server_handled_total', { grpc_service: 'etcdserverpb.KV', grpc_method: 'Txn', grpc_code: 'NotFound' });
  };
  const registrations = async (kind: 'created' | 'replaced') => gateway.metric('registry_registrations_total', { kind });

  beforeAll(async () => {
    gateway = await stack.startGateway({ RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' });
    const etcd = stack.etcd();
    root = new Etcd3({ hosts: etcd.clientUrl, auth: { username: etcd.rootUser, password: etcd.rootPassword } });
  });
  afterAll(() => root?.close());

  it('300 concurrent registrations: Txns only (never a plain Put onto a shared lease), fewer requests than registrations, one LeaseGrant', async () => {
    const before = await stack.etcd().counters();
    const answers = await forEachLimited(fleet, fleet.length, (pod) => register(pod, 60));
    const used = diffCounters(before, await stack.etcd().counters());
    process.stdout.write(`300 registrations: etcd counted ${used.leaseGrant} LeaseGrant, ${used.put} Put, ${used.txn} Txn\n`);

    expect(answers.filter((a) => a.status !== 201)).toEqual([]);
    expect(await registrations('created')).toBe(300);
    // One shared lease (LEASE_MAX_KEYS 1,000) granted once, whatever the concurrency.
    expect(used.leaseGrant).toBe(1);
    // A plain Put with a lease makes etcd check every key already on it (docs/shared-leases.md): never.
    expect(used.put).toBe(0);
    // Puts that arrive in one event-loop turn share a Txn: how many do depends on how the requests
    // land (the client runs in this process); never more Txns than registrations.
    expect(used.txn).toBeGreaterThan(0);
    expect(used.txn).toBeLessThan(300);

    const leases = await leasesInEtcd();
    expect([...leases.keys()].sort()).toEqual(fleet.map(keyOf).sort());
    expect(new Set(leases.values()).size).toBe(1);
    const [leaseId] = new Set(leases.values());
    expect(Number((await timeToLive(leaseId)).TTL)).toBeGreaterThan(0);
    // The answers name the lease etcd holds the key under.
    for (const i of fleet.keys()) expect(JSON.parse(answers[i].body).leaseId).toBe(leaseId);
  });

  it('re-registering in a batch: a TTL of the same class keeps the lease, another class moves to its own shared lease, nothing revoked, answers are 200', async () => {
    const leasesBefore = await leasesInEtcd();
    const sameClass = fleet.slice(0, 150);
    const otherClass = fleet.slice(150);
    const before = await stack.etcd().counters();
    // 45 s and 60 s are both in the 120 s class; 90 s is in the 240 s class.
    const answers = await forEachLimited(fleet, fleet.length, (pod) => register(pod, sameClass.includes(pod) ? 45 : 90));
    const used = diffCounters(before, await stack.etcd().counters());

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(await registrations('replaced')).toBe(300);
    expect(used.leaseGrant).toBe(1);
    expect(used.leaseRevoke).toBe(0);

    const leasesAfter = await leasesInEtcd();
    expect(leasesAfter.size).toBe(300);
    for (const pod of sameClass) expect(leasesAfter.get(keyOf(pod))).toBe(leasesBefore.get(keyOf(pod)));
    const moved = new Set(otherClass.map((pod) => leasesAfter.get(keyOf(pod))));
    expect(moved.size).toBe(1);
    const [longLease] = moved;
    expect(longLease).not.toBe(leasesBefore.get(keyOf(otherClass[0])));
    expect(Number((await timeToLive(longLease!)).grantedTTL)).toBe(240);
  });

  it('a shared lease revoked behind the gateway: registrations racing its re-put all succeed, every key back on a live lease', async () => {
    const leasesBefore = await leasesInEtcd();
    const sameClass = fleet.slice(0, 150);
    const lost = leasesBefore.get(keyOf(sameClass[0]))!;
    await root.leaseClient.leaseRevoke({ ID: lost });

    const answers = await forEachLimited(sameClass, sameClass.length, (pod) => register(pod, 45));
    // Created (the revoke deleted the key) or replaced (the lost lease's re-put wrote it back first).
    expect(answers.filter((a) => a.status !== 200 && a.status !== 201)).toEqual([]);

    let leasesAfter = await leasesInEtcd();
    for (let i = 0; i < 50 && leasesAfter.size < 300; i++) {
      await new Promise((r) => setTimeout(r, 100));
      leasesAfter = await leasesInEtcd();
    }
    expect(leasesAfter.size).toBe(300);
    for (const pod of sameClass) {
      const leaseId = leasesAfter.get(keyOf(pod))!;
      expect(leaseId).not.toBe(lost);
      expect(Number((await timeToLive(leaseId)).TTL)).toBeGreaterThan(0);
    }
    expect(await refusedTxns()).toBeGreaterThanOrEqual(0);
  });
});
