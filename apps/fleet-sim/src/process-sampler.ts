/**
 * CPU and RSS of other processes (the gateway, etcd, a bare server) read from /proc, so the figures
 * do not depend on the process cooperating. CPU is utime+stime in clock ticks; 100 % = one core.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface ProcessSample {
  at: number;
  cpuSeconds: number;
  rssMb: number;
}

export interface ProcessUsage {
  name: string;
  pid: number;
  /** Average over the measured phase; 100 = one full core. */
  cpuPercent: number;
  /** Highest one-interval average seen in the phase. */
  cpuPercentPeak: number;
  rssMbPeak: number;
  rssMbEnd: number;
}

const CLOCK_TICKS = clockTicksPerSecond();

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** utime + stime of a /proc/.../stat text, in clock ticks. */
function cpuTicksOf(stat: string): number {
  // Fields after "(comm)": comm may contain spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}

/** CPU seconds of each thread of `pid` so far, keyed `<name>#<tid>` (the main thread `<name>*`). */
export function readThreads(pid: number): Map<string, number> {
  const threads = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      threads.set(tid === String(pid) ? `${name}*` : `${name}#${tid}`, cpuTicksOf(stat) / CLOCK_TICKS);
    } catch {
      /* the thread ended */
    }
  }
  return threads;
}

/** One reading of /proc/<pid>; undefined when the process is gone. */
export function readProcess(pid: number): ProcessSample | undefined {
  try {
    const cpuTicks = cpuTicksOf(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { at: Date.now(), cpuSeconds: cpuTicks / CLOCK_TICKS, rssMb: rssKb / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Busy CPU of the whole machine (all cores, from /proc/stat) as a pseudo-process: compared with the
 * processes we know, it shows how much of the machine something else used during a measurement.
 */
export function readMachine(): ProcessSample | undefined {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = cpu;
    return { at: Date.now(), cpuSeconds: (user + nice + system + irq + softirq + (steal ?? 0)) / CLOCK_TICKS, rssMb: 0 };
  } catch {
    return undefined;
  }
}

/** The pseudo-process name under which `readMachine()` samples appear. */
export const MACHINE = 'machine';

/** Prefix of the entries naming the busiest processes nobody asked us to sample. */
export const OTHER = 'other: ';

interface ProcessTable {
  at: number;
  cpuSeconds: Map<number, number>;
}

/** CPU seconds of every process on the machine (a hundred small /proc reads). */
function readProcessTable(): ProcessTable {
  const cpuSeconds = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuSeconds.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
    } catch {
      /* exited meanwhile */
    }
  }
  return { at: Date.now(), cpuSeconds };
}

/** "node jest", "etcd", "redis-server": enough to tell what competed for the CPU. */
function describeProcess(pid: number): string {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const base = (a: string) => a.split('/').pop() ?? a;
    const words = [base(argv[0] ?? '?')];
    const script = argv.slice(1).find((a) => !a.startsWith('-'));
    if (script && /node$/.test(words[0])) words.push(base(script));
    return words.join(' ').slice(0, 40);
  } catch {
    return `pid ${pid} (exited)`;
  }
}

/**
 * Samples a set of named processes, this simulator ("fleet-sim") and the machine as a whole every
 * `intervalMs`; `usage(from, to)` summarizes a phase.
 */
export class ProcessSampler {
  private readonly samples = new Map<string, ProcessSample[]>();
  private readonly pids: Record<string, number>;
  /** Whole-machine process tables, taken at the phase boundaries (`sampleNow()`). */
  private readonly tables = new Map<number, ProcessTable>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    pids: Record<string, number>,
    private readonly intervalMs = 500,
  ) {
    this.pids = { ...pids, 'fleet-sim': process.pid };
    for (const name of [...Object.keys(this.pids), MACHINE]) this.samples.set(name, []);
  }

  start(): void {
    this.sampleNow();
    this.timer = setInterval(() => this.sampleKnown(Date.now()), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Samples every process (and the whole process table) now; returns the time, to mark a phase boundary. */
  sampleNow(): number {
    const now = Date.now();
    this.sampleKnown(now);
    this.tables.set(now, readProcessTable());
    return now;
  }

  private sampleKnown(now: number): void {
    for (const [name, pid] of Object.entries(this.pids)) {
      const s = readProcess(pid);
      if (s) this.samples.get(name)!.push({ ...s, at: now });
    }
    const m = readMachine();
    if (m) this.samples.get(MACHINE)!.push({ ...m, at: now });
  }

  usage(from: number, to: number): ProcessUsage[] {
    const out: ProcessUsage[] = [];
    out.push(...this.otherProcesses(from, to));
    for (const [name, pid] of [...Object.entries(this.pids), [MACHINE, 0] as const]) {
      const inPhase = this.samples.get(name)!.filter((s) => s.at >= from && s.at <= to);
      if (inPhase.length < 2) continue;
      const first = inPhase[0];
      const last = inPhase[inPhase.length - 1];
      let peak = 0;
      for (let i = 1; i < inPhase.length; i++) {
        const dt = (inPhase[i].at - inPhase[i - 1].at) / 1000;
        if (dt > 0.05) peak = Math.max(peak, (inPhase[i].cpuSeconds - inPhase[i - 1].cpuSeconds) / dt);
      }
      const seconds = (last.at - first.at) / 1000;
      out.push({
        name,
        pid,
        cpuPercent: Math.round(((last.cpuSeconds - first.cpuSeconds) / seconds) * 1000) / 10,
        cpuPercentPeak: Math.round(peak * 1000) / 10,
        rssMbPeak: Math.round(Math.max(...inPhase.map((s) => s.rssMb)) * 10) / 10,
        rssMbEnd: Math.round(last.rssMb * 10) / 10,
      });
    }
    return out;
  }

  /** The three busiest processes between two `sampleNow()` marks that are none of ours (> 5 % of a core). */
  private otherProcesses(from: number, to: number): ProcessUsage[] {
    const a = this.tables.get(from);
    const b = this.tables.get(to);
    if (!a || !b) return [];
    const ours = new Set([...Object.values(this.pids), process.pid]);
    const seconds = (b.at - a.at) / 1000;
    const busy: Array<{ pid: number; percent: number }> = [];
    for (const [pid, cpu] of b.cpuSeconds) {
      if (ours.has(pid)) continue;
      const percent = ((cpu - (a.cpuSeconds.get(pid) ?? 0)) / seconds) * 100;
      if (percent > 5) busy.push({ pid, percent });
    }
    return busy
      .sort((x, y) => y.percent - x.percent)
      .slice(0, 3)
      .map(({ pid, percent }) => ({
        name: `${OTHER}${describeProcess(pid)}`,
        pid,
        cpuPercent: Math.round(percent * 10) / 10,
        cpuPercentPeak: Math.round(percent * 10) / 10,
        rssMbPeak: 0,
        rssMbEnd: 0,
      }));
  }
}

/** `gateway=123,etcd=456` -> {gateway: 123, etcd: 456}. */
export function parsePidList(spec: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, pid] = part.split('=');
    if (!name || !/^\d+$/.test(pid ?? '')) throw new Error(`--sample-pid expects name=pid[,name=pid...], got "${part}"`);
    out[name] = Number(pid);
  }
  return out;
}
