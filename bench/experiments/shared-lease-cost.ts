/**
 * Issue 21 groundwork: what shared leases (many instance keys on one etcd lease) cost etcd, measured
 * on the real etcd (3.4.23 here) with auth on, as a user whose role may only touch the gateway's prefix
 * (the gateway's own user: every permission check etcd makes for the gateway is made here too).
 *
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/shared-lease-cost.ts
 *     --only keepalive,put-check,register,delete,expiry,memory,liveness   phases to run (default: all, in this order)
 *     --rounds R     rounds per phase (default 5; medians are printed)
 *     --json FILE    also write every round's figures as JSON
 *
 * Each phase starts its own auth-enabled etcd (tools/stack, loopback, random ports) and disposes of it,
 * so no phase inherits another's keys, leases or heap. etcd's CPU is read from /proc/<pid>/stat
 * (utime+stime, CPU-seconds): on a shared 2-core machine that is far steadier than a wall-clock rate.
 * "net" figures subtract etcd's idle CPU rate (measured in the same phase) over the measured wall time.
 *
 * Phases:
 *  keepalive  CPU per LeaseKeepAlive message for a lease with K = 1, 100, 1,000, 10,000 keys attached,
 *             one stream, closed loop (a window of 256 renewals in flight).
 *  put-check  CPU per Put of one key onto a lease that carries K keys, as a plain Put and as a
 *             one-put Txn: etcd 3.4's authApplierV3.Put checks write permission on every key already on
 *             the lease (checkLeasePuts); the slope is the per-key permission check that etcd 3.4.42 /
 *             3.5.28 / 3.6.9 added to every LeaseKeepAlive (checkLeaseRenew), so it prices that too.
 *  register   N registrations three ways: LeaseGrant + Put per instance (today), one plain Put per
 *             instance onto shared leases of 1,000, and Txns of 128 Puts onto shared leases of 1,000.
 *  delete     the gateway-side expiry: deletes guarded by mod_revision, one Txn per key vs 64 nested
 *             Txns (each compare+delete on its own) per request; 1 % of the keys are rewritten after
 *             their mod_revision was read and must survive.
 *  expiry     a shared lease of 1,000 keys left to expire, and one revoked: time until etcd deleted the
 *             keys, watch responses/events delivered, etcd CPU; then 10,000 keys on 10 shared leases vs
 *             on 10,000 leases, all expiring together (etcd's lessor revokes at most 1,000 leases/s).
 *  memory     etcd RSS and Go heap with 100,000 keys on 100 shared leases vs on 100,000 leases (a fresh
 *             etcd each), plus etcd's idle CPU while it holds them.
 *  liveness   the replicas' per-pass exchange of "instances I heard" at 1,000,000 instances, 3 replicas,
 *             TTL 30 s, 2 s passes (66,700 8-byte key hashes per replica per pass): through Redis (one SET
 *             per replica, two GETs each) vs through etcd (one Put per replica under the prefix, read by
 *             three watches); Redis's or etcd's CPU per pass, and a replica's CPU to look its candidates up.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, IRequestOp, IWatchRequest, IWatchResponse } from 'etcd3';
import { EtcdConnection } from '@app/etcd';
import Redis from 'ioredis';
import { EtcdServer, LOCAL_DIR, parsePrometheusText, startEtcd, startRedis, sumSamples } from '@app/stack';
import { readProcess } from '../../apps/fleet-sim/src/process-sampler';

const log = (msg: string) => process.stderr.write(`[exp ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** etcd's default --max-txn-ops is 128. */
const TXN_OPS = 128;
/**
 * Guarded deletes per request as nested Txns: etcd checks a nested Txn against what the outer one leaves
 * of --max-txn-ops (v3rpc checkTxnRequest: maxTxnOps - outer ops), so S nested one-compare Txns need
 * 1 <= 128 - S, i.e. at most 127 at the default; 64 stays well inside.
 */
const NESTED_OPS = 64;
/** About the size of an encoded instance record (service, id, address, port, ttl, a little metadata). */
const VALUE = JSON.stringify({ address: '10.12.34.56', port: 8080, ttl: 30, zone: 'eu-west-1a', weight: 100, metadata: { version: '1.42.0', team: 'payments' }, tags: ['http', 'grpc'], registeredAt: new Date(0).toISOString(), pad: 'x'.repeat(40) });

const { values: args } = parseArgs({
  options: { only: { type: 'string' }, rounds: { type: 'string' }, json: { type: 'string' } },
});
const ROUNDS = Number(args.rounds ?? 5);
const PHASES = ['keepalive', 'put-check', 'register', 'delete', 'expiry', 'memory', 'liveness'] as const;
type Phase = (typeof PHASES)[number];
const selected = new Set<Phase>((args.only?.split(',') as Phase[] | undefined) ?? PHASES);
const results: Record<string, unknown> = { machine: machine(), rounds: ROUNDS };

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

