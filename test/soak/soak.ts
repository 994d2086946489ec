/**
 * Soak: `npm run soak -- --minutes N [--pods P] [--ttl S] [--out FILE]`. Runs the fault harness's fleet
 * (real 3-member etcd cluster with auth, Redis, two gateway replicas as processes) for N minutes and
 * injects a random fault from the reliability list every 15-30 s. Reports lost registrations (must
 * be 0), the worst gap a live pod spent missing from lookups (overall and after each kind of fault),
 * heartbeat outcomes and etcd's own counters, to stdout and to a markdown file
 * (default bench/results/soak-<date>.md). Exit code 1 when a registration was lost.
 * Not part of `npm test`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FaultStack, FleetDriver, FleetReport, sleep, startFaultStack, summarize, waitFor } from '../support/faults';

interface Args {
  minutes: number;
  pods: number;
  ttl: number;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const date = new Date().toISOString().slice(0, 10);
  const args = {
    minutes: Number(get('minutes') ?? 10),
    pods: Number(get('pods') ?? 160),
    ttl: Number(get('ttl') ?? 10),
    out: get('out') ?? path.resolve(__dirname, '..', '..', 'bench', 'results', `soak-${date}.md`),
  };
  if (!(args.minutes > 0) || !(args.pods >= 8) || !(args.ttl >= 5)) {
    throw new Error('usage: npm run soak -- --minutes N [--pods P>=8] [--ttl S>=5] [--out FILE]');
  }
  return args;
}

type Fault = { name: string; run: (stack: FaultStack, fleet: FleetDriver, ttl: number) => Promise<void> };

/** The faults of the reliability suite that leave the stack as they found it. */
const FAULTS: Fault[] = [
  {
    name: 'etcd leader killed, restarted after 1.5 TTL',
    run: async (stack, fleet, ttl) => {
      const leader = await stack.waitForQuorum();
      await leader.kill();
      fleet.mark(`fault: killed leader ${leader.endpoint}`);
      await sleep(ttl * 1500);
      await leader.restart();
      await stack.waitForQuorum();
    },
  },
  {
    name: 'the etcd member the gateways use frozen for 2 TTL',
    run: async (stack, fleet, ttl) => {
      const preferred = await stack.memberServingGateways();
      preferred.freeze();
      fleet.mark(`fault: froze member ${stack.members.indexOf(preferred)} (the one the gateways use)`);
      try {
        await sleep(ttl * 2000);
      } finally {
        preferred.thaw();
      }
      await stack.waitForQuorum();
    },
  },
  {
    name: 'all of etcd frozen for 2 TTL',
    run: async (stack, fleet, ttl) => {
      for (const m of stack.members) m.freeze();
      fleet.mark('fault: froze all members');
      try {
        await sleep(ttl * 2000);
      } finally {
        for (const m of stack.members) m.thaw();
      }
      await stack.waitForQuorum();
    },
  },
  {
    name: 'Redis killed, restarted after 1 TTL',
    run: async (stack, fleet, ttl) => {
      await stack.redis.kill();
      fleet.mark('fault: killed redis');
      await sleep(ttl * 1000);
      await stack.redis.restart();
    },
  },
  {
    name: 'a replica SIGKILLed, restarted after 1 TTL',
    run: async (stack, fleet, ttl) => {
      const victim = stack.replicas[Math.floor(Math.random() * stack.replicas.length)];
      await victim.kill();
      fleet.mark(`fault: SIGKILLed ${victim.name}`);
      await sleep(ttl * 1000);
      await victim.start();
    },
  },
  {
    name: 'a replica frozen for 2 TTL',
    run: async (stack, fleet, ttl) => {
      const victim = stack.replicas[Math.floor(Math.random() * stack.replicas.length)];
      victim.freeze();
      fleet.mark(`fault: froze ${victim.name}`);
      try {
        await sleep(ttl * 2000);
      } finally {
        victim.thaw();
      }
    },
  },
  {
    name: 'etcd compacted at the current revision',
    run: async (stack, fleet) => {
      const status = await stack.ctl(['endpoint', 'status', '--cluster', '-w', 'json']);
      const revision = Math.max(...(JSON.parse(status.stdout) as Array<{ Status: { header: { revision: number } } }>).map((s) => s.Status.header.revision));
      const res = await stack.ctl(['compact', String(revision)]);
      fleet.mark(`fault: compacted at ${revision} (${res.code === 0 ? 'ok' : res.stderr.trim()})`);
    },
  },
];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  log(`soak: ${args.minutes} min, ${args.pods} pods, TTL ${args.ttl} s; starting etcd (3 members), Redis, 2 replicas`);
  const stack = await startFaultStack({ replicas: 2 });
  stack.counters.start();
  const services = 8;
  const fleet = new FleetDriver(stack.http, () => stack.urls, {
    name: 'soak',
    services,
    podsPerService: Math.ceil(args.pods / services),
    ttlSeconds: args.ttl,
    // Well below TTL/3 (a pod stuck on a frozen replica must reach the other one before its lease
    // runs out), well above what a loaded 2-core machine needs to answer.
    requestTimeoutMs: 1500,
  });
  const faultsRun: Array<{ name: string; atMs: number }> = [];
  const faultErrors: string[] = [];
  let report: FleetReport | undefined;
  const missingAtEnd: Record<string, string[]> = {};
  let failure: unknown;
  const startedAt = Date.now();
  try {
    await fleet.start();
    const before = await stack.counters.totals();
    const endAt = startedAt + args.minutes * 60_000;
    let silenced = 0;
    while (Date.now() < endAt - 45_000) {
      await sleep(15_000 + Math.random() * 15_000);
      // A few pods go silent for good now and then: they must disappear, faults or not.
      if (silenced < 16) {
        fleet.silence(2);
        silenced += 2;
      }
      const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)];
      faultsRun.push({ name: fault.name, atMs: Date.now() - startedAt });
      log(`fault: ${fault.name}`);
      try {
        await fault.run(stack, fleet, args.ttl);
        fleet.mark('fault over');
      } catch (err) {
        // A fault that could not be applied or undone is reported, and the run goes on.
        faultErrors.push(`${fault.name}: ${(err as Error).message}`);
        fleet.mark(`fault failed: ${(err as Error).message}`);
        log(`fault failed: ${(err as Error).message}`);
      }
    }
    log('settling');
    await sleep(args.ttl * 2000);
    for (const r of stack.replicas) {
      missingAtEnd[r.name] = await waitFor(`live pods listed through ${r.name}`, async () => {
        const missing = await fleet.missingVia(r.url);
        return missing.length === 0 ? [] : false;
      }, 30_000).catch(async () => fleet.missingVia(r.url));
    }
    report = await fleet.stop({ deregister: true });
    const after = await stack.counters.totals();
    const etcd = Object.fromEntries(Object.keys(after).map((k) => [k, after[k as keyof typeof after] - before[k as keyof typeof before]]));
    writeReport(args, report, faultsRun, faultErrors, missingAtEnd, etcd, Date.now() - startedAt);
  } catch (err) {
    failure = err;
  } finally {
    await stack.close();
  }
  if (failure) throw failure;
  const lost = lostRegistrations(report!, missingAtEnd);
  log(`done: lost registrations ${lost}, worst gap ${report!.worstGapMs} ms; report ${args.out}`);
  process.exitCode = lost === 0 ? 0 : 1;
}

