/**
 * Where the bytes of 100,000 tracked instances go on the HTTP thread (and in the lease worker's
 * scheduler), measured structure by structure.
 *
 *   node --expose-gc -r ts-node/register/transpile-only -r tsconfig-paths/register \
 *     bench/experiments/memory-probe.ts [--instances 100000] [--services 10] [--watch-first] [--worker]
 *
 * The structures are the real ones, wired as RegistryRuntime wires them (directory, lease table of
 * an unstarted LeaseEngine, registrar, read model); only etcd is replaced by a fake store that
 * answers at once, and the watch by events built the way RegistryWatch builds them (strings decoded
 * from etcd's bytes, so they are distinct objects from what the registrar encoded). Records have the
 * bench's shape (apps/fleet-sim GatewayDriver.register). The heap is collected between phases, so
 * each delta is what the phase left live.
 *
 * --watch-first delivers each watch event before the registrar's Put resolves (the other order of
 * the race between a Put's answer and the watch stream).
 *
 * --worker [--worker-limits '{"maxYoungGenerationSizeMb":8}'] measures the lease worker instead: the
 * BUILT worker (dist/, `npm run build`; under ts-node it would load the compiler too), no etcd
 * reachable (its streams never open), N leases tracked through its real message protocol; reports
 * the process's RSS to start it and with the leases tracked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { getHeapStatistics } from 'node:v8';
import { RegistryReadModel } from '@app/cache';
import { InstanceDirectory, InstanceRegistrar, LeaseEngine, RegistryEvent, RegistryStore, RenewalScheduler, StoredRange } from '@app/etcd';
import { InstanceRegistration, KeyLayout } from '@app/registry';

const { values: args } = parseArgs({
  options: {
    instances: { type: 'string', default: '100000' },
    services: { type: 'string', default: '10' },
    'watch-first': { type: 'boolean', default: false },
    worker: { type: 'boolean', default: false },
    'worker-limits': { type: 'string' },
    churn: { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(args.instances);
const SERVICES = Number(args.services);
const WATCH_FIRST = args['watch-first'] === true;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

interface Sample {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

function settle(): Sample {
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

const churnLine: string[] = [];
const rows: Array<{ step: string; sample: Sample; delta: Sample }> = [];
let last = settle();
const base = last;
function step(name: string): Sample {
  const sample = settle();
  const delta = { heapUsed: sample.heapUsed - last.heapUsed, external: sample.external - last.external, arrayBuffers: sample.arrayBuffers - last.arrayBuffers, rss: sample.rss - last.rss };
  rows.push({ step: name, sample, delta });
  last = sample;
  return sample;
}

const MB = (n: number) => (n / 1024 / 1024).toFixed(1);
const perInstance = (n: number) => Math.round(n / N);

async function main(): Promise<void> {
  const layout = new KeyLayout('/registry/');
  let leaseCounter = 7_587_889_047_712_300_000n;
  let revision = 1;
  const pendingEvents: RegistryEvent[] = [];

  // What etcd would deliver on the watch for a Put: key and value decoded from bytes.
  const watchEventFor = (key: string, value: string, leaseId: string): RegistryEvent => {
    const address = layout.parseInstanceKey(Buffer.from(key).toString())!;
    return { type: 'put', service: address.service, id: address.id, value: Buffer.from(value).toString(), leaseId: String(BigInt(leaseId)), revision: ++revision, created: true };
  };

  // Registered at the end: the registrar never needs more than this fake.
  // As RegistryRuntime wires them: the directory holds the values, the lease table hands them over.
  const wired: { engine?: LeaseEngine } = {};
  const directory = new InstanceDirectory(layout, { retain: (key) => wired.engine!.table.has(key) });
  directory.replace({ revision: '1', items: [] });
  const engine = (wired.engine = new LeaseEngine({ connections: [], endpointsPerConnection: [], requestTimeoutMs: 5_000, tickMs: 500 }, { values: directory }));
  const leases = engine.table;
  const store = {
    layout,
    grantLease: async () => String(++leaseCounter),
    put: async (key: string, value: string, leaseId: string) => {
      if (WATCH_FIRST) fanOut([watchEventFor(key, value, leaseId)]);
      else pendingEvents.push(watchEventFor(key, value, leaseId));
      return { revision: String(revision) };
    },
    revokeLease: async () => undefined,
    listService: async (service: string): Promise<StoredRange> => {
      const items = [];
      for (const [key, entry] of directoryEntries()) {
        const address = layout.parseInstanceKey(key);
        if (address?.service === service) items.push({ key: Buffer.from(key).toString(), value: Buffer.from(entry.value).toString(), leaseId: entry.leaseId, modRevision: '1' });
      }
      return { revision: String(revision), items };
    },
    scanAll: async (): Promise<StoredRange> => ({ revision: String(revision), items: [] }),
  } as unknown as RegistryStore;
  const directoryEntries = function* (): Generator<[string, { value: string; leaseId: string }]> {
    for (let i = 0; i < N; i++) {
      const key = layout.instanceKey(`sim-${i % SERVICES}`, `pod-${i}`);
      const entry = directory.get(key);
      if (entry) yield [key, entry];
    }
  };
  const registrar = new InstanceRegistrar(store, leases, {
    writeConcurrency: 256,
    writeQueueCapacity: 100_000,
    regrantsPerSecond: 100,
    directory: { current: () => true, get: (key) => directory.get(key), recentlyDeleted: (key) => directory.recentlyDeleted(key) },
  });
  const watchState = { confirmedAt: Date.now() };
  // The initial read (of an empty registry): lookups are answered once it is done.
  directory.replace({ revision: String(revision), items: [] });
  const reads = new RegistryReadModel(directory, watchState, { staleAfterMs: 600_000 });
  // RegistryRuntime.fanOut, in its order.
  const fanOut = (events: RegistryEvent[]) => {
    directory.apply(events);
    reads.applyEvents(events);
    registrar.observeWrites(events);
  };
  step('empty structures');

  const registration = (i: number): InstanceRegistration => ({
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8080,
    ttl: 60,
    metadata: { version: '1.0.0' },
    tags: ['sim'],
    zone: `zone-${i % 3}`,
    weight: 100,
    status: 'UP',
  });

  // Registrations in waves of 1,000 (128 in flight in the bench), each wave's watch events after it.
  for (let from = 0; from < N; from += 1_000) {
    const wave = [];
    for (let i = from; i < Math.min(N, from + 1_000); i++) wave.push(registrar.register(`sim-${i % SERVICES}`, `pod-${i}`, registration(i)));
    await Promise.all(wave);
    if (pendingEvents.length) fanOut(pendingEvents.splice(0));
  }
  await new Promise((resolve) => setImmediate(resolve));
  const registered = step(`${N} registered, watch events applied (${WATCH_FIRST ? 'watch before Put answer' : 'watch after Put answer'})`);

  // Request-like garbage for --churn seconds (a ring of recent "requests" survives a few scavenges and
  // is promoted, as in a busy gateway): how far V8 lets the heap grow beyond what is live.
  const churnSeconds = Number(args.churn);
  if (churnSeconds > 0) {
    const ring: unknown[] = new Array(20_000);
    let peakTotal = 0;
    let peakRss = 0;
    const end = Date.now() + churnSeconds * 1000;
    for (let n = 0; Date.now() < end; n++) {
      ring[n % ring.length] = { path: `/v1/services/sim-${n % 10}/instances/pod-${n}/heartbeat`, headers: { a: 'x'.repeat(200 + (n % 50)) }, at: Date.now() };
      if (n % 10_000 === 0) {
        const m = process.memoryUsage();
        peakTotal = Math.max(peakTotal, m.heapTotal);
        peakRss = Math.max(peakRss, m.rss);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    churnLine.push(`churn ${churnSeconds} s: peak heapTotal ${MB(peakTotal)} MB, peak RSS ${MB(peakRss)} MB (live heap after it: ${MB(settle().heapUsed)} MB; heap limit ${MB(getHeapStatistics().heap_size_limit)} MB)`);
  }

  // One heartbeat per instance: must not allocate per instance.
  const now = Date.now();
  for (let i = 0; i < N; i++) await registrar.heartbeat(`sim-${i % SERVICES}`, `pod-${i}`);
  void now;
  step('one heartbeat per instance');

  // Every service resolved once: the read model's decoded views (the hold scenario resolves nothing).
  for (let s = 0; s < SERVICES; s++) reads.resolve(`sim-${s}`);
  step(`every service (${SERVICES}) resolved once: decoded lookup views`);

  // A PATCH-like re-put of every instance through another replica (watch only): values replaced.
  const replaced: RegistryEvent[] = [];
  for (let i = 0; i < N; i++) {
    const key = layout.instanceKey(`sim-${i % SERVICES}`, `pod-${i}`);
    const current = directory.get(key)!;
    replaced.push({ ...watchEventFor(key, current.value.replace('"UP"', '"DRAINING"'), current.leaseId), created: false });
    if (replaced.length === 1_000) fanOut(replaced.splice(0));
  }
  if (replaced.length) fanOut(replaced.splice(0));
  step('every instance re-put through another replica (watch events)');

  // The worker's scheduler, in this thread (same class, leaseIds structured-cloned as postMessage does).
  const scheduler = new RenewalScheduler({ send: () => 0, streamCount: 2 }, { heartbeatAt: () => now }, { tickMs: 500, maxInFlight: 10_000 });
  let slot = 0;
  for (const lease of leases.values()) scheduler.track(slot++, structuredClone(lease.leaseId), lease.ttlMs, now);
  step(`worker side: RenewalScheduler tracking ${scheduler.stats().tracked} leases (normally in the worker heap)`);

  const workerRss: string[] = [...churnLine];
  // Exclusive bytes of each structure: what emptying it frees (strings shared with another one stay).
  for (let i = 0; i < slot; i++) scheduler.untrack(i);
  step('RenewalScheduler emptied: its exclusive bytes (negative)');
  reads.resynced(++revision);
  step('lookup views dropped: their exclusive bytes (negative)');
  for (const lease of [...leases.values()]) leases.forget(lease.key);
  await new Promise((resolve) => setImmediate(resolve));
  step('lease table emptied: its exclusive bytes (negative)');
  directory.replace({ revision: String(++revision), items: [] });
  step('directory emptied: its exclusive bytes, values included (negative)');
  const total = { heapUsed: registered.heapUsed - base.heapUsed, rss: registered.rss - base.rss };
  const lines = [
    `instances: ${N}, services: ${SERVICES}, node ${process.version}, ${WATCH_FIRST ? 'watch event before the Put answer' : 'watch event after the Put answer'}`,
    '',
    '| step | heapUsed | Δ heapUsed | Δ per instance | Δ external | RSS | Δ RSS |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.step} | ${MB(r.sample.heapUsed)} MB | ${MB(r.delta.heapUsed)} MB | ${perInstance(r.delta.heapUsed)} B | ${MB(r.delta.external)} MB | ${MB(r.sample.rss)} MB | ${MB(r.delta.rss)} MB |`),
    '',
    `registered total (directory + lease table + registrar): ${MB(total.heapUsed)} MB heap = ${perInstance(total.heapUsed)} B per instance`,
    ...workerRss,
  ];
  console.log(lines.join('\n'));
}

/**
 * The built lease worker's RSS share, with optional resourceLimits (see --worker). Measured in a plain
 * `node` child: this process carries ts-node, whose own garbage would blur a few MB of RSS.
 */