// ---------------------------------------------------------------------------------------------
// etcd handle, client and measuring

class Lab {
  private constructor(
    readonly etcd: EtcdServer,
    readonly conn: EtcdConnection,
  ) {}

  /** A private auth-enabled etcd and one connection as the restricted gateway user. */
  static async start(): Promise<Lab> {
    const etcd = await startEtcd({ dataDir: path.join(LOCAL_DIR, 'exp', `etcd-shared-${randomBytes(3).toString('hex')}`) });
    const conn = new EtcdConnection({
      endpoints: [etcd.endpoint],
      credentials: { username: etcd.gatewayUser, password: etcd.gatewayPassword },
      requestTimeoutMs: 60_000,
    });
    try {
      await conn.connect();
    } catch (err) {
      await etcd.dispose();
      throw err;
    }
    return new Lab(etcd, conn);
  }

  async dispose(): Promise<void> {
    this.conn.close();
    await this.etcd.dispose();
  }

  key(...parts: Array<string | number>): string {
    return `${this.etcd.prefix}exp/${parts.join('/')}`;
  }

  cpuSeconds(): number {
    const sample = readProcess(this.etcd.pid!);
    if (!sample) throw new Error('etcd is gone');
    return sample.cpuSeconds;
  }

  rssMb(): number {
    return readProcess(this.etcd.pid!)?.rssMb ?? NaN;
  }

  async metric(name: string, match: Record<string, string> = {}): Promise<number> {
    const res = await fetch(`${this.etcd.metricsUrl}/metrics`);
    return sumSamples(parsePrometheusText(await res.text()), name, match);
  }

  /** etcd's idle CPU rate (CPU-seconds per second) over `ms`. */
  async idleRate(ms = 2_000): Promise<number> {
    const c0 = this.cpuSeconds();
    const t0 = performance.now();
    await sleep(ms);
    return (this.cpuSeconds() - c0) / ((performance.now() - t0) / 1000);
  }

  /** etcd CPU-seconds and wall seconds that `work` took. */
  async measure(work: () => Promise<void>): Promise<{ cpu: number; wall: number }> {
    const c0 = this.cpuSeconds();
    const t0 = performance.now();
    await work();
    return { cpu: this.cpuSeconds() - c0, wall: (performance.now() - t0) / 1000 };
  }

  async grant(ttlSeconds: number): Promise<string> {
    return String((await this.conn.lease.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID);
  }

  /** Puts every key under `leaseId`, TXN_OPS per Txn, `concurrency` Txns at once. */
  async attach(keys: readonly string[], leaseId: string | ((i: number) => string), concurrency = 4): Promise<void> {
    const batches: number[][] = [];
    for (let i = 0; i < keys.length; i += TXN_OPS) batches.push(Array.from({ length: Math.min(TXN_OPS, keys.length - i) }, (_, j) => i + j));
    const lease = typeof leaseId === 'string' ? () => leaseId : leaseId;
    await forEachLimit(batches, concurrency, async (batch) => {
      await this.conn.kv.txn({ compare: [], success: batch.map((i) => ({ request_put: { key: Buffer.from(keys[i]), value: Buffer.from(VALUE), lease: lease(i) } })) });
    });
  }

  /** Revokes leases with some concurrency (cleaning up between rounds, never measured). */
  async revokeAll(leaseIds: readonly string[]): Promise<void> {
    await forEachLimit(leaseIds, 32, async (id) => {
      await this.conn.lease.leaseRevoke({ ID: id }).catch(() => undefined);
    });
  }

  async count(prefixKey: string): Promise<number> {
    const res = await this.conn.kv.range({ key: Buffer.from(prefixKey), range_end: prefixEnd(prefixKey), count_only: true });
    return Number(res.count);
  }
}

function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]++;
  return end;
}

/** Runs `task` over `items`, at most `limit` at once. */
async function forEachLimit<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const keysOf = (lab: Lab, group: string, n: number) => Array.from({ length: n }, (_, i) => lab.key(group, String(i).padStart(6, '0')));

// ---------------------------------------------------------------------------------------------
// keepalive: CPU per LeaseKeepAlive message vs keys on the lease

