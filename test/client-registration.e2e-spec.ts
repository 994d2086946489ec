/**
 * Issue 12 acceptance for the SDK's registrations, against real gateways on the shared auth-enabled
 * etcd and Redis: lookups see an SDK-registered pod, a 404 leads to exactly one re-registration, a
 * gateway restart deregisters nobody, SIGKILL of the pod's gateway moves its heartbeats to the other
 * one within a heartbeat interval without a 404, close() removes the pod from lookups at once, and
 * an etcd outage longer than the TTL does not make the pods register again.
 */
import { InstanceRegistration, registerInstance, resolver } from '@app/client';
import { freePort } from '@app/stack';
import { etcdAdmin } from './support/etcd-admin';
import { gatewayEnv, GatewayProcess, startGatewayProcess, usePrivateStack } from './support/gateway';
import { rawRequest, request } from './support/http';
import { useSecuredGateway } from './support/security';
import { sharedStack } from './support/stack';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(240_000);

const stack = sharedStack();
const target = { endpoint: stack.etcd.endpoint, username: stack.etcd.username, password: stack.etcd.password };
const admin = etcdAdmin();

/** Every event of a registration, with the time it happened. */
function recordEvents(handle: InstanceRegistration) {
  const events: Array<{ name: string; at: number; gateway?: string; detail?: unknown }> = [];
  for (const name of ['registered', 'heartbeat', 'heartbeat-failed', 'reregistered', 'failover', 'deregistered', 'error'] as const) {
    handle.on(name, ((detail: { gateway?: string }) => events.push({ name, at: Date.now(), gateway: detail?.gateway, detail })) as never);
  }
  return {
    events,
    count: (name: string) => events.filter((e) => e.name === name).length,
    after: (at: number, name: string) => events.filter((e) => e.at >= at && e.name === name),
  };
}

const handles: InstanceRegistration[] = [];
const processes: GatewayProcess[] = [];
afterAll(async () => {
  await Promise.allSettled(handles.map((h) => h.close()));
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

describe('SDK registration on a secured gateway', () => {
  const ctx = useSecuredGateway();

  it('registers, heartbeats every TTL/3, and close() removes the instance from lookups within about a second', async () => {
    const handle = await registerInstance({ gateways: [ctx.gw.url], token: ctx.tokens.agent, service: 'payments', id: 'sdk-pod-1', address: '10.1.0.1', port: 9000, ttl: 6, tags: ['sdk'] });
    handles.push(handle);
    const log = recordEvents(handle);
    const lookups = resolver({ gateways: [ctx.gw.url], token: ctx.tokens.reader });
    const listed = await lookups.get('payments', { tags: ['sdk'] });
    expect(listed.instances.map((i) => i.id)).toEqual(['sdk-pod-1']);

    // TTL 6 s: heartbeats every ~1.6-2 s; 3 arrive within 7 s, all accepted.
    await waitFor('3 heartbeats', () => log.count('heartbeat') >= 3, 7_000, 100);
    expect(log.count('heartbeat-failed')).toBe(0);
    expect(await ctx.gw.metric('registry_heartbeats_total', { result: 'accepted' })).toBeGreaterThanOrEqual(3);

    await handle.close();
    const closedAt = Date.now();
    await waitFor('the instance to leave lookups', async () => ((await lookups.get('payments', { tags: ['sdk'] })).instances.length === 0 ? true : undefined), 5_000, 50);
    const goneAfterMs = Date.now() - closedAt;
    console.log(`closed instance gone from lookups ${goneAfterMs} ms after close() resolved`);
    expect(goneAfterMs).toBeLessThan(2_000);
    expect(log.count('deregistered')).toBe(1);
    expect(await ctx.gw.metric('registry_deregistrations_total')).toBe(1);
    // Nothing is sent after the DELETE: no heartbeat brings it back.
    const heartbeats = await ctx.gw.metric('registry_heartbeats_total');
    await sleep(3_000);
    expect(await ctx.gw.metric('registry_heartbeats_total')).toBe(heartbeats);
    expect((await lookups.get('payments', { tags: ['sdk'] })).instances).toEqual([]);
  });

  it('registers again, once, when a heartbeat answers 404', async () => {
    const handle = await registerInstance({ gateways: [ctx.gw.url], token: ctx.tokens.agent, service: 'payments', id: 'sdk-pod-404', address: '10.1.0.2', port: 9000, ttl: 6 });
    handles.push(handle);
    const log = recordEvents(handle);
    const created = await ctx.gw.metric('registry_registrations_total', { kind: 'created' });
    // Someone deregisters it behind the pod's back (an operator, another replica).
    const res = await rawRequest(ctx.gw.url, { method: 'DELETE', path: '/v1/services/payments/instances/sdk-pod-404', token: ctx.tokens.admin });
    expect(res.status).toBe(204);
    await waitFor('a re-registration', () => (log.count('reregistered') ? true : undefined), 10_000);
    await waitFor('a heartbeat after it', () => (log.events.at(-1)?.name === 'heartbeat' ? true : undefined), 10_000);
    expect(log.count('reregistered')).toBe(1);
    expect(await ctx.gw.metric('registry_heartbeats_total', { result: 'not-found' })).toBe(1);
    expect(await ctx.gw.metric('registry_registrations_total', { kind: 'created' })).toBe(created + 1);
    const lookups = resolver({ gateways: [ctx.gw.url], token: ctx.tokens.reader });
    expect((await lookups.get('payments')).instances.map((i) => i.id)).toContain('sdk-pod-404');
    await handle.close();
  });

  it('rejects a registration the token may not make (403), without the token in the error', async () => {
    const err = await registerInstance({ gateways: [ctx.gw.url], token: ctx.tokens.agent, service: 'billing', id: 'x', address: '10.1.0.3', port: 1, ttl: 6 }).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ name: 'RequestRejectedError', status: 403 });
    expect(String((err as Error).message)).not.toContain(ctx.tokens.agent);
  });
});

