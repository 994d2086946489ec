/**
 * The node-agent sections of the scale report (issue 21, item 8 and its acceptance): etcd's own cost
 * while node agents heartbeat every pod with `POST /v1/heartbeats`, each figure beside its target.
 * Every figure comes from the scenario's record (fleet-sim's result); the prose is fixed.
 */
import type { AgentSizes } from './cli';
import { cpuRss, num, proc, table } from './report';
import { ScenarioRecord } from './scenario';
import type { AgentScenarioName } from './scenarios/scale';
import { ScalePhase, ScaleResult } from './sim-results';

type Verdict = 'met' | 'NOT met' | 'not measured' | 'reported';
const verdict = (ok: boolean | undefined): Verdict => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
const phase = (r: ScaleResult, name: ScalePhase['name']) => r.phases.find((p) => p.name === name);
const perSecond = (n: number, seconds: number) => (seconds > 0 ? n / seconds : 0);
const fixed = (x: number, digits = 2) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const refsOf = (r: ScaleResult, name: string) => r.phases.reduce((n, p) => n + (p.refs?.[name] ?? 0), 0);
const MIB = 1.048576;

/** etcd CPU in a phase: the member (`etcd`) or each member (`etcd-1`..), as % of one core. */
const etcdCpu = (p: ScalePhase) => proc(p.processes, 'etcd').map((u) => ({ name: u.name, cpu: u.cpuPercent, rss: u.rssMbPeak }));
const gateways = (p: ScalePhase) => proc(p.processes, 'gateway');

/** Largest RSS any replica reached over the run (peaks sampled every 0.5 s). */
function peakRss(r: ScaleResult): Array<{ name: string; mb: number }> {
  const peaks = new Map<string, number>();
  for (const p of r.phases) for (const u of gateways(p)) peaks.set(u.name, Math.max(peaks.get(u.name) ?? 0, u.rssMbPeak));
  return [...peaks.entries()].map(([name, mb]) => ({ name, mb }));
}