/** What etcd3's leaseKeepAlive() really returns (its IDuplexStream type hides the stream's EventEmitter side). */
type KeepAliveStream = ClientDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** `messages` renewals of `leaseId` over `stream`, `window` unanswered at once; resolves once all are answered. */
function renewMany(stream: KeepAliveStream, leaseId: string, messages: number, window = 256): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = 0;
    const onData = (res: ILeaseKeepAliveResponse) => {
      if (Number(res.TTL) <= 0) return fail(new Error(`lease ${leaseId} answered TTL ${res.TTL}: gone`));
      answered++;
      if (answered === messages) {
        stream.removeListener('data', onData);
        stream.removeListener('error', fail);
        resolve();
      } else if (sent < messages) {
        stream.write({ ID: leaseId });
        sent++;
      }
    };
    const fail = (err: Error) => {
      stream.removeListener('data', onData);
      reject(err);
    };
    stream.on('data', onData);
    stream.once('error', fail);
    for (; sent < Math.min(window, messages); sent++) stream.write({ ID: leaseId });
  });
}

async function keepalivePhase(): Promise<void> {
  const SIZES = [1, 100, 1_000, 10_000];
  const MESSAGES = 20_000;
  const lab = await Lab.start();
  try {
    const leases = new Map<number, string>();
    for (const k of SIZES) {
      const lease = await lab.grant(600);
      await lab.attach(keysOf(lab, `ka-${k}`, k), lease);
      leases.set(k, lease);
    }
    const stream = (await lab.conn.lease.leaseKeepAlive()) as unknown as KeepAliveStream;
    await renewMany(stream, leases.get(1)!, 2_000); // warm-up: stream open, first answers
    const out = new Map<number, { usPerMsg: number[]; netUsPerMsg: number[]; msgsPerCpuS: number[] }>(SIZES.map((k) => [k, { usPerMsg: [], netUsPerMsg: [], msgsPerCpuS: [] }]));
    for (let r = 0; r < ROUNDS; r++) {
      const idle = await lab.idleRate();
      // Rotate the order so no size always runs first (or right after a GC of the one before).
      for (const k of [...SIZES.slice(r % SIZES.length), ...SIZES.slice(0, r % SIZES.length)]) {
        const m0 = await lab.metric('grpc_server_msg_received_total', { grpc_method: 'LeaseKeepAlive' });
        const { cpu, wall } = await lab.measure(() => renewMany(stream, leases.get(k)!, MESSAGES));
        const msgs = (await lab.metric('grpc_server_msg_received_total', { grpc_method: 'LeaseKeepAlive' })) - m0;
        const o = out.get(k)!;
        o.usPerMsg.push((cpu * 1e6) / msgs);
        o.netUsPerMsg.push(((cpu - idle * wall) * 1e6) / msgs);
        o.msgsPerCpuS.push(msgs / cpu);
      }
      log(`keepalive round ${r + 1}/${ROUNDS}: idle ${round(idle * 100)} % of a core; ${SIZES.map((k) => `K=${k} ${round(out.get(k)!.usPerMsg.at(-1)!, 2)} us/msg`).join(', ')}`);
    }
    stream.end();
    const rows = SIZES.map((k) => ({ keysOnLease: k, messagesPerRound: MESSAGES, ...medians(out.get(k)!), rounds: out.get(k) }));
    results.keepalive = rows;
    console.log('\n## keepalive: etcd CPU per LeaseKeepAlive message (one stream, window 256), medians');
    console.table(rows.map(({ rounds: _r, ...row }) => row));
  } finally {
    await lab.dispose();
  }
}

function medians<T extends Record<string, number[]>>(o: T): { [K in keyof T]: number } {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(median(v), 2)])) as { [K in keyof T]: number };
}

// ---------------------------------------------------------------------------------------------
// put-check: a Put onto a lease that already carries K keys

