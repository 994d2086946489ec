/**
 * The scale report (`npm run bench -- --scale`): issue 10's acceptance figures measured on one
 * replica, and issue 21's node-agent runs (agents-report.ts), each next to its target. Every figure
 * comes from a scenario record; the prose is fixed.
 */
import { agentSection } from './agents-report';
import { BenchOptions } from './cli';
import { MachineInfo, Versions } from './machine';
import { cpuRss, machineTable, num, pairFigure, pairRatio, pct, proc, ratio, roundRatios, table } from './report';
import { ScenarioRecord } from './scenario';
import { gatewayRate, type RegisterRateRun } from './scenarios/scale';
import type { ThroughputRun } from './scenarios/throughput';
import { ProcessUsage, ScalePhase, ScaleResult } from './sim-results';

export interface ScaleReportData {
  command: string;
  startedAt: Date;
  finishedAt: Date;
  machine: MachineInfo;
  versions: Versions;
  idleCheckCpuPercent: number;
  loadAverage: { start: number[]; end: number[] };
  options: BenchOptions;
  records: ScenarioRecord[];
  rawFile: string;
}

type Verdict = 'met' | 'NOT met' | 'not measured';
const verdict = (ok: boolean | undefined): Verdict => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');

function result<T>(d: ScaleReportData, name: string): T | undefined {
  return d.records.find((r) => r.name === name && r.status === 'ok')?.result as T | undefined;
}

const phase = (r: ScaleResult | undefined, name: ScalePhase['name']) => r?.phases.find((p) => p.name === name);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const regrants = (r: ScaleResult) => sum(r.phases.map((p) => p.gateway?.regrants ?? 0));
const beats404 = (p: ScalePhase) => p.beats.outcomes['404'] ?? 0;
const keepAliveShare = (p: ScalePhase | undefined) => (p?.etcd && p.renewalsDue > 0 ? p.etcd.leaseKeepAliveMessages / p.renewalsDue : undefined);
const keepAliveShareOfReceived = (p: ScalePhase) => (p.etcd && p.renewalsDueByHeartbeats ? p.etcd.leaseKeepAliveMessages / p.renewalsDueByHeartbeats : undefined);
/** Whether the generator delivered its schedule: ticks due, calls made, written to a socket, answered. */
function beatSchedule(p: ScalePhase): string {
  const s = p.beatSchedule;
  if (!s || !s.scheduled) return '–';
  return `${num(s.scheduled)} / ${num(s.sent)} / ${num(s.written)} / ${num(s.answered)} (sent ${pct(s.sent / s.scheduled)})`;
}
function renewalsDueCell(p: ScalePhase): string {
  return p.renewalsDueByHeartbeats === undefined ? num(p.renewalsDue) : `${num(p.renewalsDue)} / ${num(p.renewalsDueByHeartbeats)}`;
}
function keepAliveCell(p: ScalePhase): string {
  if (!p.etcd) return '–';
  const share = keepAliveShare(p);
  const received = keepAliveShareOfReceived(p);
  const shares = [share, received].filter((x): x is number => x !== undefined).map(pct);
  return `${num(p.etcd.leaseKeepAliveMessages)}${shares.length ? ` (${shares.join(' / ')})` : ''}`;
}
const mb = (x: number) => `${num(Math.round(x))} MB`;
const usage = (ps: ProcessUsage[], name: string) => cpuRss(proc(ps, name));

/** Largest RSS reading at or beyond `instances` tracked. */
function rssAt(r: ScaleResult | undefined, instances: number): number | undefined {
  const at = r?.rss.filter((s) => s.instances >= instances).map((s) => s.rssMb);
  return at?.length ? Math.max(...at) : undefined;
}

