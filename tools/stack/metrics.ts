/**
 * etcd's own Prometheus counters are the ground truth for "how many Authenticate / Range / keepalive
 * calls did the gateway really make": they count server-side, whatever the client library does.
 */
import { httpGet } from './procs';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse Prometheus text exposition format (0.0.4) into samples; comments and blank lines are skipped. */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) continue;
    out.push({ name: m[1], labels: m[2] ? parseLabels(m[2].slice(1, -1)) : {}, value: parseValue(m[3]) });
  }
  return out;
}

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v); // 'NaN' -> NaN
}

/** Labels are `k="v",...`; values may contain escaped `\"`, `\\` and `\n`, and commas. */
function parseLabels(s: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** Sum of every sample of `name` whose labels include all of `match` (e.g. summed over grpc_code). */
export function sumSamples(samples: PromSample[], name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** Server-side gRPC counters of one etcd member. Handled counts are summed over all result codes. */
export interface EtcdCounters {
  authenticate: number;
  authenticateStarted: number;
  range: number;
  txn: number;
  put: number;
  deleteRange: number;
  leaseGrant: number;
  leaseRevoke: number;
  /** LeaseKeepAlive streams opened (each bidi stream counts once when it starts). */
  leaseKeepAliveStreams: number;
  /** Individual keepalive requests received over all LeaseKeepAlive streams. */
  leaseKeepAliveMessages: number;
  /** etcd Watch streams opened (excluding the grpc.health.v1.Health/Watch method of the same name). */
  watchStreams: number;
}

/**
 * The metric families etcd 3.4 exposes (go-grpc-prometheus), with labels grpc_service, grpc_method,
 * grpc_type and, on handled_total only, grpc_code. The service must be pinned: "Watch" exists both
 * as etcdserverpb.Watch/Watch and grpc.health.v1.Health/Watch.
 */
export function etcdCountersFromSamples(s: PromSample[]): EtcdCounters {
  const handled = (service: string, method: string) =>
    sumSamples(s, 'grpc_server_handled_total', { grpc_service: service, grpc_method: method });
  const started = (service: string, method: string) =>
    sumSamples(s, 'grpc_server_started_total', { grpc_service: service, grpc_method: method });
  const KV = 'etcdserverpb.KV';
  const LEASE = 'etcdserverpb.Lease';
  return {
    authenticate: handled('etcdserverpb.Auth', 'Authenticate'),
    authenticateStarted: started('etcdserverpb.Auth', 'Authenticate'),
    range: handled(KV, 'Range'),
    txn: handled(KV, 'Txn'),
    put: handled(KV, 'Put'),
    deleteRange: handled(KV, 'DeleteRange'),
    leaseGrant: handled(LEASE, 'LeaseGrant'),
    leaseRevoke: handled(LEASE, 'LeaseRevoke'),
    leaseKeepAliveStreams: started(LEASE, 'LeaseKeepAlive'),
    leaseKeepAliveMessages: sumSamples(s, 'grpc_server_msg_received_total', {
      grpc_service: LEASE,
      grpc_method: 'LeaseKeepAlive',
    }),
    watchStreams: started('etcdserverpb.Watch', 'Watch'),
  };
}

/** Scrape `<metricsUrl>/metrics` (etcd's --listen-metrics-urls; plain HTTP, no auth) and extract the counters. */
export async function fetchEtcdCounters(metricsUrl: string, timeoutMs = 3000): Promise<EtcdCounters> {
  const res = await httpGet(`${metricsUrl.replace(/\/$/, '')}/metrics`, timeoutMs);
  if (res.status !== 200) throw new Error(`etcd metrics answered HTTP ${res.status}`);
  return etcdCountersFromSamples(parsePrometheusText(res.body));
}

/** after - before, key by key (counters reset on an etcd restart, so diff across a restart is meaningless). */
export function diffCounters<T extends { [K in keyof T]: number }>(before: T, after: T): T {
  const out = {} as T;
  for (const k of Object.keys(after) as (keyof T)[]) {
    (out[k] as number) = after[k] - (before[k] ?? 0);
  }
  return out;
}