/** Pods the registry forgot although they kept heartbeating: told to register again (404), or missing at the end. */
function lostRegistrations(report: FleetReport, missingAtEnd: Record<string, string[]>): number {
  const missing = new Set(Object.values(missingAtEnd).flat());
  return report.reregistrations + missing.size;
}

/** Worst gap that started after each fault (until the next one), to see which fault costs what. */
function worstGapPerFault(report: FleetReport, faults: Array<{ name: string; atMs: number }>): Map<string, { count: number; worstGapMs: number }> {
  const out = new Map<string, { count: number; worstGapMs: number }>();
  faults.forEach((f, i) => {
    const until = faults[i + 1]?.atMs ?? Infinity;
    const entry = out.get(f.name) ?? { count: 0, worstGapMs: 0 };
    entry.count++;
    for (const g of report.gaps) if (g.fromMs >= f.atMs && g.fromMs < until) entry.worstGapMs = Math.max(entry.worstGapMs, g.toMs - g.fromMs);
    out.set(f.name, entry);
  });
  return out;
}

function writeReport(
  args: Args,
  report: FleetReport,
  faults: Array<{ name: string; atMs: number }>,
  faultErrors: string[],
  missingAtEnd: Record<string, string[]>,
  etcd: Record<string, number>,
  elapsedMs: number,
): void {
  const lost = lostRegistrations(report, missingAtEnd);
  const perFault = worstGapPerFault(report, faults);
  const gone = report.silent.map((s) => s.goneAfterMs ?? Infinity);
  const md = [
    `# Soak run ${new Date().toISOString()}`,
    '',
    `\`npm run soak -- --minutes ${args.minutes} --pods ${args.pods} --ttl ${args.ttl}\`: a 3-member etcd cluster (auth on), Redis and`,
    `two gateway replicas as real processes on loopback, ${report.pods} pods (8 services) heartbeating every TTL/3 through the replicas`,
    '(each sticks to one, moves on after a connection error, a timeout or a 5xx), lookups of every service every ~200 ms,',
    `a random fault every 15-30 s. Machine: 2 cores shared with other work. Wall time ${Math.round(elapsedMs / 1000)} s.`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| **lost registrations** (pods told to re-register + live pods missing at the end) | **${lost}** (re-registrations ${report.reregistrations}, missing at end ${JSON.stringify(missingAtEnd)}) |`,
    `| **worst gap** (a live pod absent from lookups) | **${report.worstGapMs} ms** |`,
    `| gaps | ${report.gaps.length} |`,
    `| heartbeats | ok ${report.heartbeats.ok}, 404 ${report.heartbeats.notFound}, 5xx ${report.heartbeats.serverError}, connection error/timeout ${report.heartbeats.connectionError} |`,
    `| pods moved to the other replica | ${report.moves} |`,
    `| lookups | ok ${report.lookups.ok} (stale ${report.lookups.stale}), failed ${report.lookups.failed} ${JSON.stringify(report.lookups.byStatus)} |`,
    `| silent pods (stopped heartbeating for good) | ${report.silent.length}, gone from lookups after at most ${gone.length ? Math.max(...gone) : 0} ms, resurrected ${report.silent.filter((s) => s.resurrected).length} |`,
    `| etcd calls (all members, after the fleet registered) | Authenticate ${etcd.authenticate}, Range ${etcd.range}, Txn ${etcd.txn}, LeaseGrant ${etcd.leaseGrant}, keepalive messages ${etcd.leaseKeepAliveMessages} |`,
    '',
    '## Faults',
    '',
    '| fault | times | worst gap after it |',
    '| --- | --- | --- |',
    ...[...perFault].map(([name, f]) => `| ${name} | ${f.count} | ${f.worstGapMs} ms |`),
    '',
    faultErrors.length ? `Faults that failed to apply or undo: ${faultErrors.join('; ')}` : 'Every fault was applied and undone.',
    '',
    '## Worst gaps',
    '',
    ...(report.gaps.length ? report.gaps.slice(0, 10).map((g) => `- ${g.pod}: ${g.toMs - g.fromMs} ms from +${g.fromMs} ms (first missing via ${g.via})${g.open ? ', open at the end' : ''}`) : ['none']),
    '',
    '## Summary and timeline',
    '',
    '```',
    summarize(report),
    '```',
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 2;
});
