/**
 * Scale scenarios against one gateway replica: a fleet of up to 100,000 pods sharing a few hundred
 * sockets. Phases, each with etcd's and the gateway's counters read at its boundaries:
 *
 *   register  the held cohort registers (`--register-concurrency`), each pod heartbeating from its
 *             registration on, as a real pod does
 *   storm     (with `--storm N`) N more pods register as fast as `--storm-concurrency` allows while
 *             the held cohort keeps heartbeating
 *   hold      (with `--hold S`) every registered pod heartbeats for S seconds
 *
 * Registrations retry 503/429 after Retry-After (GatewayDriver). The figures that matter: heartbeats
 * answered 404 (a lease lapsed while its pod was alive), the gateway's re-grants, and renewals due
 * against the LeaseKeepAlive messages etcd received.
 */
import { performance } from 'node:perf_hooks';
import { EtcdCounterProbe, EtcdCounters, EtcdTarget, countInstanceKeys } from './etcd-probe';
import { forEachLimited, makePods } from './fleet-scenario';
import { SimPod } from './fleets/fleet-driver';
import { GatewayDriver } from './fleets/gateway-driver';
import { GatewayCounters, GatewayProbe, diffGatewayCounters } from './gateway-probe';
import { ProcessSampler, readProcess } from './process-sampler';
import { progressBar, sleep } from './progress';
import { HeartbeatWindows, renewalsDue } from './renewals-due';
import { BeatSchedule, CohortOutcome, ScaleParams, ScalePhase, ScaleResult } from './results';
import { TimingWheel } from './timing-wheel';
import { OpRecorder, OpStats, round } from './stats';

export interface ScaleDeps {
  probe?: EtcdCounterProbe;
  gatewayProbe: GatewayProbe;
  sampler: ProcessSampler;
  /** Where to count the fleet's keys at the end (skipped when absent). */
  aliveCheck?: { target: EtcdTarget };
  /** The replica whose RSS is read at the `rssAt` checkpoints. */
  gatewayPid?: number;
}

type Cohort = 'held' | 'storm';

/** Resolution of the heartbeat schedule: 100k pods at 20 s is ~50 due per tick. */
const WHEEL_TICK_MS = 10;

