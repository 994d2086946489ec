/**
 * The SDK as an outside project gets it: built to CommonJS + .d.ts into a temporary folder with its
 * own package.json, installed as node_modules/@registry-gateway/client of a separate temporary
 * project (outside this repository, so nothing here can be resolved by accident), required from a
 * plain Node child process and used against a live, secured gateway; a TypeScript consumer compiles
 * against its declarations.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { useSecuredGateway } from './support/security';

jest.setTimeout(180_000);

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const SDK = path.join(ROOT, 'libs', 'client');
const TSC = require.resolve('typescript/bin/tsc');

const CONSUMER = `
const sdk = require('@registry-gateway/client');
const { registerInstance, resolver } = sdk;
const gateways = [process.env.GATEWAY_URL];
const token = process.env.REGISTRY_TOKEN;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const events = [];
  const handle = await registerInstance({ gateways, token, service: 'payments', id: 'pkg-pod', address: '10.9.0.1', port: 7000, ttl: 6, metadata: { from: 'package-test' } });
  for (const name of ['heartbeat', 'deregistered']) handle.on(name, () => events.push(name));
  const lookups = resolver({ gateways, token });
  const before = await lookups.get('payments', { meta: { from: 'package-test' } });
  await sleep(2500);
  await handle.close();
  let after;
  for (let i = 0; i < 40; i++) {
    after = await lookups.get('payments', { meta: { from: 'package-test' } });
    if (after.instances.length === 0) break;
    await sleep(50);
  }
  console.log(JSON.stringify({
    exports: Object.keys(sdk).sort(),
    before: before.instances.map((i) => i.id),
    after: after.instances.map((i) => i.id),
    events,
    resolvedFrom: require.resolve('@registry-gateway/client'),
  }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

const TS_CONSUMER = `
import { registerInstance, resolver, InstanceRegistration, Resolution, Instance, Picker } from '@registry-gateway/client';
export async function main(): Promise<void> {
  const handle: InstanceRegistration = await registerInstance({ gateways: ['http://gw:8080'], service: 's', id: 'i', address: 'a', port: 1, ttl: 30, closeOnSignals: true });
  handle.on('failover', ({ from, to }) => console.log(from, to));
  const r: Resolution = await resolver({ gateways: ['http://gw:8080'] }).get('s', { tags: ['x'], status: 'all' });
  const picked: Instance | undefined = new Picker({ strategy: 'weighted' }).pick(r.instances);
  console.log(picked?.address);
}
`;

describe('the SDK as a package', () => {
  const ctx = useSecuredGateway();
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-package-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('builds to CommonJS with declarations and declares no runtime dependency', async () => {
    const pkgDir = path.join(tmp, 'pkg');
    await run(process.execPath, [TSC, '-p', path.join(SDK, 'tsconfig.build.json'), '--outDir', path.join(pkgDir, 'dist')], { cwd: ROOT });
    fs.copyFileSync(path.join(SDK, 'package.json'), path.join(pkgDir, 'package.json'));
    fs.copyFileSync(path.join(SDK, 'README.md'), path.join(pkgDir, 'README.md'));
    const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('@registry-gateway/client');
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.peerDependencies ?? {}).toEqual({});
    for (const file of [manifest.main, manifest.types, manifest.exports['.'].require, manifest.exports['.'].types]) {
      expect(fs.existsSync(path.join(pkgDir, file))).toBe(true);
    }
    // Test doubles stay out of the package.
    expect(fs.readdirSync(path.join(pkgDir, 'dist')).filter((f) => /spec|testing/.test(f))).toEqual([]);
    // Only Node built-ins are required by the build output.
    const requires = new Set<string>();
    for (const file of fs.readdirSync(path.join(pkgDir, 'dist')).filter((f) => f.endsWith('.js'))) {
      for (const m of fs.readFileSync(path.join(pkgDir, 'dist', file), 'utf8').matchAll(/require\("([^"]+)"\)/g)) requires.add(m[1]);
    }
    expect([...requires].filter((m) => !m.startsWith('./') && !m.startsWith('node:'))).toEqual([]);
  });

  it('is required from a separate project and registers, resolves and deregisters against a live gateway', async () => {
    const consumer = path.join(tmp, 'consumer');
    const installed = path.join(consumer, 'node_modules', '@registry-gateway', 'client');
    fs.mkdirSync(path.dirname(installed), { recursive: true });
    fs.cpSync(path.join(tmp, 'pkg'), installed, { recursive: true });
    fs.writeFileSync(path.join(consumer, 'main.js'), CONSUMER);
    const { stdout } = await run(process.execPath, ['main.js'], {
      cwd: consumer,
      env: { PATH: process.env.PATH, GATEWAY_URL: ctx.gw.url, REGISTRY_TOKEN: ctx.tokens.agent },
      timeout: 60_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(result.resolvedFrom).toBe(path.join(installed, 'dist', 'index.js'));
    expect(result.exports).toEqual(expect.arrayContaining(['registerInstance', 'resolver', 'Picker', 'InstanceRegistration', 'GatewaysUnavailableError']));
    expect(result.before).toEqual(['pkg-pod']);
    expect(result.after).toEqual([]);
    expect(result.events).toContain('heartbeat');
    expect(result.events.at(-1)).toBe('deregistered');
    expect(await ctx.gw.metric('registry_deregistrations_total')).toBe(1);
  });

  it('type-checks a TypeScript consumer against its declarations', async () => {
    const consumer = path.join(tmp, 'consumer');
    fs.writeFileSync(path.join(consumer, 'check.ts'), TS_CONSUMER);
    const args = ['--noEmit', '--strict', '--module', 'commonjs', '--moduleResolution', 'node10', '--target', 'ES2022', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', 'check.ts'];
    await expect(run(process.execPath, [TSC, ...args], { cwd: consumer })).resolves.toBeDefined();
  });
});
