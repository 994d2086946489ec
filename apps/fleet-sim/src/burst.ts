/**
 * Cold-cache stampede: thousands of concurrent lookups of S services that no replica has cached
 * yet. The design target: at most S etcd Range calls cluster-wide (singleflight + Redis lock).
 */
import { performance } from 'node:perf_hooks';
import { GatewayDriver } from './fleets/gateway-driver';
import { EtcdCounterProbe } from './etcd-probe';
import { makePods } from './fleet-scenario';
import { ProcessSampler } from './process-sampler';
import { progressBar } from './progress';
import { BurstResult } from './results';
import { OpRecorder, round } from './stats';

export interface BurstOptions {
  gateways: string[];
  services: number;
  instancesPerService: number;
  requests: number;
  concurrency: number;
  ttlSeconds: number;
  label: string;
}

export async function runBurst(
  opts: BurstOptions,
  deps: { probe?: EtcdCounterProbe; sampler: ProcessSampler; resolveAvailable: () => Promise<string | undefined> },
): Promise<BurstResult> {
  const notes: string[] = [];
  // Registered through the first replica only; no lookup happens before the burst.
  const registrar = new GatewayDriver([opts.gateways[0]], opts.ttlSeconds, 10_000, 'sticky');
  const pods = makePods(opts.services * opts.instancesPerService, opts.services, '/');
  const failures = (await Promise.all(pods.map((p) => registrar.register(p)))).filter((r) => !r.ok).length;
  await registrar.close();
  if (failures) notes.push(`${failures} registrations failed`);
  const base: BurstResult = {
    kind: 'burst',
    label: opts.label,
    gateways: opts.gateways,
    services: opts.services,
    instancesPerService: opts.instancesPerService,
    requests: opts.requests,
    concurrency: opts.concurrency,
    seconds: 0,
    processes: [],
    notes,
  };
  const skipped = await deps.resolveAvailable();
  if (skipped) return { ...base, skipped };

  const driver = new GatewayDriver(opts.gateways, opts.ttlSeconds, 10_000, 'round-robin');
  const rec = new OpRecorder();
  const services = [...new Set(pods.map((p) => p.service))];
  deps.sampler.start();
  const c0 = await deps.probe?.read();
  const t0 = deps.sampler.sampleNow();
  const bar = progressBar(`${opts.label}`, 'lookups');
  bar.start(opts.requests, 0, { detail: '' });
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < opts.requests) {
        const n = next++;
        const t = performance.now();
        const r = await driver.resolve(services[n % services.length], n);
        rec.record(r.ok, r.outcome, performance.now() - t);
        bar.increment();
      }
    }),
  );
  bar.stop();
  const t1 = deps.sampler.sampleNow();
  const c1 = await deps.probe?.read();
  deps.sampler.stop();
  await driver.close();
  const seconds = (t1 - t0) / 1000;
  return {
    ...base,
    seconds: round(seconds),
    stats: rec.summarize(seconds),
    etcd: c0 && c1 ? EtcdCounterProbe.diff(c0, c1) : undefined,
    processes: deps.sampler.usage(t0, t1),
  };
}
