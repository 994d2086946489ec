/**
 * Scale scenarios against one or several gateway replicas: a fleet of up to 1,000,000 pods sharing a
 * few hundred sockets. Phases, each with etcd's and the gateways' counters read at its boundaries:
 *
 *   register  the held cohort registers (`--register-concurrency`), pod i through replica i mod R,
 *             each pod heartbeated from its registration on, as a real pod is
 *   storm     (with `--storm N`) N more pods register as fast as `--storm-concurrency` allows while
 *             the held cohort keeps heartbeating
 *   hold      (with `--hold S`) every registered pod is heartbeated for S seconds; with node agents
 *             and `--silence F`, a fraction F of the pods is silenced as it starts, and a watch
 *             records when each of their keys leaves etcd
 *
 * Who heartbeats is a HeartbeatSource: every pod for itself (`PodHeartbeats`) or node agents
 * (`NodeAgents`, `--agents N`). Registrations retry 503/429 after Retry-After (GatewayDriver). The
 * figures that matter: heartbeats answered 404 / `not_found` (an instance the gateway lost while its
 * pod was alive), the LeaseKeepAlive messages and Range calls etcd received, its CPU, the leases alive.
 */
import { performance } from 'node:perf_hooks';
import { DeletionWatch } from './deletion-watch';
import { EtcdCounterProbe, EtcdCounters, EtcdTarget, countLeases, forEachInstanceKey, sumCounters } from './etcd-probe';
import { GatewayDriver } from './fleets/gateway-driver';
import { GatewayCounters, GatewayProbe, diffGatewayCounters } from './gateway-probe';
import { HeartbeatSource } from './heartbeat-source';
import { NodeAgents } from './node-agents';
import { PodHeartbeats } from './pod-heartbeats';
import { PodTable, forEachIndexLimited } from './pod-table';
import { ProcessSampler, readProcess } from './process-sampler';
import { progressBar, sleep } from './progress';
import { CohortOutcome, ScaleParams, ScalePhase, ScaleResult, SilenceOutcome } from './results';
import { OpRecorder, OpStats, percentile, round } from './stats';

export interface ScaleDeps {
  probe?: EtcdCounterProbe;
  gatewayProbe: GatewayProbe;
  sampler: ProcessSampler;
  /** Where to count the fleet's keys and etcd's leases at the end (skipped when absent). */
  aliveCheck?: { target: EtcdTarget };
  /** The replica whose RSS is read at the `rssAt` checkpoints. */
  gatewayPid?: number;
}

type Cohort = 'held' | 'storm';

/** How long the last heartbeats may take to be answered after the last phase. */
const DRAIN_MS = 30_000;

