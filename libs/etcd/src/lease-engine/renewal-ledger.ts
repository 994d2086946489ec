import Redis from 'ioredis';
import type { RenewalClaim } from './renewal-scheduler';

/** The ledger's verdict on one claim: renew it, another replica renewed it at `at`, or holds the claim. */
export type ClaimVerdict = { kind: 'renew' } | { kind: 'renewed-elsewhere'; at: number } | { kind: 'claimed-elsewhere' };

export interface RenewalLedgerOptions {
  redisUrl: string;
  /** Key prefix, e.g. `registry-gateway:v1:/registry/lease:`; includes the etcd prefix. */
  namespace: string;
  /** Identifies this replica's claims. */
  replicaId: string;
  /** A ledger slower than this counts as down for that call: the replica renews by itself. */
  timeoutMs?: number;
}

// For each lease: renewed (by anyone, etcd-confirmed) within a third of its TTL -> that time; else take
// the short claim (SET NX PX) -> 0, or -1 when another replica holds it. One round trip per batch.
const CLAIM_SCRIPT = `
local prefix, now, me = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  local id, third = ARGV[i], tonumber(ARGV[i + 1])
  local record = redis.call('GET', prefix .. 'r:' .. id)
  local renewed = tonumber(record and string.match(record, '^(%d+)') or '0')
  if renewed > now - third then
    out[#out + 1] = renewed
  elseif redis.call('SET', prefix .. 'c:' .. id, me, 'NX', 'PX', math.floor(math.min(third / 2, 5000))) then
    out[#out + 1] = 0
  elseif redis.call('GET', prefix .. 'c:' .. id) == me then
    out[#out + 1] = 0
  else
    out[#out + 1] = -1
  end
end
return out`;

/**
 * Cluster-wide de-duplication of lease renewals, in Redis. With R replicas and pods heartbeating to
 * any of them, every replica would find every lease due and renew it: etcd would receive R times
 * instances / (TTL/3) renewals. Before renewing, a replica asks the ledger: if another replica had the
 * lease confirmed by etcd within the last third of its TTL, it skips it; otherwise it takes a short
 * claim, renews, and records etcd's confirmation ("renewed at", written only after a TTL > 0 answer).
 *
 * Failure is safe by construction: a ledger that is down, slow or unreachable makes the replica renew
 * by itself (duplicates are allowed, a lapsed lease is not); a replica that dies holding a claim loses
 * it after at most TTL/6, well before the lease (renewed at TTL/3) could run out.
 */
export class RenewalLedger {
  private readonly redis: Redis;
  private readonly timeoutMs: number;

  constructor(private readonly options: RenewalLedgerOptions) {
    this.timeoutMs = options.timeoutMs ?? 250;
    this.redis = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1_000,
      commandTimeout: this.timeoutMs,
      retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    });
    // Errors surface as rejected calls (the caller falls back); the event must have a listener.
    this.redis.on('error', () => undefined);
  }

  isUp(): boolean {
    return this.redis.status === 'ready';
  }

  /** One verdict per claim, in order. Rejects when the ledger cannot answer (the caller renews itself). */
  async claim(claims: readonly RenewalClaim[], now: number): Promise<ClaimVerdict[]> {
    if (!this.isUp()) throw new Error('renewal ledger (redis) is not connected');
    const args: Array<string | number> = [this.options.namespace, now, this.options.replicaId];
    for (const claim of claims) args.push(claim.leaseId, Math.floor(claim.thirdMs));
    const results = (await this.redis.eval(CLAIM_SCRIPT, 0, ...args)) as number[];
    return results.map((r): ClaimVerdict => (r === 0 ? { kind: 'renew' } : r < 0 ? { kind: 'claimed-elsewhere' } : { kind: 'renewed-elsewhere', at: r }));
  }

  /** When OTHER replicas last had each lease confirmed by etcd (epoch ms, 0 = no record or this replica's own), in order. */
  async renewedElsewhereAt(leaseIds: readonly string[]): Promise<number[]> {
    if (!this.isUp()) throw new Error('renewal ledger (redis) is not connected');
    const values: Array<string | null> = [];
    for (let i = 0; i < leaseIds.length; i += 5_000) {
      values.push(...(await this.redis.mget(leaseIds.slice(i, i + 5_000).map((id) => `${this.options.namespace}r:${id}`))));
    }
    return values.map((v) => {
      const [at, by] = (v ?? '0').split(':');
      return by === this.options.replicaId ? 0 : Number(at) || 0;
    });
  }

  /** Records etcd's confirmations (best effort: a lost record costs one duplicate renewal elsewhere). */
  async record(confirmations: ReadonlyArray<{ leaseId: string; at: number; ttlMs: number }>): Promise<void> {
    if (!this.isUp() || !confirmations.length) return;
    const pipeline = this.redis.pipeline();
    // "<at>:<replica>": the claim script reads the time; self-preservation asks who renewed.
    for (const c of confirmations) pipeline.set(`${this.options.namespace}r:${c.leaseId}`, `${Math.floor(c.at)}:${this.options.replicaId}`, 'PX', Math.ceil(c.ttlMs));
    await pipeline.exec();
  }

  close(): void {
    this.redis.disconnect();
  }
}
