/**
 * Redis as a Cluster (issue 24): 3 primaries + 3 replicas (real `redis-server --cluster-enabled yes`
 * processes joined by `redis-cli --cluster create`, a password on every node), a fleet heartbeating and
 * resolving through two replicas on a 3-member etcd cluster. The renewal ledger's keys spread over the
 * shards (one hash tag per lease, one slot per call: never CROSSSLOT); one primary is killed, its
 * replica takes over, and the registry does not notice. Bounds and figures: RELIABILITY.md.
 */
import { ClusterNodeInfo } from '../tools/stack/redis-topologies';
import { FaultStack, ledgerFailuresBefore, ledgerRecordsOn, redisClientsUp, runScenario, sleep, startFaultStack, waitFor } from './support/faults';

const TTL = 6;

const FLEET = { services: 6, podsPerService: 20, ttlSeconds: TTL, requestTimeoutMs: 1000 };
/**
 * From the kill to a renewal recorded on the promoted replica: the cluster's node timeout (1 s here),
 * the failure report and the replica's election (~1-2 s), the clients' slot refresh and the next
 * confirmed renewal of a lease in those slots. Generous for a loaded 2-core machine.
 */
const LEDGER_RESUME_BOUND_MS = 15_000;

describe('reliability: Redis Cluster primary failover under a fleet (3 members, 2 replicas)', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({ replicas: 2, redis: 'cluster' });
    stack.counters.start();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('ledger keys on every shard, never CROSSSLOT; one primary killed, its replica takes over: no live pod lost, no re-registration, lookups answered', async () => {
    const cluster = stack.cluster;
    const clientsUp = () => redisClientsUp(stack.replicas);
    await waitFor('every Redis client of every replica connected', clientsUp, 20_000);
    const timings: Record<string, number> = {};
    let killedAt = 0;
    let perShard: Array<{ port: number; records: number }> = [];
    const { report } = await runScenario(stack, 'redis-cluster-failover', FLEET, async (fleet) => {
      await sleep(2 * 1000 * (TTL / 3)); // renewals recorded in the ledger
      const primaries = (await cluster.topology()).filter((n) => n.role === 'master' && !n.failed);
      expect(primaries).toHaveLength(3);
      perShard = await Promise.all(primaries.map(async (p) => ({ port: p.port, records: (await ledgerRecordsOn(p.port, cluster.password)).total })));
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
      await waitFor('a renewal recorded on the promoted replica', async () => (await ledgerRecordsOn(promoted.port, cluster.password)).newestAt > killedAt, 30_000, 100);
      timings.ledgerResumedMs = Date.now() - killedAt;
      await waitFor('every Redis client of every replica connected', clientsUp, 30_000, 200);
      await sleep(TTL * 1000); // a whole TTL after the failover
    });
    const logs = stack.replicas.map((r) => r.output()).join('\n');
    process.stdout.write(
      `[redis-cluster-failover] ledger records per primary before the kill: ${perShard.map((s) => `${s.port}: ${s.records}`).join(', ')}; ` +
        `replica promoted after ${timings.promotedMs} ms; ledger recorded on it ${timings.ledgerResumedMs} ms after the kill (bound ${LEDGER_RESUME_BOUND_MS} ms)\n`,
    );
    expect(perShard.filter((s) => s.records > 0).length).toBeGreaterThan(1);
    expect(report.gaps).toEqual([]);
    expect(report.reregistrations).toBe(0);
    expect(report.lookups.failed).toBe(0);
    expect(report.heartbeats.notFound + report.heartbeats.serverError).toBe(0);
    expect(timings.ledgerResumedMs).toBeLessThanOrEqual(LEDGER_RESUME_BOUND_MS);
    expect(logs).not.toContain('CROSSSLOT');
    // Before the fault the ledger answered every call (its failures are logged by the worker, once per reason).
    expect(ledgerFailuresBefore(logs, killedAt)).toEqual([]);
    expect(logs).not.toContain(cluster.password!);
  });
});
