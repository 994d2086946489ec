/**
 * The yardstick for the gateway's registration rate: a plain etcd3 client doing what a registration
 * costs etcd (LeaseGrant, then a Put with that lease) at the same concurrency on the same etcd. One
 * shared authenticated client, warmed before the clock starts, so neither Authenticate nor channel
 * set-up is part of the figure.
 */
import { performance } from 'node:perf_hooks';
import { EtcdCounterProbe, EtcdTarget, etcdClient } from './etcd-probe';
import { grantAndPut } from './fleets/etcd-calls';
import { grpcErrorLabel, instanceValue } from './fleets/fleet-driver';
import { makePods } from './fleet-scenario';
import { ProcessSampler } from './process-sampler';
import { progressBar } from './progress';
import { RawRegisterResult } from './results';
import { OpRecorder, round } from './stats';

export interface RawRegisterOptions {
  target: EtcdTarget;
  pods: number;
  services: number;
  concurrency: number;
  ttlSeconds: number;
  prefix: string;
  label: string;
}

export async function runRawRegister(opts: RawRegisterOptions, deps: { probe?: EtcdCounterProbe; sampler: ProcessSampler }): Promise<RawRegisterResult> {
  const client = etcdClient(opts.target);
  const pods = makePods(opts.pods, opts.services, opts.prefix);
  // Warm-up: authenticate once and open the channel (concurrent first calls would each authenticate).
  await client.get(`${opts.prefix}services/`).string();
  await Promise.all(Array.from({ length: 8 }, (_, i) => grantAndPut(client, `${opts.prefix}warmup/${i}`, '{}', opts.ttlSeconds)));

  const rec = new OpRecorder();
  deps.sampler.start();
  const c0 = await deps.probe?.read();
  const t0 = deps.sampler.sampleNow();
  const bar = progressBar(opts.label, 'pods');
  bar.start(pods.length, 0, { detail: '' });
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency, pods.length) }, async () => {
      while (next < pods.length) {
        const pod = pods[next++];
        const t = performance.now();
        try {
          await grantAndPut(client, pod.key, instanceValue(pod, opts.ttlSeconds), opts.ttlSeconds);
          rec.record(true, 'registered', performance.now() - t);
        } catch (err) {
          rec.record(false, grpcErrorLabel(err), performance.now() - t);
        }
        bar.increment();
      }
    }),
  );
  bar.stop();
  const t1 = deps.sampler.sampleNow();
  const c1 = await deps.probe?.read();
  deps.sampler.stop();
  client.close();
  const seconds = (t1 - t0) / 1000;
  const stats = rec.summarize(seconds);
  return {
    kind: 'raw-register',
    label: opts.label,
    pods: opts.pods,
    concurrency: opts.concurrency,
    ttlSeconds: opts.ttlSeconds,
    seconds: round(seconds),
    registrationsPerSecond: round(stats.ok / seconds, 0),
    stats,
    etcd: c0 && c1 ? EtcdCounterProbe.diff(c0, c1) : undefined,
    processes: deps.sampler.usage(t0, t1),
    notes: [],
  };
}
