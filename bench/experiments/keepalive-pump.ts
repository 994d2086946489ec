/**
 * Drives LeaseKeepAlive streams (as fast as etcd answers, or at a fixed rate) in whatever thread
 * loads this module, and counts into a SharedArrayBuffer so the orchestrator can read the counters from another thread
 * without a message round trip (a busy main thread would delay such messages by whole turns).
 */
import * as http2 from 'node:http2';
import type { ClientHttp2Stream } from 'node:http2';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { EtcdConnection } from '@app/etcd';
import { encodeLeaseKeepAliveRequest, grpcFrame, RawLeaseKeepAlive } from './raw-keepalive';

/**
 * How renewals are put on the wire:
 * - `ack`:   one `write({ID})` per answer (closed loop, like a renewal pipeline fed by answers).
 * - `burst`: once per event-loop turn, `write({ID})` for the whole free window in one synchronous go
 *            (the shape of the gateway's renewDueLeases(): hundreds of write() calls per turn).
 * - `cork`:  as `burst`, between cork() and uncork() (grpc-js defines no _writev, so Writable still
 *            hands messages to _write one at a time).
 * - `frame`: as `burst`, but the free window is framed by hand (5-byte gRPC prefix + protobuf) into
 *            ONE buffer written straight onto grpc-js's own http2 stream, bypassing grpc-js's
 *            one-message-per-callback write path. Answers still come back through grpc-js.
 * - `raw`:   as `frame`, without grpc-js at all: node:http2 streams (RawLeaseKeepAlive), answers
 *            parsed by hand. The shape a production fix would have.
 */
export type WriteMode = 'ack' | 'burst' | 'cork' | 'frame' | 'raw';

export interface PumpConfig {
  endpoint: string;
  username: string;
  password: string;
  leaseIds: string[];
  streams: number;
  /** Unanswered renewals allowed per stream. */
  window: number;
  /**
   * Open loop: offer this many renewals per second over all streams, topped up every 5 ms, so the
   * owner's event-loop utilisation shows what a given renewal rate costs. Default: closed loop, as
   * fast as answers free the window.
   */
  ratePerS?: number;
  mode: WriteMode;
}

/** Float64 slots of the shared counter array. */
export const SLOT = {
  answered: 0, // answers received ('data' events)
  http2Writes: 1, // http2Stream.write() calls (each one is queued for one nghttp2 flush)
  activeTurns: 2, // event-loop turns in which an answer arrived or an http2 write was made
  ready: 3, // 1 once every stream is open
  samples: 4, // backlog samples taken (one per active turn)
  sumWritableBuffered: 5, // messages waiting in Node's Writable buffer, summed over samples
  sumRetryBacklog: 6, // messages in grpc-js RetryingCall.writeBuffer not yet handed to the http2 stream, summed
  ttlZero: 7, // answers with TTL 0 (lease unknown to etcd): must stay 0, or the renewals were not real
} as const;
export const SLOT_COUNT = 8;

