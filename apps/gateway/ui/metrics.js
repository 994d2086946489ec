// Gateway figures from GET /metrics (Prometheus text format). Pure functions: no DOM, no fetch.

/** Samples of a Prometheus text exposition: `{ name, labels, value }`; comments and blank lines skipped. */
export function parsePrometheusText(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // Greedy `{...}`: a label value may itself contain `}`; the value follows the last one.
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]] = label[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: parseSampleValue(match[3]) });
  }
  return samples;
}

function parseSampleValue(text) {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** Sum over the samples of `name` whose labels include `match`; undefined when the family is absent. */
export function sumOf(samples, name, match = {}) {
  let sum;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (!Object.entries(match).every(([key, value]) => sample.labels[key] === value)) continue;
    sum = (sum ?? 0) + sample.value;
  }
  return sum;
}

/**
 * Confirmed renewals. Gateways that label renewals by result count unconfirmed ones too; older ones
 * only have the unlabelled total, which is then the best figure there is.
 */
function renewalsCounter(samples) {
  const labelled = samples.some((s) => s.name === 'registry_lease_renewals_total' && 'result' in s.labels);
  return labelled ? sumOf(samples, 'registry_lease_renewals_total', { result: 'confirmed' }) : sumOf(samples, 'registry_lease_renewals_total');
}

/** One scrape, reduced to the counters and gauges the dashboard shows. */
export function snapshotOf(samples, atMs) {
  return {
    atMs,
    // Identifies the process that answered: behind a load balancer consecutive scrapes may come from
    // different replicas, and a rate across two processes' counters means nothing.
    processStart: sumOf(samples, 'process_start_time_seconds'),
    instances: sumOf(samples, 'registry_instances'),
    heartbeatsAccepted: sumOf(samples, 'registry_heartbeats_total', { result: 'accepted' }),
    renewals: renewalsCounter(samples),
    etcdAuthTotal: sumOf(samples, 'registry_etcd_auth_requests_total'),
    keepaliveStreams: sumOf(samples, 'registry_keepalive_streams'),
    watchUp: sumOf(samples, 'registry_watch_up'),
    watchRevision: sumOf(samples, 'registry_watch_revision'),
    selfPreservation: sumOf(samples, 'registry_self_preservation'),
    expiryPaused: sumOf(samples, 'registry_expiry_paused'),
  };
}

/**
 * Figures from the current snapshot and the one before it. Rates need two scrapes of the same process;
 * a counter that went down (a restart that kept the start time) gives no rate rather than a negative one.
 */
export function deriveFigures(previous, current) {
  const seconds = previous && previous.processStart === current.processStart ? (current.atMs - previous.atMs) / 1000 : 0;
  const delta = (key) => {
    if (!(seconds > 0) || previous[key] === undefined || current[key] === undefined) return undefined;
    const d = current[key] - previous[key];
    return d >= 0 ? d : undefined;
  };
  const rate = (key) => {
    const d = delta(key);
    return d === undefined ? undefined : d / seconds;
  };
  return {
    instances: current.instances,
    heartbeatsPerSecond: rate('heartbeatsAccepted'),
    renewalsPerSecond: rate('renewals'),
    etcdAuthTotal: current.etcdAuthTotal,
    keepaliveStreams: current.keepaliveStreams,
    watchUp: current.watchUp,
    watchRevision: current.watchRevision,
    // Registry changes applied per second (the watch's revision is etcd's, so other keys count too).
    changesPerSecond: rate('watchRevision'),
    selfPreservation: current.selfPreservation,
    expiryPaused: current.expiryPaused,
  };
}
