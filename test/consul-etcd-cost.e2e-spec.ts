/**
 * Issue 23: a TTL check pass through the Consul door costs etcd what a REST heartbeat costs: nothing
 * but the shared lease renewals. Counted on etcd's own /metrics (the shared stack of this run) while
 * 100 pods pass through the door and 100 pods heartbeat through the REST API: no Authenticate, Range,
 * Put, Txn, LeaseGrant or DeleteRange in either window, once each pod's status is UP.
 */
import { diffCounters } from '../tools/stack/metrics';
import { ConsulDoor } from '../apps/gateway/src/doors/consul/consul-door';
import { GatewayUnderTest, startGateway } from './support/gateway';
import { rawRequest } from './support/http';
import { sharedStack } from './support/stack';

jest.setTimeout(120_000);

const stack = sharedStack();
const PODS = 100;
const ROUNDS = 5;

describe('Consul door: etcd cost of check passes', () => {
  let gw: GatewayUnderTest;
  let door: string;
  const put = (base: string, path: string, body?: unknown) => rawRequest(base, { method: 'PUT', path, body });

  beforeAll(async () => {
    // No safety-net re-reads inside the test's windows: a Range then would be the cache's, not the door's.
    gw = await startGateway(stack.etcd, stack.redis.url, { CONSUL_API_PORT: '0', HOST: '127.0.0.1', CACHE_TTL_MS: '600000' });
    door = gw.app.get(ConsulDoor).url!;
  });
  afterAll(() => gw?.close());

  it('adds no etcd call but renewals, like REST heartbeats', async () => {
    const consulIds = Array.from({ length: PODS }, (_, i) => `cost-consul:10.5.0.${i}:80`);
    for (const [i, id] of consulIds.entries()) {
      expect((await put(door, '/v1/agent/service/register', { Name: 'cost-consul', ID: id, Address: `10.5.0.${i}`, Port: 80, Check: { TTL: '30s' } })).status).toBe(200);
    }
    for (let i = 0; i < PODS; i++) expect((await put(gw.url, `/v1/services/cost-rest/instances/r${i}`, { address: `10.6.0.${i}`, port: 80, ttl: 30 })).status).toBe(201);
    const pass = (id: string) => put(door, `/v1/agent/check/pass/${encodeURIComponent(`service:${id}`)}`);
    // The first pass turns each pod UP: one status write each, outside the measured window.
    for (const id of consulIds) expect((await pass(id)).status).toBe(200);
    const up = await rawRequest(gw.url, { method: 'GET', path: '/v1/services/cost-consul' });
    expect(up.json.instances).toHaveLength(PODS);

    const beforeConsul = await stack.etcdCounters();
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(consulIds.map(pass));
      expect(answers.map((a) => a.status)).toEqual(consulIds.map(() => 200));
    }
    const consul = diffCounters(beforeConsul, await stack.etcdCounters());

    const beforeRest = await stack.etcdCounters();
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(Array.from({ length: PODS }, (_, i) => put(gw.url, `/v1/services/cost-rest/instances/r${i}/heartbeat`)));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 204));
    }
    const rest = diffCounters(beforeRest, await stack.etcdCounters());

    const writesAndReads = (c: typeof consul) => ({ authenticate: c.authenticate, range: c.range, put: c.put, txn: c.txn, leaseGrant: c.leaseGrant, deleteRange: c.deleteRange });
    const none = { authenticate: 0, range: 0, put: 0, txn: 0, leaseGrant: 0, deleteRange: 0 };
    expect({ consul: writesAndReads(consul), rest: writesAndReads(rest) }).toEqual({ consul: none, rest: none });
    // Renewals follow the shared leases (one per lease per classTtl/3), not the passes: printed, not asserted.
    process.stdout.write(`keepalive messages: consul window ${consul.leaseKeepAliveMessages}, rest window ${rest.leaseKeepAliveMessages}\n`);
  });
});
