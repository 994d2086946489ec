/**
 * Reliability on a real 3-member etcd cluster (auth on), Redis and two gateway replicas as real
 * processes: etcd faults under a heartbeating fleet. Each scenario asserts what users see (gaps in
 * lookups of live pods, silent pods removed, lookups answered) and what etcd pays (its own counters,
 * summed over members). Bounds and measured figures: RELIABILITY.md.
 */
import { EtcdServer } from '../tools/stack/etcd';
import { FaultStack, runScenario, ScenarioResult, sleep, startFaultStack, waitFor } from './support/faults';

const TTL = 6;
/** 2 s client timeouts: etcd faults must not make pods hop replicas because a loaded machine answered late. */
const FLEET = { services: 6, podsPerService: 20, ttlSeconds: TTL, requestTimeoutMs: 2000 };
/** Longest a live pod may be missing from lookups after etcd comes back (re-grant on its next heartbeat). */
const BOUND_AFTER_ETCD_OUTAGE_MS = 5000;
/** Longest a live pod may be missing while its replica fails (it moves on after one request timeout). */
const BOUND_REPLICA_FAILOVER_MS = 3000;
/** A silent pod is deleted by its lease's owner one pass (2 s) after its TTL, with slack for a loaded machine. */
const SWEEP_SLACK_MS = 5000;

