import { createRedisClient, isCluster, RedisClient, redisClientReady, RedisTarget } from '@app/redis';
import type { RenewalClaim } from './renewal-scheduler';

/** The ledger's verdict on one claim: renew it, another replica renewed it at `at`, or holds the claim. */
export type ClaimVerdict = { kind: 'renew' } | { kind: 'renewed-elsewhere'; at: number } | { kind: 'claimed-elsewhere' };

export interface RenewalLedgerOptions {
  /** Where Redis is (one server, Sentinel or Cluster): the same target as the HTTP thread's connection. */
  target: RedisTarget;
  /** Key prefix, e.g. `registry-gateway:v1:/registry/lease:`; includes the etcd prefix, never a brace. */
  namespace: string;
  /** Identifies this replica's claims. */
  replicaId: string;
  /** A ledger slower than this counts as down for that call: the replica renews by itself. */
  timeoutMs?: number;
}

/**
 * Leases are spread over this many hash tags (so Cluster slots). One tag per lease made every ledger
 * call on a Cluster carry a single lease: at 100k leases the replica spent a whole core on ~2,500
 * Redis round trips per renewal pass (bench, `--redis cluster`); with 64 tags a pass is at most 64
 * calls (each up to MAX_PER_CALL leases), still spread over every primary of a cluster.
 */
export const LEDGER_BUCKETS = 64;

/**
 * Key layout, one hash tag per bucket of leases so that a lease's two keys always share a Redis
 * Cluster slot, and the leases of one bucket can go in one call:
 *   <namespace>{<bucket>}<lease id>:r   "<epoch ms>:<replica>": when etcd last confirmed a renewal, and by whom (PX = TTL)
 *   <namespace>{<bucket>}<lease id>:c   "<replica>": the short claim of the replica renewing it now (PX = TTL/6, <= 5 s)
 * `<bucket>` is `b0` .. `b63`, from a hash of the lease id (ledgerBucket).
 */
export function ledgerKeys(namespace: string, leaseId: string): { record: string; claim: string } {
  const prefix = `${namespace}{b${ledgerBucket(leaseId)}}${leaseId}`;
  return { record: `${prefix}:r`, claim: `${prefix}:c` };
}

/** FNV-1a of the lease id, modulo LEDGER_BUCKETS: etcd's lease ids differ mostly in their low digits. */
export function ledgerBucket(leaseId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < leaseId.length; i++) hash = Math.imul(hash ^ leaseId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % LEDGER_BUCKETS;
}

/** At most this many leases per script call or MGET (one round trip, a bounded time inside Redis). */
const MAX_PER_CALL = 2_000;

/**
 * The calls one batch becomes: positions into `leaseIds`. On a Cluster each call holds the leases of
 * ONE bucket (one hash tag, so one slot): every call's keys live on one node (CROSSSLOT cannot happen)
 * and the buckets spread over all primaries; elsewhere (one server, Sentinel) any grouping is legal and
 * a call takes up to MAX_PER_CALL leases, as many as fit.
 */
export function ledgerCallGroups(leaseIds: readonly string[], clustered: boolean, maxPerCall = MAX_PER_CALL): number[][] {
  const groups: number[][] = [];
  if (!clustered) {
    for (let i = 0; i < leaseIds.length; i += maxPerCall) groups.push(Array.from({ length: Math.min(maxPerCall, leaseIds.length - i) }, (_, j) => i + j));
    return groups;
  }
  const byBucket = new Map<number, number[]>();
  leaseIds.forEach((id, i) => {
    const bucket = ledgerBucket(id);
    const group = byBucket.get(bucket);
    if (!group) byBucket.set(bucket, [i]);
    else if (group.length < maxPerCall) group.push(i);
    else {
      groups.push(group);
      byBucket.set(bucket, [i]);
    }
  });
  return [...groups, ...byBucket.values()];
}

// KEYS: each lease's record and claim key, in pairs. ARGV: now, this replica, then each lease's third
// of its TTL. Per lease: renewed (by anyone, etcd-confirmed) within a third of its TTL -> that time;
// else take the short claim (SET NX PX) -> 0, or -1 when another replica holds it. Every key it touches
// is declared, so Redis Cluster routes and checks the call like any other command.
const CLAIM_SCRIPT = `
local now, me = tonumber(ARGV[1]), ARGV[2]
local out = {}
for i = 1, #KEYS, 2 do
  local third = tonumber(ARGV[2 + (i + 1) / 2])
  local record = redis.call('GET', KEYS[i])
  local renewed = tonumber(record and string.match(record, '^(%d+)') or '0')
  if renewed > now - third then
    out[#out + 1] = renewed
  elseif redis.call('SET', KEYS[i + 1], me, 'NX', 'PX', math.floor(math.min(third / 2, 5000))) then
    out[#out + 1] = 0
  elseif redis.call('GET', KEYS[i + 1]) == me then
    out[#out + 1] = 0
  else
    out[#out + 1] = -1
  end
end
return out`;

type LedgerClient = RedisClient & { renewalLedgerClaim(numberOfKeys: number, ...args: Array<string | number>): Promise<number[]> };

/**
 * Cluster-wide de-duplication of lease renewals, in Redis. With R replicas and pods heartbeating to
 * any of them, every replica would find every lease due and renew it: etcd would receive R times
 * instances / (TTL/3) renewals. Before renewing, a replica asks the ledger: if another replica had the
 * lease confirmed by etcd within the last third of its TTL, it skips it; otherwise it takes a short
 * claim, renews, and records etcd's confirmation ("renewed at", written only after a TTL > 0 answer).
 *
 * Failure is safe by construction: a ledger that is down, slow or unreachable makes the replica renew
 * by itself (duplicates are allowed, a lapsed lease is not), per call: on a Cluster with one shard
 * failing over, only the leases of that shard's slots are renewed alone meanwhile. A replica that dies
 * holding a claim loses it after at most TTL/6, well before the lease (renewed at TTL/3) could run out.
 */