async function putCheckPhase(): Promise<void> {
  const SIZES = [1, 100, 1_000, 10_000];
  const PUTS = 400;
  const PROBES = 16; // the same 16 keys are written again and again: K stays K + 16
  const lab = await Lab.start();
  try {
    const leases = new Map<number, string>();
    for (const k of SIZES) {
      const lease = await lab.grant(600);
      await lab.attach(keysOf(lab, `pc-${k}`, k), lease);
      leases.set(k, lease);
    }
    const shapes = {
      put: (key: string, lease: string) => lab.conn.kv.put({ key: Buffer.from(key), value: Buffer.from(VALUE), lease }).then(() => undefined),
      txn: (key: string, lease: string) => lab.conn.kv.txn({ compare: [], success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(VALUE), lease } }] }).then(() => undefined),
    };
    const out: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      const idle = await lab.idleRate();
      for (const k of SIZES) {
        for (const [shape, write] of Object.entries(shapes)) {
          const probes = Array.from({ length: PROBES }, (_, i) => lab.key(`pc-${k}-probe-${shape}`, i));
          const { cpu, wall } = await lab.measure(() => forEachLimit(Array.from({ length: PUTS }, (_, i) => i), 16, (i) => write(probes[i % PROBES], leases.get(k)!)));
          (out[`${shape}@${k}`] ??= []).push(((cpu - idle * wall) * 1e6) / PUTS);
        }
      }
      log(`put-check round ${r + 1}/${ROUNDS}: ${Object.entries(out).map(([k, v]) => `${k} ${round(v.at(-1)!, 1)} us`).join(', ')}`);
    }
    const rows = SIZES.map((k) => ({ keysOnLease: k, plainPutNetUs: round(median(out[`put@${k}`]), 1), oneOpTxnNetUs: round(median(out[`txn@${k}`]), 1) }));
    const slope = (median(out[`put@${SIZES.at(-1)}`]) - median(out[`put@${SIZES[0]}`])) / (SIZES.at(-1)! - SIZES[0]);
    results.putCheck = { rows, usPerAttachedKeyCheck: round(slope, 3), rounds: out };
    console.log('\n## put-check: etcd net CPU (us) per Put onto a lease carrying K keys (16 writers), medians');
    console.table(rows);
    console.log(`per attached key (plain Put slope, K=1..10,000): ${round(slope, 3)} us of etcd CPU per write-permission check`);
  } finally {
    await lab.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// register: today's LeaseGrant + Put vs Puts onto shared leases

async function registerPhase(): Promise<void> {
  const N = 10_000;
  const PER_LEASE = 1_000;
  const lab = await Lab.start();
  try {
    const shapes: Record<string, (keys: string[]) => Promise<string[]>> = {
      // Today's shape: every registration grants its own lease, then Puts with it (64 at once).
      'grant+put': async (keys) => {
        const leases: string[] = [];
        await forEachLimit(keys, 64, async (key) => {
          const lease = await lab.grant(60);
          leases.push(lease);
          await lab.conn.kv.put({ key: Buffer.from(key), value: Buffer.from(VALUE), lease });
        });
        return leases;
      },
      // Shared leases of 1,000 keys, one plain Put per registration (64 at once).
      'shared put': async (keys) => {
        const leases: string[] = [];
        for (let i = 0; i < keys.length; i += PER_LEASE) leases.push(await lab.grant(60));
        await forEachLimit(keys, 64, async (key, i) => {
          await lab.conn.kv.put({ key: Buffer.from(key), value: Buffer.from(VALUE), lease: leases[Math.floor(i / PER_LEASE)] });
        });
        return leases;
      },
      // Shared leases of 1,000 keys, Puts batched TXN_OPS per Txn (8 Txns at once), as a PutBatcher would.
      'shared txn128': async (keys) => {
        const leases: string[] = [];
        for (let i = 0; i < keys.length; i += PER_LEASE) leases.push(await lab.grant(60));
        await lab.attach(keys, (i) => leases[Math.floor(i / PER_LEASE)], 8);
        return leases;
      },
    };
    const out: Record<string, { cpuUsPerRegistration: number[]; netCpuUsPerRegistration: number[]; registrationsPerS: number[]; grantsPerRegistration: number[] }> = {};
    for (let r = 0; r < ROUNDS; r++) {
      const idle = await lab.idleRate();
      for (const [name, register] of Object.entries(shapes)) {
        const keys = keysOf(lab, `reg-${r}-${name.replace(/\W/g, '')}`, N);
        const g0 = await lab.metric('grpc_server_handled_total', { grpc_method: 'LeaseGrant' });
        let leases: string[] = [];
        const { cpu, wall } = await lab.measure(async () => {
          leases = await register(keys);
        });
        const grants = (await lab.metric('grpc_server_handled_total', { grpc_method: 'LeaseGrant' })) - g0;
        const o = (out[name] ??= { cpuUsPerRegistration: [], netCpuUsPerRegistration: [], registrationsPerS: [], grantsPerRegistration: [] });
        o.cpuUsPerRegistration.push((cpu * 1e6) / N);
        o.netCpuUsPerRegistration.push(((cpu - idle * wall) * 1e6) / N);
        o.registrationsPerS.push(N / wall);
        o.grantsPerRegistration.push(grants / N);
        // Clean up outside the measurement: the leases' keys go with them.
        await lab.revokeAll(leases);
        await sleep(500);
      }
      log(`register round ${r + 1}/${ROUNDS}: ${Object.entries(out).map(([k, v]) => `${k} ${round(v.cpuUsPerRegistration.at(-1)!)} us, ${Math.round(v.registrationsPerS.at(-1)!)}/s`).join('; ')}`);
    }
    const rows = Object.entries(out).map(([shape, o]) => ({ shape, ...medians(o) }));
    results.register = { registrations: N, keysPerSharedLease: PER_LEASE, rows, rounds: out };
    console.log(`\n## register: ${N} registrations, etcd CPU per registration and wall rate, medians`);
    console.table(rows);
  } finally {
    await lab.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// delete: the gateway-side expiry, guarded by mod_revision

async function deletePhase(): Promise<void> {
  const N = 10_000;
  const lab = await Lab.start();
  try {
    const lease = await lab.grant(600);
    const out: Record<string, { cpuUsPerDelete: number[]; netCpuUsPerDelete: number[]; deletesPerS: number[] }> = {};
    const survivorsOk: boolean[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const idle = await lab.idleRate();
      for (const shape of ['txn per key', `nested txn x${NESTED_OPS}`] as const) {
        const group = `del-${r}-${shape.replace(/\W/g, '')}`;
        const keys = keysOf(lab, group, N);
        await lab.attach(keys, lease);
        const listed = await lab.conn.kv.range({ key: Buffer.from(lab.key(group, '')), range_end: prefixEnd(lab.key(group, '')) });
        const modRevision = new Map(listed.kvs.map((kv) => [kv.key.toString(), String(kv.mod_revision)]));
        // 1 % re-registered after the sweep read them: their mod_revision moved, they must survive.
        const rewritten = keys.filter((_, i) => i % 100 === 7);
        await lab.attach(rewritten, lease);
        const guardedDelete = (key: string) => ({ compare: [{ key: Buffer.from(key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: modRevision.get(key)! }], success: [{ request_delete_range: { key: Buffer.from(key) } }] });
        const { cpu, wall } = await lab.measure(async () => {
          if (shape === 'txn per key') {
            await forEachLimit(keys, 64, async (key) => {
              await lab.conn.kv.txn(guardedDelete(key));
            });
          } else {
            const batches: string[][] = [];
            for (let i = 0; i < keys.length; i += NESTED_OPS) batches.push(keys.slice(i, i + NESTED_OPS));
            await forEachLimit(batches, 8, async (batch) => {
              const success: IRequestOp[] = batch.map((key) => ({ request_txn: guardedDelete(key) }));
              await lab.conn.kv.txn({ compare: [], success });
            });
          }
        });
        const left = await lab.count(lab.key(group, ''));
        survivorsOk.push(left === rewritten.length);
        const o = (out[shape] ??= { cpuUsPerDelete: [], netCpuUsPerDelete: [], deletesPerS: [] });
        const deleted = N - left;
        o.cpuUsPerDelete.push((cpu * 1e6) / deleted);
        o.netCpuUsPerDelete.push(((cpu - idle * wall) * 1e6) / deleted);
        o.deletesPerS.push(deleted / wall);
        await lab.conn.kv.deleteRange({ key: Buffer.from(lab.key(group, '')), range_end: prefixEnd(lab.key(group, '')) });
      }
      log(`delete round ${r + 1}/${ROUNDS}: ${Object.entries(out).map(([k, v]) => `${k} ${round(v.cpuUsPerDelete.at(-1)!)} us, ${Math.round(v.deletesPerS.at(-1)!)}/s`).join('; ')}; survivors right: ${survivorsOk.at(-1)}`);
    }
    const rows = Object.entries(out).map(([shape, o]) => ({ shape, ...medians(o) }));
    results.delete = { keys: N, rows, rewrittenSurvivedEveryRound: survivorsOk.every(Boolean), rounds: out };
    console.log(`\n## delete: ${N} keys deleted by mod_revision-guarded Txns (1 % rewritten meanwhile must survive: ${survivorsOk.every(Boolean) ? 'they did' : 'THEY DID NOT'}), medians`);
    console.table(rows);
  } finally {
    await lab.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// expiry: what etcd does when a shared lease ends

/** A watch on `prefix` counting responses and events, with the time the last delete event arrived. */
async function watchPrefix(lab: Lab, prefix: string): Promise<{ responses: number; deletes: number; lastDeleteAt: number; revisions: Set<string>; close(): void }> {
  const stream = (await lab.conn.watch.watch()) as unknown as ClientDuplexStream<IWatchRequest, IWatchResponse>;
  const state = { responses: 0, deletes: 0, lastDeleteAt: 0, revisions: new Set<string>(), close: () => stream.end() };
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (res: IWatchResponse) => {
      if (res.created) return resolve();
      const deletes = (res.events ?? []).filter((e) => e.type === 'Delete').length;
      if (!deletes) return;
      state.responses++;
      state.deletes += deletes;
      state.lastDeleteAt = performance.now();
      state.revisions.add(String(res.header.revision));
    });
    stream.once('error', reject);
    stream.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } });
  });
  return state;
}

