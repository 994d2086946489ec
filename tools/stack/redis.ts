/** A throw-away redis-server on loopback: the replicas' renewal ledger (no persistence on purpose). */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePort, killStale, LOCAL_DIR, LocalServer, logTail, spawnTracked, waitUntil } from './procs';

export interface RedisOptions {
  /** Working dir (log, pid). Default: a fresh `.local/test/redis-<random>`. */
  dir?: string;
  /** Default: a random free loopback port. */
  port?: number;
  startTimeoutMs?: number;
  /** requirepass (and masterauth, so it can follow a primary that has the same password). */
  password?: string;
  /** More redis-server arguments (replication, cluster mode; see redis-topologies.ts). */
  extraArgs?: string[];
}

/** PING (after AUTH when a password is given) over a raw socket: no client library reconnect/retry logic muddying a readiness probe. */
export function redisPing(port: number, timeoutMs = 1000, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    // Inline commands: the password must not contain spaces (the stack generates hex ones).
    sock.on('connect', () => sock.write(password ? `AUTH ${password}\r\nPING\r\n` : 'PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      const lines = buf.split('\r\n').slice(0, -1);
      if (lines.length >= (password ? 2 : 1)) done(lines[lines.length - 1].startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

export class RedisServer extends LocalServer {
  readonly url: string;
  readonly logFile: string;
  readonly password: string | undefined;
  private readonly pidFile: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly opts: RedisOptions,
  ) {
    super();
    this.password = opts.password;
    // The URL carries the password: for the gateway's env only, never for a log line.
    this.url = opts.password ? `redis://:${opts.password}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`;
    this.logFile = path.join(dir, 'redis.log');
    this.pidFile = path.join(dir, 'redis.pid');
  }

  /** @internal */
  async spawnAndWait(): Promise<void> {
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--save', '', // short-lived claims only: no RDB snapshots ...
      '--appendonly', 'no', // ... and no AOF, so a restart starts empty like a real node loss
      '--dir', this.dir,
      '--daemonize', 'no', // we own the process: it must stay our child
      ...(this.opts.password ? ['--requirepass', this.opts.password, '--masterauth', this.opts.password] : []),
      ...(this.opts.extraArgs ?? []),
    ];
    const shown = args.map((a) => (a === this.opts.password ? '<password>' : a));
    fs.appendFileSync(this.logFile, `\n=== ${new Date().toISOString()} redis-server ${shown.join(' ')}\n`);
    this.proc = spawnTracked('redis-server', args, this.logFile);
    fs.writeFileSync(this.pidFile, String(this.proc.child.pid));
    await waitUntil('redis-server', this.proc, this.logFile, () => redisPing(this.port, 1000, this.opts.password), this.opts.startTimeoutMs ?? 15_000);
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