export class RenewalLedger {
  private readonly client: LedgerClient;
  private readonly timeoutMs: number;
  private readonly clustered: boolean;
  /** Reasons already reported since the last call that succeeded (a failover mixes several). */
  private readonly failuresReported = new Set<string>();

  /** `failed` hears each distinct reason calls fail once (e.g. to log it), until a call succeeds again. */
  constructor(
    private readonly options: RenewalLedgerOptions,
    private readonly failed: (message: string) => void = () => undefined,
  ) {
    if (/[{}]/.test(options.namespace)) throw new Error('the renewal ledger namespace must not contain "{" or "}" (Redis Cluster hash tags)');
    this.timeoutMs = options.timeoutMs ?? 250;
    const client = createRedisClient(options.target, { commandTimeoutMs: this.timeoutMs, connectionName: 'registry-gateway-lease-ledger' });
    client.defineCommand('renewalLedgerClaim', { lua: CLAIM_SCRIPT }); // key count passed per call
    this.client = client as LedgerClient;
    this.clustered = isCluster(client);
    // Errors surface as rejected calls (the caller falls back); the event must have a listener.
    this.client.on('error', () => undefined);
  }

  isUp(): boolean {
    return redisClientReady(this.client);
  }

  /**
   * One verdict per claim, in order. Rejects when the ledger is not connected (the caller renews them
   * all itself); a call that fails or outlasts the timeout makes its own claims `renew`.
   */
  async claim(claims: readonly RenewalClaim[], now: number): Promise<ClaimVerdict[]> {
    if (!this.isUp()) throw new Error('renewal ledger (redis) is not connected');
    const verdicts: ClaimVerdict[] = claims.map(() => ({ kind: 'renew' }));
    const groups = ledgerCallGroups(
      claims.map((c) => c.leaseId),
      this.clustered,
    );
    await Promise.all(
      groups.map(async (group) => {
        const keys: string[] = [];
        const thirds: number[] = [];
        for (const i of group) {
          const { record, claim } = ledgerKeys(this.options.namespace, claims[i].leaseId);
          keys.push(record, claim);
          thirds.push(Math.floor(claims[i].thirdMs));
        }
        const results = await this.bounded(this.client.renewalLedgerClaim(keys.length, ...keys, now, this.options.replicaId, ...thirds)).catch((err: Error) => this.noteFailure(err));
        results?.forEach((r, j) => {
          verdicts[group[j]] = r === 0 ? { kind: 'renew' } : r < 0 ? { kind: 'claimed-elsewhere' } : { kind: 'renewed-elsewhere', at: Number(r) };
        });
      }),
    );
    return verdicts;
  }

  /** When OTHER replicas last had each lease confirmed by etcd (epoch ms, 0 = no record, this replica's own, or unknown), in order. */
  async renewedElsewhereAt(leaseIds: readonly string[]): Promise<number[]> {
    if (!this.isUp()) throw new Error('renewal ledger (redis) is not connected');
    const renewed = leaseIds.map(() => 0);
    await Promise.all(
      ledgerCallGroups(leaseIds, this.clustered).map(async (group) => {
        const values = await this.bounded(this.client.mget(group.map((i) => ledgerKeys(this.options.namespace, leaseIds[i]).record)));
        values.forEach((v, j) => {
          const [at, by] = (v ?? '0').split(':');
          renewed[group[j]] = by === this.options.replicaId ? 0 : Number(at) || 0;
        });
      }),
    );
    return renewed;
  }

  /** Records etcd's confirmations (best effort: a lost record costs one duplicate renewal elsewhere). */
  async record(confirmations: ReadonlyArray<{ leaseId: string; at: number; ttlMs: number }>): Promise<void> {
    if (!this.isUp() || !confirmations.length) return;
    const groups = ledgerCallGroups(
      confirmations.map((c) => c.leaseId),
      this.clustered,
    );
    await Promise.all(
      groups.map((group) => {
        const pipeline = this.client.pipeline();
        // "<at>:<replica>": the claim script reads the time; self-preservation asks who renewed.
        for (const i of group) {
          const c = confirmations[i];
          pipeline.set(ledgerKeys(this.options.namespace, c.leaseId).record, `${Math.floor(c.at)}:${this.options.replicaId}`, 'PX', Math.ceil(c.ttlMs));
        }
        return this.bounded(pipeline.exec()).catch((err: Error) => this.noteFailure(err));
      }),
    );
  }

  close(): void {
    this.client.disconnect();
  }

  /**
   * At most `timeoutMs`, whatever the shape: a Cluster redirects and retries a command while a shard
   * fails over (MOVED, CLUSTERDOWN, a closed connection), which may outlast each node's command timeout.
   */
  private bounded<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`call took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    call.catch(() => undefined); // a call that loses the race must not become an unhandled rejection
    return Promise.race([call, timeout]).then(
      (value) => {
        clearTimeout(timer);
        this.failuresReported.clear();
        return value;
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw err;
      },
    );
  }

  /** Redis's own error text (a command error names no value, so no secret), reported once per distinct reason. */
  private noteFailure(err: Error): undefined {
    const message = err?.message ?? String(err);
    if (!this.failuresReported.has(message)) this.failed(message);
    this.failuresReported.add(message);
    return undefined;
  }
}
