/**
 * One etcd member dies (3-member cluster, auth on): the gateway keeps every lease alive through the
 * remaining members and keeps accepting registrations. ETCD_ENDPOINTS lists all members; each pooled
 * connection fails over inside its grpc channel (pick_first over the address list).
 */
import { EtcdServer, RedisServer, startEtcdCluster, startRedis } from '@app/stack';
import { etcdAdmin } from './support/etcd-admin';
import { forEachLimited, heartbeatPod, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { sleep, waitFor } from './support/wait';

describe('one etcd member down (3-member cluster)', () => {
  let members: EtcdServer[];
  let redis: RedisServer;
  let gateway: GatewayUnderTest;

  beforeAll(async () => {
    [members, redis] = await Promise.all([startEtcdCluster(3), startRedis()]);
  });
  afterAll(async () => {
    await gateway?.close();
    await Promise.all([...(members ?? []).map((m) => m.dispose()), redis?.stop()]);
  });

  it('keeps every lease alive and accepts registrations after the first member is killed', async () => {
    const [first, , survivor] = members;
    gateway = await startGateway(
      { endpoint: members.map((m) => m.endpoint).join(','), username: first.gatewayUser, password: first.gatewayPassword },
      redis.url,
      { ETCD_POOL_SIZE: '2', ETCD_REQUEST_TIMEOUT_MS: '2000' },
    );
    const fleet = pods(2, 10, 'member');
    expect((await forEachLimited(fleet, 10, (p) => registerPod(gateway.url, p, 5))).map((r) => r.status)).toEqual(fleet.map(() => 201));

    // Connection 0 prefers the first member: it must move to another one.
    await first.kill();
    // If it was the leader, the others elect a new one first (etcd's /health is true only with a leader).
    await waitFor('a leader among the surviving members', () => survivor.healthy(), 30_000);
    const admin = etcdAdmin(survivor);
    const expected = fleet.map((p) => `${gateway.prefix}services/${p.service}/${p.id}`).sort();
    for (let round = 0; round < 12; round++) {
      const beats = await forEachLimited(fleet, 10, (p) => heartbeatPod(gateway.url, p));
      expect(beats.map((b) => b.status)).toEqual(fleet.map(() => 204));
      // TTL 5 s, 12 s of heartbeats: only renewals through the surviving members keep these alive.
      expect(await admin.listKeys(`${gateway.prefix}services/`)).toEqual(expected);
      await sleep(1000);
    }

    // Writes work too (a call in flight at the moment of the kill may have failed with 503).
    await waitFor('a registration accepted after the kill', async () => (await registerPod(gateway.url, { service: 'member-new', id: 'pod-1' }, 5)).status === 201, 10_000, 500);
    expect(await gateway.metric('registry_keepalive_streams')).toBe(2);
    // Tokens are replicated through raft: moving to another member needs no new Authenticate.
    expect(await gateway.metric('registry_etcd_auth_requests_total')).toBe(2);
  });
});