function targetRows(r: ScaleResult, s: AgentSizes): Array<[string, string, Verdict]> {
  const rows: Array<[string, string, Verdict]> = [];
  const reg = phase(r, 'register');
  const hold = phase(r, 'hold');
  const held = r.cohorts.held;
  const pods = r.params.pods;
  rows.push([`every instance registered (${num(pods)})`, `**${num(held.registered)}** / ${num(pods)}`, verdict(held.registered === pods)]);
  if (hold?.etcd) {
    const ka = perSecond(hold.etcd.leaseKeepAliveMessages, hold.seconds);
    rows.push([`LeaseKeepAlive messages etcd received in the hold ≤ 100/s`, `**${fixed(ka)}/s** (${num(hold.etcd.leaseKeepAliveMessages)} in ${hold.seconds} s)`, verdict(ka <= 100)]);
  } else rows.push(['LeaseKeepAlive messages etcd received in the hold ≤ 100/s', '–', 'not measured']);
  const cpu = hold ? etcdCpu(hold) : [];
  const cpuTarget = s.etcdMembers > 1 ? 'etcd CPU in the hold, per member (≤ 10 % of a core)' : 'etcd CPU in the hold ≤ 10 % of one core';
  rows.push([cpuTarget, cpu.length ? cpu.map((c) => `${cpu.length > 1 ? `${c.name} ` : ''}**${c.cpu} %**`).join(', ') : '–', cpu.length ? verdict(cpu.every((c) => c.cpu <= 10)) : 'not measured']);
  const leaseLimit = Math.floor(pods / 500) + 10;
  rows.push([`leases alive in etcd at the end ≤ instances/500 + 10 (${num(leaseLimit)})`, r.leasesAtEnd === undefined ? '–' : `**${num(r.leasesAtEnd)}** (etcd LeaseLeases)`, verdict(r.leasesAtEnd === undefined ? undefined : r.leasesAtEnd <= leaseLimit)]);
  if (reg?.etcd) {
    const grants = reg.etcd.leaseGrant;
    rows.push([
      `LeaseGrant per registration (one lease per instance: 1; shared leases: ~1 per 1,000)`,
      `**${(grants / Math.max(1, held.registered)).toPrecision(2)}** (${num(grants)} LeaseGrant for ${num(held.registered)} registrations, ${num(reg.etcd.txn)} Txn, ${num(reg.etcd.put)} Put)`,
      verdict(grants <= leaseLimit),
    ]);
  } else rows.push(['LeaseGrant per registration', '–', 'not measured']);
  rows.push(['Range calls etcd received in the hold: 0', hold?.etcd ? `**${num(hold.etcd.range)}**` : '–', verdict(hold?.etcd ? hold.etcd.range === 0 : undefined)]);
  const notFoundHold = hold?.refs?.not_found ?? 0;
  rows.push([
    'heartbeats answered `not_found`: 0',
    `**${num(notFoundHold)}** in the hold, ${num(refsOf(r, 'not_found'))} over the whole run (${num(refsOf(r, 'accepted'))} refs accepted)`,
    verdict(hold ? refsOf(r, 'not_found') === 0 : undefined),
  ]);
  const live = pods - (held.silenced ?? 0);
  rows.push([
    `every live instance in etcd at the end (${num(live)})`,
    held.aliveAtEnd === undefined ? '–' : `**${num(held.aliveAtEnd)}** / ${num(live)}`,
    verdict(held.aliveAtEnd === undefined ? undefined : held.aliveAtEnd === live),
  ]);
  const sl = r.silence;
  if (s.silenceFraction > 0) {
    if (sl) {
      rows.push(['0 live instances deleted in the hold (delete events of pods not silenced)', `**${num(sl.liveDeleted)}**`, verdict(sl.liveDeleted === 0)]);
      rows.push([
        `every silenced instance (${num(sl.silenced)}) gone from etcd within TTL + 5 s (${sl.ttlSeconds + 5} s) of its last heartbeat`,
        `**${num(sl.goneWithinTtlPlus5)}** within, ${num(sl.gone)} gone in the hold, ${num(held.silencedPresentAtEnd ?? 0)} left at the end; after the last heartbeat p50 ${sl.delaySeconds.p50} s, p99 ${sl.delaySeconds.p99} s, max **${sl.delaySeconds.max} s**`,
        verdict(sl.goneWithinTtlPlus5 === sl.silenced && sl.silenced > 0),
      ]);
    } else rows.push(['every silenced instance gone within TTL + 5 s', '–', 'not measured']);
  }
  const rss = peakRss(r);
  if (s.replicas > 1 || s.heapMb) {
    rows.push([`RSS per replica < 1.5 GiB (peak over the run)`, rss.length ? rss.map((x) => `${x.name} **${num(Math.round(x.mb))} MB**`).join(', ') : '–', rss.length ? verdict(rss.every((x) => x.mb < 1536 * MIB)) : 'not measured']);
  }
  const g = hold ? gateways(hold) : [];
  rows.push([`gateway CPU / RSS in the hold${s.replicas > 1 ? ', per replica' : ''}`, g.length ? g.map((u) => `${g.length > 1 ? `${u.name} ` : ''}${u.cpuPercent} % / ${num(Math.round(u.rssMbPeak))} MB`).join(', ') : '–', 'reported']);
  return rows;
}

