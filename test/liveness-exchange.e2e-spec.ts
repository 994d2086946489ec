/**
 * Issue 21, the preparatory release (docs/shared-leases.md section 5): what this release must do so that
 * replicas of the shared-lease release can run beside it. Real auth-enabled etcd and Redis.
 *
 * - A lease may carry other instances: a DELETE deletes exactly one key, a re-registration with a new
 *   TTL replaces exactly one key, and neither revokes a lease (today's one-key leases included: an
 *   orphaned one expires by itself).
 * - Presence: one key per replica under `<prefix>gateway/replicas/`, on a 10 s lease of its own; deleted
 *   on a graceful stop, gone within its TTL after a SIGKILL.
 * - Heard-sets: once per pass, each replica publishes to Redis the instances it heard (64-bit hashes).
 */
import { Etcd3 } from 'etcd3';
import Redis from 'ioredis';
import { ConnectionPool, decodeHeardSet, instanceKeyHash, RedisHeardSets, RegistryStore } from '@app/etcd';
import { encodeRecord, KeyLayout } from '@app/registry';
import { diffCounters } from '@app/stack';
import { heartbeatPod, registerPod } from './support/fleet';
import { call, gatewayEnv, GatewayUnderTest, startGateway, startGatewayProcess } from './support/gateway';
import { request } from './support/http';
import { sharedStack } from './support/stack';
import { waitFor } from './support/wait';

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };
const root = new Etcd3({ hosts: stack.etcd.endpoint, auth: { username: stack.etcd.rootUser, password: stack.etcd.rootPassword } });
const redis = new Redis(stack.redis.url);

afterAll(() => {
  root.close();
  redis.disconnect();
});

async function keysUnder(prefix: string): Promise<Map<string, { lease: string; value: string }>> {
  const res = await root.getAll().prefix(prefix).exec();
  return new Map(res.kvs.map((kv) => [kv.key.toString(), { lease: String(kv.lease), value: kv.value.toString() }]));
}

const ttlOf = async (leaseId: string) => Number((await root.leaseClient.leaseTimeToLive({ ID: leaseId })).TTL);

describe('release A: a lease may carry other instances', () => {
  let gateway: GatewayUnderTest;
  afterAll(async () => gateway?.close());

  it('DELETE removes exactly one instance of a shared lease, a re-registration with a new TTL replaces exactly one, and no lease is revoked', async () => {
    gateway = await startGateway(target, stack.redis.url);
    // Three instances on one lease, as a replica of the shared-lease release writes them.
    const shared = String((await root.leaseClient.leaseGrant({ TTL: 120, ID: 0 })).ID);
    const keyOf = (id: string) => `${gateway.prefix}services/shared/${id}`;
    for (const id of ['a', 'b', 'c']) {
      const record = { address: '10.1.0.1', port: 8080, ttl: 30, metadata: {}, tags: [], weight: 100, status: 'UP' as const, service: 'shared', id, registeredAt: new Date().toISOString() };
      await root.put(keyOf(id)).value(encodeRecord(record)).lease(shared).exec();
    }
    await waitFor('the replica lists the three', async () => (await call(`${gateway.url}/v1/services/shared`, 'GET')).body.instances?.length === 3);

    expect((await request(gateway.url, 'DELETE', '/v1/services/shared/instances/a')).status).toBe(204);
    expect((await registerPod(gateway.url, { service: 'shared', id: 'b' }, 60)).status).toBe(200);

    const after = await keysUnder(`${gateway.prefix}services/shared/`);
    expect([...after.keys()].sort()).toEqual([keyOf('b'), keyOf('c')]);
    expect(after.get(keyOf('c'))!.lease).toBe(shared);
    expect(after.get(keyOf('b'))!.lease).not.toBe(shared);
    expect(await ttlOf(shared)).toBeGreaterThan(100);
    // The one-key lease of a plain registration is not revoked either: it expires by itself.
    expect((await registerPod(gateway.url, { service: 'plain', id: 'p' }, 30)).status).toBe(201);
    const plainLease = (await keysUnder(`${gateway.prefix}services/plain/`)).get(`${gateway.prefix}services/plain/p`)!.lease;
    expect((await request(gateway.url, 'DELETE', '/v1/services/plain/instances/p')).status).toBe(204);
    expect(await ttlOf(plainLease)).toBeGreaterThan(0);
    expect(await gateway.metric('registry_etcd_requests_total', { method: 'leaseRevoke' })).toBe(0);
  });
});

