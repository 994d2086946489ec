/**
 * Redis as a Cluster (issue 24): 3 primaries + 3 replicas (real `redis-server --cluster-enabled yes`
 * processes joined by `redis-cli --cluster create`, a password on every node), a fleet heartbeating and
 * resolving through two replicas on a 3-member etcd cluster. Each replica's heard-set keys share its
 * hash tag (one slot per replica, never CROSSSLOT); one primary is killed, its
 * replica takes over, and the registry does not notice. Bounds and figures: RELIABILITY.md.
 */
import { ClusterNodeInfo } from '../tools/stack/redis-topologies';
import { FaultStack, heardSetFailuresBefore, heardSetRecordsOn, redisClientsUp, runScenario, sleep, startFaultStack, waitFor } from './support/faults';

const TTL = 6;

const FLEET = { services: 6, podsPerService: 20, ttlSeconds: TTL, requestTimeoutMs: 1000 };
/**
 * From the kill to a renewal recorded on the promoted replica: the cluster's node timeout (1 s here),
 * the failure report and the replica's election (~1-2 s), the clients' slot refresh and the next
 * confirmed renewal of a lease in those slots. Generous for a loaded 2-core machine.
 */
const HEARD_SETS_RESUME_BOUND_MS = 15_000;

describe('reliability: Redis Cluster primary failover under a fleet (3 members, 2 replicas)', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({ replicas: 2, redis: 'cluster' });
    stack.counters.start();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('heard-set keys one slot per replica, never CROSSSLOT; one primary killed, its replica takes over: no live pod lost, no re-registration, lookups answered', async () => {
    const cluster = stack.cluster;
    const clientsUp = () => redisClientsUp(stack.replicas);
    await waitFor('every Redis client of every replica connected', clientsUp, 20_000);
    const timings: Record<string, number> = {};
    let killedAt = 0;
    let perShard: Array<{ port: number; records: number }> = [];
    const { report } = await runScenario(stack, 'redis-cluster-failover', FLEET, async (fleet) => {
      await sleep(2 * 1000 * (TTL / 3)); // heard-sets published
      const primaries = (await cluster.topology()).filter((n) => n.role === 'master' && !n.failed);
      expect(primaries).toHaveLength(3);
      perShard = await Promise.all(primaries.map(async (p) => ({ port: p.port, records: (await heardSetRecordsOn(p.port, cluster.password)).total })));
      const victimInfo = primaries[0];
      const victim = cluster.server(victimInfo.port)!;
      killedAt = Date.now();
      await victim.kill();
      fleet.mark(`killed Redis Cluster primary 127.0.0.1:${victim.port} (slots ${victimInfo.slots.join(' ')})`);
      const promoted = await waitFor(
        `a replica of 127.0.0.1:${victim.port} promoted`,
        async () => {
          const nodes = await cluster.topology();
          return nodes.find((n: ClusterNodeInfo) => n.role === 'master' && !n.failed && n.slots.join(' ') === victimInfo.slots.join(' ') && n.port !== victim.port);
        },
        30_000,
        100,
      );
      timings.promotedMs = Date.now() - killedAt;
      fleet.mark(`127.0.0.1:${promoted.port} took over slots ${promoted.slots.join(' ')}`);
      await waitFor(
        'every replica publishing its heard-sets again, on whichever shard holds its slot',
        async () => {
          const masters = (await cluster.topology()).filter((n: ClusterNodeInfo) => n.role === 'master' && !n.failed);
          const newest = new Map<string, number>();
          for (const m of masters) for (const [tag, at] of (await heardSetRecordsOn(m.port, cluster.password)).newestByReplica) newest.set(tag, Math.max(at, newest.get(tag) ?? 0));
          return newest.size === stack.replicas.length && [...newest.values()].every((at) => at > killedAt);
        },
        30_000,
        100,
      );
      timings.heardSetsResumedMs = Date.now() - killedAt;
      await waitFor('every Redis client of every replica connected', clientsUp, 30_000, 200);
      await sleep(TTL * 1000); // a whole TTL after the failover
    });
    const logs = stack.replicas.map((r) => r.output()).join('\n');
    process.stdout.write(
      `[redis-cluster-failover] heard-set heads per primary before the kill: ${perShard.map((s) => `${s.port}: ${s.records}`).join(', ')}; ` +
        `replica promoted after ${timings.promotedMs} ms; every replica publishing again ${timings.heardSetsResumedMs} ms after the kill (bound ${HEARD_SETS_RESUME_BOUND_MS} ms)\n`,
    );
    // One slot per replica: its head and records live together on one shard.
    expect(perShard.reduce((n, s) => n + s.records, 0)).toBe(stack.replicas.length);
    expect(report.gaps).toEqual([]);
    expect(report.reregistrations).toBe(0);
    expect(report.lookups.failed).toBe(0);
    expect(report.heartbeats.notFound + report.heartbeats.serverError).toBe(0);
    expect(timings.heardSetsResumedMs).toBeLessThanOrEqual(HEARD_SETS_RESUME_BOUND_MS);
    expect(logs).not.toContain('CROSSSLOT');
    // Before the fault every heard-set was published (a failure is logged once per outage).
    expect(heardSetFailuresBefore(logs, killedAt)).toEqual([]);
    expect(logs).not.toContain(cluster.password!);
  });
});
