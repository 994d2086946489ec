/** A throw-away redis-server on loopback: the gateway's shared L2 cache (no persistence on purpose). */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LOCAL_DIR, SpawnedProcess, freePort, killHard, killStale, logTail, sleep, spawnTracked, terminate, waitUntil } from './procs';

export interface RedisOptions {
  /** Working dir (log, pid). Default: a fresh `.local/test/redis-<random>`. */
  dir?: string;
  /** Default: a random free loopback port. */
  port?: number;
  startTimeoutMs?: number;
}

/** PING over a raw socket: no client library reconnect/retry logic muddying a readiness probe. */
export function redisPing(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

export class RedisServer {
  readonly url: string;
  readonly logFile: string;
  private proc?: SpawnedProcess;
  private readonly pidFile: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly opts: RedisOptions,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
    this.logFile = path.join(dir, 'redis.log');
    this.pidFile = path.join(dir, 'redis.pid');
  }

  get pid(): number | undefined {
    const c = this.proc?.child;
    return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  /** @internal */
  async spawnAndWait(): Promise<void> {
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--save', '', // a cache: no RDB snapshots ...
      '--appendonly', 'no', // ... and no AOF, so a restart starts empty like a real cache node loss
      '--dir', this.dir,
      '--daemonize', 'no', // we own the process: it must stay our child
    ];
    fs.appendFileSync(this.logFile, `\n=== ${new Date().toISOString()} redis-server ${args.join(' ')}\n`);
    this.proc = spawnTracked('redis-server', args, this.logFile);
    fs.writeFileSync(this.pidFile, String(this.proc.child.pid));
    await waitUntil('redis-server', this.proc, this.logFile, () => redisPing(this.port), this.opts.startTimeoutMs ?? 15_000);
  }

  async stop(): Promise<void> {
    if (this.proc) await terminate(this.proc);
  }

  async kill(): Promise<void> {
    if (this.proc) await killHard(this.proc);
  }

  /** Stop and start on the same port. Data is gone afterwards (no persistence). */
  async restart(): Promise<void> {
    await this.stop();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnAndWait();
        return;
      } catch (err) {
        if (attempt >= 10 || !/Address already in use/i.test(logTail(this.logFile, 5))) throw err;
        await sleep(500);
      }
    }
  }

  freeze(): void {
    this.proc?.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.proc?.child.kill('SIGCONT');
  }

  /** Stop and delete the working dir. */
  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = path.resolve(opts.dir ?? path.join(LOCAL_DIR, 'test', `redis-${randomBytes(4).toString('hex')}`));
  fs.mkdirSync(dir, { recursive: true });
  await killStale(path.join(dir, 'redis.pid'), 'redis-server');
  for (let attempt = 1; ; attempt++) {
    const server = new RedisServer(dir, opts.port ?? (await freePort()), opts);
    try {
      await server.spawnAndWait();
      return server;
    } catch (err) {
      await server.kill();
      if (opts.port || attempt >= 3 || !/Address already in use/i.test(logTail(server.logFile, 5))) throw err;
    }
  }
}