/** What etcd3's leaseKeepAlive() really returns (its IDuplexStream type hides the Writable side). */
type KeepAliveStream = ClientDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export class KeepAlivePump {
  private readonly c: Float64Array;
  private conn: EtcdConnection | undefined;
  /** grpc-js streams (every mode but `raw`). */
  private readonly streams: KeepAliveStream[] = [];
  /** The http2 stream under each renewal stream: `frame` and `raw` write to it directly. */
  private readonly h2: ClientHttp2Stream[] = [];
  private readonly raw: RawLeaseKeepAlive[] = [];
  private session: http2.ClientHttp2Session | undefined;
  private readonly inFlight: number[] = [];
  private nextLease = 0;
  private turnMarked = false;
  private burstTimer: NodeJS.Immediate | undefined;
  private rateTimer: NodeJS.Timeout | undefined;
  private rateStartedAt = 0;
  private offered = 0;
  private stopped = false;
  private filling = false;

  constructor(
    private readonly cfg: PumpConfig,
    shared: SharedArrayBuffer,
  ) {
    this.c = new Float64Array(shared);
  }

  async start(): Promise<void> {
    this.conn = new EtcdConnection({
      endpoints: [this.cfg.endpoint],
      credentials: { username: this.cfg.username, password: this.cfg.password },
      requestTimeoutMs: 5_000,
    });
    await this.conn.connect();
    if (this.cfg.mode === 'raw') await this.openRawStreams();
    else for (let i = 0; i < this.cfg.streams; i++) this.streams.push(await this.openStream(i));
    this.c[SLOT.ready] = 1;
    this.filling = true;
    if (this.cfg.ratePerS) {
      this.rateStartedAt = performance.now();
      this.rateTimer = setInterval(() => this.writeEveryStream(), 5);
    } else if (this.cfg.mode === 'ack') this.streams.forEach((_, i) => this.fill(i));
    else this.scheduleBurst();
  }

  stop(): void {
    this.stopped = true;
    if (this.burstTimer) clearImmediate(this.burstTimer);
    if (this.rateTimer) clearInterval(this.rateTimer);
    for (const s of this.streams) s.cancel();
    for (const r of this.raw) r.close();
    this.session?.close();
    this.conn?.close();
  }

  private async openStream(index: number): Promise<KeepAliveStream> {
    const stream = (await this.conn!.lease.leaseKeepAlive()) as unknown as KeepAliveStream;
    this.inFlight[index] = 0;
    stream.on('data', (res: ILeaseKeepAliveResponse) => this.answered(index, Number(res.TTL)));
    stream.on('error', (err: Error) => {
      if (!this.stopped) throw err;
    });
    // The http2 stream exists once grpc-js has picked a subchannel: write one renewal and wait for
    // its answer, so that `frame` mode and the http2 write counter have it.
    stream.write({ ID: this.lease() });
    this.inFlight[index]++;
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    const h2 = findInCallChain(stream, (n) => !!n.http2Stream)?.http2Stream as ClientHttp2Stream | undefined;
    const retryingCall = findInCallChain(stream, (n) => n.constructor.name === 'RetryingCall');
    if (!h2 || !retryingCall) throw new Error('grpc-js call chain changed: no http2Stream or RetryingCall under the stream');
    (stream as unknown as { retryingCall: unknown }).retryingCall = retryingCall;
    const origH2Write = h2.write.bind(h2) as (...args: unknown[]) => boolean;
    (h2 as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
      this.c[SLOT.http2Writes]++;
      this.markTurn();
      return origH2Write(...args);
    };
    this.h2[index] = h2;
    return stream;
  }

  /** One connection (like one pooled EtcdConnection), one node:http2 stream per renewal stream. */
  private async openRawStreams(): Promise<void> {
    const token = await this.conn!.currentToken();
    const session = http2.connect(`http://${this.cfg.endpoint}`);
    this.session = session;
    session.on('error', (err) => {
      if (!this.stopped) throw err;
    });
    for (let i = 0; i < this.cfg.streams; i++) {
      this.inFlight[i] = 0;
      const raw = RawLeaseKeepAlive.open(session, token, (answer) => this.answered(i, answer.ttlSeconds));
      raw.h2.on('error', (err) => {
        if (!this.stopped) throw err;
      });
      const origWrite = raw.h2.write.bind(raw.h2) as (...args: unknown[]) => boolean;
      (raw.h2 as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
        this.c[SLOT.http2Writes]++;
        this.markTurn();
        return origWrite(...args);
      };
      this.raw.push(raw);
      this.h2[i] = raw.h2;
    }
  }

  private answered(index: number, ttlSeconds: number): void {
    this.c[SLOT.answered]++;
    if (ttlSeconds <= 0) this.c[SLOT.ttlZero]++;
    this.inFlight[index]--;
    this.markTurn();
    if (this.cfg.mode === 'ack') this.fill(index);
  }

  private lease(): string {
    const id = this.cfg.leaseIds[this.nextLease];
    this.nextLease = (this.nextLease + 1) % this.cfg.leaseIds.length;
    return id;
  }

  /** Counts a turn at most once: the flag is cleared by an immediate, which runs after this turn's poll phase. */
  private markTurn(): void {
    if (this.turnMarked) return;
    this.turnMarked = true;
    this.c[SLOT.activeTurns]++;
    setImmediate(() => {
      this.turnMarked = false;
      this.sampleBacklog();
    });
  }

  private fill(index: number): void {
    if (this.stopped || !this.filling) return;
    const stream = this.streams[index];
    const count = this.writable(index);
    for (let k = 0; k < count; k++) stream.write({ ID: this.lease() });
    this.inFlight[index] += count;
    this.offered += count;
  }

  /** Renewals stream `index` may take now: the free window, and in open loop what the rate allows. */
  private writable(index: number): number {
    const free = this.cfg.window - this.inFlight[index];
    if (!this.cfg.ratePerS) return Math.max(0, free);
    const due = Math.floor((this.cfg.ratePerS * (performance.now() - this.rateStartedAt)) / 1000) - this.offered;
    return Math.max(0, Math.min(free, due));
  }

  private scheduleBurst(): void {
    this.burstTimer = setImmediate(() => {
      if (this.stopped) return;
      this.writeEveryStream();
      this.scheduleBurst();
    });
  }

  private writeEveryStream(): void {
    for (let i = 0; i < this.cfg.streams; i++) {
      if (this.cfg.mode === 'frame' || this.cfg.mode === 'raw') this.writeFramed(i);
      else {
        const stream = this.streams[i];
        if (this.cfg.mode === 'cork') stream.cork();
        this.fill(i);
        if (this.cfg.mode === 'cork') stream.uncork();
      }
    }
  }

  private writeFramed(index: number): void {
    const count = this.writable(index);
    if (count === 0) return;
    const frames: Buffer[] = [];
    for (let k = 0; k < count; k++) frames.push(grpcFrame(encodeLeaseKeepAliveRequest(this.lease())));
    this.h2[index].write(Buffer.concat(frames));
    this.inFlight[index] += count;
    this.offered += count;
  }

  /** Where the unsent renewals wait: Node's Writable buffer, or grpc-js's RetryingCall buffer. */
  private sampleBacklog(): void {
    let writable = 0;
    let retry = 0;
    for (const s of this.streams) {
      writable += s.writableLength;
      retry += retryBacklog(s);
    }
    this.c[SLOT.samples]++;
    this.c[SLOT.sumWritableBuffered] += writable;
    this.c[SLOT.sumRetryBacklog] += retry;
  }
}

