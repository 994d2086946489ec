/**
 * What the replicas' heard-sets (libs/etcd heard-sets.ts) stored on ONE Redis node (a Sentinel primary,
 * a Cluster shard): per replica a head key `<namespace>{<replica>}head` = the last seq, and records
 * `<namespace>{<replica>}<seq>` whose header carries the window's end (f64 LE at byte 16). Used to time
 * when every replica publishes again after a failover, and to see where the keys live.
 */
import Redis from 'ioredis';

export interface HeardSetRecords {
  /** Replicas with a head key on the node. */
  total: number;
  /** Per replica (its hash tag), the end of the window of its newest record on the node (epoch ms). */
  newestByReplica: Map<string, number>;
}

export async function heardSetRecordsOn(port: number, password?: string): Promise<HeardSetRecords> {
  const client = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000, commandTimeout: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const heads: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', '*heard:{*}head', 'COUNT', 1_000);
      cursor = next;
      heads.push(...batch);
    } while (cursor !== '0');
    const newestByReplica = new Map<string, number>();
    for (const head of heads) {
      const seq = await client.get(head);
      if (seq === null) continue;
      const record = await client.getBuffer(head.replace(/head$/, seq));
      const tag = head.slice(head.indexOf('{') + 1, head.indexOf('}'));
      newestByReplica.set(tag, record && record.length >= 24 ? record.readDoubleLE(16) : 0);
    }
    return { total: heads.length, newestByReplica };
  } finally {
    client.disconnect();
  }
}

/** Log lines (JSON, pino) of a failed heard-set publish written before `at` (epoch ms). */
export function heardSetFailuresBefore(logs: string, at: number): string[] {
  return logs.split('\n').filter((line) => line.includes("cannot publish this replica's heard-set") && (JSON.parse(line) as { time: number }).time < at);
}

/** Whether the Redis client (`http`: heard-sets and caches) of every replica reports itself connected. */
export async function redisClientsUp(replicas: ReadonlyArray<{ metric(name: string, labels?: Record<string, string>): Promise<number> }>): Promise<boolean> {
  for (const replica of replicas) if ((await replica.metric('registry_redis_up', { client: 'http' })) !== 1) return false;
  return true;
}