export async function runScale(p: ScaleParams, deps: ScaleDeps): Promise<ScaleResult> {
  const notes: string[] = [];
  const driver = new GatewayDriver(p.gateways, p.ttlSeconds, p.callTimeoutSeconds * 1000, 'sticky', {
    registerDeadlineMs: p.registerDeadlineSeconds * 1000,
    maxSockets: p.sockets,
    rawHttp: true,
  });
  const table = new PodTable(p.pods + p.storm, p.services, p.prefix);
  const cohortOf = (i: number): Cohort => (i < p.pods ? 'held' : 'storm');
  const cohorts: Record<Cohort, CohortOutcome> = {
    held: { pods: p.pods, registered: 0, beats404: 0, reRegistered: 0 },
    storm: { pods: p.storm, registered: 0, beats404: 0, reRegistered: 0 },
  };
  const events = { lost: (i: number) => cohorts[cohortOf(i)].beats404++, reRegistered: (i: number) => cohorts[cohortOf(i)].reRegistered++ };
  const agents =
    p.agents > 0
      ? new NodeAgents(table, driver, { agents: p.agents, intervalSeconds: p.intervalSeconds, graceMs: p.agentGraceMs, callTimeoutMs: p.callTimeoutSeconds * 1000, gateways: p.gateways }, events)
      : undefined;
  const source: HeartbeatSource = agents ?? new PodHeartbeats(table, driver, p.intervalSeconds, p.ttlSeconds, events);

  const rss: ScaleResult['rss'] = [];
  const rssAt = [...p.rssAt].sort((a, b) => a - b);
  let registeredCount = 0;
  const noteRss = (when: string) => {
    const sample = deps.gatewayPid ? readProcess(deps.gatewayPid) : undefined;
    if (sample) rss.push({ instances: registeredCount, rssMb: round(sample.rssMb, 0), when });
  };

  const register = async (from: number, to: number, concurrency: number, label: string): Promise<OpStats> => {
    const rec = new OpRecorder();
    const bar = progressBar(label, 'pods');
    bar.start(to - from, 0, { detail: '' });
    const started = performance.now();
    await forEachIndexLimited(from, to, concurrency, async (i) => {
      const t = performance.now();
      const r = await driver.register(table.pod(i));
      rec.record(r.ok, r.outcome, performance.now() - t);
      if (r.ok) {
        table.markRegistered(i, Date.now());
        cohorts[cohortOf(i)].registered++;
        registeredCount++;
        while (rssAt.length && registeredCount >= rssAt[0]) {
          rssAt.shift();
          noteRss('registering');
        }
        source.registered(i);
      }
      bar.increment(1, { detail: rec.failedCount ? `(${rec.failedCount} failed)` : '' });
    });
    bar.stop();
    return rec.summarize((performance.now() - started) / 1000);
  };

  const phases: ScalePhase[] = [];
  const runPhase = async (name: ScalePhase['name'], body: () => Promise<OpStats | undefined>): Promise<void> => {
    const c0: EtcdCounters[] | undefined = await deps.probe?.readEach();
    const g0: GatewayCounters | undefined = await deps.gatewayProbe.read().catch(() => undefined);
    deps.gatewayProbe.takePeaks();
    source.beginPhase();
    const cpu0 = process.cpuUsage();
    const t0 = deps.sampler.sampleNow();
    const registrations = await body();
    const t1 = deps.sampler.sampleNow();
    const cpu = process.cpuUsage(cpu0);
    const c1 = await deps.probe?.readEach();
    const g1 = await deps.gatewayProbe.read().catch(() => undefined);
    const seconds = (t1 - t0) / 1000;
    const members = c0 && c1 ? c1.map((c, m) => EtcdCounterProbe.diff(c0[m], c)) : undefined;
    phases.push({
      name,
      seconds: round(seconds),
      registrations,
      ...source.endPhase(t0, t1, seconds),
      instancesAtEnd: registeredCount,
      etcd: members ? sumCounters(members) : undefined,
      etcdMembers: members && members.length > 1 ? members : undefined,
      gateway: g0 && g1 ? diffGatewayCounters(g0, g1) : undefined,
      gatewayPeaks: deps.gatewayProbe.takePeaks(),
      processes: deps.sampler.usage(t0, t1),
      simulatorCpuPercent: round(((cpu.user + cpu.system) / 1e6 / seconds) * 100, 1),
    });
  };

  deps.sampler.start();
  deps.gatewayProbe.start();
  await runPhase('register', () => register(0, p.pods, p.registerConcurrency, `${p.label} register`));
  noteRss('after registration');
  if (p.storm > 0) {
    await runPhase('storm', () => register(p.pods, p.pods + p.storm, p.stormConcurrency, `${p.label} storm`));
    noteRss('after the storm');
  }
  let silence: { watch: DeletionWatch; at: number; count: number } | undefined;
  if (p.holdSeconds > 0) {
    if (agents && p.silenceFraction > 0 && deps.aliveCheck) {
      // Started before the hold's counters are read: its Authenticate and Watch stream are not the hold's.
      const watch = await DeletionWatch.start(deps.aliveCheck.target, table);
      silence = { watch, at: 0, count: 0 };
    }
    await runPhase('hold', async () => {
      if (silence && agents) {
        silence.at = Date.now();
        silence.count = agents.silence(p.silenceFraction);
      }
      const bar = progressBar(`${p.label} hold`, 's');
      bar.start(p.holdSeconds, 0, { detail: '' });
      const end = Date.now() + p.holdSeconds * 1000;
      while (Date.now() < end) {
        await sleep(Math.min(1000, end - Date.now()));
        const gone = silence ? `, silenced gone ${silence.watch.goneAt.size}/${silence.count}` : '';
        bar.update(Math.round(p.holdSeconds - (end - Date.now()) / 1000), { detail: source.progress() + gone });
      }
      bar.stop();
      return undefined;
    });
    noteRss('end of hold');
  }
  deps.gatewayProbe.stop();
  await silence?.watch.close();

  // Counted while the pods are still heartbeated: at 1M keys the count takes tens of seconds, longer
  // than a TTL-30 pod may stay silent. Heartbeat outcomes meanwhile are checked, not reported as a phase.
  const afterT0 = Date.now();
  source.beginPhase();
  let leasesAtEnd: number | undefined;
  let keysAtEnd: number | undefined;
  if (deps.aliveCheck) {
    try {
      leasesAtEnd = await countLeases(deps.aliveCheck.target);
    } catch (err) {
      notes.push(`lease count failed: ${(err as Error).message}`);
    }
    try {
      const present = new Uint8Array(table.count);
      keysAtEnd = 0;
      await forEachInstanceKey(deps.aliveCheck.target, p.prefix, (key) => {
        const i = table.indexOfKey(key);
        if (i >= 0) {
          present[i] = 1;
          keysAtEnd!++;
        }
      });
      for (const [name, from, to] of [['held', 0, p.pods], ['storm', p.pods, table.count]] as const) {
        const c = cohorts[name];
        c.aliveAtEnd = 0;
        if (silence) c.silenced = c.silencedPresentAtEnd = 0;
        for (let i = from; i < to; i++) {
          if (agents?.isSilenced(i)) {
            c.silenced!++;
            c.silencedPresentAtEnd! += present[i];
          } else c.aliveAtEnd += present[i];
        }
      }
    } catch (err) {
      notes.push(`alive check failed: ${(err as Error).message}`);
    }
  }
  const afterT1 = Date.now();
  const after = source.endPhase(afterT0, afterT1, (afterT1 - afterT0) / 1000);
  const unexpected = Object.entries(after.refs ?? after.beats.outcomes).filter(([k]) => !['accepted', '204', '200', 'missed', 'nothing to send'].includes(k));
  if (unexpected.length) notes.push(`while etcd was counted after the hold (${round((afterT1 - afterT0) / 1000, 1)} s): ${unexpected.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  notes.push(...(await source.stop(DRAIN_MS)));
  deps.sampler.stop();
  await driver.close();
  const range = driver.retryStats.retryAfterSeconds;
  return {
    kind: 'scale',
    label: p.label,
    params: p,
    phases,
    rss,
    retries: { ...driver.retryStats, retryAfterSeconds: Number.isFinite(range.min) ? range : { min: 0, max: 0 } },
    cohorts: p.storm > 0 ? cohorts : { held: cohorts.held },
    agents: agents ? { agents: p.agents, perAgent: agents.perAgent, replicas: p.gateways.length, graceMs: p.agentGraceMs } : undefined,
    silence: silence && agents ? silenceOutcome(silence, agents, table, p.ttlSeconds) : undefined,
    leasesAtEnd,
    keysAtEnd,
    notes,
  };
}

/**
 * How long each silenced pod's key outlived the last time the gateway heard of it: the last heartbeat
 * it accepted for the pod, or the pod's registration if no batch named it yet (registered within the
 * agent's grace before the hold).
 */
function silenceOutcome(s: { watch: DeletionWatch; at: number; count: number }, agents: NodeAgents, table: PodTable, ttlSeconds: number): SilenceOutcome {
  const delays: number[] = [];
  const sinceSilence: number[] = [];
  let liveDeleted = 0;
  for (const [i, goneAt] of s.watch.goneAt) {
    if (!agents.isSilenced(i)) {
      liveDeleted++;
      continue;
    }
    delays.push((goneAt - Math.max(agents.lastAccepted[i], table.registeredAt[i])) / 1000);
    sinceSilence.push((goneAt - s.at) / 1000);
  }
  const d = Float64Array.from(delays).sort();
  const since = Float64Array.from(sinceSilence).sort();
  const limit = ttlSeconds + 5;
  return {
    silenced: s.count,
    ttlSeconds,
    gone: d.length,
    goneWithinTtlPlus5: delays.filter((x) => x <= limit).length,
    delaySeconds: { min: round(d[0] ?? 0), p50: round(percentile(d, 50)), p99: round(percentile(d, 99)), max: round(d[d.length - 1] ?? 0) },
    sinceSilenceSeconds: { p50: round(percentile(since, 50)), max: round(since[since.length - 1] ?? 0) },
    liveDeleted,
    watchDisconnects: s.watch.disconnects,
  };
}
