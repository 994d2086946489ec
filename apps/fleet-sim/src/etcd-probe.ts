/**
 * What etcd itself saw: its server-side gRPC counters (no client library can under-count them) and,
 * at the end of a scenario, how many of the fleet's instance keys still exist.
 */
import { Etcd3 } from 'etcd3';
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

export class EtcdCounterProbe {
  constructor(private readonly metricsUrl: string) {}

  /** etcd starved of CPU by bcrypt answers /metrics slowly: a generous timeout and a few tries. */
  async read(attempts = 4): Promise<EtcdCounters> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchEtcdCounters(this.metricsUrl, 20_000);
      } catch (err) {
        if (attempt >= attempts) throw err;
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
      const c = await this.read(1).catch(() => undefined);
      if (c) inFlight = c.authenticateStarted - c.authenticate;
      if (inFlight <= 0 || Date.now() - started > maxMs) return { seconds: (Date.now() - started) / 1000, inFlight: Number.isFinite(inFlight) ? Math.max(0, inFlight) : -1 };
      await sleep(250);
    }
  }

  static diff(before: EtcdCounters, after: EtcdCounters): EtcdCounters {
    return diffCounters(before, after);
  }
}

/** Instance keys under `<prefix>services/` (one Authenticate + one Range, made after the counters are read). */
export async function countInstanceKeys(target: EtcdTarget, prefix: string): Promise<Set<string>> {
  const client = etcdClient(target);
  try {
    const keys = await client.getAll().prefix(`${prefix}services/`).keys();
    return new Set(keys);
  } finally {
    client.close();
  }
}