function targets(d: ScaleReportData): string[] {
  const rows: Array<[string, string, Verdict]> = [];
  const rate = result<RegisterRateRun>(d, 'register-rate');
  if (rate) {
    const figure = registrationFigure(rate);
    rows.push([
      `registration rate ≥ raw etcd3 LeaseGrant+Put (concurrency ${rate.raw.concurrency}, same etcd, same run)`,
      `**${figure.toFixed(2)}**${roundRatios(rate)}; median round: gateway ${num(gatewayRate(rate.gateway))}/s vs raw ${num(rate.raw.registrationsPerSecond)}/s`,
      verdict(figure >= 1),
    ]);
  } else rows.push(['registration rate ≥ raw etcd3', '–', 'not measured']);
  const tp = result<ThroughputRun>(d, 'throughput');
  for (const name of ['heartbeat', 'resolve'] as const) {
    const pair = tp?.pairs.find((p) => p.scenario === name);
    const r = pair && pairFigure(pair);
    rows.push([
      `${name} throughput ≥ 0.8 of bare Fastify`,
      r === undefined ? (pair?.skipped ?? '–') : `**${r.toFixed(2)}**${roundRatios(pair!)}; median round ${num(pair!.gateway!.requestsPerSecond)} vs ${num(pair!.bare!.requestsPerSecond)} req/s`,
      verdict(r === undefined ? undefined : r >= 0.8),
    ]);
  }
  const batch = tp?.batch;
  rows.push(
    batch
      ? ['`POST /v1/heartbeats` ≥ 200k instance heartbeats/s', `**${num(batch.gateway.instanceHeartbeatsPerSecond)}**/s (${batch.refsPerRequest} refs per request; bare Fastify ${num(batch.bare.instanceHeartbeatsPerSecond)}/s)`, verdict(batch.gateway.instanceHeartbeatsPerSecond >= 200_000)]
      : ['`POST /v1/heartbeats` ≥ 200k instance heartbeats/s', tp?.batchSkipped ?? '–', 'not measured'],
  );
  const hold = result<ScaleResult>(d, 'hold');
  const holdPods = d.options.scaleSizes.hold.pods;
  const rss = rssAt(hold, holdPods);
  rows.push([`RSS with ${num(holdPods)} instances tracked, heartbeats flowing < 512 MiB`, rss === undefined ? '–' : `**${mb(rss)}**`, verdict(rss === undefined ? undefined : rss < 512 * 1.048576)]);
  const hp = phase(hold, 'hold');
  if (hold && hp) {
    const share = keepAliveShare(hp);
    rows.push([`${num(holdPods)} instances heartbeating: 0 heartbeats answered 404 in the hold`, `**${num(beats404(hp))}** (${num(hold.cohorts.held.beats404)} over the whole run)`, verdict(beats404(hp) === 0)]);
    rows.push(['… 0 re-grants', `**${num(hp.gateway?.regrants ?? 0)}** in the hold (${num(regrants(hold))} over the whole run)`, verdict((hp.gateway?.regrants ?? 0) === 0)]);
    rows.push(['… LeaseKeepAlive messages etcd received ≥ 95 % of renewals due', share === undefined ? '–' : `${num(hp.etcd!.leaseKeepAliveMessages)} / ${num(hp.renewalsDue)} = **${pct(share)}**`, verdict(share === undefined ? undefined : share >= 0.95)]);
  } else rows.push([`${num(holdPods)} instances heartbeating`, '–', 'not measured']);
  const storm = result<ScaleResult>(d, 'storm');
  if (storm) {
    const lapsed = storm.cohorts.held.beats404;
    const sp = phase(storm, 'storm');
    rows.push([
      `storm: 0 leases of the ${num(storm.params.pods)} heartbeating pods lapse while ${num(storm.params.storm)} register`,
      `heartbeats answered 404: **${num(lapsed)}**; re-grants during the storm: **${num(sp?.gateway?.regrants ?? 0)}**`,
      verdict(lapsed === 0 && (sp?.gateway?.regrants ?? 0) === 0),
    ]);
  } else rows.push(['storm: 0 leases of heartbeating pods lapse', '–', 'not measured']);
  const restart = result<ScaleResult>(d, 'restart');
  if (restart) {
    const c = restart.cohorts.held;
    rows.push([
      `${num(c.pods)} pods starting at once: every pod registered, 0 heartbeats 404, every pod in etcd at the end`,
      `registered **${num(c.registered)}**, 404 **${num(c.beats404)}**, in etcd **${c.aliveAtEnd === undefined ? '?' : num(c.aliveAtEnd)}** / ${num(c.pods)}`,
      verdict(c.registered === c.pods && c.beats404 === 0 && c.aliveAtEnd === c.pods),
    ]);
  } else rows.push(['pods starting at once', '–', 'not measured']);
  return [table(['target (issue 10)', 'measured', ''], rows)];
}

