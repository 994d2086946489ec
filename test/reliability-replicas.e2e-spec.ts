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
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 15_000);
      await sleep(3000);
    });
    expect(report.gaps).toEqual([]);
    expect(report.lookups.failed).toBe(0);
    expect(report.heartbeats.notFound + report.heartbeats.serverError + report.heartbeats.connectionError).toBe(0);
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual((TTL * 4) / 3 * 1000 + 3000);
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
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 15_000);
    });
    expect(report.moves).toBeGreaterThan(0);
    expect(report.lookups.failed).toBe(0); // a client that tries the other replica always got an answer
    expect(report.reregistrations).toBe(0);
    expect(report.heartbeats.notFound).toBe(0);
    for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_REPLICA_FAILOVER_MS);
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual((TTL * 4) / 3 * 1000 + 3000);
    // The survivor learns each moved pod with one Range (shared by concurrent heartbeats); the restart
    // authenticates its pool once.
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
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 15_000);
      await sleep(TTL * 1000);
    });
    expect(report.moves).toBeGreaterThan(0);
    expect(report.heartbeats.connectionError).toBeGreaterThan(0);
    expect(report.lookups.failed).toBe(0);
    expect(report.reregistrations).toBe(0);
    expect(report.heartbeats.notFound).toBe(0);
    for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_REPLICA_FAILOVER_MS);
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual((TTL * 4) / 3 * 1000 + 3000);
    // RELIABILITY.md finding 3: the thawed replica must not answer its pre-freeze view as current.
    expect(report.silent.filter((s) => s.resurrected).map((s) => s.pod)).toEqual([]);
    expect(etcd.range).toBeLessThanOrEqual(FLEET.services * FLEET.podsPerService + 50);
  });
});
