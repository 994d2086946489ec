/**
 * The backstop of shared leases (issue 21 acceptance: "every replica stopped -> every key gone within
 * LEASE_TTL"). With no replica left to renew a lease or to expire an instance, etcd itself deletes every
 * instance key and lease record when their shared lease runs out, which is the instance's lease class
 * (LEASE_TTL for instance TTLs up to LEASE_TTL/2), and every presence key within its own 10 s. Two real
 * gateway processes on the shared etcd and Redis; one is SIGKILLed, the other stopped with SIGTERM; etcd
 * is read as root.
 */
import { Etcd3, IKeyValue } from 'etcd3';
import { MIN_LEASE_TTL_SECONDS } from '@app/etcd';
import { freePorts } from '../tools/stack/procs';
import { GatewayReplica } from './support/faults/replica';
import { forEachLimited, pods } from './support/fleet';
import { gatewayEnv } from './support/gateway';
import { defaultClient } from './support/http';
import { sharedStack } from './support/stack';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(90_000);

/** The shortest LEASE_TTL allowed; pods of TTL <= 15 s get leases of exactly this class. */
const LEASE_TTL = MIN_LEASE_TTL_SECONDS;
const TTL = 5;
/** etcd's lessor checks expiry every 0.5 s and revokes in batches; plus this test's own polling. */
const MARGIN_MS = 2_000;

describe('shared leases: every replica stopped', () => {
  const stack = sharedStack();
  const root = new Etcd3({ hosts: stack.etcd.endpoint, auth: { username: stack.etcd.rootUser, password: stack.etcd.rootPassword } });
  let replicas: GatewayReplica[] = [];

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill()));
    root.close();
  });

  it(`etcd deletes every instance key, lease record and presence key within the lease class (LEASE_TTL ${LEASE_TTL} s for TTL ${TTL} s pods), nothing before`, async () => {
    const env = gatewayEnv({ endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password }, stack.redis.url, {
      LEASE_TTL: String(LEASE_TTL),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0',
    });
    const prefix = env.ETCD_PREFIX;
    const ports = await freePorts(2);
    replicas = ports.map((port, i) => new GatewayReplica(`replica-${i}`, { ...env, PORT: String(port) }, defaultClient));
    await Promise.all(replicas.map((r) => r.start()));
    const [killed, stopped] = replicas;

    const deletes: Array<{ key: string; at: number }> = [];
    const watcher = await root.watch().prefix(prefix).create();
    watcher.on('delete', (kv: IKeyValue) => deletes.push({ key: kv.key.toString(), at: Date.now() }));
    const keysLeft = async () => (await root.getAll().prefix(prefix).keys()).map(String);

    try {
      // Half the pods register through each replica (each owns a shared lease), then every pod
      // heartbeats through both in turn for longer than its TTL: nothing may be deleted meanwhile.
      const fleet = pods(2, 20, 'backstop');
      const registered = await forEachLimited(fleet, 20, (pod) =>
        defaultClient.request(replicas[fleet.indexOf(pod) % 2].url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}`, { address: '10.0.0.1', port: 8080, ttl: TTL }),
      );
      expect(registered.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.body}`)).toEqual([]);
      const heartbeatUntil = Date.now() + TTL * 1000 + 2_000;
      const beats: number[] = [];
      for (let round = 0; Date.now() < heartbeatUntil; round++) {
        const answers = await forEachLimited(fleet, 20, (pod) =>
          defaultClient.request(replicas[(fleet.indexOf(pod) + round) % 2].url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}/heartbeat`),
        );
        beats.push(...answers.map((a) => a.status));
        await sleep(1_500);
      }
      expect(beats.filter((s) => s !== 204)).toEqual([]);

      const instanceKeys = (await keysLeft()).filter((k) => k.startsWith(`${prefix}services/`));
      const records = await root.getAll().prefix(`${prefix}gateway/leases/`).strings();
      const presence = (await keysLeft()).filter((k) => k.startsWith(`${prefix}gateway/replicas/`));
      expect(instanceKeys).toHaveLength(fleet.length);
      expect(presence).toHaveLength(2);
      const owners = new Set(Object.values(records).map((v) => (JSON.parse(v) as { owner: string }).owner));
      expect(owners.size).toBe(2); // both replicas own (renew) shared leases

      // Every replica gone at once: one crashes, the other shuts down gracefully (orphans its leases).
      const stoppedAt = Date.now();
      expect(deletes).toEqual([]);
      await Promise.all([killed.kill(), stopped.stop()]);
      const exitedAt = Date.now();

      // Each lease was renewed last before the stop: it runs out within its class of that moment.
      const deadline = stoppedAt + LEASE_TTL * 1000 + MARGIN_MS;
      await waitFor('every key under the prefix gone', async () => (await keysLeft()).length === 0, deadline - Date.now(), 250).catch(async () => {
        throw new Error(`${(await keysLeft()).length} keys still in etcd ${Date.now() - stoppedAt} ms after every replica stopped (lease class ${LEASE_TTL} s + ${MARGIN_MS} ms)`);
      });
      const goneAfter = (what: string) => Math.max(...deletes.filter((d) => d.key.startsWith(`${prefix}${what}`)).map((d) => d.at - stoppedAt));
      process.stdout.write(
        `every replica stopped (exited after ${exitedAt - stoppedAt} ms): ${instanceKeys.length} instance keys gone after ${goneAfter('services/')} ms, ` +
          `${Object.keys(records).length} lease records after ${goneAfter('gateway/leases/')} ms, presence keys after ${goneAfter('gateway/replicas/')} ms\n`,
      );
      expect(deletes.every((d) => d.at >= stoppedAt)).toBe(true);
      expect(new Set(deletes.map((d) => d.key))).toEqual(new Set([...instanceKeys, ...Object.keys(records), ...presence]));
      expect(Date.now() - stoppedAt).toBeLessThanOrEqual(LEASE_TTL * 1000 + MARGIN_MS);
      // Every shared lease was of the LEASE_TTL class (the formula before issue 21's fix gave 120 s).
      expect(new Set(Object.values(records).map((v) => (JSON.parse(v) as { classTtl: number }).classTtl))).toEqual(new Set([LEASE_TTL]));
    } finally {
      await watcher.cancel();
    }
  });
});
