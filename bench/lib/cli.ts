/**
 * The bench's command line. Sizes live here (full and --quick), so the scenario table only says
 * what to run with them.
 *
 *   --pods 100,300,1000     fleet sizes (each run for before, after and gateway)
 *   --before-max N          largest fleet the *before* design runs with (300): it fails nearly every
 *                           beat from ~300 pods on, and a larger fleet leaves etcd minutes of bcrypt
 *                           backlog, beyond the time budget on 2 cores
 *   --duration S            heartbeat window of a fleet scenario (10)
 *   --skip a,b              leave out scenarios or whole sections (fleet, replicas, burst, throughput)
 *   --only a,b              run only these scenarios (names as listed by --list), from either set
 *   --scale                 the scale set instead of the default one (own report, own budget)
 *   --scale-factor F        multiply every scale size by F (1; e.g. 0.1 for a rehearsal); the agents
 *                           scenarios' holds shrink with it too, never below 60 s
 *   --list                  print the scenarios with their estimates and exit
 *   --quick                 small and short: a smoke test of the whole pipeline
 *   --budget S              skip scenarios that would end later than S seconds after the start
 *                           (540; with --scale 2700)
 *   --redis single|cluster  the gateways' Redis: one server (default) or a 3+3 Redis Cluster (issue 24)
 *   --out DIR               where the report goes (bench/results)
 *   --name NAME             report file name without .md (default <date>-<cores>c-<cpu>[-scale])
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '@app/stack';
import type { RedisShape } from './bench-context';
import { BenchSettings } from './report';

export interface ScaleSizes {
  /** Gateway vs raw etcd3 LeaseGrant+Put, same concurrency, same etcd. */
  /** `rounds`: raw and gateway alternate this many times; the median per-round ratio counts. */
  registerRate: { pods: number; concurrency: number; ttlSeconds: number; rounds: number };
  /** N instances registered, then heartbeating for a hold; RSS read at checkpoints. */
  hold: { pods: number; ttlSeconds: number; intervalSeconds: number; holdSeconds: number; concurrency: number; rssAt: number[] };
  /** N pods heartbeating while M more register as fast as the load generator can. */
  storm: { held: number; storm: number; ttlSeconds: number; intervalSeconds: number; concurrency: number; stormConcurrency: number; holdSeconds: number };
  /** N pods starting at once (a cluster-wide restart), then heartbeating. */
  restart: { pods: number; ttlSeconds: number; intervalSeconds: number; holdSeconds: number };
  /** Issue 21: N pods heartbeated by node agents (`POST /v1/heartbeats`), etcd's own cost in the hold. */
  agents: AgentSizes;
  /** Issue 21: the same with 1M pods, 3 replicas, a 3-member etcd, and a fraction silenced in the hold. */
  agents1m: AgentSizes;
}

export interface AgentSizes {
  pods: number;
  /** Pods per node agent (one batch each; at most 1000, the route's limit). */
  perAgent: number;
  ttlSeconds: number;
  intervalSeconds: number;
  holdSeconds: number;
  /** Registrations in flight, over all replicas. */
  concurrency: number;
  replicas: number;
  etcdMembers: number;
  /** Fraction of the pods their agents stop naming when the hold starts (0: none). */
  silenceFraction: number;
  /** The replicas' V8 heap limit (MB; the bench's default is 768, as deploy/k8s). */
  heapMb?: number;
}

export interface BenchOptions {
  quick: boolean;
  scale: boolean;
  list: boolean;
  only?: Set<string>;
  skip: Set<string>;
  budgetSeconds: number;
  outDir: string;
  name?: string;
  settings: BenchSettings;
  replicas: { pods: number; durationSeconds: number; silentFraction: number; silentAfterSeconds: number };
  burst: { services: number; instances: number; requests: number; concurrency: number };
  throughputIds: number;
  scaleSizes: ScaleSizes;
}

const names = (s: string | undefined) => new Set((s ?? '').split(',').map((x) => x.trim()).filter(Boolean));