function phaseTable(r: ScaleResult): string {
  const rows = r.phases.map((p) => {
    const peaks = p.gatewayPeaks;
    return [
      p.name,
      `${p.seconds} s`,
      num(p.instancesAtEnd),
      p.registrations ? `${num(p.registrations.ok)} / ${num(p.registrations.attempted)}, **${num(p.registrations.okPerSecond)}/s**, p99 ${num(p.registrations.latency.p99)} ms` : '–',
      beatSchedule(p),
      p.beats.attempted ? `${num(p.beats.ok)} / ${num(p.beats.attempted)}, p99 ${num(p.beats.latency.p99)} ms` : '–',
      `**${num(beats404(p))}**`,
      renewalsDueCell(p),
      keepAliveCell(p),
      p.gateway ? `${num(p.gateway.renewalsConfirmed)} / ${num(p.gateway.renewalsLost)}` : '–',
      p.gateway ? `**${num(p.gateway.regrants)}**` : '–',
      p.gateway ? Object.entries(p.gateway.admissionRejections).map(([k, v]) => `${k} ${num(v)}`).join(', ') || '0' : '–',
      peaks ? `${num(peaks.renewalBacklog)} / ${peaks.renewalOldestDueSeconds.toFixed(1)} s / ${Math.round(peaks.eventLoopDelaySeconds * 1000)} ms` : '–',
      p.etcd ? `${num(p.etcd.leaseGrant)} / ${num(p.etcd.put)} / ${num(p.etcd.txn)}` : '–',
      usage(p.processes, 'gateway'),
      usage(p.processes, 'etcd'),
      `${p.simulatorCpuPercent} %`,
    ];
  });
  return table(
    [
      'phase',
      'length',
      'instances at end',
      'registrations ok / tried, rate',
      'heartbeats scheduled / sent / written / answered',
      'heartbeats ok / tried, p99 from the tick',
      'heartbeats 404',
      'renewals due (schedule / heartbeats received)',
      'etcd KeepAlive msgs (of due: schedule / received)',
      'gateway renewals confirmed / lost',
      're-grants',
      'shed (503) by reason',
      'peak backlog / oldest due / loop delay p99',
      'etcd LeaseGrant / Put / Txn',
      'gateway CPU / RSS',
      'etcd CPU / RSS',
      'fleet-sim CPU',
    ],
    rows,
  );
}

function cohortLines(r: ScaleResult): string[] {
  const lines = Object.entries(r.cohorts).map(
    ([name, c]) =>
      `- ${name === 'held' ? 'pods registered first' : 'pods registering in the storm'}: ${num(c.registered)} / ${num(c.pods)} registered, ` +
      `${num(c.beats404)} heartbeats answered 404, ${num(c.reRegistered)} registered again after a 404, ${c.aliveAtEnd === undefined ? '?' : num(c.aliveAtEnd)} in etcd at the end`,
  );
  const rt = r.retries;
  const retried = Object.entries(rt.retried).map(([k, v]) => `${num(v)} × ${k}`).join(', ');
  lines.push(
    retried
      ? `- registrations refused and retried after Retry-After: ${retried} (Retry-After ${rt.retryAfterSeconds.min}-${rt.retryAfterSeconds.max} s); ${num(rt.succeededAfterRetry)} succeeded on a retry, ${num(rt.gaveUp)} gave up`
      : '- no registration was refused (no 503/429)',
  );
  const outcomes = r.phases.flatMap((p) => Object.entries(p.beats.outcomes).filter(([k]) => k !== '204').map(([k, v]) => `${p.name}: ${k} ${num(v)}`));
  if (outcomes.length) lines.push(`- heartbeat outcomes other than 204: ${outcomes.join(', ')}`);
  lines.push(...r.notes.map((n) => `- ${n}`));
  return lines;
}

function scaleSection(d: ScaleReportData, name: string, heading: string, intro: string): string[] {
  const rec = d.records.find((r) => r.name === name);
  if (!rec) return [];
  const out = [`## ${heading}`, '', intro, ''];
  if (rec.status !== 'ok') return [...out, `Not measured: ${rec.status} (${rec.reason}).`, ''];
  const r = rec.result as ScaleResult;
  out.push(phaseTable(r), '', ...cohortLines(r), '');
  out.push(`Scenario took ${rec.seconds} s; load average (1 min) ${rec.loadAverage.start} at its start, ${rec.loadAverage.end} at its end.`, '');
  return out;
}

/** The median per-round ratio; a result recorded before rounds existed has one pair only. */
const registrationFigure = (run: RegisterRateRun) => run.ratio ?? gatewayRate(run.gateway) / run.raw.registrationsPerSecond;

