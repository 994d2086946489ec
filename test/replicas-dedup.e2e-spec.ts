/**
 * Many replicas, one registry (issues 11 and 21): with pods heartbeating to a random replica, etcd's
 * load grows neither with the replicas nor with the instances. Every replica learns every instance and
 * its lease from its initial read + watch (no Range per heartbeat or per learned instance); renewals are
 * per shared lease, by its owner; the owner expires an instance only when no replica heard it (the
 * heard-sets in Redis). With Redis gone, expiry pauses: no live pod is deleted. Counts come from etcd's
 * own /metrics.
 */
import { diffCounters } from '@app/stack';
import { etcdAdmin } from './support/etcd-admin';
import { forEachLimited, heartbeatPod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, usePrivateStack } from './support/gateway';
import { sleep } from './support/wait';

describe('three replicas behind a random load balancer', () => {
  const stack = usePrivateStack();
  const TTL = 6;
  const fleet = pods(10, 30, 'dedup'); // 300 pods
  const replicas: GatewayUnderTest[] = [];
  const pick = () => replicas[Math.floor(Math.random() * replicas.length)];

  /** Every pod heartbeats once a second, each time to a random replica; returns the statuses seen. */
  async function heartbeatFor(ms: number): Promise<Map<number, number>> {
    const statuses = new Map<number, number>();
    for (const end = Date.now() + ms; Date.now() < end; ) {
      const round = Date.now();
      const results = await forEachLimited(fleet, 64, (pod) => heartbeatPod(pick().url, pod));
      for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      await sleep(Math.max(0, 1_000 - (Date.now() - round)));
    }
    return statuses;
  }

  it('renews leases, not instances, deletes no live pod heard through other replicas, and reads nothing from etcd after the initial syncs', async () => {
    const beforeStart = await stack.etcd().counters();
    const first = await stack.startGateway({ RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' });
    replicas.push(first);
    for (let i = 0; i < 2; i++) replicas.push(await stack.startGateway({ ETCD_PREFIX: first.prefix, RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' }));
    const afterStart = await stack.etcd().counters();
    // One initial (paged) read of the empty registry and one of the gateway records per replica, nothing else.
    expect(diffCounters(beforeStart, afterStart).range).toBe(6);

    const registered = await forEachLimited(fleet, 32, (pod) => registerPod(pick().url, pod, TTL));
    expect(registered.filter((r) => r.status !== 201)).toEqual([]);

    const windowMs = 12_000;
    const before = await stack.etcd().counters();
    const statuses = await heartbeatFor(windowMs);
    const used = diffCounters(before, await stack.etcd().counters());
    const perInstance = (fleet.length * windowMs) / ((TTL * 1000) / 3);
    let expired = 0;
    for (const r of replicas) expired += await r.metric('registry_expirations_total');
    process.stdout.write(`3 replicas: one lease per instance would be ~${perInstance} renewals, etcd received ${used.leaseKeepAliveMessages}, range ${used.range}, expired ${expired}; heartbeats ${JSON.stringify([...statuses])}\n`);

    expect([...statuses.keys()]).toEqual([204]);
    // Each replica's shared lease (class 120 s) renews every 40 s, its presence lease every ~3.3 s: ~12
    // messages in the window for the whole cluster, against ~1,800 with one lease per instance.
    expect(used.leaseKeepAliveMessages).toBeLessThanOrEqual(20);
    // Each owner hears a pod on 1 heartbeat in 3: the others' heard-sets keep it (no delete, no 404).
    expect(expired).toBe(0);
    expect(used.deleteRange + used.txn).toBe(0);
    // Heartbeats on replicas that did not register the pod were answered from their watch-fed directory.
    expect(used.range).toBe(0);
    expect(used.authenticate).toBe(0);
  });

  it('survives a rolling restart of every replica: no 404, no re-registration, bounded reads and Authenticates per start', async () => {
    const prefix = replicas[0].prefix;
    const statuses = new Map<number, number>();
    let stop = false;
    const heartbeating = (async () => {
      while (!stop) {
        const round = Date.now();
        // A pod whose replica is going away retries on another one, as a load balancer would.
        const results = await forEachLimited(fleet, 64, async (pod) => {
          for (let attempt = 0; ; attempt++) {
            try {
              const res = await heartbeatPod(pick().url, pod);
              if (res.status < 500 || attempt >= 3) return res;
            } catch (err) {
              if (attempt >= 3) throw err;
            }
          }
        });
        for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        await sleep(Math.max(0, 1_000 - (Date.now() - round)));
      }
    })();
    const perStart: Array<{ range: number; authenticate: number }> = [];
    for (let i = 0; i < 3; i++) {
      const old = replicas.shift()!;
      await old.close(); // SIGTERM-like: graceful, leases kept
      const before = await stack.etcd().counters();
      const fresh = await stack.startGateway({ ETCD_PREFIX: prefix, RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' });
      const used = diffCounters(before, await stack.etcd().counters());
      perStart.push({ range: used.range, authenticate: used.authenticate });
      replicas.push(fresh);
      await sleep(3_000);
    }
    stop = true;
    await heartbeating;
    process.stdout.write(`rolling restart: per start ${JSON.stringify(perStart)}; heartbeats ${JSON.stringify([...statuses])}\n`);
    expect([...statuses.keys()]).toEqual([204]);
    // ceil(300 / page size 2000) = 1 page, 1 read of the gateway records, + 2 slack; ETCD_POOL_SIZE (2) Authenticate calls.
    for (const start of perStart) {
      expect(start.range).toBeLessThanOrEqual(2 + 2);
      expect(start.authenticate).toBeLessThanOrEqual(2);
    }
    let registrations = 0;
    for (const r of replicas) registrations += await r.metric('registry_registrations_total');
    expect(registrations).toBe(0);
    const keys = await etcdAdmin(stack.etcd()).listKeys(`${prefix}services/`);
    expect(keys).toHaveLength(fleet.length);
  });

  it('keeps every heartbeating pod registered when Redis dies: expiry pauses (the heard-sets cannot be exchanged)', async () => {
    await stack.redis().kill();
    const before = await stack.etcd().counters();
    let paused = 0;
    const statuses = await heartbeatFor(12_000);
    for (const r of replicas) paused += await r.metric('registry_expiry_paused');
    const used = diffCounters(before, await stack.etcd().counters());
    process.stdout.write(`Redis down: etcd received ${used.leaseKeepAliveMessages} renewals, ${used.txn} Txn; ${paused} replicas paused; heartbeats ${JSON.stringify([...statuses])}\n`);
    expect([...statuses.keys()]).toEqual([204]);
    for (const r of replicas) expect(await r.metric('registry_lease_renewals_total', { result: 'lost' })).toBe(0);
    // An owner hears a pod only through its own heartbeats then: some look silent to it, and it waits.
    expect(paused).toBeGreaterThan(0);
    const keys = await etcdAdmin(stack.etcd()).listKeys(`${replicas[0].prefix}services/`);
    expect(keys).toHaveLength(fleet.length);
    let expired = 0;
    for (const r of replicas) expired += await r.metric('registry_expirations_total');
    expect(expired).toBe(0);
    await stack.redis().restart();
  });

  it('a pod heartbeating only through replica B is never deleted by its lease owner A, and is gone within TTL + 5 s once silent', async () => {
    // Last: the fleet of the other tests is silent meanwhile (and is expired, as it should be).
    const [a, b] = replicas;
    const only = pods(1, 20, 'only-b');
    expect((await forEachLimited(only, 20, (pod) => registerPod(a.url, pod, TTL))).filter((r) => r.status !== 201)).toEqual([]);
    for (const end = Date.now() + 3 * TTL * 1000; Date.now() < end; ) {
      expect((await forEachLimited(only, 20, (pod) => heartbeatPod(b.url, pod))).filter((r) => r.status !== 204)).toEqual([]);
      await sleep(1_000);
    }
    const keysOf = async () => (await etcdAdmin(stack.etcd()).listKeys(`${a.prefix}services/only-b-`)).length;
    expect(await keysOf()).toBe(only.length);
    const silentSince = Date.now();
    while ((await keysOf()) > 0 && Date.now() - silentSince < TTL * 1000 + 10_000) await sleep(250);
    const goneAfter = Date.now() - silentSince;
    process.stdout.write(`silent pods (TTL ${TTL} s) gone after ${goneAfter} ms\n`);
    expect(await keysOf()).toBe(0);
    expect(goneAfter).toBeGreaterThanOrEqual(TTL * 1000 - 1_000);
    expect(goneAfter).toBeLessThanOrEqual(TTL * 1000 + 5_000);
  });
});
