/**
 * What etcd itself saw: its server-side gRPC counters (no client library can under-count them) and,
 * at the end of a scenario, how many of the fleet's instance keys still exist.
 */
import { Etcd3 } from 'etcd3';
import { prefixRangeEnd } from '@app/registry';
import { EtcdCounters, diffCounters, fetchEtcdCounters } from '@app/stack';
import { sleep } from './progress';

export type { EtcdCounters };

export interface EtcdTarget {
  endpoints: string[];
  username?: string;
  password?: string;
}

export function etcdClient(target: EtcdTarget): Etcd3 {
  return new Etcd3({
    hosts: target.endpoints.map((e) => `http://${e}`),
    auth: target.username ? { username: target.username, password: target.password ?? '' } : undefined,
  });
}

/** Key by key sum of several members' counters. */
export function sumCounters(all: EtcdCounters[]): EtcdCounters {
  const out = { ...all[0] };
  for (const c of all.slice(1)) for (const k of Object.keys(c) as (keyof EtcdCounters)[]) out[k] += c[k];
  return out;
}

/**
 * Reads one etcd member's metrics, or every member's of a cluster (`metricsUrls` comma-separated):
 * `read()` sums them (a LeaseKeepAlive message, a Range is counted by the member that received it),
 * `readEach()` keeps them apart.
 */
export class EtcdCounterProbe {
  private readonly metricsUrls: string[];

  constructor(metricsUrls: string) {
    this.metricsUrls = metricsUrls.split(',').map((u) => u.trim()).filter(Boolean);
  }

  get members(): number {
    return this.metricsUrls.length;
  }

  /**
   * etcd starved of CPU by bcrypt answers /metrics slowly: a generous timeout, and tries for up to
   * `patienceMs` (on a busy 2-core machine, 1,000 pods' Authenticate calls keep it busy for minutes).
   */
  async read(patienceMs = 180_000): Promise<EtcdCounters> {
    return sumCounters(await this.readEach(patienceMs));
  }

  /** Each member's counters, in the order of the URLs. */
  async readEach(patienceMs = 180_000): Promise<EtcdCounters[]> {
    const started = Date.now();
    for (;;) {
      try {
        return await Promise.all(this.metricsUrls.map((u) => fetchEtcdCounters(u, 20_000)));
      } catch (err) {
        if (Date.now() - started >= patienceMs) throw err;
        await sleep(1000);
      }
    }
  }

  /**
   * Waits until etcd has finished every Authenticate it started. An Authenticate is a bcrypt check
   * that etcd completes even after the client gave up, so an overloaded run leaves a backlog that
   * would otherwise be counted (and burn CPU) in the next scenario. Returns the seconds waited.
   */
  async settle(maxMs: number): Promise<{ seconds: number; inFlight: number }> {
    const started = Date.now();
    let inFlight = Infinity;
    for (;;) {
      // An unanswered scrape means etcd is still busy: keep waiting.
      const c = await this.read(0).catch(() => undefined);
      if (c) inFlight = c.authenticateStarted - c.authenticate;
      if (inFlight <= 0 || Date.now() - started > maxMs) return { seconds: (Date.now() - started) / 1000, inFlight: Number.isFinite(inFlight) ? Math.max(0, inFlight) : -1 };
      await sleep(250);
    }
  }

  static diff(before: EtcdCounters, after: EtcdCounters): EtcdCounters {
    return diffCounters(before, after);
  }
}

/**
 * Calls `fn` with every instance key under `<prefix>services/` (one Authenticate, made after the
 * counters are read). Read in pages of keys only: 100,000 keys in one answer would pass gRPC's 4 MB
 * message limit.
 */
export async function forEachInstanceKey(target: EtcdTarget, prefix: string, fn: (key: string) => void): Promise<void> {
  const client = etcdClient(target);
  try {
    const end = prefixRangeEnd(`${prefix}services/`);
    let from = Buffer.from(`${prefix}services/`);
    for (;;) {
      const page = await client.kv.range({ key: from, range_end: end, keys_only: true, limit: 10_000 });
      for (const kv of page.kvs) fn(kv.key.toString());
      if (!page.more || page.kvs.length === 0) return;
      from = Buffer.concat([page.kvs[page.kvs.length - 1].key, Buffer.from([0])]);
    }
  } finally {
    client.close();
  }
}

/** The instance keys under `<prefix>services/`, as a set (fleets of up to ~100k pods). */
export async function countInstanceKeys(target: EtcdTarget, prefix: string): Promise<Set<string>> {
  const keys = new Set<string>();
  await forEachInstanceKey(target, prefix, (k) => keys.add(k));
  return keys;
}

/** Leases alive in etcd (LeaseLeases: every lease of the cluster, whoever granted it). */
export async function countLeases(target: EtcdTarget): Promise<number> {
  const client = etcdClient(target);
  try {
    return (await client.leaseClient.leaseLeases()).leases.length;
  } finally {
    client.close();
  }
}
