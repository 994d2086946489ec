/**
 * Renewals must not starve when the gateway's HTTP thread is busy (issue 10).
 *
 * The gateway runs in THIS process, so a busy loop here is a busy gateway: every event-loop turn spends
 * 20 ms in synchronous work, as a gateway saturated by request work does. grpc-js delivers about one
 * stream message per turn (bench/results/keepalive-starvation.md), so renewals written from this
 * thread would reach etcd at ~50-100/s while 600 leases with a 9 s TTL need ~200/s: leases of pods that
 * keep heartbeating would lapse. The lease engine's worker thread keeps its own loop free, so etcd
 * must receive (nearly) every renewal that is due. Counts come from etcd's own /metrics.
 */
import { diffCounters } from '@app/stack';
import { forEachLimited, heartbeatPod, Pod, pods, registerPod } from './support/fleet';
import { etcdAdmin } from './support/etcd-admin';
import { call, usePrivateStack } from './support/gateway';
import { sleep, waitFor } from './support/wait';

/** Spins `msPerTurn` of synchronous work per event-loop turn until `durationMs` has passed. */
function busyLoop(msPerTurn: number, durationMs: number): Promise<number> {
  const until = Date.now() + durationMs;
  let turns = 0;
  return new Promise((resolve) => {
    const turn = () => {
      turns++;
      const end = Date.now() + msPerTurn;
      while (Date.now() < end) {
        /* a request handler that takes msPerTurn of CPU */
      }
      if (Date.now() < until) setImmediate(turn);
      else resolve(turns);
    };
    setImmediate(turn);
  });
}

describe('lease renewals under a busy HTTP thread', () => {
  const stack = usePrivateStack();
  const TTL = 9;
  const fleet = pods(20, 30, 'busy'); // 600 pods

  it('confirms (nearly) every due renewal while each loop turn spends 20 ms in request work', async () => {
    const gw = await stack.startGateway({ RENEW_INTERVAL_MS: '200', RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' });
    // Pods heartbeat from their registration on, as real pods do: a lease is only renewed for a pod
    // that heartbeated since its last renewal.
    const registered: Pod[] = [];
    const statuses = new Map<number, number>();
    let stop = false;
    const heartbeating = (async () => {
      while (!stop) {
        const round = Date.now();
        const results = await forEachLimited([...registered], 64, (pod) => heartbeatPod(gw.url, pod));
        for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        await sleep(Math.max(0, 1_000 - (Date.now() - round)));
      }
    })();
    const registrations = await forEachLimited(fleet, 32, async (pod) => {
      const res = await registerPod(gw.url, pod, TTL);
      if (res.status === 201) registered.push(pod);
      return res;
    });
    expect(registrations.filter((r) => r.status !== 201)).toEqual([]);

    const windowMs = 15_000;
    const before = await stack.etcd().counters();
    const confirmedBefore = await gw.metric('registry_lease_renewals_total', { result: 'confirmed' });
    const turns = await busyLoop(20, windowMs);
    const after = await stack.etcd().counters();
    const confirmed = (await gw.metric('registry_lease_renewals_total', { result: 'confirmed' })) - confirmedBefore;
    stop = true;
    await heartbeating;
    const received = diffCounters(before, after).leaseKeepAliveMessages;

    // Each lease is due every TTL/3 = 3 s: 600 x 15 s / 3 s = 3000 renewals in the window.
    const due = (fleet.length * windowMs) / ((TTL * 1000) / 3);
    process.stdout.write(
      `busy loop: ${turns} turns in ${windowMs} ms; renewals due ~${due}, etcd received ${received}, gateway confirmed ${confirmed}; heartbeats ${JSON.stringify([...statuses])}\n`,
    );
    expect([...statuses.keys()]).toEqual([204]);
    expect(received).toBeGreaterThanOrEqual(0.8 * due);
    expect(confirmed).toBeGreaterThanOrEqual(0.8 * due);
    expect(await gw.metric('registry_lease_renewals_total', { result: 'lost' })).toBe(0);
    expect(await gw.metric('registry_lease_regrants_total')).toBe(0);
    // Every pod is still in etcd: no lease lapsed.
    const keys = await etcdAdmin(stack.etcd()).listKeys(`${gw.prefix}services/`);
    expect(keys).toHaveLength(fleet.length);
  });

  it('sheds new registrations (503 + Retry-After) while the loop is saturated, and keeps answering heartbeats', async () => {
    const gw = await stack.startGateway({ RENEW_INTERVAL_MS: '200', ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '100' });
    const live = { service: 'shed', id: 'live-1' };
    expect((await registerPod(gw.url, live, TTL)).status).toBe(201);

    // 300 ms of work per turn: the delay histogram's p99 passes 100 ms within its 1 s window.
    const saturated = busyLoop(300, 3_000);
    await sleep(1_500);
    const refused = await call(`${gw.url}/v1/services/shed/instances/new-1`, 'PUT', { address: '10.0.0.1', port: 8080, ttl: TTL });
    const heartbeat = await heartbeatPod(gw.url, live);
    await saturated;
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'overloaded' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(heartbeat.status).toBe(204);
    expect(await gw.metric('registry_admission_rejections_total', { reason: 'event_loop' })).toBeGreaterThanOrEqual(1);

    // Once the loop is idle again (after a full window), the registration succeeds on retry.
    let retried: { status: number } = refused;
    await waitFor('the retried registration to be admitted', async () => (retried = await registerPod(gw.url, { service: 'shed', id: 'new-1' }, TTL)).status !== 503, 15_000, 500);
    expect(retried.status).toBe(201);
  });
});