function phaseRows(r: ScaleResult): Array<Array<string | number>> {
  return r.phases.map((p) => {
    const refs = p.refs ?? {};
    const other = Object.entries(refs).filter(([k]) => k !== 'accepted' && k !== 'not_found');
    const bs = p.beatSchedule;
    return [
      p.name,
      `${p.seconds} s`,
      num(p.instancesAtEnd),
      p.registrations ? `${num(p.registrations.ok)} / ${num(p.registrations.attempted)}, **${num(p.registrations.okPerSecond)}/s**, p99 ${num(p.registrations.latency.p99)} ms` : '–',
      bs?.scheduled ? `${num(bs.scheduled)} / ${num(bs.sent)} / ${num(p.beats.ok)}, p99 ${num(p.beats.latency.p99)} ms` : '–',
      `${num(refs.accepted ?? 0)} / **${num(refs.not_found ?? 0)}**${other.length ? ` / ${other.map(([k, v]) => `${k} ${num(v)}`).join(', ')}` : ''}`,
      p.etcd ? `${num(p.etcd.leaseKeepAliveMessages)} (${fixed(perSecond(p.etcd.leaseKeepAliveMessages, p.seconds))}/s)` : '–',
      p.etcd ? `${num(p.etcd.leaseGrant)} / ${num(p.etcd.txn)} / ${num(p.etcd.put)} / ${num(p.etcd.range)} / ${num(p.etcd.deleteRange)} / ${num(p.etcd.authenticate)}` : '–',
      p.gateway ? `${num(p.gateway.leaseGrants ?? 0)} / ${num(p.gateway.expirations ?? 0)}` : '–',
      p.gatewayPeaks ? `${Math.round(p.gatewayPeaks.eventLoopDelaySeconds * 1000)} ms${p.gatewayPeaks.heapUsedMbMax ? ` / ${num(p.gatewayPeaks.heapUsedMbFloor ?? 0)}-${num(p.gatewayPeaks.heapUsedMbMax)} MB` : ''}` : '–',
      p.gatewayPeaks?.expiryOverdue !== undefined ? `${num(p.gatewayPeaks.expiryOverdue)} / ${p.gatewayPeaks.selfPreservation ? '**yes**' : 'no'} / ${p.gatewayPeaks.expiryPaused ? '**yes**' : 'no'}` : '–',
      cpuRss(gateways(p)),
      cpuRss(proc(p.processes, 'etcd')),
      cpuRss(proc(p.processes, 'redis')),
      `${p.simulatorCpuPercent} %`,
    ];
  });
}

const PHASE_HEADER = [
  'phase',
  'length',
  'instances at end',
  'registrations ok / tried, rate',
  'agent batches due / sent / answered 200, p99 from the tick',
  'refs accepted / **not_found** / other',
  'etcd KeepAlive msgs',
  'etcd LeaseGrant / Txn / Put / Range / DeleteRange / Authenticate',
  'gateway lease grants / expirations',
  'worst replica: loop delay p99 / V8 heap used, lowest-highest reading (every 2 s)',
  'expiry, worst replica: overdue by its own knowledge / self-preservation held / paused',
  'gateway CPU / RSS',
  'etcd CPU / RSS',
  'redis CPU / RSS',
  'fleet-sim CPU',
];

function intro(r: ScaleResult | undefined, s: AgentSizes, name: AgentScenarioName): string {
  const agents = Math.ceil(s.pods / s.perAgent);
  const replicas = s.replicas > 1 ? `${s.replicas} gateway replicas (pod i registers through replica i mod ${s.replicas}; agent a sends to replica a mod ${s.replicas}, so most heartbeats reach a replica that does not own the instance's lease)` : 'one gateway replica';
  const etcd = s.etcdMembers > 1 ? `a ${s.etcdMembers}-member etcd on loopback (auth on, the gateway's restricted user; the replicas get every member as ETCD_ENDPOINTS)` : 'a single-member etcd (auth on, the gateway\'s restricted user)';
  const heap = s.heapMb ? `, replicas started with \`--max-old-space-size=${s.heapMb}\`` : '';
  const grace = r?.agents ? r.agents.graceMs / 1000 : 1;
  const silence =
    s.silenceFraction > 0
      ? ` When the hold starts, every agent stops naming ${s.silenceFraction * 100} % of its pods (evenly spread, ${num(Math.floor(s.perAgent * s.silenceFraction))} per agent): a watch on the fleet's prefix (started before the hold, so it costs the hold no Range) records when each key leaves etcd, measured from the send of the last batch the gateway answered \`accepted\` for that pod (or its registration, if no batch named it yet).`
      : '';
  return (
    `\`${name}\`: ${num(s.pods)} pods register (\`PUT\`, ${s.concurrency} in flight, TTL ${s.ttlSeconds} s) through ${replicas}, on ${etcd} and one Redis${heap}. ` +
    `${num(agents)} node agents of ${num(s.perAgent)} pods each send one \`POST /v1/heartbeats\` every ${s.intervalSeconds} s (each at its own phase of the interval), naming each of their pods registered at least ${grace} s earlier ` +
    '(a replica that has not yet seen a registration made through another replica on its watch answers `not_found`; a real agent learns of a pod after it started), from the first registration on; ' +
    `a ref answered \`not_found\` registers again at once. Then the hold: ${s.holdSeconds} s of agent heartbeats only.${silence} ` +
    "Counts are etcd's own (`/metrics`, summed over members; LeaseLeases at the end), CPU and RSS from `/proc` (100 % = one core); leases and keys are counted after the hold."
  );
}

