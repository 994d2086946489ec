/**
 * Issue 5: registry_etcd_auth_requests_total is truthful. Over a run with registrations and
 * heartbeats before and after an etcd restart (which drops every auth token), the gateway's own
 * count equals etcd's server-side Authenticate count, and stays small: one per pooled connection at
 * start, at most one more per connection for the token loss. A private etcd, so nothing else
 * authenticates against it.
 */
import { diffCounters, EtcdServer, startEtcd } from '@app/stack';
import { forEachLimited, heartbeatPod, Pod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { sharedStack } from './support/stack';
import { sleep, waitFor } from './support/wait';

const POOL_SIZE = 2;

describe('registry_etcd_auth_requests_total across an etcd restart (private etcd)', () => {
  let etcd: EtcdServer;
  let gateway: GatewayUnderTest;

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await gateway?.close();
    await etcd?.dispose();
  });

  /** Registers until every pod got a 2xx (etcd may still be coming back); returns the attempts. */
  async function registerAll(fleet: Pod[], timeoutMs = 30_000): Promise<number> {
    let attempts = 0;
    let pending = fleet;
    await waitFor(
      'every registration to succeed',
      async () => {
        const results = await forEachLimited(pending, 8, (p) => registerPod(gateway.url, p, 6));
        attempts += results.length;
        pending = pending.filter((_, i) => ![200, 201].includes(results[i].status));
        return pending.length === 0;
      },
      timeoutMs,
      250,
    ).catch((err: Error) => {
      throw new Error(`${pending.length} registrations never succeeded (${err.message})`);
    });
    return attempts;
  }

  it('equals etcd’s own Authenticate count, with at most one re-authentication per connection', async () => {
    const atStart = await etcd.counters();
    gateway = await startGateway({ endpoint: etcd.endpoint, username: etcd.gatewayUser, password: etcd.gatewayPassword }, sharedStack().redis.url, {
      ETCD_POOL_SIZE: String(POOL_SIZE),
    });
    const gatewayCount = () => gateway.metric('registry_etcd_auth_requests_total');

    const before = pods(2, 5, 'ops-auth-before');
    const after = pods(2, 5, 'ops-auth-after');
    await registerAll(before);

    // Pods heartbeat every 300 ms for the whole run, through the restart.
    let beating = true;
    let live = before;
    const beatStatuses: number[] = [];
    const heartbeats = (async () => {
      while (beating) {
        beatStatuses.push(...(await forEachLimited(live, 8, (p) => heartbeatPod(gateway.url, p))).map((r) => r.status));
        await sleep(300);
      }
    })();
    await sleep(2_000);

    // etcd's counters live in its process and restart at zero: add up both lifetimes.
    const beforeRestart = diffCounters(atStart, await etcd.counters());
    expect(beforeRestart.authenticate).toBe(POOL_SIZE);
    expect(await gatewayCount()).toBe(POOL_SIZE);

    await etcd.restart();
    await registerAll(after); // the first calls after the restart meet "invalid auth token"
    live = [...before, ...after];
    await registerAll(before); // re-registrations: more etcd calls on every pooled connection
    // The keepalive streams reopen on the restarted etcd (shared-lease renewals are due only every
    // LEASE_TTL/3, so their reopening is what is checked), and the presence key is renewed there.
    await waitFor('keepalive streams reopened after the restart', async () => (await gateway.metric('registry_keepalive_streams')) === POOL_SIZE && (await gateway.metric('registry_replica_present')) === 1, 20_000, 500);
    beating = false;
    await heartbeats;
    // Heartbeats of known instances never waited on etcd, not even while it restarted.
    expect(beatStatuses.filter((s) => s !== 204)).toEqual([]);

    const sinceRestart = await etcd.counters();
    const etcdTotal = beforeRestart.authenticate + sinceRestart.authenticate;
    expect(await gatewayCount()).toBe(etcdTotal);
    expect(await gateway.metric('registry_etcd_auth_requests_total', { result: 'error' })).toBe(0);
    expect(sinceRestart.authenticate).toBeGreaterThanOrEqual(1);
    expect(sinceRestart.authenticate).toBeLessThanOrEqual(POOL_SIZE); // one per connection per token loss
  });
});
