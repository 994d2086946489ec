/** The summary table printed at the end of a run (plain text, aligned; one metric per row). */
import { EtcdCounters } from './etcd-probe';
import { ProcessUsage } from './process-sampler';
import { BurstResult, CannonResult, FleetResult, RawRegisterResult, ScaleResult, SimResult } from './results';
import { OpStats } from './stats';

export function renderTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (cell ?? '').padEnd(widths[c])).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const ops = (s: OpStats) => `${s.ok}/${s.attempted} ok, p50 ${s.latency.p50} ms, p99 ${s.latency.p99} ms, ${s.okPerSecond}/s`;
const outcomes = (s: OpStats) =>
  Object.entries(s.outcomes)
    .slice(0, 5)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
const etcdLine = (c: EtcdCounters) =>
  `Authenticate ${c.authenticate}, LeaseGrant ${c.leaseGrant}, KeepAlive msgs ${c.leaseKeepAliveMessages} (streams ${c.leaseKeepAliveStreams}), Range ${c.range}, Txn ${c.txn}, Put ${c.put}`;
const procLine = (p: ProcessUsage[]) => p.map((u) => `${u.name}: CPU ${u.cpuPercent} % (peak ${u.cpuPercentPeak} %), RSS ${u.rssMbPeak} MB`).join('; ');

function fleetRows(r: FleetResult): string[][] {
  const rows = [
    ['design', `${r.design}: ${r.description}`],
    ['fleet', `${r.params.pods} pods, ${r.params.services} services, beat every ${r.params.intervalSeconds} s for ${r.params.durationSeconds} s, TTL ${r.params.ttlSeconds} s`],
    ['registration', `${r.registration.seconds} s: ${ops(r.registration.stats)}`],
    ['beats meanwhile', r.registration.beatsMeanwhile.attempted ? `${ops(r.registration.beatsMeanwhile)} (${outcomes(r.registration.beatsMeanwhile)})` : 'none'],
    ['heartbeat success', `${pct(r.heartbeats.successRate)} (${r.heartbeats.stats.ok} of ${r.heartbeats.stats.attempted} ticks)`],
    ['heartbeats', ops(r.heartbeats.stats)],
    ['heartbeat outcomes', outcomes(r.heartbeats.stats)],
  ];
  if (r.resolves?.stats) rows.push(['resolves', ops(r.resolves.stats)]);
  if (r.resolves?.skipped) rows.push(['resolves', `skipped: ${r.resolves.skipped}`]);
  if (r.alive) rows.push(['alive in etcd at end', `${r.alive.found}/${r.alive.expected} live pods; ${r.alive.silentStillPresent}/${r.alive.silent} silent pods still present`]);
  if (r.etcd) {
    rows.push(['etcd: registration', etcdLine(r.etcd.register)]);
    rows.push(['etcd: heartbeats', etcdLine(r.etcd.heartbeats)]);
    rows.push(['etcd: total', etcdLine(r.etcd.total)]);
    if (r.etcd.settleSeconds > 0.5) rows.push(['etcd settle', `${r.etcd.settleSeconds} s until no Authenticate in progress`]);
  }
  if (r.processes.heartbeats.length) rows.push(['processes (window)', procLine(r.processes.heartbeats)]);
  rows.push(['simulator CPU', `${r.simulatorCpuPercent} %`]);
  for (const n of r.notes) rows.push(['note', n]);
  return rows;
}

function cannonRows(r: CannonResult): string[][] {
  const rows = [
    ['target', `${r.method} ${r.pathExample} (${r.distinctPaths} distinct) on ${r.target}`],
    ['load', `${r.connections} connections, ${r.durationSeconds} s after ${r.warmupSeconds} s warm-up`],
    ['throughput', `${r.requestsPerSecond} req/s (${r.requests} requests)`],
    ['latency', `p50 ${r.latency.p50} ms, p90 ${r.latency.p90} ms, p99 ${r.latency.p99} ms, max ${r.latency.max} ms`],
    ['status', `${pct(r.expectedStatusRate)} ${r.expectedStatus}; ${Object.entries(r.statusCounts).map(([k, v]) => `${k}:${v}`).join(' ')}; errors ${r.errors}, timeouts ${r.timeouts}`],
    ['response bytes', String(r.responseBytesPerRequest)],
  ];
  if (r.etcd) rows.push(['etcd', etcdLine(r.etcd)]);
  if (r.processes.length) rows.push(['processes', procLine(r.processes)]);
  for (const n of r.notes) rows.push(['note', n]);
  return rows;
}

function burstRows(r: BurstResult): string[][] {
  const rows = [['burst', `${r.requests} lookups of ${r.services} services, ${r.concurrency} concurrent, over ${r.gateways.length} replica(s)`]];
  if (r.skipped) rows.push(['skipped', r.skipped]);
  if (r.stats) rows.push(['lookups', ops(r.stats)], ['outcomes', outcomes(r.stats)]);
  if (r.etcd) rows.push(['etcd', etcdLine(r.etcd)]);
  if (r.processes.length) rows.push(['processes', procLine(r.processes)]);
  for (const n of r.notes) rows.push(['note', n]);
  return rows;
}