function scaleSizes(quick: boolean, factor: number): ScaleSizes {
  const n = (full: number, small: number) => Math.max(10, Math.round((quick ? small : full) * factor));
  const marks = (total: number) => [...new Set([Math.round(total / 10), Math.round(total / 2), total])];
  const holdPods = n(100_000, 3_000);
  // A hold is scaled too, but never below 60 s: a silenced pod needs TTL (30 s) + 5 s to be judged.
  const holdSeconds = (full: number, small: number) => (quick ? small : Math.max(60, Math.round(full * Math.min(1, factor))));
  return {
    // TTL: the gateway's maximum (300), so no lease expires while the other client is measured.
    registerRate: { pods: n(20_000, 1_000), concurrency: 128, ttlSeconds: 300, rounds: quick ? 1 : 3 },
    hold: { pods: holdPods, ttlSeconds: quick ? 15 : 60, intervalSeconds: quick ? 5 : 20, holdSeconds: quick ? 20 : 120, concurrency: 128, rssAt: marks(holdPods) },
    storm: { held: n(50_000, 1_500), storm: n(50_000, 1_500), ttlSeconds: quick ? 15 : 60, intervalSeconds: quick ? 5 : 20, concurrency: 128, stormConcurrency: 512, holdSeconds: quick ? 10 : 30 },
    restart: { pods: n(40_000, 2_000), ttlSeconds: quick ? 15 : 30, intervalSeconds: quick ? 5 : 10, holdSeconds: quick ? 20 : 120 },
    agents: { pods: n(100_000, 3_000), perAgent: 1000, ttlSeconds: 30, intervalSeconds: 10, holdSeconds: holdSeconds(120, 40), concurrency: 128, replicas: 1, etcdMembers: 1, silenceFraction: 0 },
    // Every replica holds every instance: at 200k the live heap was ~565 B per instance (floor 153 MB per
    // replica, agents-1m at --scale-factor 0.2), ~600 MB at 1M, too close to the default 768 MB limit.
    // 1024 MB keeps RSS under the 1.5 GiB aim by construction (heap + ~150 MB of code and buffers).
    agents1m: { pods: n(1_000_000, 10_000), perAgent: 1000, ttlSeconds: 30, intervalSeconds: 10, holdSeconds: holdSeconds(300, 60), concurrency: 3 * 128, replicas: 3, etcdMembers: 3, silenceFraction: 0.01, heapMb: 1024 },
  };
}

export function parseBenchCli(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      pods: { type: 'string' },
      'before-max': { type: 'string' },
      duration: { type: 'string' },
      skip: { type: 'string' },
      only: { type: 'string' },
      scale: { type: 'boolean' },
      'scale-factor': { type: 'string' },
      list: { type: 'boolean' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      name: { type: 'string' },
      budget: { type: 'string' },
      redis: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  const scale = values.scale === true;
  const pods = (values.pods ?? (quick ? '20,60' : '100,300,1000')).split(',').map(Number);
  if (pods.some((p) => !Number.isInteger(p) || p < 1)) throw new Error(`--pods: positive integers, got ${values.pods}`);
  const factor = Number(values['scale-factor'] ?? 1);
  if (!(factor > 0)) throw new Error(`--scale-factor: a positive number, got ${values['scale-factor']}`);
  const durationSeconds = Number(values.duration ?? (quick ? 4 : 10));
  const only = names(values.only);
  const redis = (values.redis ?? 'single') as RedisShape;
  if (redis !== 'single' && redis !== 'cluster') throw new Error(`--redis: single or cluster, got ${values.redis}`);
  return {
    quick,
    scale,
    list: values.list === true,
    only: only.size ? only : undefined,
    skip: names(values.skip),
    // npm run bench also builds the gateway (~10 s): 9 min here keeps the default command under 10.
    budgetSeconds: Number(values.budget ?? (scale ? 2700 : 540)),
    outDir: path.resolve(REPO_ROOT, values.out ?? 'bench/results'),
    name: values.name,
    settings: {
      pods,
      beforeMaxPods: Number(values['before-max'] ?? (quick ? Math.max(...pods) : 300)),
      durationSeconds,
      intervalSeconds: 1,
      ttlSeconds: 5,
      callTimeoutSeconds: 5,
      services: 10,
      poolSize: 2,
      redis,
      resolvers: 10,
      cannonSeconds: quick ? 3 : 8,
      cannonWarmupSeconds: quick ? 1 : 2,
      // The scale set's ratios are acceptance figures: 5 alternating pairs for a median that one busy round does not move.
      cannonRounds: quick ? 1 : scale ? 5 : 2,
      cannonConnections: 64,
    },
    replicas: quick ? { pods: 100, durationSeconds: 8, silentFraction: 0.2, silentAfterSeconds: 1 } : { pods: 1000, durationSeconds: 15, silentFraction: 0.2, silentAfterSeconds: 3 },
    burst: quick ? { services: 10, instances: 3, requests: 1000, concurrency: 200 } : { services: 20, instances: 5, requests: 5000, concurrency: 500 },
    throughputIds: 1000,
    scaleSizes: scaleSizes(quick, factor),
  };
}

/** The command line as the user typed it (through npm or not), for the report. */
export function commandLine(argv: string[]): string {
  const extra = argv.length ? ` -- ${argv.join(' ')}` : '';
  return process.env.npm_lifecycle_event === 'bench' ? `npm run bench${extra}` : `node ${path.relative(REPO_ROOT, process.argv[1])} ${argv.join(' ')}`.trim();
}