describe('release A: presence and heard-sets', () => {
  it('publishes one presence key on a 10 s lease and, every pass, the hashes of the instances it heard', async () => {
    const gateway = await startGateway(target, stack.redis.url, { LIVENESS_PASS_MS: '500' });
    try {
      const replicas = await waitFor('the presence key', async () => {
        const keys = await keysUnder(`${gateway.prefix}gateway/replicas/`);
        return keys.size === 1 && keys;
      });
      const [[presenceKey, presence]] = [...replicas];
      const replicaId = presenceKey.slice(presenceKey.lastIndexOf('/') + 1);
      expect(JSON.parse(presence.value)).toMatchObject({ replicaId, leaseModel: 'shared', heardSetPassMs: 500 });
      const ttl = await ttlOf(presence.lease);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10);
      await waitFor('registry_replica_present 1', async () => (await gateway.metric('registry_replica_present')) === 1);

      const pod = { service: 'heard', id: 'pod-1' };
      const silent = { service: 'heard', id: 'pod-2' };
      expect((await registerPod(gateway.url, pod, 30)).status).toBe(201);
      expect((await registerPod(gateway.url, silent, 30)).status).toBe(201);
      const sets = new RedisHeardSets(redis, `registry-gateway:v1:${gateway.prefix}heard:`);
      const registeredBy = ((await sets.head(replicaId)) ?? 0) + 1;
      // Let the pass of the registrations end and another go by, then heartbeat pod-1 only.
      await waitFor('two passes', async () => ((await sets.head(replicaId)) ?? 0) >= registeredBy + 1);
      const beatAfter = (await sets.head(replicaId))!;
      expect((await heartbeatPod(gateway.url, pod)).status).toBe(204);
      await waitFor('the pass after the heartbeat', async () => ((await sets.head(replicaId)) ?? 0) >= beatAfter + 1);

      const hashes = async (from: number, to: number) => {
        const found = new Set<string>();
        for (let seq = from; seq <= to; seq++) {
          const record = decodeHeardSet((await sets.read(replicaId, seq))!);
          expect(record).toBeDefined();
          for (let i = 0; i < record!.hashes.length; i += 2) found.add(`${record!.hashes[i]}:${record!.hashes[i + 1]}`);
        }
        return found;
      };
      const hashOf = (p: { service: string; id: string }) => instanceKeyHash(`${gateway.prefix}services/${p.service}/${p.id}`).join(':');
      // The passes since the heartbeat name pod-1 and not pod-2; the registrations were heard too.
      const sinceBeat = await hashes(beatAfter + 1, (await sets.head(replicaId))!);
      expect(sinceBeat.has(hashOf(pod))).toBe(true);
      expect(sinceBeat.has(hashOf(silent))).toBe(false);
      const early = await hashes(1, registeredBy);
      expect(early.has(hashOf(pod)) && early.has(hashOf(silent))).toBe(true);
      expect(await gateway.metric('registry_heard_sets_total', { result: 'ok' })).toBeGreaterThan(0);
    } finally {
      await gateway.close();
    }
    // A graceful stop deletes the presence key at once.
    expect((await keysUnder(`${gateway.prefix}gateway/replicas/`)).size).toBe(0);
  });

  it('a replica killed with SIGKILL leaves no presence key once its 10 s lease has run out', async () => {
    const env = gatewayEnv(target, stack.redis.url);
    const child = await startGatewayProcess(env);
    const prefix = env.ETCD_PREFIX;
    await waitFor('the presence key', async () => (await keysUnder(`${prefix}gateway/replicas/`)).size === 1);
    child.child.kill('SIGKILL');
    await child.exited;
    const killedAt = Date.now();
    await waitFor('the presence key gone', async () => (await keysUnder(`${prefix}gateway/replicas/`)).size === 0, 20_000, 250);
    // etcd's lessor expires it after its TTL (10 s) plus at most a pass of its own.
    expect(Date.now() - killedAt).toBeLessThan(12_500);
  });
});

describe('guarded deletes (the expiry of shared leases), as the gateway user', () => {
  it('deletes in nested Txns of 64 only the keys unchanged since the revision seen, and nothing while the fence key moved', async () => {
    const layout = new KeyLayout(`/registry/t${Date.now().toString(16)}/`);
    const pool = new ConnectionPool({ size: 1, endpoints: [stack.etcd.endpoint], credentials: { username: stack.etcd.username, password: stack.etcd.password }, requestTimeoutMs: 5_000 });
    await pool.connect();
    const store = new RegistryStore(pool, layout);
    try {
      const lease = String((await root.leaseClient.leaseGrant({ TTL: 120, ID: 0 })).ID);
      const keys = Array.from({ length: 100 }, (_, i) => layout.instanceKey('expiring', `pod-${i}`));
      for (const key of keys) await root.put(key).value('{}').lease(lease).exec();
      const seen = await keysWithRevisions(`${layout.servicesRoot}expiring/`);
      // Ten are written again after the sweep read them (re-registered, patched): they must survive.
      const rewritten = keys.filter((_, i) => i % 10 === 0);
      for (const key of rewritten) await root.put(key).value('{"again":true}').lease(lease).exec();

      const before = await stack.etcdCounters();
      const deleted = await store.deleteIfUnchanged(keys.map((key) => ({ key, modRevision: seen.get(key)! })));
      const used = diffCounters(before, await stack.etcdCounters());
      expect(deleted.filter(Boolean)).toHaveLength(90);
      expect(keys.filter((key, i) => deleted[i] === rewritten.includes(key))).toEqual([]);
      expect([...(await keysWithRevisions(`${layout.servicesRoot}expiring/`)).keys()].sort()).toEqual([...rewritten].sort());
      expect(used.txn).toBe(2); // 100 deletes: 64 + 36

      // The fence: a lease record that moved (another replica adopted the lease) stops every delete.
      const fenceKey = `${layout.gatewayRoot}leases/${lease}`;
      await root.put(fenceKey).value('{"owner":"a"}').exec();
      const fenceSeen = (await keysWithRevisions(fenceKey)).get(fenceKey)!;
      await root.put(fenceKey).value('{"owner":"b"}').exec();
      const now = await keysWithRevisions(`${layout.servicesRoot}expiring/`);
      const fenced = await store.deleteIfUnchanged(rewritten.map((key) => ({ key, modRevision: now.get(key)!, fence: { key: fenceKey, modRevision: fenceSeen } })));
      expect(fenced.every((d) => !d)).toBe(true);
      expect((await keysWithRevisions(`${layout.servicesRoot}expiring/`)).size).toBe(10);
      await root.delete().prefix(layout.prefix).exec();
      await root.leaseClient.leaseRevoke({ ID: lease });
    } finally {
      pool.close();
    }
  });
});

async function keysWithRevisions(prefix: string): Promise<Map<string, string>> {
  const res = await root.getAll().prefix(prefix).exec();
  return new Map(res.kvs.map((kv) => [kv.key.toString(), String(kv.mod_revision)]));
}