async function measureWorker(): Promise<void> {
  const dir = path.resolve(__dirname, '..', '..', 'dist', 'apps', 'gateway', 'libs', 'etcd', 'src', 'lease-engine');
  if (!fs.existsSync(path.join(dir, 'lease-engine-worker.js'))) throw new Error(`${dir}/lease-engine-worker.js not found: run npm run build first`);
  const child = `
    const { Worker } = require('node:worker_threads');
    const [dir, n, limitsJson] = process.argv.slice(1);
    const N = Number(n), limits = limitsJson ? JSON.parse(limitsJson) : undefined;
    const { SEGMENT_SLOTS, ENGINE_STATS_LENGTH, LeaseSlots } = require(dir + '/lease-slots.js');
    const rss = () => process.memoryUsage().rss / 1048576;
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    (async () => {
      const segments = Array.from({ length: Math.ceil(N / SEGMENT_SLOTS) }, () => new SharedArrayBuffer(SEGMENT_SLOTS * 32));
      const before = rss();
      const worker = new Worker(dir + '/lease-engine-worker.js', { resourceLimits: limits, workerData: { kind: 'lease-engine', endpointsPerConnection: [['127.0.0.1:1'], ['127.0.0.1:1']], requestTimeoutMs: 1000, tickMs: 500, maxInFlight: 10000, segments, stats: new SharedArrayBuffer(ENGINE_STATS_LENGTH * 8) } });
      worker.on('message', (m) => m.t === 'token?' && worker.postMessage({ t: 'token', id: m.id }));
      await sleep(2000);
      const started = rss(), now = Date.now(), slots = new LeaseSlots(segments);
      for (let from = 0; from < N; from += 1000) {
        const ops = [];
        for (let slot = from; slot < Math.min(N, from + 1000); slot++) { ops.push([0, slot, String(7587889047712300000n + BigInt(slot)), 60000, now]); slots.markHeartbeat(slot, now); }
        worker.postMessage({ t: 'ops', ops });
        if (from % 10000 === 0) await sleep(10);
      }
      let peak = 0;
      for (let i = 0; i < 30; i++) { await sleep(500); peak = Math.max(peak, rss()); }
      const f = (x) => x.toFixed(0);
      console.log('built lease worker, ' + N + ' leases, resourceLimits ' + (limitsJson || 'default') + ': RSS +' + f(started - before) + ' MB to start it, +' + f(rss() - started) + ' MB with the leases tracked (peak +' + f(peak - started) + ' MB)');
      process.exit(0);
    })();`;
  const run = spawnSync(process.execPath, ['-e', child, dir, String(N), args['worker-limits'] ?? ''], { encoding: 'utf8' });
  process.stdout.write(run.stdout + run.stderr);
}

(args.worker ? measureWorker() : main()).then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