/** Resolves once the watch has delivered `deletes` delete events (no etcd request while waiting: polling would cost etcd CPU). */
async function untilWatched(watch: { deletes: number }, deletes: number, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (watch.deletes < deletes) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`only ${watch.deletes} of ${deletes} delete events after ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function expiryPhase(): Promise<void> {
  const TTL = 5;
  /** The mass expiry's leases: long enough that granting 10,000 and attaching their keys ends before the first expires. */
  const MASS_TTL = 15;
  /** CPU is counted from this long before the (first) expiry to this long after the last delete event. */
  const MARGIN_MS = 300;
  const lab = await Lab.start();
  try {
    const out: Record<string, Record<string, number[]>> = {};
    const add = (shape: string, figures: Record<string, number>) => {
      const o = (out[shape] ??= {});
      for (const [k, v] of Object.entries(figures)) (o[k] ??= []).push(v);
    };
    /** etcd CPU (ms, net of its idle rate) from `from` until the watch saw `keys` deletes, plus the margin. */
    const spike = async (watch: { deletes: number; lastDeleteAt: number }, keys: number, from: number, idle: number) => {
      await sleep(Math.max(0, from - performance.now()));
      const c0 = lab.cpuSeconds();
      const t0 = performance.now();
      await untilWatched(watch, keys, 60_000);
      await sleep(MARGIN_MS);
      const wallS = (performance.now() - t0) / 1000;
      const cpu = lab.cpuSeconds() - c0;
      return { cpuMs: round(cpu * 1000, 1), netCpuMs: round((cpu - idle * wallS) * 1000, 1), windowMs: round(wallS * 1000, 0) };
    };
    for (let r = 0; r < ROUNDS; r++) {
      const idle = await lab.idleRate();
      // One shared lease of 1,000 keys, expiring / revoked.
      for (const ending of ['expires', 'revoked'] as const) {
        const group = `exp-${r}-${ending}`;
        const lease = await lab.grant(TTL);
        const grantedAt = performance.now();
        await lab.attach(keysOf(lab, group, 1_000), lease);
        const watch = await watchPrefix(lab, lab.key(group, ''));
        let endAt = grantedAt + TTL * 1000;
        let revokeMs = NaN;
        let cpu;
        if (ending === 'revoked') {
          const waited = spike(watch, 1_000, performance.now(), idle);
          endAt = performance.now();
          await lab.conn.lease.leaseRevoke({ ID: lease });
          revokeMs = performance.now() - endAt;
          cpu = await waited;
        } else {
          cpu = await spike(watch, 1_000, endAt - MARGIN_MS, idle);
        }
        watch.close();
        if ((await lab.count(lab.key(group, ''))) !== 0) throw new Error(`${group}: keys left after the lease ended`);
        add(`1 lease x 1,000 keys ${ending}`, {
          lastDeleteEventAfterMs: round(watch.lastDeleteAt - endAt, 0),
          watchDeleteEvents: watch.deletes,
          watchResponses: watch.responses,
          revisions: watch.revisions.size,
          ...(ending === 'revoked' ? { revokeCallMs: round(revokeMs, 1) } : {}),
          etcdCpuMs: cpu.cpuMs,
          etcdNetCpuMs: cpu.netCpuMs,
          cpuWindowMs: cpu.windowMs,
        });
      }
      // Every replica gone: 10,000 keys on 10 shared leases vs on 10,000 leases, all expiring together.
      for (const [shape, leaseCount] of [['10 leases x 1,000 keys', 10], ['10,000 leases x 1 key', 10_000]] as const) {
        const group = `mass-${r}-${leaseCount}`;
        const leases: string[] = [];
        const firstGrantAt = performance.now();
        await forEachLimit(Array.from({ length: leaseCount }), 64, async () => {
          leases.push(await lab.grant(MASS_TTL));
        });
        const lastGrantAt = performance.now();
        await lab.attach(keysOf(lab, group, 10_000), (i) => leases[i % leaseCount], 8);
        const watch = await watchPrefix(lab, lab.key(group, ''));
        const cpu = await spike(watch, 10_000, firstGrantAt + MASS_TTL * 1000 - MARGIN_MS, idle);
        watch.close();
        if ((await lab.count(lab.key(group, ''))) !== 0) throw new Error(`${group}: keys left after the leases ended`);
        add(shape, {
          grantSpreadMs: round(lastGrantAt - firstGrantAt, 0),
          allDeletedAfterLastTtlMs: round(watch.lastDeleteAt - (lastGrantAt + MASS_TTL * 1000), 0),
          watchDeleteEvents: watch.deletes,
          watchResponses: watch.responses,
          etcdCpuMs: cpu.cpuMs,
          etcdNetCpuMs: cpu.netCpuMs,
          cpuWindowMs: cpu.windowMs,
        });
      }
      log(`expiry round ${r + 1}/${ROUNDS}: ${Object.entries(out).map(([k, v]) => `${k}: ${Object.entries(v).map(([f, x]) => `${f}=${x.at(-1)}`).join(' ')}`).join(' | ')}`);
    }
    const rows = Object.entries(out).map(([shape, o]) => ({ shape, ...medians(o) }));
    results.expiry = { ttlSeconds: TTL, massTtlSeconds: MASS_TTL, rows, rounds: out };
    console.log(`\n## expiry: leases of TTL ${TTL} s (mass: ${MASS_TTL} s) ending (times from the expiry or the revoke call; CPU net of idle), medians`);
    for (const row of rows) console.log(JSON.stringify(row));
  } finally {
    await lab.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// memory: 100k keys on 100 leases vs on 100k leases

async function memoryPhase(): Promise<void> {
  const N = 100_000;
  const out: Record<string, Record<string, number[]>> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [shape, leaseCount] of [['100 leases x 1,000 keys', 100], ['100,000 leases x 1 key', N]] as const) {
      const lab = await Lab.start();
      try {
        await sleep(1_000);
        const rss0 = lab.rssMb();
        const heap0 = await lab.metric('go_memstats_heap_inuse_bytes');
        const leases: string[] = [];
        const t0 = performance.now();
        await forEachLimit(Array.from({ length: leaseCount }), 64, async () => {
          leases.push(await lab.grant(600));
        });
        await lab.attach(keysOf(lab, 'mem', N), (i) => leases[i % leaseCount], 8);
        const loadS = (performance.now() - t0) / 1000;
        await sleep(3_000);
        const idle = await lab.idleRate(10_000);
        const o = (out[shape] ??= {});
        const push = (k: string, v: number) => (o[k] ??= []).push(v);
        push('rssMb', round(lab.rssMb(), 0));
        push('rssGrowthMb', round(lab.rssMb() - rss0, 0));
        push('heapInuseGrowthMb', round(((await lab.metric('go_memstats_heap_inuse_bytes')) - heap0) / 2 ** 20, 0));
        push('dbSizeMb', round((await lab.metric('etcd_mvcc_db_total_size_in_bytes')) / 2 ** 20, 0));
        push('loadSeconds', round(loadS, 1));
        push('idleCpuPctOfCore', round(idle * 100, 2));
        log(`memory round ${r + 1}/${ROUNDS} ${shape}: ${Object.entries(o).map(([k, v]) => `${k}=${v.at(-1)}`).join(' ')}`);
      } finally {
        await lab.dispose();
      }
    }
  }
  const rows = Object.entries(out).map(([shape, o]) => ({ shape, ...medians(o) }));
  results.memory = { keys: N, rows, rounds: out };
  console.log(`\n## memory: ${N} keys (values ${VALUE.length} B), a fresh etcd per shape, medians`);
  console.table(rows);
}

