/**
 * Drives LeaseKeepAlive streams (as fast as etcd answers, or at a fixed rate) in whatever thread
 * loads this module, and counts into a SharedArrayBuffer so the orchestrator can read the counters from another thread
 * without a message round trip (a busy main thread would delay such messages by whole turns).
 */
import type { ClientHttp2Stream } from 'node:http2';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { EtcdConnection } from '@app/etcd';

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
 */
export type WriteMode = 'ack' | 'burst' | 'cork' | 'frame';

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
} as const;
export const SLOT_COUNT = 7;

/** What etcd3's leaseKeepAlive() really returns (its IDuplexStream type hides the Writable side). */
type KeepAliveStream = ClientDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export class KeepAlivePump {
  private readonly c: Float64Array;
  private conn: EtcdConnection | undefined;
  private readonly streams: KeepAliveStream[] = [];
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
    for (let i = 0; i < this.cfg.streams; i++) this.streams.push(await this.openStream(i));
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
    this.conn?.close();
  }

  private async openStream(index: number): Promise<KeepAliveStream> {
    const stream = (await this.conn!.lease.leaseKeepAlive()) as unknown as KeepAliveStream;
    this.inFlight[index] = 0;
    stream.on('data', () => {
      this.c[SLOT.answered]++;
      this.inFlight[index]--;
      this.markTurn();
      if (this.cfg.mode === 'ack') this.fill(index);
    });
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
    (stream as unknown as { h2: ClientHttp2Stream }).h2 = h2;
    return stream;
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
    this.streams.forEach((stream, i) => {
      if (this.cfg.mode === 'frame') this.writeFramed(i);
      else {
        if (this.cfg.mode === 'cork') stream.cork();
        this.fill(i);
        if (this.cfg.mode === 'cork') stream.uncork();
      }
    });
  }

  private writeFramed(index: number): void {
    const count = this.writable(index);
    if (count === 0) return;
    const frames: Buffer[] = [];
    for (let k = 0; k < count; k++) frames.push(grpcFrame(encodeLeaseKeepAliveRequest(this.lease())));
    (this.streams[index] as unknown as { h2: ClientHttp2Stream }).h2.write(Buffer.concat(frames));
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

/** LeaseKeepAliveRequest { int64 ID = 1; }: tag 0x08, then the ID as a varint. */
export function encodeLeaseKeepAliveRequest(id: string): Buffer {
  const bytes = [0x08];
  let v = BigInt.asUintN(64, BigInt(id));
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/** gRPC length-prefixed message: 1 byte compressed flag (0), 4 bytes big-endian length, payload. */
export function grpcFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}