function rawRegisterRows(r: RawRegisterResult): string[][] {
  const rows = [
    ['registrations', `${r.pods} LeaseGrant+Put at concurrency ${r.concurrency}, TTL ${r.ttlSeconds} s, one shared client`],
    ['rate', `${r.registrationsPerSecond}/s over ${r.seconds} s: ${ops(r.stats)}`],
  ];
  if (r.etcd) rows.push(['etcd', etcdLine(r.etcd)]);
  if (r.processes.length) rows.push(['processes', procLine(r.processes)]);
  return rows;
}

function scaleRows(r: ScaleResult): string[][] {
  const p = r.params;
  const who = r.agents ? `${r.agents.agents} node agents of ${r.agents.perAgent} pods over ${r.agents.replicas} replica(s)` : 'each pod';
  const rows = [['fleet', `${p.pods} pods${p.storm ? ` + ${p.storm} in a storm` : ''}, TTL ${p.ttlSeconds} s, ${who} heartbeating every ${p.intervalSeconds} s, hold ${p.holdSeconds} s`]];
  for (const ph of r.phases) {
    if (ph.registrations) rows.push([`${ph.name}: registrations`, `${ops(ph.registrations)} (${outcomes(ph.registrations)})`]);
    rows.push([`${ph.name}: ${r.agents ? 'agent batches' : 'heartbeats'}`, ph.beats.attempted ? `${ops(ph.beats)} (${outcomes(ph.beats)})` : 'none']);
    if (ph.refs) rows.push([`${ph.name}: refs`, Object.entries(ph.refs).map(([k, v]) => `${k}:${v}`).join(' ') || 'none']);
    const bs = ph.beatSchedule;
    if (bs?.scheduled) rows.push([`${ph.name}: beat schedule`, `scheduled ${bs.scheduled}, sent ${bs.sent}, written ${bs.written}, answered ${bs.answered}`]);
    if (!r.agents) rows.push([`${ph.name}: renewals`, `due ${ph.renewalsDue} by schedule, ${ph.renewalsDueByHeartbeats ?? '?'} by heartbeats received, etcd KeepAlive msgs ${ph.etcd?.leaseKeepAliveMessages ?? '?'}, gateway confirmed ${ph.gateway?.renewalsConfirmed ?? '?'}, re-grants ${ph.gateway?.regrants ?? '?'}`]);
    if (ph.etcd) rows.push([`${ph.name}: etcd`, etcdLine(ph.etcd)]);
    const pk = ph.gatewayPeaks;
    if (r.agents && ph.gateway) rows.push([`${ph.name}: gateway`, `lease grants ${ph.gateway.leaseGrants ?? '?'}, expirations ${ph.gateway.expirations ?? '?'}; worst replica: overdue ${pk?.expiryOverdue ?? '?'}, self-preservation ${pk?.selfPreservation ?? '?'}, expiry paused ${pk?.expiryPaused ?? '?'}, heap used ${pk?.heapUsedMbFloor ?? '?'}-${pk?.heapUsedMbMax ?? '?'} MB`]);
    if (ph.processes.length) rows.push([`${ph.name}: processes`, procLine(ph.processes)]);
  }
  for (const [name, c] of Object.entries(r.cohorts)) rows.push([`cohort ${name}`, `${c.registered}/${c.pods} registered, ${c.beats404} beats 404, ${c.reRegistered} re-registered, ${c.aliveAtEnd ?? '?'} in etcd at end`]);
  for (const [name, c] of Object.entries(r.cohorts)) if (c.silenced !== undefined) rows.push([`cohort ${name} silenced`, `${c.silenced} silenced, ${c.silencedPresentAtEnd} still in etcd at end`]);
  const sl = r.silence;
  if (sl) rows.push(['silenced gone', `${sl.gone}/${sl.silenced} (${sl.goneWithinTtlPlus5} within TTL + 5 s); from last heartbeat p50 ${sl.delaySeconds.p50} s, max ${sl.delaySeconds.max} s; live keys deleted ${sl.liveDeleted}`]);
  if (r.leasesAtEnd !== undefined || r.keysAtEnd !== undefined) rows.push(['etcd at end', `${r.leasesAtEnd ?? '?'} leases, ${r.keysAtEnd ?? '?'} instance keys of the fleet`]);
  rows.push(['retries', `${JSON.stringify(r.retries.retried)}, succeeded after retry ${r.retries.succeededAfterRetry}, gave up ${r.retries.gaveUp}`]);
  rows.push(['rss', r.rss.map((s) => `${s.instances}: ${s.rssMb} MB`).join(', ')]);
  for (const n of r.notes) rows.push(['note', n]);
  return rows;
}

export function renderSummary(r: SimResult): string {
  const rows =
    r.kind === 'fleet' ? fleetRows(r) : r.kind === 'cannon' ? cannonRows(r) : r.kind === 'burst' ? burstRows(r) : r.kind === 'raw-register' ? rawRegisterRows(r) : scaleRows(r);
  return `\n${r.label}\n${renderTable([['metric', 'value'], ...rows])}\n`;
}