// ---------------------------------------------------------------------------------------------
// liveness: the per-pass exchange of heard instances, Redis vs etcd

async function livenessPhase(): Promise<void> {
  const REPLICAS = 3;
  const HEARD_PER_PASS = 66_700; // 1,000,000 instances heartbeating every 10 s, 2 s passes, 3 replicas
  const PASSES = 20;
  const blobs = Array.from({ length: REPLICAS }, () => randomBytes(HEARD_PER_PASS * 8));
  const lab = await Lab.start();
  const redisServer = await startRedis({ dir: path.join(LOCAL_DIR, 'exp', `redis-shared-${randomBytes(3).toString('hex')}`) });
  const replicas = Array.from({ length: REPLICAS }, () => new Redis(redisServer.url, { lazyConnect: true, maxRetriesPerRequest: 1 }));
  try {
    await Promise.all(replicas.map((r) => r.connect()));
    const redisCpu = () => readProcess(redisServer.pid!)?.cpuSeconds ?? NaN;
    const prefix = lab.key('gateway-heard', '');
    const watches = await Promise.all(Array.from({ length: REPLICAS }, () => watchPuts(lab, prefix)));
    const out: Record<string, number[]> = {};
    const push = (k: string, v: number) => (out[k] ??= []).push(v);
    let seq = 0;
    for (let r = 0; r < ROUNDS; r++) {
      // Redis: every replica SETs its record, then GETs the others'.
      const c0 = redisCpu();
      let t0 = performance.now();
      let lookupCpuMs = 0;
      for (let pass = 0; pass < PASSES; pass++, seq++) {
        await Promise.all(replicas.map((client, i) => client.set(`hl:heard:${i}:${seq}`, blobs[i], 'PX', 60_000)));
        const read = await Promise.all(replicas.map((client, i) => Promise.all(replicas.map((_, j) => (j === i ? undefined : client.getBuffer(`hl:heard:${j}:${seq}`))))));
        // One replica's work on what it read: sort the others' hashes, look its own candidates up.
        const u0 = process.cpuUsage();
        lookupCandidates(read[0].filter((b): b is Buffer => !!b), blobs[0]);
        const u = process.cpuUsage(u0);
        lookupCpuMs += (u.user + u.system) / 1000;
      }
      push('redisCpuMsPerPass', ((redisCpu() - c0) * 1000) / PASSES);
      push('redisWallMsPerPass', (performance.now() - t0) / PASSES);
      push('replicaLookupCpuMsPerPass', lookupCpuMs / PASSES);
      // etcd: every replica Puts its record under the prefix; three watches (one per replica) read them all.
      const e0 = lab.cpuSeconds();
      const db0 = await lab.metric('etcd_mvcc_db_total_size_in_bytes');
      t0 = performance.now();
      for (let pass = 0; pass < PASSES; pass++) {
        const before = watches.map((w) => w.puts);
        await Promise.all(blobs.map((blob, i) => lab.conn.kv.put({ key: Buffer.from(lab.key('gateway-heard', i)), value: blob })));
        await Promise.all(watches.map((w, i) => untilWatchedPuts(w, before[i] + REPLICAS, 30_000)));
      }
      push('etcdCpuMsPerPass', ((lab.cpuSeconds() - e0) * 1000) / PASSES);
      push('etcdWallMsPerPass', (performance.now() - t0) / PASSES);
      push('etcdDbGrowthMbPerPass', ((await lab.metric('etcd_mvcc_db_total_size_in_bytes')) - db0) / 2 ** 20 / PASSES);
      log(`liveness round ${r + 1}/${ROUNDS}: ${Object.entries(out).map(([k, v]) => `${k}=${round(v.at(-1)!, 2)}`).join(' ')}`);
    }
    for (const w of watches) w.close();
    const row = medians(out);
    results.liveness = { replicas: REPLICAS, heardPerReplicaPerPass: HEARD_PER_PASS, recordBytes: HEARD_PER_PASS * 8, passesPerRound: PASSES, medians: row, rounds: out };
    console.log(`\n## liveness: ${REPLICAS} replicas, one ${HEARD_PER_PASS * 8}-byte record each per pass, medians over ${ROUNDS} rounds of ${PASSES} passes`);
    console.log(JSON.stringify(row));
  } finally {
    for (const client of replicas) client.disconnect();
    await redisServer.dispose();
    await lab.dispose();
  }
}

