/** The raw etcd calls the direct-to-etcd baselines make, on an etcd3 client. */
import { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

export type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** LeaseGrant + Put with that lease: what a pod's registration costs etcd. Returns the lease id. */
export async function grantAndPut(client: Etcd3, key: string, value: string, ttlSeconds: number): Promise<string> {
  const grant = await client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
  await client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: grant.ID });
  return String(grant.ID);
}

/**
 * Go's `KeepAliveOnce`: open a LeaseKeepAlive stream, send one request, read one answer, close.
 * Returns etcd's TTL for the lease (0: the lease no longer exists).
 */
export async function keepAliveOnce(client: Etcd3, leaseId: string): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive();
  try {
    return await new Promise<number>((resolve, reject) => {
      stream.on('data', (res: ILeaseKeepAliveResponse) => resolve(Number(res.TTL)));
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('keepalive stream ended')));
      stream.write({ ID: leaseId });
    });
  } finally {
    stream.end();
  }
}
