import { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { ReopenTimer } from '@app/concurrency';
import { EtcdConnection } from './etcd-connection';
import { isStaleTokenRejection } from './etcd-errors';

/** Where renewals are written (KeepAliveStreams; a fake in unit tests). */
export interface RenewalTransport {
  /** Writes one renewal; returns the stream index used, or -1 when no stream is open. */
  send(leaseId: string, preferredStream: number): number;
  readonly streamCount: number;
}

export interface KeepAliveStreamsHooks {
  /** etcd's answer for one lease: TTL 0 means the lease does not exist any more. */
  renewalAnswered(leaseId: string, ttlSeconds: number): void;
  /** A stream broke; renewals in flight on it are lost. */
  streamReset(index: number, error: Error | undefined): void;
  /** A stream opened or broke (read liveCount() for the number that can reach etcd). */
  streamsChanged?(): void;
}

export interface KeepAliveStreamsOptions {
  /** Reopen backoff: doubles from min to max, with jitter so replicas don't reconnect in step. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

/**
 * One long-lived LeaseKeepAlive stream per pooled connection. Every lease of the replica is renewed
 * over these few streams: etcd sees N streams and one message per renewal, never one stream or one
 * authenticated client per pod (etcd3's `Lease` class opens a stream per lease, which we avoid).
 * A broken stream is reopened with backoff; the multiplexer re-sends what was in flight.
 */
export class KeepAliveStreams implements RenewalTransport {
  private readonly streams: Array<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined>;
  /** Per stream: its reopen loop, and a generation that replaceConnection() moves on. */
  private readonly reopens: ReopenTimer[];
  private readonly generations: number[];
  private closed = false;
  private lastAnswer = 0;
  private highestRevision = 0;

  constructor(
    private readonly connections: EtcdConnection[],
    private readonly hooks: KeepAliveStreamsHooks,
    private readonly options: KeepAliveStreamsOptions = {},
  ) {
    this.streams = connections.map(() => undefined);
    const policy = { minMs: options.backoffMinMs ?? 100, maxMs: options.backoffMaxMs ?? 5_000, jitter: 0.5 };
    this.reopens = connections.map((_, i) => new ReopenTimer(policy, () => void this.open(i)));
    this.generations = connections.map(() => 0);
  }

  get streamCount(): number {
    return this.connections.length;
  }

  /**
   * Streams open on a connection whose channel is connected. A stream is "open" as soon as it is
   * started, and a start on a channel that is still connecting (etcd frozen or unreachable) does not
   * fail until much later: this is the count that shows whether renewals can reach etcd.
   */
  liveCount(): number {
    return this.streams.filter((stream, i) => stream && this.connections[i].isReady()).length;
  }

  /** When etcd last answered a renewal on any stream, epoch ms; 0 = never. */
  /** The highest revision etcd reported in a keepalive answer (its member's store revision). */
  get revisionSeen(): number {
    return this.highestRevision;
  }

  get lastAnswerAt(): number {
    return this.lastAnswer;
  }

  start(): void {
    this.connections.forEach((_, i) => void this.open(i));
  }

  send(leaseId: string, preferredStream: number): number {
    // Any stream can renew any lease; the preferred one only spreads the load.
    for (let i = 0; i < this.streams.length; i++) {
      const index = (preferredStream + i) % this.streams.length;
      const stream = this.streams[index];
      if (stream) {
        stream.write({ ID: leaseId });
        return index;
      }
    }
    return -1;
  }

  /**
   * Moves stream `index` onto `connection` (e.g. one that prefers another member) and closes the old
   * connection: its stream ends, renewals in flight are reset by the caller, and it reopens at once.
   */
  replaceConnection(index: number, connection: EtcdConnection): void {
    const old = this.connections[index];
    const stream = this.streams[index];
    this.connections[index] = connection;
    this.streams[index] = undefined;
    // A reopen pending or in flight for the old connection must not open a second stream on this index.
    this.reopens[index].cancel();
    this.generations[index]++;
    stream?.end();
    old.close();
    this.hooks.streamsChanged?.();
    if (!this.closed) void this.open(index);
  }

  close(): void {
    this.closed = true;
    for (const reopen of this.reopens) reopen.close();
    for (const stream of this.streams) stream?.end();
    this.streams.fill(undefined);
  }

  private async open(index: number): Promise<void> {
    if (this.closed) return;
    const generation = this.generations[index];
    let stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
    let token: string | undefined;
    try {
      token = await this.connections[index].currentToken();
      stream = await this.connections[index].lease.leaseKeepAlive();
    } catch (err) {
      if (generation === this.generations[index]) this.reopens[index].schedule();
      return;
    }
    if (this.closed || generation !== this.generations[index]) {
      stream.end();
      return;
    }
    let broken = false;
    const onBroken = (err?: Error) => {
      if (broken || this.closed) return;
      broken = true;
      // A stream replaced by replaceConnection() ends here too: its successor is already opening, and a
      // second reopen would leave two streams on one index.
      if (this.streams[index] !== stream) return;
      this.streams[index] = undefined;
      this.hooks.streamsChanged?.();
      this.hooks.streamReset(index, err);
      if (err && isStaleTokenRejection(err)) this.connections[index].invalidateToken(token);
      this.reopens[index].schedule();
    };
    stream.on('data', (res) => {
      this.reopens[index].succeeded();
      this.lastAnswer = Date.now();
      const revision = Number(res.header?.revision ?? 0);
      if (revision > this.highestRevision) this.highestRevision = revision;
      this.hooks.renewalAnswered(String(res.ID), Number(res.TTL));
    });
    stream.on('error', (err) => onBroken(err));
    stream.on('end', () => onBroken(undefined));
    this.streams[index] = stream;
    this.hooks.streamsChanged?.();
  }

}