/** The section of one node-agent scenario, or nothing if it was not selected. */
export function agentSection(records: ScenarioRecord[], name: AgentScenarioName, s: AgentSizes, command: string): string[] {
  const rec = records.find((r) => r.name === name);
  if (!rec) return [];
  const heading = name === 'agents' ? `Node agents: ${num(s.pods)} instances on one replica (issue 21)` : `Node agents: ${num(s.pods)} instances on ${s.replicas} replicas and a ${s.etcdMembers}-member etcd (issue 21)`;
  const r = rec.status === 'ok' ? (rec.result as ScaleResult) : undefined;
  const out = [`## ${heading}`, '', intro(r, s, name), '', '```', command, '```', ''];
  if (!r) return [...out, `Not measured: ${rec.status} (${rec.reason}).`, ''];
  out.push(table(['target', 'measured', ''], targetRows(r, s)), '');
  out.push(table(PHASE_HEADER, phaseRows(r)), '');
  const members = phase(r, 'hold')?.etcdMembers;
  if (members) {
    out.push(
      `Per etcd member in the hold (LeaseKeepAlive messages / Range / Txn): ${members.map((m, i) => `etcd-${i + 1} ${num(m.leaseKeepAliveMessages)} / ${num(m.range)} / ${num(m.txn)}`).join('; ')}.`,
      '',
    );
  }
  const c = r.cohorts.held;
  const lines = [
    `- ${num(c.registered)} / ${num(c.pods)} registered; ${num(c.beats404)} refs answered \`not_found\`, ${num(c.reRegistered)} registered again after one; ${c.aliveAtEnd === undefined ? '?' : num(c.aliveAtEnd)} live instances and ${r.keysAtEnd === undefined ? '?' : num(r.keysAtEnd)} keys of the fleet in etcd at the end; ${r.leasesAtEnd === undefined ? '?' : num(r.leasesAtEnd)} leases in etcd`,
  ];
  if (r.silence) {
    const sl = r.silence;
    lines.push(
      `- silenced: ${num(sl.silenced)}; delete events in the hold ${num(sl.gone)}, ${num(sl.goneWithinTtlPlus5)} within TTL + 5 s of the last heartbeat (min ${sl.delaySeconds.min} s, p50 ${sl.delaySeconds.p50} s, p99 ${sl.delaySeconds.p99} s, max ${sl.delaySeconds.max} s); ` +
        `from the silencing: p50 ${sl.sinceSilenceSeconds.p50} s, max ${sl.sinceSilenceSeconds.max} s; delete events of live pods ${num(sl.liveDeleted)}; watch disconnections ${sl.watchDisconnects}`,
    );
  }
  const rt = r.retries;
  const retried = Object.entries(rt.retried).map(([k, v]) => `${num(v)} × ${k}`).join(', ');
  lines.push(retried ? `- registrations refused and retried after Retry-After: ${retried}; ${num(rt.succeededAfterRetry)} succeeded on a retry, ${num(rt.gaveUp)} gave up` : '- no registration was refused (no 503/429)');
  const failures = r.phases.flatMap((p) => Object.entries(p.beats.outcomes).filter(([k]) => k !== '200').map(([k, v]) => `${p.name}: ${k} ${num(v)}`));
  if (failures.length) lines.push(`- agent batches not answered 200 (or ticks skipped): ${failures.join(', ')}`);
  const shed = r.phases.flatMap((p) => Object.entries(p.gateway?.admissionRejections ?? {}).filter(([, v]) => v > 0).map(([k, v]) => `${p.name}: ${k} ${num(v)}`));
  if (shed.length) lines.push(`- requests the replicas shed (503) by reason: ${shed.join(', ')}`);
  const reg = phase(r, 'register');
  if (reg?.etcd && c.registered) lines.push(`- registration phase: etcd ${(reg.etcd.txn / c.registered).toPrecision(2)} Txn per registration, ${(reg.etcd.leaseGrant / c.registered).toPrecision(2)} LeaseGrant per registration`);
  lines.push(...r.notes.map((n) => `- ${n}`));
  out.push(...lines, '');
  out.push(`Scenario took ${rec.seconds} s; load average (1 min) ${rec.loadAverage.start} at its start, ${rec.loadAverage.end} at its end.`, '');
  return out;
}
