/**
 * Issue 10, item 4: registrations' LeaseGrant calls run on the lease-grant worker, off the HTTP thread,
 * with one etcd LeaseGrant per registration and truthful request metrics; a worker that dies fails
 * the grants it held as retryable 503s (none hangs), grants go on on the HTTP thread meanwhile, and the
 * worker comes back; after an etcd restart the worker's grants get the HTTP thread's new tokens (no
 * Authenticate of their own). Counts from etcd's own /metrics.
 */
import type { Worker } from 'node:worker_threads';
import { diffCounters, fetchEtcdCounters } from '@app/stack';
import { RegistryRuntime } from '@app/runtime';
import { RegistryRuntimeProvider } from '../apps/gateway/src/etcd/registry-runtime.provider';
import { forEachLimited, pods, registerPod } from './support/fleet';
import { GatewayUnderTest, startGateway, usePrivateStack } from './support/gateway';
import { sharedStack } from './support/stack';
import { sleep, waitFor } from './support/wait';

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };

describe('lease grants on the grant worker (shared etcd)', () => {
  let gateway: GatewayUnderTest;
  let runtime: RegistryRuntime;
  beforeAll(async () => {
    gateway = await startGateway(target, stack.redis.url, { RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' });
    runtime = gateway.app.get(RegistryRuntimeProvider).runtime;
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('makes every registration LeaseGrant on the worker: one etcd LeaseGrant per registration, each counted in the gateway metrics', async () => {
    expect(runtime.health().grants.workerUp).toBe(true);
    expect(await gateway.metric('registry_lease_grant_worker_up')).toBe(1);
    const fleet = pods(4, 50, 'grants'); // 200 pods
    // Warm the worker up first (its channels connect, grpc-js and V8 settle), so its busy time below is per grant.
    await forEachLimited(pods(1, 50, 'grants-warmup'), 50, (pod) => registerPod(gateway.url, pod, 60));
    const before = await stack.etcdCounters();
    const grantsBefore = runtime.health().grants;
    const metricBefore = await gateway.metric('registry_etcd_requests_total', { method: 'leaseGrant', result: 'ok' });

    const answers = await forEachLimited(fleet, 100, (pod) => registerPod(gateway.url, pod, 60));
    const used = diffCounters(before, await stack.etcdCounters());
    const grants = runtime.health().grants;
    process.stdout.write(`200 registrations: etcd LeaseGrant ${used.leaseGrant}; grant worker answered ${grants.inWorker - grantsBefore.inWorker}, HTTP thread ${grants.onThisThread - grantsBefore.onThisThread}; worker loop busy ${(grants.workerActiveMs - grantsBefore.workerActiveMs).toFixed(1)} ms\n`);

    expect(answers.filter((a) => a.status !== 201)).toEqual([]);
    expect(new Set(answers.map((a) => JSON.parse(a.body).leaseId)).size).toBe(200);
    expect(used.leaseGrant).toBe(200);
    expect(grants.inWorker - grantsBefore.inWorker).toBe(200);
    // ... made by its hand-framed grant sessions (LeaseGrantSession), not grpc-js.
    expect(grants.bySession - grantsBefore.bySession).toBe(200);
    expect(grants.onThisThread - grantsBefore.onThisThread).toBe(0);
    expect(grants.inFlight).toBe(0);
    // The worker's calls reach the gateway's request counter (one per grant, no more).
    expect((await gateway.metric('registry_etcd_requests_total', { method: 'leaseGrant', result: 'ok' })) - metricBefore).toBe(200);
    expect(await gateway.metric('registry_etcd_requests_total', { method: 'leaseGrant', result: 'error' })).toBe(0);
  });

  it('a worker that dies fails its unanswered grants as retryable 503s, grants go on meanwhile, and the worker comes back', async () => {
    const fleet = pods(2, 100, 'grants-crash'); // 200 pods
    const crashed = runtime.health().grants.restarts;
    const restartsMetric = await gateway.metric('registry_lease_grant_worker_restarts_total');
    const worker = (runtime.grants as unknown as { worker: Worker }).worker;
    const answers = forEachLimited(fleet, 100, (pod) => registerPod(gateway.url, pod, 60));
    // Some grants are with the worker when it dies (the first ones leave at the end of this turn).
    await waitFor('grants in flight on the worker', () => runtime.health().grants.inFlight > 0, 10_000, 1);
    await worker.terminate();
    const statuses = (await answers).map((a) => a.status);
    const codes = new Set((await answers).filter((a) => a.status !== 201).map((a) => JSON.parse(a.body).error));
    process.stdout.write(`worker killed under 200 registrations: ${statuses.filter((s) => s === 201).length} x 201, ${statuses.filter((s) => s === 503).length} x 503 (${[...codes].join(',')})\n`);

    // Every request was answered (none hangs), each either registered or told to retry.
    expect(statuses.filter((s) => s !== 201 && s !== 503)).toEqual([]);
    expect([...codes].filter((c) => c !== 'registry_unavailable')).toEqual([]);
    expect(runtime.health().grants.restarts).toBe(crashed + 1);
    await waitFor('the grant worker to restart', () => runtime.health().grants.workerUp);
    // Operators see it: one restart, and nothing left in flight.
    expect(await gateway.metric('registry_lease_grant_worker_restarts_total')).toBe(restartsMetric + 1);
    expect(await gateway.metric('registry_lease_grants_in_flight')).toBe(0);

    const before = runtime.health().grants;
    const again = await forEachLimited(fleet, 100, (pod) => registerPod(gateway.url, pod, 60));
    expect(again.filter((a) => a.status !== 201 && a.status !== 200)).toEqual([]);
    const after = runtime.health().grants;
    expect(after.inWorker - before.inWorker).toBe(statuses.filter((s) => s !== 201).length);
    expect(after.onThisThread).toBe(before.onThisThread);
  });
});

describe('lease grants on the grant worker after an etcd restart (private etcd)', () => {
  const stack = usePrivateStack();

  it('re-grants with the pool\'s fresh tokens: one Authenticate per pooled connection, every registration eventually 201, never a 500', async () => {
    const etcd = stack.etcd();
    const before = await fetchEtcdCounters(etcd.metricsUrl);
    const gateway = await stack.startGateway({ ETCD_POOL_SIZE: '2', RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0' });
    const runtime = gateway.app.get(RegistryRuntimeProvider).runtime;
    expect((await forEachLimited(pods(1, 50, 'pre'), 50, (pod) => registerPod(gateway.url, pod, 60))).every((a) => a.status === 201)).toBe(true);
    const beforeRestart = diffCounters(before, await fetchEtcdCounters(etcd.metricsUrl));
    expect(beforeRestart.authenticate).toBe(2);
    const grantsBefore = runtime.health().grants;

    // Every token is gone after the restart; new pods need new leases, granted by the worker.
    await etcd.restart();
    const fleet = pods(2, 50, 'post'); // 100 pods
    const statuses: number[] = [];
    let waiting = fleet;
    await waitFor('every new pod registered after the restart', async () => {
      const answers = await forEachLimited(waiting, 50, (pod) => registerPod(gateway.url, pod, 60));
      statuses.push(...answers.map((a) => a.status));
      waiting = waiting.filter((_, i) => answers[i].status !== 201);
      if (waiting.length) await sleep(200);
      return waiting.length === 0;
    });
    const sinceRestart = await fetchEtcdCounters(etcd.metricsUrl);
    const grants = runtime.health().grants;
    process.stdout.write(`after the etcd restart: ${statuses.filter((x) => x === 201).length} x 201, ${statuses.filter((x) => x === 503).length} x 503; etcd Authenticate ${sinceRestart.authenticate}, LeaseGrant ${sinceRestart.leaseGrant}\n`);

    expect(statuses.filter((x) => x !== 201 && x !== 503)).toEqual([]);
    expect(sinceRestart.authenticate).toBe(2); // the pool's two; the worker asks the pool for them
    // Each grant refused with the stale token is retried once (at most 50 were in flight at a time).
    expect(sinceRestart.leaseGrant).toBeLessThanOrEqual(fleet.length + 50);
    expect(grants.onThisThread).toBe(grantsBefore.onThisThread);
    expect(grants.inWorker - grantsBefore.inWorker).toBeGreaterThanOrEqual(100);
  });
});
