/**
 * Rolling upgrade from the previous release (issue 21 item 6): a registry written by release ff71f7b
 * (one etcd lease per instance, granted with the instance's TTL and renewed per instance by the
 * replica its pod heartbeats to) is taken over by replicas of this release while every pod keeps
 * heartbeating. The previous release runs for real (its source from git, see
 * support/previous-release.ts), registers the fleet and renews it; then the load balancer moves the
 * pods to two new replicas and the old one stops. From then on only the new replicas can keep the
 * one-key leases alive: each moves a legacy instance onto a shared lease at its heartbeat, paced
 * (MIGRATIONS_PER_SECOND 1 per replica here, so the moves take ~20 s), and renews the legacy lease of
 * every instance it heard until then (LegacyLeaseRenewals). Pods with a 5 s heartbeat interval on a
 * 10 s lease have two chances to be moved before their lease would lapse: without those renewals
 * half of the fleet is lost (deleted by etcd, missing from lookups, 404 at the next heartbeat).
 *
 * ff71f7b predates release A (docs/shared-leases.md section 5: it revokes leases on deregister and
 * publishes no heard-sets), so it is not run beside the new replicas under traffic: the pods move to
 * the new replicas first, then it stops, as a load balancer draining it would.
 */
import { Etcd3 } from 'etcd3';
import { forEachLimited, heartbeatPod, Pod, pods, registerPod, request } from './support/fleet';
import { etcdTarget, gatewayEnv, GatewayProcess, GatewayUnderTest, uniquePrefix, usePrivateStack } from './support/gateway';
import { previousRelease, PreviousRelease } from './support/previous-release';
import { sleep, waitFor } from './support/wait';

/** The last release with one lease per instance. */
const PREVIOUS_RELEASE = 'ff71f7b';
const TTL = 10;

interface Group {
  fleet: Pod[];
  intervalMs: number;
  /** Stops heartbeating this long after the pods moved to the new replicas (undefined = never; 0 = at the move). */
  silentAfterMs?: number;
}

interface Heartbeat {
  at: number;
  toOld: boolean;
  status: string;
}

