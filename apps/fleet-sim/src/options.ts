/** Command line of the fleet simulator. Secrets come from the environment, never from argv. */
import { parseArgs } from 'node:util';

export const USAGE = `fleet-sim: simulated pods and clients against the registry gateway or etcd directly

usage: fleet-sim <mode> [options]

modes
  gateway   pods register and heartbeat through one or several gateway replicas (+ resolvers)
  before    pods straight to etcd: a new authenticated client + KeepAliveOnce per heartbeat
  after     pods straight to etcd: one authenticated client + one long-lived keepalive stream per pod
  cannon    autocannon throughput of one request shape (heartbeat or resolve) against one URL
  burst     cold-cache stampede: concurrent lookups of S services, counting etcd Range calls
  scale     one or more replicas, up to 1M pods: register, optional storm, hold; pods heartbeat
            themselves or node agents heartbeat them (POST /v1/heartbeats) (see below)
  raw-register  the yardstick: LeaseGrant+Put straight to etcd, one shared warmed client

fleet options (gateway, before, after)
  --pods N                 simulated pods (100)
  --services N             services the pods belong to, sim-0..sim-N-1 (10)
  --interval S             heartbeat interval in seconds (1)
  --duration S             heartbeat window in seconds (10)
  --ttl S                  lease TTL in seconds (5)
  --call-timeout S         one heartbeat call's deadline (5)
  --register-timeout S     one registration's deadline (120)
  --register-concurrency N registrations in flight (gateway/before 64, after: all pods at once)
  --silent F               fraction of pods that stop heartbeating (0)
  --silent-after S         when they stop, seconds into the window (duration / 3)
  --resolvers N            concurrent resolver loops, gateway mode only (0)
  --resolve-interval S     pause between one resolver's lookups (0.05)
  --gateway URL[,URL]      gateway replica(s), gateway/burst/cannon modes
  --spread MODE            round-robin (each call to the next replica) or sticky (round-robin)
  --prefix P               etcd key prefix (ETCD_PREFIX or /registry/)

cannon options
  --url URL --scenario heartbeat|resolve --service NAME[,NAME] --ids N (1000) --connections N (64)
  --duration S (10) --warmup S (2) --preregister

burst options
  --gateway URL[,URL] --services N (20) --instances N (5) --requests N (5000) --concurrency N (500)

scale options (--gateway URL[,URL]: pod i registers through replica i mod R; pods, services, ttl,
               interval, register-concurrency as above)
  --storm N                pods registering while the first --pods heartbeat (0)
  --storm-concurrency N    registrations in flight during the storm (512)
  --hold S                 seconds every pod heartbeats after registration (0)
  --sockets N              sockets to the replica, shared by all pods (256)
  --rss-at N,N             registered-instance counts at which the replica's RSS is read
                           (the replica's pid: --sample-pid gateway=PID)
  --interval 0             pods do not heartbeat (registration rate only)
  --agents N               node agents heartbeat the pods instead (agent a: a contiguous range of
                           at most 1000 pods, one POST /v1/heartbeats per --interval to replica a mod R)
  --agent-grace S          a pod joins its agent's batches S s after its registration was answered (1)
  --silence F              agents stop naming a fraction F of their pods when the hold starts; a
                           watch records when each of their keys leaves etcd (0)

raw-register options: --pods N --services N --ttl S --register-concurrency N (128) --prefix P

common
  --etcd-metrics URL[,URL] etcd's metrics listener(s), one per member: counters are read before and
                           after, summed over the members (ETCD_METRICS_URL)
  --sample-pid name=PID,.. processes whose CPU and RSS are sampled (e.g. gateway=1234,etcd=99)
  --label TEXT             scenario name in the output
  --json FILE              write the result as JSON
  --settle-max S           max wait for etcd to finish pending Authenticate calls (60)

environment: ETCD_ENDPOINTS (host:port,...), ETCD_USERNAME, ETCD_PASSWORD, ETCD_PREFIX, ETCD_METRICS_URL
`;

const spec = {
  pods: { type: 'string' },
  services: { type: 'string' },
  interval: { type: 'string' },
  duration: { type: 'string' },
  ttl: { type: 'string' },
  'call-timeout': { type: 'string' },
  'register-timeout': { type: 'string' },
  'register-concurrency': { type: 'string' },
  silent: { type: 'string' },
  'silent-after': { type: 'string' },
  resolvers: { type: 'string' },
  'resolve-interval': { type: 'string' },
  gateway: { type: 'string' },
  spread: { type: 'string' },
  prefix: { type: 'string' },
  url: { type: 'string' },
  scenario: { type: 'string' },
  service: { type: 'string' },
  ids: { type: 'string' },
  connections: { type: 'string' },
  warmup: { type: 'string' },
  preregister: { type: 'boolean' },
  instances: { type: 'string' },
  requests: { type: 'string' },
  concurrency: { type: 'string' },
  'etcd-metrics': { type: 'string' },
  'sample-pid': { type: 'string' },
  label: { type: 'string' },
  json: { type: 'string' },
  'settle-max': { type: 'string' },
  storm: { type: 'string' },
  'storm-concurrency': { type: 'string' },
  hold: { type: 'string' },
  sockets: { type: 'string' },
  'rss-at': { type: 'string' },
  agents: { type: 'string' },
  'agent-grace': { type: 'string' },
  silence: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Mode = 'gateway' | 'before' | 'after' | 'cannon' | 'burst' | 'scale' | 'raw-register';
const MODES: Mode[] = ['gateway', 'before', 'after', 'cannon', 'burst', 'scale', 'raw-register'];

export interface CliArgs {
  mode: Mode;
  values: Record<string, string | boolean | undefined>;
}

export class UsageError extends Error {}

export function parseCli(argv: string[]): CliArgs | undefined {
  const { values, positionals } = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
  if (values.help || positionals.length === 0) return undefined;
  const mode = positionals[0] as Mode;
  if (!MODES.includes(mode)) throw new UsageError(`unknown mode "${positionals[0]}" (one of ${MODES.join(', ')})`);
  return { mode, values };
}

/** A number option: `fallback` when absent; a bad value names the option. */
export function num(values: CliArgs['values'], name: string, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, got "${String(raw)}"`);
  return n;
}

export function str(values: CliArgs['values'], name: string, fallback?: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' ? raw : fallback;
}

export function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
