/**
 * What two builds of the gateway cost before they hold anything: RSS of an idle replica (synced,
 * no instances, no requests) and its HTTP thread's heap, each build started `--rounds` times in
 * turn against the same private etcd (auth on) and Redis. Separates "code loaded and structures of
 * an empty replica" from what the instances cost, when two builds' RSS at 100k instances differ.
 *
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/idle-rss.ts \
 *     --build before=/tmp/wt-before/dist/apps/gateway/apps/gateway/src/main.js \
 *     --build after=dist/apps/gateway/apps/gateway/src/main.js [--rounds 3] [--settle 10]
 *
 * Each replica runs as the benches run it (bench/lib/processes.ts: --max-old-space-size=768), plus
 * `--expose-gc -r bench/lib/memory-report.js`; after `--settle` seconds RSS is sampled from /proc
 * (median of 5, 1 s apart), then SIGUSR2 makes it report process.memoryUsage() as is and after two
 * full collections.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { LOCAL_DIR, REPO_ROOT, startEtcd, startRedis } from '@app/stack';
import { readProcess } from '../../apps/fleet-sim/src/process-sampler';
import { startGateway } from '../lib/processes';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[idle-rss] ${msg}\n`);

const { values } = parseArgs({
  options: { build: { type: 'string', multiple: true, default: [] }, rounds: { type: 'string', default: '3' }, settle: { type: 'string', default: '10' } },
});
const builds = values.build!.map((spec) => {
  const eq = spec.indexOf('=');
  return { name: spec.slice(0, eq), main: path.resolve(spec.slice(eq + 1)) };
});
const MEMORY_REPORT = path.join(REPO_ROOT, 'bench', 'lib', 'memory-report.js');

type Usage = Record<'rss' | 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers', number>;
interface Sample {
  build: string;
  rssMb: number;
  asIs: Usage;
  live: Usage;
}

async function memoryReport(logFile: string, pid: number): Promise<{ asIs: Usage; live: Usage }> {
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await sleep(200);
    const line = fs.readFileSync(logFile, 'utf8').split('\n').find((l) => l.startsWith('[memory-report] '));
    if (line) return JSON.parse(line.slice('[memory-report] '.length));
  }
  throw new Error(`no memory report in ${logFile}`);
}

async function main(): Promise<void> {
  if (builds.length === 0) throw new Error('give at least one --build name=main.js');
  const [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
  const samples: Sample[] = [];
  try {
    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const build of builds) {
        const logFile = path.join(LOCAL_DIR, 'bench', `idle-rss-${build.name}-${round}.log`);
        fs.rmSync(logFile, { force: true });
        const env = { ETCD_ENDPOINTS: etcd.endpoint, ETCD_USERNAME: etcd.gatewayUser, ETCD_PASSWORD: etcd.gatewayPassword, ETCD_PREFIX: `/registry/idle-${build.name}/`, ETCD_POOL_SIZE: '2', REDIS_URL: redis.url };
        const gw = await startGateway(env, logFile, build.main, ['--expose-gc', '-r', MEMORY_REPORT]);
        try {
          await sleep(Number(values.settle) * 1000);
          const rss: number[] = [];
          for (let i = 0; i < 5; i++) {
            rss.push(readProcess(gw.pid)?.rssMb ?? NaN);
            await sleep(1000);
          }
          const report = await memoryReport(logFile, gw.pid);
          const sample = { build: build.name, rssMb: rss.sort((a, b) => a - b)[2], ...report };
          samples.push(sample);
          log(`round ${round} ${build.name}: RSS ${sample.rssMb.toFixed(1)} MiB, heap used ${sample.asIs.heapUsed} MiB (live ${sample.live.heapUsed}), external ${sample.live.external}`);
        } finally {
          await gw.stop();
        }
      }
    }
  } finally {
    await Promise.all([etcd.dispose(), redis.dispose()]);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  process.stdout.write('| build | RSS idle (MiB, median of rounds) | heap total | heap used | live heap (after GC) | external | arrayBuffers | rounds (RSS) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n');
  for (const build of builds) {
    const own = samples.filter((s) => s.build === build.name);
    const m = (pick: (s: Sample) => number) => median(own.map(pick)).toFixed(1);
    process.stdout.write(
      `| ${build.name} | ${m((s) => s.rssMb)} | ${m((s) => s.asIs.heapTotal)} | ${m((s) => s.asIs.heapUsed)} | ${m((s) => s.live.heapUsed)} | ${m((s) => s.live.external)} | ${m((s) => s.live.arrayBuffers)} | ${own.map((s) => s.rssMb.toFixed(1)).join(', ')} |\n`,
    );
  }
}

main().catch((err: Error) => {
  log(`failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
