/**
 * Redis behind Sentinel (issue 24): a primary, one replica and three Sentinels (real `redis-sentinel`
 * processes, passwords on Redis and on the Sentinels, handed to the gateways by file), a fleet
 * heartbeating and resolving through two replicas on a 3-member etcd cluster. The primary is killed:
 * the Sentinels promote the replica, the gateways' clients (HTTP thread and the lease engine worker's
 * heard-sets) follow it, and the registry does not notice beyond expiry pausing meanwhile (each
 * replica renews by itself meanwhile). Bounds and figures: RELIABILITY.md.
 */
import { FaultStack, heardSetFailuresBefore, heardSetRecordsOn, redisClientsUp, runScenario, sleep, startFaultStack, waitFor } from './support/faults';

const TTL = 6;

const FLEET = { services: 6, podsPerService: 20, ttlSeconds: TTL, requestTimeoutMs: 1000 };
/**
 * From the kill to a renewal recorded on the promoted primary: Sentinel's down-after-milliseconds (1 s
 * here), the vote and promotion (~1-2 s), the clients' move (the failover detector, else one retry
 * delay of at most 2 s) and the next confirmed renewal. Generous for a loaded 2-core machine.
 */
const HEARD_SETS_RESUME_BOUND_MS = 15_000;

describe('reliability: Redis Sentinel failover under a fleet (3 members, 2 replicas)', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({ replicas: 2, redis: 'sentinel' });
    stack.counters.start();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('the primary killed, the replica promoted: no live pod lost, no re-registration, lookups answered, heard-sets resume on the new primary', async () => {
    const group = stack.sentinel;
    const clientsUp = () => redisClientsUp(stack.replicas);
    await waitFor('every Redis client of every replica connected', clientsUp, 20_000);
    const timings: Record<string, number> = {};
    let killedAt = 0;
    const { report } = await runScenario(stack, 'redis-sentinel-failover', FLEET, async (fleet) => {
      await sleep(2 * 1000 * (TTL / 3)); // heard-sets published on the first primary
      const primary = (await group.primary())!;
      expect(primary).toBe(group.servers[0]);
      expect((await heardSetRecordsOn(primary.port, group.password)).total).toBe(stack.replicas.length);
      killedAt = Date.now();
      await primary.kill();
      fleet.mark(`killed the Redis primary (127.0.0.1:${primary.port})`);
      const promoted = await group.waitForNewPrimary(primary, 30_000);
      timings.promotedMs = Date.now() - killedAt;
      fleet.mark(`Sentinel promoted 127.0.0.1:${promoted.port}`);
      await waitFor(
        'every replica publishing its heard-sets on the promoted primary',
        async () => {
          const newest = (await heardSetRecordsOn(promoted.port, group.password)).newestByReplica;
          return newest.size === stack.replicas.length && [...newest.values()].every((at) => at > killedAt);
        },
        30_000,
        100,
      );
      timings.heardSetsResumedMs = Date.now() - killedAt;
      await waitFor('every Redis client of every replica connected again', clientsUp, 30_000, 200);
      timings.allClientsUpMs = Date.now() - killedAt;
      await sleep(TTL * 1000); // a whole TTL on the new primary
    });
    const logs = stack.replicas.map((r) => r.output()).join('\n');
    process.stdout.write(
      `[redis-sentinel-failover] promoted after ${timings.promotedMs} ms; heard-sets published again on the new primary ${timings.heardSetsResumedMs} ms after the kill ` +
        `(bound ${HEARD_SETS_RESUME_BOUND_MS} ms); every Redis client of both replicas up again after ${timings.allClientsUpMs} ms\n`,
    );
    expect(report.gaps).toEqual([]);
    expect(report.reregistrations).toBe(0);
    expect(report.lookups.failed).toBe(0);
    expect(report.heartbeats.notFound + report.heartbeats.serverError).toBe(0);
    expect(timings.heardSetsResumedMs).toBeLessThanOrEqual(HEARD_SETS_RESUME_BOUND_MS);
    expect(logs).not.toContain('CROSSSLOT');
    // Before the fault every heard-set was published (a failure is logged once per outage).
    expect(heardSetFailuresBefore(logs, killedAt)).toEqual([]);
    // The passwords came by file; they must not show in any log line.
    expect(logs).not.toContain(group.password!);
    expect(logs).not.toContain(group.sentinelPassword!);
  });
});