describe('rolling upgrade from one lease per instance (release ff71f7b) to shared leases', () => {
  const stack = usePrivateStack();
  let old: PreviousRelease | undefined;
  let oldReplica: GatewayProcess | undefined;
  let root: Etcd3 | undefined;

  afterAll(async () => {
    if (oldReplica && oldReplica.child.exitCode === null) {
      oldReplica.child.kill('SIGKILL');
      await oldReplica.exited;
    }
    old?.dispose();
    root?.close();
  });

  it('keeps every heartbeating pod registered and resolvable (0 x 404) while paced moves put it on a shared lease; a silent legacy instance lapses', async () => {
    const startedAt = Date.now();
    const prefix = uniquePrefix();
    const etcd = stack.etcd();
    root = new Etcd3({ hosts: etcd.clientUrl, auth: { username: etcd.rootUser, password: etcd.rootPassword } });
    const etcdRoot = root;
    const groups: Group[] = [
      { fleet: pods(2, 10, 'steady'), intervalMs: 3_000 },
      // Half the lease TTL: a pod whose heartbeat finds the move budget spent waits 5 s for its next
      // chance, two per lease. (Slower than 2/3 of the TTL, a pod could lose its lease to the exit of
      // the old replica itself: it renews a third of the TTL after its last renewal, if heard since.)
      { fleet: pods(1, 10, 'slow'), intervalMs: 5_000 },
      // Silent once the pods move: nobody renews their lease after the old replica, etcd deletes them (their expiry).
      { fleet: pods(1, 6, 'silent'), intervalMs: 3_000, silentAfterMs: 0 },
      // Heard by the new replicas for 5 s, then silent: renewed (or moved) first, then gone all the same.
      { fleet: pods(1, 6, 'later'), intervalMs: 3_000, silentAfterMs: 5_000 },
    ];
    const everyPod = groups.flatMap((g) => g.fleet);
    const live = groups.filter((g) => g.silentAfterMs === undefined).flatMap((g) => g.fleet);
    const keyOf = (pod: Pod) => `${prefix}services/${pod.service}/${pod.id}`;
    const liveKeys = new Set(live.map(keyOf));
    const silentKeys = new Set(everyPod.map(keyOf).filter((key) => !liveKeys.has(key)));

    // etcd's own account of every delete (a lapsed lease deletes its key), from the first registration on.
    const deletes: Array<{ key: string; at: number }> = [];
    const watcher = await etcdRoot.watch().prefix(`${prefix}services/`).create();
    watcher.on('delete', (kv) => deletes.push({ key: kv.key.toString(), at: Date.now() }));

    // The previous release, for real: registers the fleet, one lease per instance.
    old = await previousRelease(PREVIOUS_RELEASE);
    oldReplica = await old.start(gatewayEnv(etcdTarget(etcd), stack.redis().url, { ETCD_PREFIX: prefix, SHUTDOWN_GRACE_MS: '2000', RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' }));
    const oldUrl = oldReplica.url;
    const registered = await forEachLimited(everyPod, 16, (pod) => registerPod(oldUrl, pod, TTL));
    expect(registered.filter((r) => r.status !== 201)).toEqual([]);
    const oldReleaseReadyMs = Date.now() - startedAt;

    // What it wrote is the legacy layout: <prefix>services/<service>/<id> = the JSON record, each key on
    // its own lease granted with the instance's TTL, and no gateway records (lease records, presence).
    const written = await etcdRoot.getAll().prefix(prefix).exec();
    expect(written.kvs.map((kv) => kv.key.toString()).sort()).toEqual(everyPod.map(keyOf).sort());
    expect(new Set(written.kvs.map((kv) => String(kv.lease))).size).toBe(everyPod.length);
    const sample = written.kvs[0];
    expect(JSON.parse(sample.value.toString())).toMatchObject({ address: '10.0.0.1', port: 8080, ttl: TTL, service: expect.any(String), id: expect.any(String), registeredAt: expect.any(String) });
    const granted = await etcdRoot.leaseClient.leaseTimeToLive({ ID: String(sample.lease), keys: true });
    expect(Number(granted.grantedTTL)).toBe(TTL);
    expect(granted.keys.map((k) => k.toString())).toEqual([sample.key.toString()]);

    // Pods heartbeat on their own clock (random phase); the load balancer decides where.
    const replicas: GatewayUnderTest[] = [];
    let target: () => string = () => oldUrl;
    let movedToNewAt = 0;
    let oldGoneAt = 0;
    let stop = false;
    const statuses = new Map<string, number>();
    const notFound: string[] = [];
    /** Per instance key: its heartbeats, to explain a loss. */
    const histories = new Map<string, Heartbeat[]>(everyPod.map((pod) => [keyOf(pod), []]));
    const explain = (key: string) =>
      `${key}: heartbeats ${histories
        .get(key)!
        .map((h) => `${h.at - oldGoneAt}${h.toOld ? 'old' : 'new'}:${h.status}`)
        .join(' ')}; deleted at ${deletes.filter((d) => d.key === key).map((d) => d.at - oldGoneAt)} (ms since the old replica exited)`;
    const heartbeating = groups.flatMap((group) =>
      group.fleet.map(async (pod) => {
        await sleep(Math.random() * group.intervalMs);
        while (!stop) {
          if (group.silentAfterMs !== undefined && movedToNewAt && Date.now() - movedToNewAt >= group.silentAfterMs) return;
          const round = Date.now();
          let status = '';
          let url = '';
          // A heartbeat on a keep-alive socket of the replica going away is sent again, as a load balancer would.
          for (let attempt = 0; attempt < 3 && !/^[2-4]/.test(status); attempt++) {
            try {
              url = target();
              status = String((await heartbeatPod(url, pod)).status);
            } catch (err) {
              status = (err as Error).message;
            }
          }
          histories.get(keyOf(pod))!.push({ at: round, toOld: url === oldUrl, status });
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === '404') notFound.push(`${pod.service}/${pod.id}`);
          await sleep(Math.max(0, group.intervalMs - (Date.now() - round)));
        }
      }),
    );

    // Lookups on both new replicas every second once the pods moved: a heartbeating pod is never missing.
    const missing: string[] = [];
    let lookups = 0;
    const services = [...new Set(live.map((pod) => pod.service))];
    const lookUpEverySecond = async () => {
      while (!stop) {
        for (const replica of replicas) {
          for (const service of services) {
            try {
              const answer = await request(replica.url, 'GET', `/v1/services/${service}`);
              const ids = new Set(((JSON.parse(answer.body) as { instances?: Array<{ id: string }> }).instances ?? []).map((i) => i.id));
              lookups++;
              for (const pod of live) if (pod.service === service && !ids.has(pod.id)) missing.push(`${pod.service}/${pod.id}`);
            } catch (err) {
              missing.push(`${service}: lookup failed (${(err as Error).message})`);
            }
          }
        }
        await sleep(1_000);
      }
    };
    let sampling: Promise<void> = Promise.resolve();

    // Every live instance on a shared lease: a lease with a record.
    const onSharedLeases = async () => {
      const recordsRoot = `${prefix}gateway/leases/`;
      const records = new Set((await etcdRoot.getAll().prefix(recordsRoot).keys()).map((key) => key.slice(recordsRoot.length)));
      const kvs = (await etcdRoot.getAll().prefix(`${prefix}services/`).exec()).kvs.filter((kv) => liveKeys.has(kv.key.toString()));
      return kvs.filter((kv) => records.has(String(kv.lease))).length;
    };
    let movedAfterMs: number | undefined;
    try {
      // Two replicas of this release start beside the old one (which keeps renewing meanwhile); then the
      // pods move to them and the old replica stops: from here on only the new replicas renew anything.
      await sleep(3_000);
      for (let i = 0; i < 2; i++) replicas.push(await stack.startGateway({ ETCD_PREFIX: prefix, MIGRATIONS_PER_SECOND: '1', RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' }));
      target = () => replicas[Math.floor(Math.random() * replicas.length)].url;
      movedToNewAt = Date.now();
      oldReplica.child.kill('SIGTERM');
      expect(await oldReplica.exited).toBe(0);
      oldGoneAt = Date.now();
      sampling = lookUpEverySecond();

      let moved = 0;
      await waitFor('every live instance on a shared lease', async () => (moved = await onSharedLeases()) === live.length, 45_000, 500).catch((err: Error) => {
        const lost = [...new Set(deletes.filter((d) => liveKeys.has(d.key)).map((d) => d.key))];
        throw new Error(`${err.message}: ${moved} of ${live.length} moved; ${lost.length} lost:\n${lost.map(explain).join('\n')}`);
      });
      movedAfterMs = Date.now() - oldGoneAt;
      await waitFor('the silent instances gone', async () => (await etcdRoot.getAll().prefix(`${prefix}services/`).keys()).every((key) => !silentKeys.has(key)), 25_000, 500);
      // Nothing legacy is renewed once the migration is done.
      await waitFor('no legacy lease renewed', async () => (await Promise.all(replicas.map((r) => r.metric('registry_legacy_leases')))).every((n) => n === 0), 15_000, 500);
    } finally {
      stop = true;
      await Promise.allSettled([...heartbeating, sampling]);
      await watcher.cancel();
    }

    const sum = async (name: string, labels?: Record<string, string>) => (await Promise.all(replicas.map((r) => r.metric(name, labels)))).reduce((a, b) => a + b, 0);
    const migrations = await sum('registry_lease_migrations_total');
    const legacyRenewals = await sum('registry_legacy_lease_renewals_total', { result: 'sent' });
    const registrations = await sum('registry_registrations_total');
    const lost = deletes.filter((d) => liveKeys.has(d.key));
    const silentGone = deletes.filter((d) => d.key.includes('/silent-')).map((d) => d.at - oldGoneAt);
    process.stdout.write(
      `rolling upgrade: previous release up, fleet registered after ${oldReleaseReadyMs} ms; ${live.length} live pods on shared leases ${movedAfterMs} ms after it exited ` +
        `(${migrations} moves, ${legacyRenewals} legacy renewals sent); silent legacy pods deleted ${Math.min(...silentGone)}-${Math.max(...silentGone)} ms after it exited; ` +
        `heartbeats ${JSON.stringify([...statuses])}; ${lost.length} live instances deleted by etcd; ${missing.length} of ${lookups} lookups missed one; test ${Date.now() - startedAt} ms\n`,
    );

    // No pod told to register again, no live instance deleted (a lapsed lease) or missing from a lookup.
    expect({ notFound, lost: lost.map((d) => explain(d.key)), missing }).toEqual({ notFound: [], lost: [], missing: [] });
    expect([...statuses.keys()]).toEqual(['204']);
    // Moved by heartbeats, not re-registered; paced, so renewing the legacy leases meanwhile was needed.
    expect(registrations).toBe(0);
    expect(migrations).toBeGreaterThanOrEqual(live.length);
    expect(legacyRenewals).toBeGreaterThan(0);
    // Silent since the pods moved: their leases, renewed last by the old replica, lapsed within the TTL.
    expect(silentGone).toHaveLength(6);
    expect(Math.max(...silentGone)).toBeLessThanOrEqual(TTL * 1000 + 2_000);
  });
});