describe('reliability: etcd faults under a fleet (3 members, 2 replicas)', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    // A small space quota for the NOSPACE scenario; the others write a few hundred KiB.
    stack = await startFaultStack({ replicas: 2, etcdQuotaBytes: 16 * 1024 * 1024 });
    stack.counters.start();
  });
  afterAll(async () => {
    await stack?.close();
  });

  describe('one member frozen while it is the member every connection prefers (the first endpoint)', () => {
    let result: ScenarioResult;
    /** Whether the frozen member was etcd's leader (then etcd 3.4.23 revokes every lease at the thaw, see below). */
    let frozeLeader = false;

    it('lookups stay 200, nobody re-registers, silent pods are removed, every live pod is listed again after the thaw', async () => {
      result = await runScenario(stack, 'freeze-first', FLEET, async (fleet) => {
        await sleep(500);
        // The first in ETCD_ENDPOINTS (grpc's pick_first connects there) on a fresh stack; measured, not assumed.
        const first = await stack.memberServingGateways();
        frozeLeader = (await stack.leader()) === first;
        fleet.mark(`gateways use ${first.endpoint} (member ${stack.members.indexOf(first)}${frozeLeader ? ', the leader' : ''})`);
        fleet.silence(6);
        first.freeze();
        fleet.mark(`froze it`);
        try {
          await sleep(TTL * 3000);
        } finally {
          first.thaw();
        }
        fleet.mark('thawed');
        await stack.waitForQuorum();
        await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 20_000);
      });
      const { report, etcd } = result;
      expect(report.reregistrations).toBe(0);
      expect(report.heartbeats.notFound).toBe(0);
      // Shared leases: the gateway deletes silent pods itself, over its pooled connections, which stay on
      // the frozen member until gRPC's keepalive gives up (~15 s; the old lease engine's 2 s stall move
      // is not ported to the delete path): within the freeze + TTL + a pass.
      for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual(TTL * 3000 + TTL * 1000 + SWEEP_SLACK_MS);
      expect(report.lookups.failed).toBe(0);
      expect(etcd.authenticate).toBeLessThanOrEqual(8);
    });

    // Was a gateway bug (RELIABILITY.md finding 1): the renewals stayed on the frozen member until gRPC
    // keepalive gave up (~15 s). The cluster keeps its quorum, so the promise is the leader scenario's: no
    // gap at all. Except when the frozen member was the leader: etcd 3.4.23 (Debian's) has etcd-io/etcd#15247
    // (fixed in 3.4.28 by #16822): a leader stuck for longer than the TTLs still believes it is the primary
    // lessor when it resumes, and its revocations of every lease "expired in its view" are forwarded to the new
    // leader and committed. Every live pod vanishes at the thaw; the owner of each shared lease sees it lost
    // (its record's delete, then TTL 0) and re-puts its live instances in batched Txns, and a heartbeat
    // racing that writes its pod back (RELIABILITY.md finding 7). Bound: one TTL.
    it('no live pod goes missing from lookups (if the frozen member was the leader: none for longer than one TTL)', () => {
      expect(result).toBeDefined();
      if (!frozeLeader) {
        expect(result.report.gaps).toEqual([]);
        return;
      }
      for (const gap of result.report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(TTL * 1000);
      expect(result.report.reregistrations).toBe(0);
    });

    // RELIABILITY.md finding 3: right after the thaw, the replica whose watch sat on the frozen member
    // took the member's instant progress answer as confirmation and listed deleted pods as current.
    it('no silent pod, once gone, is listed again in an answer that is not marked stale', () => {
      expect(result).toBeDefined();
      expect(result.report.silent.filter((s) => s.resurrected).map((s) => s.pod)).toEqual([]);
    });
  });

  it('the etcd leader killed, then restarted: no live pod missing, silent pods removed, few Authenticate', async () => {
    const { report, etcd } = await runScenario(stack, 'leader', FLEET, async (fleet) => {
      await sleep(2000);
      const leader = await stack.waitForQuorum();
      fleet.silence(6);
      await leader.kill();
      fleet.mark(`killed leader ${leader.endpoint}`);
      await sleep(TTL * 1500);
      await leader.restart();
      await stack.waitForQuorum();
      fleet.mark('leader restarted');
      await waitFor('silent pods gone', () => fleet.report().silent.every((s) => s.goneAfterMs !== undefined), 20_000);
      await sleep(2000);
    });
    expect(report.gaps).toEqual([]);
    expect(report.reregistrations).toBe(0);
    expect(report.heartbeats.notFound).toBe(0);
    // Deleted by the sweep one pass after the TTL; a delete that met the dying leader is retried next pass.
    for (const s of report.silent) expect(s.goneAfterMs).toBeLessThanOrEqual(TTL * 1000 + SWEEP_SLACK_MS);
    expect(report.silent.some((s) => s.resurrected)).toBe(false);
    expect(report.lookups.failed).toBe(0);
    expect(etcd.authenticate).toBeLessThanOrEqual(8);
    expect(etcd.range).toBeLessThanOrEqual(200);
  });

  it('all of etcd frozen for 2x the TTL: lookups stay 200 (stale), the shared leases outlive it, nobody re-registers', async () => {
    const regrantsBefore = await sumOverReplicas('registry_lease_regrants_total');
    const { report, etcd } = await runScenario(stack, 'freeze-all', FLEET, async (fleet) => {
      await sleep(2000);
      for (const m of stack.members) m.freeze();
      fleet.mark('froze all members');
      try {
        await sleep(TTL * 2000);
        const during = fleet.report();
        expect(during.lookups.stale).toBeGreaterThan(0);
      } finally {
        for (const m of stack.members) m.thaw();
      }
      fleet.mark('thawed all members');
      await stack.waitForQuorum();
      await sleep(TTL * 1000);
    });
    const regrants = (await sumOverReplicas('registry_lease_regrants_total')) - regrantsBefore;
    process.stdout.write(`[freeze-all] regrants ${regrants}\n`);
    expect(report.lookups.failed).toBe(0);
    expect(report.lookups.byStatus).toEqual({ '200': report.lookups.ok });
    expect(report.reregistrations).toBe(0);
    expect(report.heartbeats.notFound).toBe(0);
    // 12 s is far less than 2/3 of LEASE_TTL (80 s): no shared lease lapsed, nothing to re-put (unless
    // etcd 3.4.23's thaw bug revoked them, finding 7: then they are back within seconds).
    for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_AFTER_ETCD_OUTAGE_MS);
    expect(etcd.authenticate).toBeLessThanOrEqual(8);
  });

  it('a compaction past a lagging watch while events flow: the replica rebuilds and lists exactly what etcd holds', async () => {
    const [fresh, lagging] = stack.replicas;
    const churnService = 'compact-churn';
    // 1 s client timeouts: pods on the frozen replica must reach the other one well within TTL/3.
    const { report } = await runScenario(stack, 'compaction', { ...FLEET, requestTimeoutMs: 1000 }, async (fleet) => {
      await sleep(1000);
      lagging.freeze();
      fleet.mark(`froze ${lagging.name}`);
      const live = new Set<string>();
      // A write in flight when a member dies may get a 503: retried, as a client would.
      const write = (method: string, id: string, expected: number[]) =>
        waitFor(`${method} ${id}`, async () => {
          const res = await stack.http.request(fresh.url, method, `/v1/services/${churnService}/instances/${id}`, method === 'PUT' ? { address: '10.0.0.2', port: 80, ttl: TTL * 5 } : undefined);
          if (res.status < 500 && !expected.includes(res.status)) throw new Error(`${method} ${id}: ${res.status} ${res.body}`);
          return expected.includes(res.status);
        }, 10_000);
      const churn = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          await write('PUT', `churn-${i}`, [200, 201]);
          live.add(`churn-${i}`);
          if (i % 3 === 2) {
            await write('DELETE', `churn-${i - 1}`, [204]);
            live.delete(`churn-${i - 1}`);
          }
        }
      };
      let member: EtcdServer | undefined;
      try {
        // Events the frozen replica's watch has not read, then a compaction past them.
        await churn(0, 40);
        const revision = await currentRevision();
        expect((await stack.ctl(['compact', String(revision)])).code).toBe(0);
        fleet.mark(`compacted at ${revision}`);
        // Break the frozen replica's watch stream (kill the member the connections use): on thaw it must
        // resume from its last revision + 1, which etcd has compacted, so it has to rebuild.
        member = await stack.memberServingGateways();
        await member.kill();
        fleet.mark(`killed member ${stack.members.indexOf(member)}`);
        await stack.waitForQuorum();
        await churn(40, 60);
      } finally {
        lagging.thaw();
      }
      fleet.mark(`thawed ${lagging.name}`);
      await waitFor(
        `${lagging.name} lists the churned service as etcd holds it`,
        async () => {
          const res = await stack.http.getJson<{ instances: Array<{ id: string }> }>(lagging.url, `/v1/services/${churnService}`);
          const ids = res.body.instances.map((i) => i.id).sort();
          return res.status === 200 && JSON.stringify(ids) === JSON.stringify([...live].sort());
        },
        20_000,
      );
      for (const id of live) await stack.http.request(fresh.url, 'DELETE', `/v1/services/${churnService}/instances/${id}`);
      await member?.restart();
      await stack.waitForQuorum();
      fleet.mark('member restarted');
    });
    // Whether the thawed replica had to rebuild depends on which member its watch was on: since the lease
    // engine moves a stalled keepalive stream to another member on its own, the member carrying the
    // keepalives (the one killed above) is not always the watch's. What users see is asserted above:
    // it lists exactly what etcd holds. The rebuild path itself is unit-tested (registry-watch.spec).
    process.stdout.write(`[compaction] rebuilt from one read: ${/registry watch rebuilt from one read/.test(lagging.output())}\n`);
    for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_REPLICA_FAILOVER_MS);
    expect(report.reregistrations).toBe(0);
  });

  describe("the gateway user's password changed and etcd restarted (re-authentication fails)", () => {
    const seen: { authErrors?: number; write?: string; readiness?: unknown } = {};

    it('keeps serving lookups and heartbeats, refuses writes naming the cause, counts and logs the failures, recovers when the password is restored', async () => {
      const user = stack.members[0].gatewayUser;
      const password = stack.members[0].gatewayPassword;
      const [probe] = stack.replicas;
      const authErrorsBefore = await sumOverReplicas('registry_etcd_auth_requests_total', { result: 'error' });
      const outputBefore = probe.output().length;
      const { report } = await runScenario(stack, 'password', FLEET, async (fleet) => {
        await sleep(1000);
        expect((await stack.ctl(['user', 'passwd', user, '--interactive=false'], `not-the-password-${Date.now()}\n`)).code).toBe(0);
        fleet.mark('gateway password changed');
        try {
          // etcd 3.4 keeps the tokens it issued across a password change; a restart of every member
          // forgets them (simple tokens live in each member's memory), so the gateway must authenticate again.
          for (const m of stack.members) {
            await m.restart();
            await stack.waitForQuorum();
          }
          fleet.mark('every member restarted');
          seen.authErrors = await waitFor(
            'Authenticate failures counted',
            async () => {
              const n = (await sumOverReplicas('registry_etcd_auth_requests_total', { result: 'error' })) - authErrorsBefore;
              return n > 0 ? n : undefined;
            },
            20_000,
          ).catch(() => 0);
          const res = await stack.http.request(probe.url, 'PUT', '/v1/services/password-new/instances/p1', { address: '10.0.0.3', port: 80, ttl: TTL }, 5000);
          seen.write = `${res.status} ${res.body}`;
          seen.readiness = await waitFor(
            'readiness naming the etcd authentication failure',
            async () => {
              const ready = await stack.http.getJson<Record<string, unknown>>(probe.url, '/health/ready');
              return ready.status === 200 && ready.body.status === 'degraded' && /auth/i.test(JSON.stringify(ready.body.error ?? {})) ? ready.body : undefined;
            },
            10_000,
          ).catch(async () => `not within 10 s; last: ${(await stack.http.request(probe.url, 'GET', '/health/ready')).body}`);
          await sleep(TTL * 1000);
        } finally {
          expect((await stack.ctl(['user', 'passwd', user, '--interactive=false'], password + '\n')).code).toBe(0);
          fleet.mark('password restored');
        }
        await waitFor(
          'registrations accepted again',
          async () => [200, 201].includes((await stack.http.request(probe.url, 'PUT', '/v1/services/password-new/instances/p1', { address: '10.0.0.3', port: 80, ttl: TTL })).status),
          30_000,
        );
        fleet.mark('registrations accepted again');
        await stack.http.request(probe.url, 'DELETE', '/v1/services/password-new/instances/p1');
      });
      const logs = probe.output().slice(outputBefore);
      process.stdout.write(`[password] observed: ${JSON.stringify(seen)}\n[password] logs:\n${logs.slice(0, 4000)}\n`);
      expect(logs).not.toContain(password);
      expect(report.lookups.failed).toBe(0);
      expect(seen.authErrors).toBeGreaterThan(0);
      expect(seen.write).toMatch(/^503 /);
      expect(logs).toMatch(/authenticat/i);
      expect(seen.write).toMatch(/authentication failed/);
      expect(report.reregistrations).toBe(0);
      for (const gap of report.gaps) expect(gap.toMs - gap.fromMs).toBeLessThanOrEqual(BOUND_AFTER_ETCD_OUTAGE_MS);
    });

    // Was a gateway gap: /health/ready said `etcd: up` (its channels are connected) and nothing of the
    // failed authentication. The etcd indicator now names it.
    it('readiness names the etcd authentication failure', () => {
      expect(typeof seen.readiness).toBe('object');
    });
  });

  it("etcd's space quota reached (NOSPACE): registrations get a clear 503, heartbeats and lookups go on", async () => {
    let writeAnswer: { status: number; body: string } | undefined;
    const { report } = await runScenario(stack, 'nospace', FLEET, async (fleet) => {
      await sleep(1000);
      const filler = 'x'.repeat(1024 * 1024);
      let raised = false;
      try {
        for (let i = 0; i < 40 && !raised; i++) {
          const put = await stack.ctl(['put', `/filler/${i}`], filler);
          raised = put.code !== 0 && /space exceeded/.test(put.stderr);
          if (put.code !== 0 && !raised) throw new Error(`filler put failed: ${put.stderr}`);
        }
        expect(raised).toBe(true);
        fleet.mark('NOSPACE alarm raised');
        const alarms = await stack.ctl(['alarm', 'list']);
        expect(alarms.stdout).toMatch(/NOSPACE/);
        writeAnswer = await stack.http.request(stack.urls[0], 'PUT', '/v1/services/nospace-new/instances/p1', { address: '10.0.0.4', port: 80, ttl: TTL });
        // Two TTLs under the alarm: renewals (LeaseKeepAlive) must keep every live pod's lease.
        await sleep(TTL * 2000);
      } finally {
        await stack.ctl(['del', '/filler/', '--prefix']);
        const revision = await currentRevision();
        await stack.ctl(['compact', String(revision), '--physical']);
        await stack.ctl(['defrag', '--cluster']);
        await stack.ctl(['alarm', 'disarm']);
        fleet.mark('alarm disarmed');
      }
      await waitFor(
        'registrations accepted after the alarm',
        async () => [200, 201].includes((await stack.http.request(stack.urls[0], 'PUT', '/v1/services/nospace-new/instances/p1', { address: '10.0.0.4', port: 80, ttl: TTL })).status),
        30_000,
      );
      await stack.http.request(stack.urls[0], 'DELETE', '/v1/services/nospace-new/instances/p1');
    });
    process.stdout.write(`[nospace] registration under NOSPACE: ${writeAnswer?.status} ${writeAnswer?.body}\n`);
    // A full database makes the registry read-only for writes: 503 registry_read_only naming the cause
    // (with a long Retry-After, asserted in libs/etcd's etcd-errors.spec), never "unavailable".
    expect(writeAnswer?.status).toBe(503);
    expect(JSON.parse(writeAnswer!.body)).toMatchObject({ error: 'registry_read_only', message: expect.stringMatching(/NOSPACE alarm.*database space exceeded/) });
    expect(report.gaps).toEqual([]);
    expect(report.heartbeats.notFound).toBe(0);
    expect(report.heartbeats.serverError).toBe(0);
    expect(report.lookups.failed).toBe(0);
  });

  // Self-preservation (a mass silence held, a real scale-down not held, a silence past the bound
  // believed) is tested in test/self-preservation.e2e-spec.ts.

  /** Sum of one metric over every running replica. */
  async function sumOverReplicas(name: string, labels: Record<string, string> = {}): Promise<number> {
    let total = 0;
    for (const r of stack.replicas) if (r.running) total += await r.metric(name, labels);
    return total;
  }

  async function currentRevision(): Promise<number> {
    const res = await stack.ctl(['endpoint', 'status', '--cluster', '-w', 'json']);
    const statuses = JSON.parse(res.stdout) as Array<{ Status: { header: { revision: number } } }>;
    return Math.max(...statuses.map((s) => s.Status.header.revision));
  }
});
