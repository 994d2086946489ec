/**
 * CPU per heartbeat: bare Fastify vs the gateway (and optionally a second gateway build), same run.
 *
 * The bench's throughput scenario gives a ratio of max rates, which on 2 shared cores is set as much
 * by the load generator's share of the CPU as by the server. This experiment also offers a FIXED rate
 * and reads each server's own CPU time (/proc/<pid>/stat, all threads) per request answered: a figure
 * that does not depend on who else runs, for finding and checking per-request costs.
 *
 *   npm run build
 *   [BASE_MAIN=/path/to/other/dist/apps/gateway/apps/gateway/src/main.js] \
 *   RATE=12000 SECS=5 ROUNDS=5 node -r ts-node/register/transpile-only -r tsconfig-paths/register \
 *     bench/experiments/heartbeat-cost.ts
 *
 * Servers take turns (bare, [base], gateway, bare, ...); each round is one fixed-rate run (CPU us per
 * request) then one max-rate run (requests/s); THREADS=1 splits both by thread. Medians are printed.
 */
import autocannon from 'autocannon';
import { readProcess, readThreads } from '../../apps/fleet-sim/src/process-sampler';
import { BenchContext } from '../lib/bench-context';
import { ServerProcess } from '../lib/processes';

const RATE = Number(process.env.RATE ?? 12_000);
const SECS = Number(process.env.SECS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const IDS = 1000;

/** CPU seconds of the whole process (all threads) so far. */
function cpuSeconds(pid: number): number {
  const sample = readProcess(pid);
  if (!sample) throw new Error(`process ${pid} is gone`);
  return sample.cpuSeconds;
}

const paths = Array.from({ length: IDS }, (_, i) => `/v1/services/hb/instances/pod-${i}/heartbeat`);
function cannon(url: string, rate: number | undefined, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) =>
    autocannon(
      { url, connections: 64, duration: seconds, timeout: 10, ...(rate ? { overallRate: rate } : {}), requests: paths.map((path) => ({ method: 'PUT', path })) },
      (err, result) => (err ? reject(err) : resolve(result)),
    ),
  );
}

async function register(gateway: ServerProcess): Promise<void> {
  for (let i = 0; i < IDS; i++) {
    const res = await fetch(`${gateway.url}/v1/services/hb/instances/pod-${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address: '10.0.0.1', port: 80, ttl: 60 }) });
    if (res.status > 201) throw new Error(`registration answered ${res.status}`);
  }
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const round1 = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const ctx = await BenchContext.start(2, 1000);
  try {
    const servers: Array<[string, ServerProcess]> = [['bare', await ctx.startBare(undefined)]];
    if (process.env.BASE_MAIN) servers.push(['base', (await ctx.startGateways('base', ctx.prefix('base'), 1, process.env.BASE_MAIN)).gateways[0]]);
    servers.push(['gateway', (await ctx.startGateways('gateway', ctx.prefix('gateway'), 1)).gateways[0]]);
    for (const [name, server] of servers) if (name !== 'bare') await register(server);
    for (const [, server] of servers) await cannon(server.url, undefined, 2);
    const out = new Map(servers.map(([name]) => [name, { usPerRequest: [] as number[], maxPerSecond: [] as number[] }]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, server] of servers) {
        const [c0, t0] = [cpuSeconds(server.pid), readThreads(server.pid)];
        const fixed = await cannon(server.url, RATE, SECS);
        const [c1, t1] = [cpuSeconds(server.pid), readThreads(server.pid)];
        const n = fixed.requests.total;
        out.get(name)!.usPerRequest.push(round1(((c1 - c0) * 1e6) / n));
        if (process.env.THREADS) {
          const split = [...t1].map(([k, v]) => [k, round1(((v - (t0.get(k) ?? 0)) * 1e6) / n)] as const).filter(([, us]) => us > 0);
          console.log(`${name} us/request by thread: ${split.map(([k, us]) => `${k}=${us}`).join(' ')}`);
        }
        const m0 = readThreads(server.pid);
        const max = await cannon(server.url, undefined, SECS);
        if (process.env.THREADS) {
          const m1 = readThreads(server.pid);
          const split = [...m1].map(([k, v]) => [k, Math.round(((v - (m0.get(k) ?? 0)) / max.duration) * 100)] as const).filter(([, pct]) => pct > 0);
          console.log(`${name} at max rate, % of a core by thread: ${split.map(([k, pct]) => `${k}=${pct}`).join(' ')}`);
        }
        out.get(name)!.maxPerSecond.push(Math.round(max.requests.total / max.duration));
        if (fixed.non2xx || max.non2xx) console.log(`${name}: ${fixed.non2xx + max.non2xx} answers other than 2xx`);
      }
      console.log(JSON.stringify(Object.fromEntries(out)));
    }
    const bare = median(out.get('bare')!.maxPerSecond);
    for (const [name, r] of out) {
      console.log(`${name.padEnd(8)} CPU ${median(r.usPerRequest)} us/request at ${RATE}/s; max ${median(r.maxPerSecond)}/s = ${(median(r.maxPerSecond) / bare).toFixed(2)} of bare (medians of ${ROUNDS})`);
    }
  } finally {
    await ctx.dispose();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