describe('SDK registration across gateway processes', () => {
  const keyOf = (prefix: string, service: string, id: string) => `${prefix}services/${service}/${id}`;

  it('survives a gateway restart: no deregistration, at most one re-registration, the key never disappears', async () => {
    const port = String(await freePort());
    const env = gatewayEnv(target, stack.redis.url, { PORT: port });
    const url = `http://127.0.0.1:${port}`;
    let gateway = await startGatewayProcess(env);
    processes.push(gateway);
    // TTL 30 s (a heartbeat every 10 s): the pod is silent for at most one interval + the restart, well
    // within its TTL, and its key sits on a shared lease the restarted replica adopts.
    const handle = await registerInstance({ gateways: [url], service: 'restart', id: 'pod-1', address: '10.2.0.1', port: 80, ttl: 30 });
    handles.push(handle);
    const log = recordEvents(handle);
    const key = keyOf(env.ETCD_PREFIX, 'restart', 'pod-1');
    expect(await admin.instanceKeys(env.ETCD_PREFIX)).toEqual([key]);

    let missing = 0;
    let watching = true;
    const presence = (async () => {
      while (watching) {
        if (!(await admin.instanceKeys(env.ETCD_PREFIX)).includes(key)) missing++;
        await sleep(500);
      }
    })();

    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    // Down until the pod has noticed: at least one heartbeat hits the stopped gateway.
    await waitFor('a failed heartbeat', () => (log.count('heartbeat-failed') ? true : undefined), 30_000);
    const restartedAt = Date.now();
    gateway = await startGatewayProcess(env);
    processes.push(gateway);
    console.log(`gateway restarted in ${Date.now() - restartedAt} ms`);
    await waitFor('a heartbeat on the restarted gateway', () => log.after(restartedAt, 'heartbeat')[0], 60_000);
    await sleep(1_000);
    watching = false;
    await presence;

    console.log(`restart: ${log.count('heartbeat-failed')} failed heartbeats, ${log.count('reregistered')} re-registrations, key missing in ${missing} polls`);
    expect(missing).toBe(0);
    expect(log.count('heartbeat-failed')).toBeGreaterThanOrEqual(1);
    expect(log.count('deregistered')).toBe(0);
    expect(log.count('reregistered')).toBeLessThanOrEqual(1);
    const metrics = (await request(url, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^registry_deregistrations_total 0$/m);
    await handle.close();
    expect(await admin.instanceKeys(env.ETCD_PREFIX)).toEqual([]);
    gateway.child.kill('SIGTERM');
    await gateway.exited;
  });

  it('moves heartbeats to the other gateway within one heartbeat interval when its own is SIGKILLed, with no 404', async () => {
    const [portA, portB] = [String(await freePort()), String(await freePort())];
    const envA = gatewayEnv(target, stack.redis.url, { PORT: portA });
    const envB = { ...envA, PORT: portB };
    const [gwA, gwB] = await Promise.all([startGatewayProcess(envA), startGatewayProcess(envB)]);
    processes.push(gwA, gwB);
    const byUrl = new Map([
      [gwA.url, gwA],
      [gwB.url, gwB],
    ]);
    const handle = await registerInstance({ gateways: [gwA.url, gwB.url], service: 'failover', id: 'pod-1', address: '10.3.0.1', port: 80, ttl: 15 });
    handles.push(handle);
    const log = recordEvents(handle);
    const [preferred, other] = handle.gateways;
    expect(handle.gateway).toBe(preferred);
    await waitFor('a heartbeat on the preferred gateway', () => log.events.find((e) => e.name === 'heartbeat' && e.gateway === preferred), 30_000);

    byUrl.get(preferred)!.child.kill('SIGKILL');
    await byUrl.get(preferred)!.exited;
    const killedAt = Date.now();
    const moved = await waitFor('a heartbeat after the kill', () => log.after(killedAt, 'heartbeat')[0], 30_000);
    const movedAfterMs = moved.at - killedAt;
    console.log(`heartbeats moved to the other gateway ${movedAfterMs} ms after SIGKILL (interval ${Math.round(handle.heartbeatIntervalMs)} ms)`);
    expect(moved.gateway).toBe(other);
    // The first heartbeat due after the kill went through: nothing was missed, nothing failed.
    expect(log.after(killedAt, 'heartbeat-failed')).toEqual([]);
    expect(movedAfterMs).toBeLessThanOrEqual(handle.heartbeatIntervalMs + 1_000);
    expect(log.after(killedAt, 'failover')).toMatchObject([{ detail: { from: preferred, to: other } }]);
    await waitFor('a second heartbeat there', () => log.after(moved.at + 1, 'heartbeat')[0], 30_000);

    const metrics = (await request(other, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^registry_heartbeats_total\{result="not-found"\} 0$/m);
    expect(log.count('reregistered')).toBe(0);
    expect(await admin.instanceKeys(envA.ETCD_PREFIX)).toEqual([keyOf(envA.ETCD_PREFIX, 'failover', 'pod-1')]);
    await handle.close();
    byUrl.get(other)!.child.kill('SIGTERM');
    await byUrl.get(other)!.exited;
  });
});

describe('SDK registration through an etcd outage', () => {
  const stack = usePrivateStack();

  it('stays registered through an etcd outage longer than the TTL: the shared lease outlives it, nothing re-granted or re-registered', async () => {
    const gw = await stack.startGateway();
    const fleet = await Promise.all(
      Array.from({ length: 20 }, (_, i) => registerInstance({ gateways: [gw.url], service: 'outage', id: `pod-${i}`, address: '10.5.0.1', port: 80, ttl: 5 })),
    );
    handles.push(...fleet);
    const logs = fleet.map(recordEvents);
    const privateAdmin = etcdAdmin(stack.etcd());
    const keys = () => privateAdmin.listKeys(`${gw.prefix}services/outage/`);
    expect(await keys()).toHaveLength(20);

    stack.etcd().freeze();
    // TTL 5 s, but the instances sit on a shared lease of the 120 s class: an outage shorter than 2/3 of
    // it loses no key (one lease per instance lapsed here, and every pod had to be re-granted).
    await sleep(9_000);
    stack.etcd().thaw();
    const thawedAt = Date.now();
    // Every pod heartbeats again after the thaw, and the expiry sweep has run passes since: nothing gone.
    await waitFor('a heartbeat of every pod after the thaw', () => logs.every((l) => l.after(thawedAt, 'heartbeat').length >= 2), 20_000, 200);
    expect(await keys()).toHaveLength(20);
    await sleep(2_500);
    expect(await keys()).toHaveLength(20);

    const reregistered = logs.reduce((n, l) => n + l.count('reregistered'), 0);
    const failed = logs.reduce((n, l) => n + l.count('heartbeat-failed'), 0);
    const regrants = await gw.metric('registry_lease_regrants_total');
    console.log(`etcd frozen 9 s (TTL 5 s), 20 SDK pods: ${reregistered} re-registrations, ${failed} failed heartbeats, gateway re-grants ${regrants}`);
    expect(regrants).toBe(0);
    // Heartbeats of known instances are absorbed by the gateway during the outage (in memory).
    expect(reregistered).toBe(0);
    expect(logs.every((l) => l.count('deregistered') === 0)).toBe(true);
    await Promise.all(fleet.map((h) => h.close()));
    expect(await keys()).toEqual([]);
  });
});