function registerRateSection(d: ScaleReportData): string[] {
  const rec = d.records.find((r) => r.name === 'register-rate');
  if (!rec) return [];
  const out = ['## Registration rate: gateway vs raw etcd3', ''];
  if (rec.status !== 'ok') return [...out, `Not measured: ${rec.status} (${rec.reason}).`, ''];
  const run = rec.result as RegisterRateRun;
  const rounds = run.rounds ?? [{ raw: run.raw, gateway: run.gateway }];
  out.push(
    `${num(run.raw.pods)} registrations each, ${run.raw.concurrency} in flight, on the same fresh etcd in the same run (different key prefixes per client and round). ` +
      `Raw etcd3 and the gateway alternate, ${rounds.length} round(s) each; the figure is the median of the per-round ratios (rounds run back to back see nearly the same machine; a busy moment on the shared cores costs one pair). ` +
      'Raw: one etcd3 client shared by all calls, authenticated and warmed before the clock starts, LeaseGrant then Put with the lease (what a registration costs etcd). ' +
      'Gateway: a replica started for the round, `PUT /v1/services/{s}/instances/{id}` over 256 keep-alive sockets, no heartbeats, 503/429 retried after Retry-After.',
    '',
  );
  const rows: Array<Array<string | number>> = [];
  rounds.forEach(({ raw, gateway }, i) => {
    const g = gateway.phases[0];
    const round = rounds.length > 1 ? `${i + 1}: ` : '';
    rows.push([`${round}raw etcd3`, `${num(raw.stats.ok)} / ${num(raw.stats.attempted)}`, raw.seconds, `**${num(raw.registrationsPerSecond)}/s**`, `${raw.stats.latency.p50} / ${raw.stats.latency.p99}`, raw.etcd ? `${num(raw.etcd.leaseGrant)} / ${num(raw.etcd.put)} / ${num(raw.etcd.txn)}` : '–', '–', usage(raw.processes, 'etcd'), usage(raw.processes, 'fleet-sim'), '']);
    rows.push(
      g?.registrations
        ? [`${round}gateway`, `${num(g.registrations.ok)} / ${num(g.registrations.attempted)}`, g.seconds, `**${num(g.registrations.okPerSecond)}/s**`, `${g.registrations.latency.p50} / ${g.registrations.latency.p99}`, g.etcd ? `${num(g.etcd.leaseGrant)} / ${num(g.etcd.put)} / ${num(g.etcd.txn)}` : '–', usage(g.processes, 'gateway'), usage(g.processes, 'etcd'), `${g.simulatorCpuPercent} %`, `**${ratio(g.registrations.okPerSecond, raw.registrationsPerSecond)}**`]
        : [`${round}gateway`, '–', '–', '–', '–', '–', '–', '–', '–', '–'],
    );
  });
  rows.push(['**gateway / raw, median of the rounds**', '', '', '', '', '', '', '', '', `**${registrationFigure(run).toFixed(2)}**`]);
  out.push(table(['client', 'registrations ok', 'seconds', 'rate', 'latency p50 / p99 ms', 'etcd LeaseGrant / Put / Txn', 'gateway CPU / RSS', 'etcd CPU / RSS', 'fleet-sim CPU', 'gateway / raw'], rows), '');
  for (const [i, { gateway }] of rounds.entries()) out.push(...cohortLines(gateway).map((line) => (rounds.length > 1 ? line.replace(/^- /, `- round ${i + 1}: `) : line)));
  out.push('');
  return out;
}

function throughputSection(d: ScaleReportData): string[] {
  const rec = d.records.find((r) => r.name === 'throughput');
  if (!rec) return [];
  const out = ['## Hot routes vs a bare Fastify handler of the same shape', ''];
  if (rec.status !== 'ok') return [...out, `Not measured: ${rec.status} (${rec.reason}).`, ''];
  const tp = rec.result as ThroughputRun;
  const s = d.options.settings;
  out.push(
    `autocannon, ${s.cannonConnections} connections, ${s.cannonRounds} round(s) of ${s.cannonSeconds} s per server after ${s.cannonWarmupSeconds} s warm-up, bare and gateway alternating; ` +
      'the figure is the median of the per-round ratios (a busy moment on the shared cores costs one pair, not the comparison), and the req/s shown are that round\'s. ' +
      'The same scenario as in the default report (its tables there show every round).',
    '',
  );
  const rows = tp.pairs.map((p) =>
    p.bare && p.gateway
      ? [p.scenario, `${p.gateway.method} ${p.gateway.pathExample}`, num(p.bare.requestsPerSecond), num(p.gateway.requestsPerSecond), `**${pairRatio(p)}**${roundRatios(p)}`, `${p.gateway.latency.p50} / ${p.gateway.latency.p99}`, pct(p.gateway.expectedStatusRate)]
      : [p.scenario, p.skipped ?? 'not measured', '', '', '', '', ''],
  );
  const b = tp.batch;
  rows.push(
    b
      ? ['batch', `POST /v1/heartbeats, ${b.refsPerRequest} refs each`, num(b.bare.requestsPerSecond), num(b.gateway.requestsPerSecond), `**${pairRatio(b)}**${roundRatios(b)} (${num(b.gateway.instanceHeartbeatsPerSecond)} instance heartbeats/s)`, `${b.gateway.latency.p50} / ${b.gateway.latency.p99}`, `outcomes ${JSON.stringify(b.gatewayOutcomes)}`]
      : ['batch', 'POST /v1/heartbeats', '', '', '', '', tp.batchSkipped ?? ''],
  );
  out.push(table(['route', 'request', 'bare req/s', 'gateway req/s', 'ratio (target ≥ 0.8)', 'gateway p50 / p99 ms', 'expected status'], rows), '');
  return out;
}

