/**
 * Self-preservation (issue 13) over the expiry sweep of shared leases (issue 21): a network-like mass
 * silence is held (no instance deleted, pods still resolvable, no 404 when they come back); a real
 * scale-down with explicit deregistration is not; and a silence that outlasts SELF_PRESERVATION_MAX_MS
 * is believed (the instances are deleted). Real etcd and Redis.
 */
import { etcdAdmin } from './support/etcd-admin';
import { forEachLimited, heartbeatPod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, usePrivateStack } from './support/gateway';
import { request } from './support/http';
import { sleep, waitFor } from './support/wait';

const TTL = 6;

describe('self-preservation', () => {
  const stack = usePrivateStack();

  async function registerAndBeat(gw: GatewayUnderTest, fleet: ReturnType<typeof pods>): Promise<void> {
    const registered = await forEachLimited(fleet, 16, (pod) => registerPod(gw.url, pod, TTL));
    expect(registered.filter((r) => r.status !== 201)).toEqual([]);
    for (let round = 0; round < 3; round++) {
      expect((await forEachLimited(fleet, 16, (pod) => heartbeatPod(gw.url, pod))).every((r) => r.status === 204)).toBe(true);
      await sleep(1_000);
    }
  }

  const keysOf = (gw: GatewayUnderTest) => etcdAdmin(stack.etcd()).listKeys(`${gw.prefix}services/`);

  it('holds the leases of a mass of pods that went silent at once, and lets go when they heartbeat again', async () => {
    const gw = await stack.startGateway({ SELF_PRESERVATION: 'true', SELF_PRESERVATION_MAX_MS: '60000' });
    const fleet = pods(2, 20, 'held');
    await registerAndBeat(gw, fleet);

    // Every pod falls silent (a partition between pods and gateway) for twice the TTL.
    await sleep(2 * TTL * 1000);
    expect(await gw.metric('registry_self_preservation')).toBe(1);
    // What the sweep holds back: every instance on its lease is overdue, none deleted.
    expect(await gw.metric('registry_expiry_overdue_instances')).toBe(fleet.length);
    expect(await gw.metric('registry_expirations_total')).toBe(0);
    expect(await keysOf(gw)).toHaveLength(fleet.length);
    const resolved = JSON.parse((await request(gw.url, 'GET', '/v1/services/held-0')).body);
    expect(resolved.instances).toHaveLength(20);

    // The partition heals: the pods' next heartbeats are accepted (no 404, no re-registration storm).
    const back = await forEachLimited(fleet, 16, (pod) => heartbeatPod(gw.url, pod));
    expect(back.map((r) => r.status).filter((s) => s !== 204)).toEqual([]);
    // Heartbeats go on while it still holds; it must let go once they are back.
    await waitFor(
      'self-preservation to end once heartbeats are back',
      async () => {
        if ((await gw.metric('registry_self_preservation')) === 0) return true;
        await forEachLimited(fleet, 16, (pod) => heartbeatPod(gw.url, pod));
        return false;
      },
      30_000,
      500,
    );
    expect(await gw.metric('registry_registrations_total')).toBe(fleet.length);
  });

  it('does not hold a real scale-down: half the pods deregister explicitly and are gone', async () => {
    const gw = await stack.startGateway({ SELF_PRESERVATION: 'true', SELF_PRESERVATION_MAX_MS: '60000' });
    const fleet = pods(2, 20, 'scaledown');
    await registerAndBeat(gw, fleet);
    const leaving = fleet.filter((_, i) => i % 2 === 0);
    const staying = fleet.filter((_, i) => i % 2 === 1);
    const gone = await forEachLimited(leaving, 16, (pod) => request(gw.url, 'DELETE', `/v1/services/${pod.service}/instances/${pod.id}`));
    expect(gone.every((r) => r.status === 204)).toBe(true);
    // The leavers' keys are gone at once (DELETE); self-preservation must not start over the TTL and
    // two sweep passes that follow, while the others keep beating.
    expect(await keysOf(gw)).toHaveLength(staying.length);
    for (let t = 0; t < TTL + 4; t++) {
      expect((await forEachLimited(staying, 16, (pod) => heartbeatPod(gw.url, pod))).every((r) => r.status === 204)).toBe(true);
      expect(await gw.metric('registry_self_preservation')).toBe(0);
      await sleep(1_000);
    }
    expect(await keysOf(gw)).toHaveLength(staying.length);
  });

  it('believes a silence that outlasts SELF_PRESERVATION_MAX_MS: the leases then expire', async () => {
    const gw = await stack.startGateway({ SELF_PRESERVATION: 'true', SELF_PRESERVATION_MAX_MS: '4000' });
    const fleet = pods(1, 20, 'believed');
    await registerAndBeat(gw, fleet);
    let sawHold = false;
    await waitFor(
      'the held instances to expire once the bound passed',
      async () => {
        if ((await gw.metric('registry_self_preservation')) === 1) sawHold = true;
        return (await keysOf(gw)).length === 0;
      },
      30_000,
      500,
    );
    expect(sawHold).toBe(true);
    expect(await gw.metric('registry_self_preservation')).toBe(0);
  });
});