export async function runScale(p: ScaleParams, deps: ScaleDeps): Promise<ScaleResult> {
  const notes: string[] = [];
  const driver = new GatewayDriver([p.gateway], p.ttlSeconds, p.callTimeoutSeconds * 1000, 'sticky', {
    registerDeadlineMs: p.registerDeadlineSeconds * 1000,
    maxSockets: p.sockets,
    rawHttp: true,
  });
  const pods = makePods(p.pods + p.storm, p.services, p.prefix);
  const cohortOf = (pod: SimPod): Cohort => (pod.index < p.pods ? 'held' : 'storm');
  /** When the lease the gateway now renews for each pod was granted (ms); undefined while it has none. */
  const grantedAt: Array<number | undefined> = new Array<number | undefined>(pods.length).fill(undefined);
  const cohorts: Record<Cohort, CohortOutcome> = {
    held: { pods: p.pods, registered: 0, beats404: 0, reRegistered: 0 },
    storm: { pods: p.storm, registered: 0, beats404: 0, reRegistered: 0 },
  };
  const rss: ScaleResult['rss'] = [];
  const rssAt = [...p.rssAt].sort((a, b) => a - b);
  let registeredCount = 0;
  const noteRss = (when: string) => {
    const sample = deps.gatewayPid ? readProcess(deps.gatewayPid) : undefined;
    if (sample) rss.push({ instances: registeredCount, rssMb: round(sample.rssMb, 0), when });
  };

  // Heartbeats: one timing wheel for the whole fleet and a callback per answer, not a sleeping
  // promise chain per pod (see bench/results/load-generator.md for what that cost at 100k pods).
  let phaseBeats = new OpRecorder();
  let phaseSchedule: BeatSchedule = { scheduled: 0, sent: 0, written: 0, answered: 0 };
  let stopAt = Infinity;
  let inFlight = 0;
  const intervalMs = p.intervalSeconds * 1000;
  const wheel = new TimingWheel(WHEEL_TICK_MS);
  const nextTick = new Float64Array(pods.length);
  const beatNo = new Uint32Array(pods.length);
  const outstanding = new Uint8Array(pods.length);
  const windows = new HeartbeatWindows(pods.length, p.ttlSeconds);
  const fire = (i: number): void => {
    const tick = nextTick[i];
    if (tick >= stopAt) return;
    nextTick[i] = tick + intervalMs;
    wheel.schedule(i, tick + intervalMs);
    const n = ++beatNo[i];
    const rec = phaseBeats;
    const schedule = phaseSchedule;
    schedule.scheduled++;
    // A pod's heartbeat loop is sequential: a tick that comes while its last call is unanswered never happens.
    if (outstanding[i]) return rec.recordMissed();
    outstanding[i] = 1;
    inFlight++;
    schedule.sent++;
    const pod = pods[i];
    driver.beatRaw(pod, n, (r) => {
      const now = Date.now();
      outstanding[i] = 0;
      inFlight--;
      schedule.answered++;
      // From the tick, not from the send: time spent waiting for a socket counts.
      rec.record(r.ok, r.outcome, now - tick);
      if (r.outcome === '404') {
        cohorts[cohortOf(pod)].beats404++;
        grantedAt[i] = undefined;
      } else if (r.outcome === 're-registered') {
        cohorts[cohortOf(pod)].reRegistered++;
        grantedAt[i] = now;
        windows.granted(i);
      } else if (r.ok && grantedAt[i] !== undefined) {
        windows.heartbeat(i, grantedAt[i]!, now);
      }
    });
  };
  const wheelTimer = setInterval(() => wheel.due(Date.now(), fire), WHEEL_TICK_MS);
  const startBeating = (pod: SimPod): void => {
    nextTick[pod.index] = Date.now() + Math.random() * intervalMs; // pods are not in lockstep
    wheel.schedule(pod.index, nextTick[pod.index]);
  };

  const register = async (group: SimPod[], concurrency: number, label: string): Promise<OpStats> => {
    const rec = new OpRecorder();
    const bar = progressBar(label, 'pods');
    bar.start(group.length, 0, { detail: '' });
    const started = performance.now();
    await forEachLimited(group, concurrency, async (pod) => {
      const t = performance.now();
      const r = await driver.register(pod);
      rec.record(r.ok, r.outcome, performance.now() - t);
      if (r.ok) {
        grantedAt[pod.index] = Date.now();
        windows.granted(pod.index);
        cohorts[cohortOf(pod)].registered++;
        registeredCount++;
        while (rssAt.length && registeredCount >= rssAt[0]) {
          rssAt.shift();
          noteRss('registering');
        }
        if (intervalMs > 0) startBeating(pod);
      }
      bar.increment(1, { detail: rec.failedCount ? `(${rec.failedCount} failed)` : '' });
    });
    bar.stop();
    return rec.summarize((performance.now() - started) / 1000);
  };

  const phases: ScalePhase[] = [];
  const runPhase = async (name: ScalePhase['name'], body: () => Promise<OpStats | undefined>): Promise<void> => {
    const c0: EtcdCounters | undefined = await deps.probe?.read();
    const g0: GatewayCounters | undefined = await deps.gatewayProbe.read().catch(() => undefined);
    deps.gatewayProbe.takePeaks();
    const beats = new OpRecorder();
    phaseBeats = beats;
    const schedule: BeatSchedule = { scheduled: 0, sent: 0, written: 0, answered: 0 };
    phaseSchedule = schedule;
    const written0 = driver.heartbeatsWritten;
    const cpu0 = process.cpuUsage();
    const t0 = deps.sampler.sampleNow();
    const registrations = await body();
    const t1 = deps.sampler.sampleNow();
    const cpu = process.cpuUsage(cpu0);
    const c1 = await deps.probe?.read();
    const g1 = await deps.gatewayProbe.read().catch(() => undefined);
    const seconds = (t1 - t0) / 1000;
    schedule.written = driver.heartbeatsWritten - written0;
    phases.push({
      name,
      seconds: round(seconds),
      registrations,
      beats: beats.summarize(seconds),
      beatSchedule: schedule,
      renewalsDue: intervalMs > 0 ? renewalsDue(grantedAt, p.ttlSeconds, t0, t1) : 0,
      renewalsDueByHeartbeats: intervalMs > 0 ? windows.dueIn(t0, t1) : 0,
      instancesAtEnd: registeredCount,
      etcd: c0 && c1 ? EtcdCounterProbe.diff(c0, c1) : undefined,
      gateway: g0 && g1 ? diffGatewayCounters(g0, g1) : undefined,
      gatewayPeaks: deps.gatewayProbe.takePeaks(),
      processes: deps.sampler.usage(t0, t1),
      simulatorCpuPercent: round(((cpu.user + cpu.system) / 1e6 / seconds) * 100, 1),
    });
  };

  deps.sampler.start();
  deps.gatewayProbe.start();
  const held = pods.slice(0, p.pods);
  const storm = pods.slice(p.pods);
  await runPhase('register', () => register(held, p.registerConcurrency, `${p.label} register`));
  noteRss('after registration');
  if (storm.length) {
    await runPhase('storm', () => register(storm, p.stormConcurrency, `${p.label} storm`));
    noteRss('after the storm');
  }
  if (p.holdSeconds > 0) {
    await runPhase('hold', async () => {
      const bar = progressBar(`${p.label} hold`, 's');
      bar.start(p.holdSeconds, 0, { detail: '' });
      const end = Date.now() + p.holdSeconds * 1000;
      while (Date.now() < end) {
        await sleep(Math.min(1000, end - Date.now()));
        bar.update(Math.round(p.holdSeconds - (end - Date.now()) / 1000), { detail: `beats ok ${phaseBeats.okCount} failed ${phaseBeats.failedCount}` });
      }
      bar.stop();
      return undefined;
    });
    noteRss('end of hold');
  }
  stopAt = Date.now();
  clearInterval(wheelTimer);
  deps.gatewayProbe.stop();
  for (let waited = 0; inFlight > 0 && waited < 30_000; waited += 100) await sleep(100);
  if (inFlight > 0) notes.push(`${inFlight} heartbeats were still unanswered 30 s after the end`);
  deps.sampler.stop();

  if (deps.aliveCheck) {
    try {
      const keys = await countInstanceKeys(deps.aliveCheck.target, p.prefix);
      cohorts.held.aliveAtEnd = held.filter((pod) => keys.has(pod.key)).length;
      cohorts.storm.aliveAtEnd = storm.filter((pod) => keys.has(pod.key)).length;
    } catch (err) {
      notes.push(`alive check failed: ${(err as Error).message}`);
    }
  }
  await driver.close();
  const range = driver.retryStats.retryAfterSeconds;
  return {
    kind: 'scale',
    label: p.label,
    params: p,
    phases,
    rss,
    retries: { ...driver.retryStats, retryAfterSeconds: Number.isFinite(range.min) ? range : { min: 0, max: 0 } },
    cohorts: storm.length ? cohorts : { held: cohorts.held },
    notes,
  };
}
