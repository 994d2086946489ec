/**
 * Reliability of the gateway tier: Redis killed and restarted, a replica SIGKILLed, a
 * replica frozen (SIGSTOP), each under a fleet heartbeating through two replicas (real processes) on a
 * 3-member etcd cluster. Bounds and measured figures: RELIABILITY.md.
 */
import { FaultStack, runScenario, sleep, startFaultStack, waitFor } from './support/faults';

const TTL = 6;
/**
 * Pods give up on a request after 1 s (the fleet's default): a pod stuck on a frozen replica has about
 * TTL/3 to reach another replica before its lease runs out; see RELIABILITY.md.
 */
const FLEET = { services: 6, podsPerService: 20, ttlSeconds: TTL, requestTimeoutMs: 1000 };
/** Longest a live pod may be missing from lookups while a replica fails (pods and resolvers move on after one timeout). */
const BOUND_REPLICA_FAILOVER_MS = 3000;
/**
 * Shared leases (issue 21): a silent pod is deleted by its lease's owner one pass after its TTL, once
 * every present replica's heard-sets cover that TTL. What delays it: Redis down (expiry pauses for the
 * outage, then until the gap is a TTL old), a dead owner (its presence key lapses in 10 s, the survivor
 * adopts 3 s later and counts the TTL from then), a frozen replica (still present, publishing nothing).
 */
const SWEEP_SLACK_MS = 5000;
const PRESENCE_AND_ADOPTION_MS = 10_000 + 3_000;

describe('reliability: Redis and replica faults under a fleet (3 members, 2 replicas)', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({ replicas: 2 });
    stack.counters.start();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('Redis killed and restarted under load: lookups stay 200, no live pod missing, etcd reads bounded', async () => {
    const { report, etcd } = await runScenario(stack, 'redis', FLEET, async (fleet) => {
      await sleep(2000);
      fleet.silence(6);
      await stack.redis.kill();
      fleet.mark('killed redis');
      await sleep(TTL * 1000);
      await stack.redis.restart();
      fleet.mark('redis restarted');
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 20_000);
      await sleep(3000);
    });
    expect(report.gaps).toEqual([]);
    expect(report.lookups.failed).toBe(0);
    expect(report.heartbeats.notFound + report.heartbeats.serverError + report.heartbeats.connectionError).toBe(0);
    // Expiry paused while Redis was down (no live pod deleted: no gap above), then resumed.
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual(TTL * 1000 + TTL * 1000 + SWEEP_SLACK_MS);
    // Lookups never read etcd (the read model is the watch's directory), with or without Redis.
    expect(etcd.range).toBe(0);
    expect(etcd.authenticate).toBe(0);
  });

  it('a replica SIGKILLed: its pods move to the other replica, nobody re-registers, then it restarts', async () => {
    const [, victim] = stack.replicas;
    const { report, etcd } = await runScenario(stack, 'replica-kill', FLEET, async (fleet) => {
      await sleep(2000);
      fleet.silence(6);
      await victim.kill();
      fleet.mark(`SIGKILLed ${victim.name}`);
      await sleep(TTL * 2000);
      await victim.start();
      fleet.mark(`${victim.name} restarted`);
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 30_000);
    });
    expect(report.moves).toBeGreaterThan(0);
    expect(report.lookups.failed).toBe(0); // a client that tries the other replica always got an answer
    expect(report.reregistrations).toBe(0);
    expect(report.heartbeats.notFound).toBe(0);
    for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_REPLICA_FAILOVER_MS);
    // The victim's shared lease is adopted by the survivor (no instance lost, none re-put), which expires
    // its silent pods a TTL after it became responsible.
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual(PRESENCE_AND_ADOPTION_MS + TTL * 1000 + SWEEP_SLACK_MS);
    // The survivor knows each moved pod from its watch (no Range per pod); the restart reads the registry
    // and the gateway records once and authenticates its pool once.
    expect(etcd.range).toBeLessThanOrEqual(FLEET.services * FLEET.podsPerService + 50);
    expect(etcd.authenticate).toBeLessThanOrEqual(4);
  });

  it("a replica frozen (SIGSTOP): its pods' heartbeats move on to the other replica, then it thaws", async () => {
    const [, victim] = stack.replicas;
    const { report, etcd } = await runScenario(stack, 'replica-freeze', FLEET, async (fleet) => {
      await sleep(2000);
      fleet.silence(6);
      victim.freeze();
      fleet.mark(`froze ${victim.name}`);
      try {
        await sleep(TTL * 2000);
      } finally {
        victim.thaw();
      }
      fleet.mark(`thawed ${victim.name}`);
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 30_000);
      await sleep(TTL * 1000);
    });
    expect(report.moves).toBeGreaterThan(0);
    expect(report.heartbeats.connectionError).toBeGreaterThan(0);
    expect(report.lookups.failed).toBe(0);
    expect(report.reregistrations).toBe(0);
    expect(report.heartbeats.notFound).toBe(0);
    for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_REPLICA_FAILOVER_MS);
    // A frozen replica stays present (its presence key lives 10 s) and publishes nothing: expiry pauses
    // cluster-wide until it thaws or its key lapses; its own silent pods wait for its thaw (or adoption).
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual(2 * TTL * 1000 + TTL * 1000 + SWEEP_SLACK_MS);
    // RELIABILITY.md finding 3: the thawed replica must not answer its pre-freeze view as current.
    expect(report.silent.filter((s) => s.resurrected).map((s) => s.pod)).toEqual([]);
    expect(etcd.range).toBeLessThanOrEqual(FLEET.services * FLEET.podsPerService + 50);
  });
});
