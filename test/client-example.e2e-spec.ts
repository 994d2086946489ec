/**
 * The example pod (examples/pod) end to end: two pods started as real processes register through the
 * SDK with a secured gateway, find each other with the resolver and call each other; SIGTERM
 * deregisters a pod before it exits (the SDK's signal hook), and no token appears in its output.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { freePort } from '@app/stack';
import { rawRequest } from './support/http';
import { useSecuredGateway } from './support/security';
import { waitFor } from './support/wait';

jest.setTimeout(180_000);

const ROOT = path.resolve(__dirname, '..');

interface Pod {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startPod(env: Record<string, string>): Pod {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', 'examples/pod/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, TS_NODE_PROJECT: 'tsconfig.json', HOST: '127.0.0.1', ADDRESS: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, url: `http://127.0.0.1:${env.PORT}`, output: () => output, exited };
}

describe('example pod', () => {
  const ctx = useSecuredGateway();
  const pods: Pod[] = [];
  afterAll(() => {
    for (const p of pods) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });

  const lookup = async (service: string): Promise<string[]> => {
    const res = await rawRequest(ctx.gw.url, { method: 'GET', path: `/v1/services/${service}`, token: ctx.tokens.reader });
    return (res.json as { instances: Array<{ id: string }> }).instances.map((i) => i.id);
  };

  it('registers, resolves its peer, answers through it, and deregisters on SIGTERM before exiting', async () => {
    const common = { GATEWAY_URLS: ctx.gw.url, REGISTRY_TOKEN: ctx.tokens.agent, TTL: '6' };
    const [portA, portB] = [String(await freePort()), String(await freePort())];
    const payments = startPod({ ...common, SERVICE: 'payments', PEER_SERVICE: 'payments-ledger', PORT: portA, INSTANCE_ID: 'payments-a' });
    const ledger = startPod({ ...common, SERVICE: 'payments-ledger', PEER_SERVICE: 'payments', PORT: portB, INSTANCE_ID: 'ledger-b' });
    pods.push(payments, ledger);

    await waitFor('both pods registered', async () => ((await lookup('payments')).includes('payments-a') && (await lookup('payments-ledger')).includes('ledger-b')), 60_000, 100);
    // Each pod's watch learns of the other within a poll interval (or at once with blocking queries).
    const viaPeer = await waitFor('payments to reach the ledger, which knows payments', async () => {
      const res = await rawRequest(payments.url, { method: 'GET', path: '/peer', timeoutMs: 5_000 });
      const body = res.status === 200 ? (res.json as { via: string; peer: { service: string; id: string; peer?: { id: string } } }) : undefined;
      return body?.peer.peer ? body : undefined;
    }, 60_000, 100);
    expect(viaPeer).toEqual({ via: 'payments-a', peer: expect.objectContaining({ service: 'payments-ledger', id: 'ledger-b', peer: expect.objectContaining({ id: 'payments-a' }) }) });

    payments.child.kill('SIGTERM');
    const exit = await payments.exited;
    // Re-raised after deregistering: the process ends by the signal, as it would without the SDK.
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(payments.output()).toContain('"msg":"deregistered"');
    await waitFor('payments-a to leave lookups', async () => !(await lookup('payments')).includes('payments-a'), 2_000, 100);
    expect(await ctx.gw.metric('registry_deregistrations_total')).toBe(1);

    ledger.child.kill('SIGINT');
    expect((await ledger.exited).signal).toBe('SIGINT');
    expect(await lookup('payments-ledger')).toEqual([]);
    for (const pod of pods) {
      expect(pod.output()).not.toContain(ctx.tokens.agent);
    }
  });
});
