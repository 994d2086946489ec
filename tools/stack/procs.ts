/**
 * Child-process plumbing shared by the etcd and Redis handles: free loopback ports, spawning with
 * output to a log file, waiting for exit, and a safety net that kills every child we started when
 * this process goes away (so a crashed test run or dev stack never leaves etcd/Redis behind).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

/** Repository root (tools/stack/ is two levels down); data lives under `<root>/.local/`, which git ignores. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const LOCAL_DIR = path.join(REPO_ROOT, '.local');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One free loopback port (the OS picks it when we listen on port 0). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0];
}

/**
 * N distinct free loopback ports. All listeners stay open until every port is known, otherwise the
 * OS could hand out the same port twice.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** True when nothing listens on 127.0.0.1:port and we may bind it. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Small GET with a hard timeout: a frozen (SIGSTOPped) server must not hang the caller. */
export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // agent: false = no pooled keep-alive socket (Node 20's default agent keeps one open ~5 s,
    // which is enough for jest to report an open handle).
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Tracking and cleanup. Two layers:
//  1. In-process hooks ('exit', SIGINT/SIGTERM/SIGHUP): immediate, synchronous kill in plain Node.
//     They do NOT work inside jest test files: jest gives each test file a sandboxed `process`
//     whose on('exit'/'SIGINT') listeners never fire (verified with jest 30).
//  2. A watchdog per child: a tiny `sh` reading a pipe from us. When this process dies for any
//     reason (even SIGKILL, or jest's forceExit), the kernel closes the pipe, `read` returns and
//     the watchdog SIGKILLs the child. This is the guarantee; layer 1 just makes it faster.

const tracked = new Map<ChildProcess, ChildProcess | undefined>(); // child -> its watchdog
let hooksInstalled = false;

function killAllTracked(): void {
  for (const [child, watchdog] of tracked) {
    try {
      child.kill('SIGCONT'); // a frozen child would otherwise linger in the stopped state
      child.kill('SIGKILL');
      watchdog?.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  tracked.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  // If the host program has its own handler (dev-up does, to stop things in order), it owns the
  // shutdown. Otherwise we are the sole listener, and installing a listener disabled Node's
  // default "terminate" action: kill children and re-raise the signal to die as expected.
  if (process.listenerCount(sig) > 1) return;
  killAllTracked();
  process.removeListener(sig, onSignal);
  process.kill(process.pid, sig);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllTracked); // synchronous: kill(2) is all we can do here
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) process.on(sig, onSignal);
}

function spawnWatchdog(pid: number): ChildProcess | undefined {
  try {
    const watchdog = spawn('sh', ['-c', 'read _ignored; kill -CONT "$0" 2>/dev/null; kill -KILL "$0" 2>/dev/null', String(pid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true, // own process group: a terminal Ctrl-C must not kill the watchdog first
    });
    watchdog.on('error', () => undefined);
    watchdog.stdin?.on('error', () => undefined);
    // Neither the process nor the pipe may keep our event loop alive.
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    watchdog.unref();
    return watchdog;
  } catch {
    return undefined; // layer 1 still applies
  }
}

/**
 * Kill `child` when this process goes away, however it goes. Used for everything spawnTracked
 * starts, and for children spawned elsewhere (the gateway in dev-up).
 */
export function trackChild(child: ChildProcess): void {
  installHooks();
  if (child.pid === undefined) return; // spawn failed: nothing to track
  const watchdog = spawnWatchdog(child.pid);
  tracked.set(child, watchdog);
  child.once('exit', () => {
    tracked.delete(child);
    watchdog?.kill('SIGKILL'); // before the pid can be reused by something else
  });
}

export interface SpawnedProcess {
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
}

/**
 * Spawn a tracked child whose stdout/stderr go to `logFile` (appended). `detached` puts it in its own
 * process group, so a Ctrl-C in the terminal reaches only us and we can stop things in order.
 */
export function spawnTracked(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): SpawnedProcess {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, env: env ?? process.env });
  } finally {
    fs.closeSync(fd); // the child holds its own copy
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
    child.once('error', (err) => {
      fs.appendFileSync(logFile, `spawn error: ${err.message}\n`);
      resolve(-1);
    });
  });
  trackChild(child);
  // Don't let a tracked child keep the Node event loop alive on its own (tests end on their own).
  child.unref();
  return { child, exited };
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Thaws first: a stopped process can't act on SIGTERM. */
export async function terminate(p: SpawnedProcess, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  p.child.kill('SIGCONT');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    p.exited.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
  ]);
  clearTimeout(timer); // a pending grace timer would keep jest (or any caller) alive for 10 s
  if (timedOut) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

