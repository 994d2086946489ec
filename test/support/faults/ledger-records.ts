/**
 * What the lease engine's renewal ledger stored on ONE Redis node (a Sentinel primary, a Cluster shard):
 * its records are `<namespace>{<bucket>}<lease>:r` = "<epoch ms>:<replica>" (libs/etcd renewal-ledger.ts).
 * Used to time when renewals are recorded on a promoted node, and to see the keys spread over shards.
 */
import Redis from 'ioredis';

export interface LedgerRecords {
  /** Records on the node. */
  total: number;
  /** Newest confirmation time among them (epoch ms; 0 = none). */
  newestAt: number;
}

export async function ledgerRecordsOn(port: number, password?: string): Promise<LedgerRecords> {
  const client = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000, commandTimeout: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', '*:r', 'COUNT', 1_000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    // One GET per key: on a Cluster node an MGET over several slots would be refused.
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.get(key);
    const values = (await pipeline.exec()) ?? [];
    let newestAt = 0;
    for (const [, value] of values) newestAt = Math.max(newestAt, Number(String(value ?? '0').split(':')[0]) || 0);
    return { total: keys.length, newestAt };
  } finally {
    client.disconnect();
  }
}

/** The worker's "renewal ledger (redis) call failed" log lines (JSON, pino) from before `at`. */
export function ledgerFailuresBefore(logs: string, at: number): string[] {
  return logs.split('\n').filter((line) => line.includes('renewal ledger (redis) call failed') && (JSON.parse(line) as { time: number }).time < at);
}

/** Whether every Redis client (`http`, `lease-engine`) of every replica reports itself connected. */
export async function redisClientsUp(replicas: ReadonlyArray<{ metric(name: string, labels?: Record<string, string>): Promise<number> }>): Promise<boolean> {
  for (const replica of replicas) {
    for (const client of ['http', 'lease-engine']) if ((await replica.metric('registry_redis_up', { client })) !== 1) return false;
  }
  return true;
}
