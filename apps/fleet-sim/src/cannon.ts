/**
 * Raw HTTP throughput of one server for one request shape (autocannon, closed loop, N connections),
 * with many distinct paths so a per-instance server does real lookups. Run against the gateway and
 * against a bare Fastify handler of the same shape; the bench reports the ratio.
 */
import autocannon from 'autocannon';
import { EtcdCounterProbe } from './etcd-probe';
import { retryDelayMs } from './fleets/gateway-driver';
import { KeepAliveHttpClient } from './http-client';
import { ProcessSampler } from './process-sampler';
import { progressBar, sleep } from './progress';
import { CannonResult } from './results';
import { round } from './stats';

export interface CannonOptions {
  url: string;
  scenario: 'heartbeat' | 'resolve';
  /** heartbeat: instances pod-0..ids-1 of `services[0]`; resolve: the services looked up in turn. */
  services: string[];
  ids: number;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** Register the heartbeat instances (or `ids` instances per resolve service) first. */
  preregister: boolean;
  ttlSeconds: number;
  label: string;
}

/**
 * Registers the instances the scenario heartbeats or looks up. A registration shed with 503 or
 * rate-limited with 429 is tried again after Retry-After (a busy machine makes the gateway shed).
 */
export async function preregisterInstances(url: string, services: string[], ids: number, ttlSeconds: number): Promise<number> {
  const client = new KeepAliveHttpClient(url, 10_000, 32);
  const jobs = services.flatMap((service) => Array.from({ length: ids }, (_, i) => ({ service, id: `pod-${i}` })));
  const deadline = Date.now() + 120_000;
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < jobs.length) {
        const { service, id } = jobs[next++];
        for (let attempt = 0; ; attempt++) {
          const res = await client
            .request('PUT', `/v1/services/${service}/instances/${id}`, { address: '10.1.2.3', port: 8080, ttl: ttlSeconds, metadata: { version: '1.0.0' }, tags: ['sim'] })
            .catch(() => ({ status: 0, retryAfterSeconds: undefined }));
          if ((res.status === 503 || res.status === 429) && Date.now() < deadline) {
            await sleep(retryDelayMs(res.retryAfterSeconds, attempt));
            continue;
          }
          if (res.status !== 200 && res.status !== 201) failed++;
          break;
        }
      }
    }),
  );
  client.close();
  if (failed) throw new Error(`${failed} of ${jobs.length} pre-registrations failed`);
  return jobs.length;
}

function runAutocannon(opts: autocannon.Options, label: string, showProgress: boolean): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const bar = showProgress ? progressBar(label, 's') : undefined;
    let seconds = 0;
    let requests = 0;
    const instance = autocannon(opts, (err, result: autocannon.Result) => {
      bar?.stop();
      if (err) reject(err);
      else resolve(result);
    });
    bar?.start(Number(opts.duration), 0, { detail: '' });
    instance.on('response', () => requests++);
    instance.on('tick', () => bar?.update(++seconds, { detail: `${Math.round(requests / Math.max(1, seconds))} req/s` }));
  });
}

export async function runCannon(opts: CannonOptions, deps: { probe?: EtcdCounterProbe; sampler: ProcessSampler }): Promise<CannonResult> {
  const notes: string[] = [];
  if (opts.preregister) {
    const services = opts.scenario === 'heartbeat' ? [opts.services[0]] : opts.services;
    const n = await preregisterInstances(opts.url, services, opts.ids, opts.ttlSeconds);
    notes.push(`pre-registered ${n} instances`);
  }
  const heartbeat = opts.scenario === 'heartbeat';
  const method = heartbeat ? 'PUT' : 'GET';
  const expectedStatus = heartbeat ? 204 : 200;
  const paths = heartbeat
    ? Array.from({ length: opts.ids }, (_, i) => `/v1/services/${opts.services[0]}/instances/pod-${i}/heartbeat`)
    : opts.services.map((s) => `/v1/services/${s}`);
  // Prebuilt requests, one per path, cycled by every connection: autocannon rebuilds a request with a
  // setupRequest() function on every send, which costs the load generator about half its rate.
  const requests: autocannon.Request[] = paths.map((path) => ({ method, path }));
  const base: autocannon.Options = { url: opts.url, connections: opts.connections, requests, timeout: 10 };

  if (opts.warmupSeconds > 0) await runAutocannon({ ...base, duration: opts.warmupSeconds }, `${opts.label} warm-up`, true);

  const { sampler, probe } = deps;
  sampler.start();
  const c0 = await probe?.read();
  const t0 = sampler.sampleNow();
  const result = await runAutocannon({ ...base, duration: opts.durationSeconds }, opts.label, true);
  const t1 = sampler.sampleNow();
  const c1 = await probe?.read();
  sampler.stop();

  const statusCounts: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats ?? {})) statusCounts[code] = s.count ?? 0;
  const total = Object.values(statusCounts).reduce((a, b) => a + b, 0);
  return {
    kind: 'cannon',
    label: opts.label,
    target: opts.url,
    scenario: opts.scenario,
    method,
    pathExample: paths[0],
    expectedStatus,
    connections: opts.connections,
    durationSeconds: round(result.duration),
    warmupSeconds: opts.warmupSeconds,
    distinctPaths: paths.length,
    requests: total,
    requestsPerSecond: round(total / result.duration, 0),
    expectedStatusRate: total ? round((statusCounts[String(expectedStatus)] ?? 0) / total, 4) : 0,
    statusCounts,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: round(result.latency.mean) },
    responseBytesPerRequest: total ? round(result.throughput.total / total, 0) : 0,
    etcd: c0 && c1 ? EtcdCounterProbe.diff(c0, c1) : undefined,
    processes: sampler.usage(t0, t1),
    notes,
  };
}