export async function killHard(p: SpawnedProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGKILL');
  await p.exited;
}

/** Last lines of a log file, for error messages when a server fails to come up. */
export function logTail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Poll `probe` until it returns true. Fails fast if the process exits, and with the log tail on timeout,
 * so a broken start explains itself.
 */
export async function waitUntil(
  what: string,
  p: SpawnedProcess,
  logFile: string,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void p.exited.then((c) => (exited = c));
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`${what} exited (${exited}) during start-up. Log ${logFile}:\n${logTail(logFile)}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms. Log ${logFile}:\n${logTail(logFile)}`);
}

/** Pid from `pidFile` if that process is alive and its command line mentions `marker`. */
export function livePid(pidFile: string, marker: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!pid) return undefined;
    if (/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) return undefined; // zombie: dead, not reaped yet
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker) ? pid : undefined;
  } catch {
    return undefined; // no pid file, or no such process
  }
}

/**
 * A previous run killed with SIGKILL cannot clean up after itself, and its etcd would keep the
 * persistent dev data dir locked. Kill such a leftover, identified by pid file AND a command line
 * that still mentions `marker` (so a recycled pid of an unrelated process is left alone).
 */
export async function killStale(pidFile: string, marker: string): Promise<void> {
  const pid = livePid(pidFile, marker);
  if (!pid) return;
  process.stderr.write(`stack: killing leftover process ${pid} from an earlier run (${marker})\n`);
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // raced with its exit
  }
  for (let i = 0; i < 50 && livePid(pidFile, marker); i++) await sleep(100);
}

/**
 * The lifecycle the local etcd and Redis share: one child process and its log; stop, kill, restart
 * on the same ports, freeze and thaw. Subclasses only know how to spawn themselves and wait.
 */
export abstract class LocalServer {
  protected proc?: SpawnedProcess;
  abstract readonly logFile: string;

  /** @internal Spawn the process and wait until it serves. */
  abstract spawnAndWait(): Promise<void>;

  /** Pid of the current process (changes on restart); undefined while stopped. */
  get pid(): number | undefined {
    return this.running ? this.proc?.child.pid : undefined;
  }

  get running(): boolean {
    const c = this.proc?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** SIGTERM and wait for exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    if (this.proc) await terminate(this.proc);
  }

  /** SIGKILL: a crash, no graceful shutdown. */
  async kill(): Promise<void> {
    if (this.proc) await killHard(this.proc);
  }

  /**
   * Stop (if running) and start again on the same ports. The ports were free a moment ago but a
   * client may grab one as its ephemeral port in between, so a failed bind is retried.
   */
  async restart(): Promise<void> {
    await this.stop();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnAndWait();
        return;
      } catch (err) {
        if (attempt >= 10 || !/address already in use/i.test(logTail(this.logFile, 5))) throw err;
        await sleep(500);
      }
    }
  }

  /** SIGSTOP: the server stops answering but keeps its sockets open (clients see timeouts, not refusals). */
  freeze(): void {
    const pid = this.proc?.child.pid;
    this.proc?.child.kill('SIGSTOP');
    // kill() only queues the signal: until the kernel has stopped every thread, a request sent right
    // after freeze() can still be answered (seen as a flaky "resolved instead of timed out").
    if (pid) waitUntilStopped(pid, 2_000);
  }

  thaw(): void {
    this.proc?.child.kill('SIGCONT');
  }
}

/** Spins (briefly, synchronously) until /proc reports `pid` stopped ('T'), or `timeoutMs` passes. */
export function waitUntilStopped(pid: number, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    } catch {
      return; // gone
    }
  }
}
