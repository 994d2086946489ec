/**
 * One fleet scenario, the same for every design: register N pods, then heartbeat every `interval`
 * for `duration` (a fraction optionally going silent), with optional resolvers alongside; etcd's
 * counters and the processes' CPU/RSS are read at each phase boundary.
 */
import { performance } from 'node:perf_hooks';
import { CallOutcome, FleetDriver, Resolver, SimPod } from './fleets/fleet-driver';
import { EtcdCounterProbe, EtcdCounters, EtcdTarget, countInstanceKeys } from './etcd-probe';
import { ProcessSampler } from './process-sampler';
import { progressBar, sleep, sleepUntil } from './progress';
import { FleetParams, FleetResult } from './results';
import { OpRecorder, round } from './stats';

export interface FleetScenarioDeps {
  probe?: EtcdCounterProbe;
  sampler: ProcessSampler;
  /** Where to count the fleet's keys after the window (skipped when absent). */
  aliveCheck?: { target: EtcdTarget };
  resolver?: Resolver;
  /** Why resolvers were not run, when they were asked for. */
  resolverSkipped?: string;
  settleMaxMs: number;
  label: string;
}

export function makePods(count: number, services: number, prefix: string): SimPod[] {
  return Array.from({ length: count }, (_, index) => {
    const service = `sim-${index % services}`;
    const id = `pod-${index}`;
    return { index, service, id, key: `${prefix}services/${service}/${id}`, registered: false };
  });
}

/** Exactly floor(n * fraction) pods, spread evenly over the fleet. */
export function isSilent(index: number, fraction: number): boolean {
  return Math.floor((index + 1) * fraction) > Math.floor(index * fraction);
}

export async function forEachLimited<T>(items: T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length) await task(items[next++]);
  });
  await Promise.all(workers);
}

