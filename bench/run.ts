/**
 * `npm run bench`: the benchmark on a private etcd (auth on) + Redis, written to bench/results/.
 * Default set: fleets of the three designs, two replicas, cold cache and throughput vs bare Fastify
 * (<date>-<machine>.md with an SVG chart and the raw JSON). `--scale`: one replica against up to
 * 100,000 instances (<date>-<machine>-scale.md + JSON). Options: bench/lib/cli.ts; scenarios:
 * bench/lib/scenarios/index.ts (`--list` prints them with their estimates).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '@app/stack';
import { BenchContext, log } from './lib/bench-context';
import { commandLine, parseBenchCli } from './lib/cli';
import { fleetChart } from './lib/fleet-chart';
import { machineInfo, machineShortName, versions } from './lib/machine';
import { runScenarios } from './lib/orchestrator';
import { BenchData, renderReport, sectionsFromRecords } from './lib/report';
import { loadAverage, machineBusyPercent } from './lib/sampling';
import { renderScaleReport } from './lib/scale-report';
import { scenarioTable, selectScenarios } from './lib/scenarios';

async function main(): Promise<void> {
  // etcd and Redis are unref'd children (@app/stack): while waiting for a slow etcd to exit, nothing
  // else may keep the event loop alive, and Node would quit silently before writing the report.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    await runBench();
  } finally {
    clearInterval(keepAlive);
  }
}

async function runBench(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parseBenchCli(argv);
  const { set, scenarios } = selectScenarios(scenarioTable(o), o);
  const estimate = Math.round(scenarios.reduce((sum, s) => sum + s.estimateSeconds, 0));
  if (o.list) {
    for (const s of scenarioTable(o)) process.stdout.write(`${s.name.padEnd(22)} ${s.sets.join('+').padEnd(14)} ~${String(Math.round(s.estimateSeconds)).padStart(4)} s  ${s.title}\n`);
    process.stdout.write(`\nselected (${set} set): ${scenarios.map((s) => s.name).join(', ')}; ~${estimate} s, budget ${o.budgetSeconds} s\n`);
    return;
  }
  const startedAt = new Date();
  const machine = machineInfo();
  const name = o.name ?? `${startedAt.toISOString().slice(0, 10)}-${machineShortName(machine)}${set === 'scale' ? '-scale' : ''}`;
  log(`${machine.cores} cores, ${machine.cpuModel}; Redis: ${o.settings.redis}; ${scenarios.length} scenarios (~${estimate} s, budget ${o.budgetSeconds} s); report: ${path.relative(REPO_ROOT, path.join(o.outDir, name + '.md'))}`);
  const idleCheckCpuPercent = await machineBusyPercent(3000);
  if (idleCheckCpuPercent > 30) log(`warning: the machine is already ${idleCheckCpuPercent} % busy (100 % = one core): results will be pessimistic`);
  const loadAtStart = loadAverage();

  const ctx = await BenchContext.start(o.settings.poolSize, scenarios.reduce((n, s) => n + s.steps, 0), o.settings.redis);
  let records;
  try {
    records = await runScenarios(ctx, scenarios, startedAt.getTime() + o.budgetSeconds * 1000, o.budgetSeconds);
  } finally {
    await ctx.dispose();
  }
  const finishedAt = new Date();
  const common = { idleCheckCpuPercent, startedAt, finishedAt, command: commandLine(argv), machine, versions: versions(), loadAverage: { start: loadAtStart, end: loadAverage() } };
  const publicMachine = { ...machine, hostname: undefined };

  fs.mkdirSync(o.outDir, { recursive: true });
  const mdFile = path.join(o.outDir, `${name}.md`);
  const rawFile = `${name}.json`;
  if (set === 'scale') {
    const data = { ...common, options: o, records, rawFile };
    fs.writeFileSync(path.join(o.outDir, rawFile), JSON.stringify({ ...data, machine: publicMachine }, null, 2) + '\n');
    fs.writeFileSync(mdFile, renderScaleReport(data));
  } else {
    const data: BenchData = { ...common, settings: o.settings, chartFile: `${name}.svg`, rawFile, ...sectionsFromRecords(records) };
    fs.writeFileSync(path.join(o.outDir, data.chartFile), fleetChart(data));
    fs.writeFileSync(path.join(o.outDir, rawFile), JSON.stringify({ ...data, machine: publicMachine }, null, 2) + '\n');
    fs.writeFileSync(mdFile, renderReport(data));
  }
  const seconds = Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000);
  log(`done in ${Math.floor(seconds / 60)} min ${seconds % 60} s: ${path.relative(REPO_ROOT, mdFile)}`);
  if (records.some((r) => r.status === 'failed')) process.exitCode = 1;
}

main().catch((err: Error) => {
  log(err.stack ?? err.message);
  process.exit(1); // @app/stack's exit hook kills etcd, Redis and every tracked child
});