interface RetryingCallInternals {
  writeBuffer: unknown[];
  writeBufferOffset: number;
  committedCallIndex: number | null;
  underlyingCalls: Array<{ nextMessageToSend: number }>;
}

/** Messages grpc-js's RetryingCall has accepted (and acknowledged to Writable) but not yet passed down. */
function retryBacklog(stream: unknown): number {
  const rc = (stream as { retryingCall?: RetryingCallInternals }).retryingCall;
  if (!rc || rc.committedCallIndex === null) return 0;
  return rc.writeBufferOffset + rc.writeBuffer.length - rc.underlyingCalls[rc.committedCallIndex].nextMessageToSend;
}

/**
 * grpc-js 1.14 call chain under the ClientDuplexStreamImpl (probed): .call BaseStreamingInterceptingCall
 * -> .call ResolvingCall -> .child RetryingCall -> .underlyingCalls[].call LoadBalancingCall -> .child
 * Http2SubchannelCall -> .http2Stream. Searched rather than hard-coded so a renamed hop fails loudly.
 */
function findInCallChain(root: unknown, found: (node: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  const queue: Array<{ node: unknown; depth: number }> = [{ node: root, depth: 0 }];
  const seen = new Set<unknown>();
  while (queue.length) {
    const { node, depth } = queue.shift()!;
    if (!node || typeof node !== 'object' || seen.has(node) || depth > 10) continue;
    seen.add(node);
    const rec = node as Record<string, unknown>;
    if (found(rec)) return rec;
    for (const key of ['call', 'nextCall', 'child', 'underlyingCalls']) {
      const next = rec[key];
      if (Array.isArray(next)) next.forEach((n) => queue.push({ node: n, depth: depth + 1 }));
      else if (next) queue.push({ node: next, depth: depth + 1 });
    }
  }
  return undefined;
}