function rssSection(d: ScaleReportData): string[] {
  const hold = result<ScaleResult>(d, 'hold');
  if (!hold?.rss.length) return [];
  const out = ['## Memory: RSS of one replica per 10k instances tracked', ''];
  out.push(
    'Read from /proc at instance-count checkpoints of the hold scenario, with the pods registered so far heartbeating. ' +
      '*Growth per 10k*: RSS added since the first checkpoint per 10,000 instances added (the process\'s fixed cost left out).',
    '',
  );
  const first = hold.rss[0];
  out.push(
    table(
      ['instances tracked', 'when', 'RSS', 'growth per 10k instances'],
      hold.rss.map((r) => [num(r.instances), r.when, `**${mb(r.rssMb)}**`, r.instances > first.instances ? mb(((r.rssMb - first.rssMb) / (r.instances - first.instances)) * 10_000) : '–']),
    ),
    '',
  );
  return out;
}

/** The scenarios of issue 10 (one replica, per-pod heartbeats and the ratios); the rest are issue 21's node-agent runs. */
const ISSUE_10 = ['throughput', 'register-rate', 'hold', 'storm', 'restart'];

export function renderScaleReport(d: ScaleReportData): string {
  const seconds = Math.round((d.finishedAt.getTime() - d.startedAt.getTime()) / 1000);
  const m = d.machine;
  const z = d.options.scaleSizes;
  const issue10 = d.records.some((r) => ISSUE_10.includes(r.name));
  const agentRuns = d.records.filter((r) => r.name === 'agents' || r.name === 'agents-1m');
  const largest = Math.max(0, ...d.records.map((r) => (r.name === 'agents-1m' ? z.agents1m.pods : r.name === 'agents' ? z.agents.pods : r.name === 'hold' ? z.hold.pods : 0)));
  const subject = issue10 && !agentRuns.length ? `one gateway replica, up to ${num(z.hold.pods)} instances` : agentRuns.length && !issue10 ? `node agents, up to ${num(largest)} instances` : `up to ${num(largest)} instances`;
  const out: string[] = [];
  out.push(`# Scale benchmark: ${subject} (${d.startedAt.toISOString().slice(0, 10)}, ${m.cores} cores)`, '');
  out.push(
    `Generated by \`${d.command}\` in ${Math.floor(seconds / 60)} min ${seconds % 60} s. Every number below was measured and written by the tool ` +
      `(raw results: [${d.rawFile}](${d.rawFile})); do not edit by hand, run it again.`,
    '',
  );
  const failed = d.records.filter((r) => r.status === 'failed');
  const skipped = d.records.filter((r) => r.status === 'skipped');
  if (failed.length) out.push('**Scenarios that failed to run:**', '', ...failed.map((r) => `- ${r.title}: ${r.reason}`), '');
  if (skipped.length) out.push('**Scenarios skipped:**', '', ...skipped.map((r) => `- ${r.title}: ${r.reason}`), '');
  if (issue10) out.push('## Targets', '', ...targets(d), '');
  const etcdShape = d.records.some((r) => r.name === 'agents-1m') ? `single member; ${z.agents1m.etcdMembers} members on loopback for agents-1m` : 'single member';
  out.push('## Machine and load', '', machineTable(m, d.versions, d.options.settings.poolSize, d.options.settings.redis, etcdShape), '');
  out.push(
    `Before the run the machine was ${d.idleCheckCpuPercent} % busy (100 % = one core, over 3 s); load average (1/5/15 min) ${d.loadAverage.start.join(' / ')} at the start, ` +
      `${d.loadAverage.end.join(' / ')} at the end. etcd, Redis, the replica(s) and the load generator (fleet-sim, one Node process for the whole fleet) share the same cores ` +
      'with whatever else runs on the machine: on a shared machine the rates are pessimistic, the counts (404s, re-grants, keys in etcd) are not.',
    '',
  );
  out.push('## How it was run', '', '```', d.command, '```', '');
  if (issue10) out.push(
    '`--scale` runs each scenario below on a fresh private etcd (auth on) with one fresh gateway replica from `dist/` (`RATE_LIMIT_REGISTRATIONS_PER_SECOND=0`, admission control at its defaults), ' +
      'and one `fleet-sim scale` process as the fleet: every pod shares 256 keep-alive sockets to the replica, registers (retrying 503/429 after `Retry-After` plus up to 1 s of jitter, as an SDK does), ' +
      'then heartbeats on its own schedule (phases spread over the interval); a heartbeat answered 404 makes the pod register again on its next tick. ' +
      'Heartbeats go out over their own pool of raw keep-alive sockets (pre-encoded requests, one in flight per socket) driven by one timing wheel for the whole fleet; ' +
      '*heartbeats scheduled / sent / written / answered*: ticks that came due, ticks that became a call (a tick that comes while the pod\'s last call is unanswered is *missed*), calls written to a socket, calls answered; heartbeat latency counts from the tick. ' +
      '*Renewals due*, by the schedule (the figure the targets use): one per registered lease every TTL/3 after its grant, the gateway\'s cadence; ' +
      'by heartbeats received: one per lease per TTL/3 window (from its grant) in which its pod\'s heartbeat was answered 2xx. *etcd KeepAlive msgs* are the LeaseKeepAlive requests etcd received (its own `/metrics`). ' +
      '*Re-grants* (`registry_lease_regrants_total`), renewals confirmed/lost, admission rejections and the peak backlog, oldest-due age and event-loop delay are the replica\'s own metrics, polled every 2 s. ' +
      'Pick scenarios with `--only register-rate,restart,storm,hold,throughput`; `--scale-factor 0.1` rehearses at a tenth of the sizes.',
    '',
  );
  for (const name of ['agents', 'agents-1m'] as const) out.push(...agentSection(d.records, name, name === 'agents' ? z.agents : z.agents1m, d.command));
  out.push(...throughputSection(d));
  out.push(...registerRateSection(d));
  out.push(...rssSection(d));
  out.push(
    ...scaleSection(
      d,
      'hold',
      `${num(z.hold.pods)} instances, then heartbeating for ${z.hold.holdSeconds} s`,
      `${num(z.hold.pods)} pods register at concurrency ${z.hold.concurrency} (TTL ${z.hold.ttlSeconds} s), each heartbeating every ${z.hold.intervalSeconds} s from its registration on; then all heartbeat for ${z.hold.holdSeconds} s.`,
    ),
  );
  out.push(
    ...scaleSection(
      d,
      'storm',
      `A registration storm beside ${num(z.storm.held)} heartbeating pods`,
      `${num(z.storm.held)} pods register (concurrency ${z.storm.concurrency}, TTL ${z.storm.ttlSeconds} s, heartbeat every ${z.storm.intervalSeconds} s); then ${num(z.storm.storm)} more register ` +
        `with ${z.storm.stormConcurrency} in flight (over the same 256 sockets) while the first keep heartbeating; then everyone heartbeats for ${z.storm.holdSeconds} s. ` +
        'A lapsed lease of a heartbeating pod shows as a heartbeat answered 404 or as a re-grant.',
    ),
  );
  out.push(
    ...scaleSection(
      d,
      'restart',
      `${num(z.restart.pods)} pods starting at once`,
      `A cluster-wide restart: all ${num(z.restart.pods)} registrations issued at once (queued on the shared sockets), TTL ${z.restart.ttlSeconds} s, each pod heartbeating every ${z.restart.intervalSeconds} s ` +
        `from its registration on, then ${z.restart.holdSeconds} s of heartbeats; keys counted in etcd at the end.`,
    ),
  );
  out.push('## Load per scenario', '');
  out.push(table(['scenario', 'status', 'seconds', 'load average (1 min) start / end'], d.records.map((r) => [r.title, r.status, r.seconds, `${r.loadAverage.start} / ${r.loadAverage.end}`])), '');
  return out.join('\n');
}
