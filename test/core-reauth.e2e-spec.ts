/**
 * Issue 3: after an etcd restart (all simple tokens gone), hundreds of in-flight calls fail with
 * "invalid auth token" at once; each pooled connection must re-authenticate exactly once.
 * etcd's own Authenticate counter is the ground truth.
 */
import { diffCounters, fetchEtcdCounters } from '@app/stack';
import { forEachLimited, heartbeatPod, pods, registerPod } from './support/fleet';
import { usePrivateStack } from './support/gateway';
import { sleep, waitFor } from './support/wait';

describe('re-authentication after an etcd restart under load (private etcd)', () => {
  const stack = usePrivateStack();

  it('shares one re-authentication per pooled connection across hundreds of in-flight calls', async () => {
    const etcd = stack.etcd();
    const before = await fetchEtcdCounters(etcd.metricsUrl);
    const gateway = await stack.startGateway({ ETCD_POOL_SIZE: '2' });
    const fleet = pods(10, 30, 'reauth');
    expect((await forEachLimited(fleet, 64, (p) => registerPod(gateway.url, p, 30))).every((r) => r.status === 201)).toBe(true);
    const afterStart = diffCounters(before, await fetchEtcdCounters(etcd.metricsUrl));
    expect(afterStart.authenticate).toBe(2);

    // Load: every pod re-registers (an etcd write) and heartbeats, 300 calls in flight at a time.
    let running = true;
    const statuses: number[] = [];
    const load = (async () => {
      while (running) {
        const results = await forEachLimited(fleet, 300, async (p) => [(await registerPod(gateway.url, p, 30)).status, (await heartbeatPod(gateway.url, p)).status]);
        statuses.push(...results.flat());
      }
    })();
    await sleep(1500);
    // etcd's counters live in its process: a restart zeroes them, so add up both lifetimes.
    const beforeRestart = diffCounters(before, await fetchEtcdCounters(etcd.metricsUrl));
    await etcd.restart();
    // Keep the load on until registrations succeed again, and a while longer.
    let okRounds = 0;
    // Not thrown here: the load must be stopped first; the expect below reports it.
    await waitFor(
      'three 1-second rounds in a row with only 200/204',
      async () => {
        const mark = statuses.length;
        await sleep(1000);
        const recent = statuses.slice(mark);
        okRounds = recent.length > 0 && recent.every((s) => s === 200 || s === 204) ? okRounds + 1 : 0;
        return okRounds >= 3;
      },
      30_000,
      0,
    ).catch(() => undefined);
    running = false;
    await load;
    expect(okRounds).toBe(3);
    // While etcd was down, writes failed fast with 503 (never 500) and heartbeats kept being accepted.
    expect(statuses.filter((s) => ![200, 204, 503].includes(s))).toEqual([]);

    const sinceRestart = await fetchEtcdCounters(etcd.metricsUrl);
    const authenticate = beforeRestart.authenticate + sinceRestart.authenticate;
    expect(beforeRestart.authenticate).toBe(2);
    expect(sinceRestart.authenticate).toBe(2); // one per pooled connection, whatever was in flight
    expect(await gateway.metric('registry_etcd_auth_requests_total')).toBe(authenticate);
  });
});
