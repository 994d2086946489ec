import { Etcd3, ILeaseKeepAliveResponse } from 'etcd3';
import { EtcdTarget, etcdClient } from '../etcd-probe';
import { KeepAliveStream, grantAndPut } from './etcd-calls';
import { CallOutcome, FleetDriver, SimPod, grpcErrorLabel, instanceValue, withTimeout } from './fleet-driver';

interface PodConnection {
  client: Etcd3;
  leaseId: string;
  stream?: KeepAliveStream;
  /** The tick waiting for etcd's answer on the stream (one renewal in flight per pod). */
  waiting?: (answer: number | Error) => void;
}

/**
 * *after*: the usual fix. Each pod keeps one authenticated etcd3 client (one Authenticate per pod
 * start) and one long-lived LeaseKeepAlive stream; each heartbeat tick writes one renewal on that
 * stream and waits for etcd's answer. This is what etcd3's `Lease` (autoKeepAlive) does, except that
 * the renewal cadence is the pod's heartbeat interval rather than TTL/3, so ticks compare 1:1 with
 * the other designs.
 */
export class OwnClientPerPodDriver implements FleetDriver {
  readonly design = 'after' as const;
  readonly description = 'each pod: one authenticated etcd3 client for its lifetime + one long-lived LeaseKeepAlive stream, one renewal per tick';
  private readonly pods = new Map<number, PodConnection>();

  constructor(
    private readonly target: EtcdTarget,
    private readonly ttlSeconds: number,
    private readonly callTimeoutMs: number,
    private readonly registerTimeoutMs: number,
  ) {}

  register(pod: SimPod): Promise<CallOutcome> {
    return this.connect(pod, this.registerTimeoutMs, 'registered');
  }

  async beat(pod: SimPod): Promise<CallOutcome> {
    const conn = this.pods.get(pod.index);
    if (!conn) return this.connect(pod, this.callTimeoutMs, 're-registered');
    try {
      if (!conn.stream) conn.stream = await withTimeout(this.callTimeoutMs, this.openStream(conn));
      const stream = conn.stream;
      const ttl = await withTimeout(
        this.callTimeoutMs,
        new Promise<number>((resolve, reject) => {
          conn.waiting = (answer) => (answer instanceof Error ? reject(answer) : resolve(answer));
          stream.write({ ID: conn.leaseId });
        }),
      );
      if (ttl > 0) return { ok: true, outcome: 'renewed' };
      this.drop(pod);
      return { ok: false, outcome: 'lease-lost' };
    } catch (err) {
      conn.waiting = undefined;
      return { ok: false, outcome: grpcErrorLabel(err) };
    }
  }

  private async connect(pod: SimPod, timeoutMs: number, label: string): Promise<CallOutcome> {
    const client = etcdClient(this.target);
    try {
      const conn = await withTimeout(
        timeoutMs,
        (async () => {
          const leaseId = await grantAndPut(client, pod.key, instanceValue(pod, this.ttlSeconds), this.ttlSeconds);
          const c: PodConnection = { client, leaseId };
          c.stream = await this.openStream(c);
          return c;
        })(),
        () => client.close(),
      );
      this.pods.set(pod.index, conn);
      pod.registered = true;
      return { ok: true, outcome: label };
    } catch (err) {
      client.close();
      return { ok: false, outcome: grpcErrorLabel(err) };
    }
  }

  private async openStream(conn: PodConnection): Promise<KeepAliveStream> {
    const stream = await conn.client.leaseClient.leaseKeepAlive();
    stream.on('data', (res: ILeaseKeepAliveResponse) => {
      const waiting = conn.waiting;
      conn.waiting = undefined;
      waiting?.(Number(res.TTL));
    });
    const broken = (err: Error) => {
      if (conn.stream === stream) conn.stream = undefined;
      const waiting = conn.waiting;
      conn.waiting = undefined;
      waiting?.(err);
    };
    stream.on('error', broken);
    stream.on('end', () => broken(new Error('keepalive stream ended')));
    return stream;
  }

  private drop(pod: SimPod): void {
    const conn = this.pods.get(pod.index);
    this.pods.delete(pod.index);
    pod.registered = false;
    conn?.client.close();
  }

  async close(): Promise<void> {
    for (const conn of this.pods.values()) {
      conn.stream?.end();
      conn.client.close();
    }
    this.pods.clear();
  }
}