export async function runFleetScenario(driver: FleetDriver, params: FleetParams, deps: FleetScenarioDeps): Promise<FleetResult> {
  const notes: string[] = [];
  const pods = makePods(params.pods, params.services, params.prefix);
  const silent = new Set(pods.filter((p) => isSilent(p.index, params.silentFraction)).map((p) => p.index));
  const { sampler, probe } = deps;
  sampler.start();

  // Phase 1: registration. A pod starts heartbeating as soon as it is registered, as a real one
  // does: with 1000 pods registering over tens of seconds, a pod that waited for the others would
  // lose its lease (TTL) before its first heartbeat.
  const c0 = await probe?.read();
  const regStart = sampler.sampleNow();
  await driver.prepare?.();
  const regRec = new OpRecorder();
  const earlyBeatRec = new OpRecorder();
  const beatRec = new OpRecorder();
  const intervalMs = params.intervalSeconds * 1000;
  // Unknown (Infinity) until every pod has registered: the counted window starts then.
  let windowStart = Infinity;
  const loops: Promise<void>[] = [];

  const podLoop = async (pod: SimPod, from: number): Promise<void> => {
    const stopAt = () => windowStart + (silent.has(pod.index) ? Math.min(params.silentAfterSeconds, params.durationSeconds) : params.durationSeconds) * 1000;
    let tick = from + Math.random() * intervalMs; // pods are not in lockstep
    let n = 0;
    // Ticks before the window (while others still register) run but are counted apart.
    const recorder = (at: number) => (at < windowStart ? earlyBeatRec : beatRec);
    while (tick < stopAt()) {
      await sleepUntil(tick);
      const t = performance.now();
      const r: CallOutcome = await driver.beat(pod, n++);
      recorder(tick).record(r.ok, r.outcome, performance.now() - t);
      tick += intervalMs;
      // A pod's heartbeat loop is sequential (Go's ticker drops ticks): ticks that passed while
      // the call was running are beats that never happened.
      while (tick < Date.now() && tick < stopAt()) {
        recorder(tick).recordMissed();
        tick += intervalMs;
        n++;
      }
    }
  };

  const regBar = progressBar(`${deps.label} register`, 'pods');
  regBar.start(pods.length, 0, { detail: '' });
  const unregistered: SimPod[] = []; // (or registered as set-up only): their loops start with the window
  await forEachLimited(pods, params.registerConcurrency, async (pod) => {
    const t = performance.now();
    const r = await driver.register(pod);
    regRec.record(r.ok, r.outcome, performance.now() - t);
    if (r.ok && !driver.registrationIsSetup) loops.push(podLoop(pod, Date.now()));
    else unregistered.push(pod);
    regBar.increment(1, { detail: regRec.failedCount ? `(${regRec.failedCount} failed)` : '' });
  });
  regBar.stop();
  const regEnd = sampler.sampleNow();
  const regSeconds = (regEnd - regStart) / 1000;
  const c1 = await probe?.read();

  // Phase 2: heartbeat window (+ resolvers). Pods not heartbeating yet start now; those whose
  // registration failed register on their first tick.
  const resolveRec = new OpRecorder();
  windowStart = sampler.sampleNow();
  for (const pod of unregistered) loops.push(podLoop(pod, windowStart));
  const cpuAtStart = process.cpuUsage();
  const beatBar = progressBar(`${deps.label} heartbeats`, 's');
  beatBar.start(params.durationSeconds, 0, { detail: '' });
  const barTimer = setInterval(() => {
    const elapsed = Math.min(params.durationSeconds, Math.floor((Date.now() - windowStart) / 1000));
    beatBar.update(elapsed, { detail: `ok ${beatRec.okCount} failed ${beatRec.failedCount}` + (deps.resolver ? ` resolves ${resolveRec.okCount}` : '') });
  }, 200);

  let resolving = !!deps.resolver && params.resolvers > 0;
  const services = [...new Set(pods.map((p) => p.service))];
  const resolverLoop = async (r: number): Promise<void> => {
    let n = r;
    while (resolving) {
      const t = performance.now();
      const out = await deps.resolver!.resolve(services[Math.floor(Math.random() * services.length)], n++);
      resolveRec.record(out.ok, out.outcome, performance.now() - t);
      await sleep(params.resolveIntervalSeconds * 1000);
    }
  };
  const resolvers = resolving ? Array.from({ length: params.resolvers }, (_, r) => resolverLoop(r)) : [];

  await Promise.all(loops);
  resolving = false;
  await Promise.all(resolvers);
  clearInterval(barTimer);
  beatBar.update(params.durationSeconds, { detail: `ok ${beatRec.okCount} failed ${beatRec.failedCount}` });
  beatBar.stop();
  const windowStop = sampler.sampleNow();
  const cpu = process.cpuUsage(cpuAtStart);
  const windowSeconds = (windowStop - windowStart) / 1000;

  // Etcd may still be working off Authenticate calls the clients gave up on: wait, then read.
  let etcd: FleetResult['etcd'];
  if (probe && c0 && c1) {
    const settled = await probe.settle(deps.settleMaxMs);
    const c2: EtcdCounters = await probe.read();
    if (settled.inFlight > 0) notes.push(`etcd still had ${settled.inFlight} Authenticate calls in progress after waiting ${settled.seconds.toFixed(0)} s`);
    if (settled.inFlight < 0) notes.push(`etcd did not answer /metrics for ${settled.seconds.toFixed(0)} s after the window`);
    etcd = {
      register: EtcdCounterProbe.diff(c0, c1),
      heartbeats: EtcdCounterProbe.diff(c1, c2),
      total: EtcdCounterProbe.diff(c0, c2),
      settleSeconds: round(settled.seconds, 1),
      authInFlightAtEnd: settled.inFlight,
    };
  }
  sampler.stop();

  let alive: FleetResult['alive'];
  if (deps.aliveCheck) {
    try {
      const keys = await countInstanceKeys(deps.aliveCheck.target, params.prefix);
      const live = pods.filter((p) => !silent.has(p.index));
      alive = {
        expected: live.length,
        found: live.filter((p) => keys.has(p.key)).length,
        silent: silent.size,
        silentStillPresent: pods.filter((p) => silent.has(p.index) && keys.has(p.key)).length,
      };
    } catch (err) {
      notes.push(`alive check failed: ${(err as Error).message}`);
    }
  }
  await driver.close();

  const beatStats = beatRec.summarize(windowSeconds);
  return {
    kind: 'fleet',
    design: driver.design,
    label: deps.label,
    description: driver.description,
    params,
    registration: { seconds: round(regSeconds), stats: regRec.summarize(regSeconds), beatsMeanwhile: earlyBeatRec.summarize(regSeconds) },
    heartbeats: { seconds: round(windowSeconds), successRate: beatStats.attempted ? round(beatStats.ok / beatStats.attempted, 4) : 0, stats: beatStats },
    resolves: deps.resolver && params.resolvers > 0 ? { stats: resolveRec.summarize(windowSeconds) } : deps.resolverSkipped ? { skipped: deps.resolverSkipped } : undefined,
    alive,
    etcd,
    processes: { registration: sampler.usage(regStart, regEnd), heartbeats: sampler.usage(windowStart, windowStop) },
    simulatorCpuPercent: round(((cpu.user + cpu.system) / 1e6 / windowSeconds) * 100, 1),
    notes,
  };
}