/** Sorts the hashes other replicas heard and binary-searches this replica's own candidates in them. */
function lookupCandidates(others: Buffer[], candidates: Buffer): number {
  const heard = new BigUint64Array(others.reduce((n, b) => n + b.length / 8, 0));
  let at = 0;
  for (const b of others) {
    heard.set(new BigUint64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)), at);
    at += b.length / 8;
  }
  heard.sort();
  const own = new BigUint64Array(candidates.buffer.slice(candidates.byteOffset, candidates.byteOffset + candidates.length));
  let found = 0;
  for (const h of own) {
    let lo = 0;
    let hi = heard.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (heard[mid] === h) {
        found++;
        break;
      }
      if (heard[mid] < h) lo = mid + 1;
      else hi = mid - 1;
    }
  }
  return found;
}

/** A watch counting put events under `prefix`. */
async function watchPuts(lab: Lab, prefix: string): Promise<{ puts: number; close(): void }> {
  const stream = (await lab.conn.watch.watch()) as unknown as ClientDuplexStream<IWatchRequest, IWatchResponse>;
  const state = { puts: 0, close: () => stream.end() };
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (res: IWatchResponse) => {
      if (res.created) return resolve();
      state.puts += (res.events ?? []).filter((e) => e.type === 'Put').length;
    });
    stream.once('error', reject);
    stream.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } });
  });
  return state;
}

async function untilWatchedPuts(watch: { puts: number }, puts: number, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (watch.puts < puts) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`only ${watch.puts} of ${puts} put events after ${timeoutMs} ms`);
    await sleep(2);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`machine: ${results.machine as string}; rounds ${ROUNDS}; phases ${[...selected].join(',')}`);
  const run: Record<Phase, () => Promise<void>> = {
    keepalive: keepalivePhase,
    'put-check': putCheckPhase,
    register: registerPhase,
    delete: deletePhase,
    expiry: expiryPhase,
    memory: memoryPhase,
    liveness: livenessPhase,
  };
  for (const phase of PHASES) {
    if (!selected.has(phase)) continue;
    const t0 = performance.now();
    await run[phase]();
    log(`${phase} done in ${round((performance.now() - t0) / 1000, 0)} s`);
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
