/**
 * The heartbeat and registration path of the scale scenarios: HTTP/1.1 over a fixed pool of keep-alive
 * sockets with pre-encoded requests and a status-line-only parse of the answer, one request per socket
 * at a time (no pipelining: the replica sees what 256 busy clients would send).
 *
 * Why not node:http: at 5,000 heartbeats/s its per-request cost (ClientRequest/IncomingMessage
 * objects, header objects, agent bookkeeping, a promise per call) kept the one generator process at
 * ~100 % of a core while it sent ~85 % of its schedule (bench/results/load-generator.md). Registrations
 * paid the same (~0.16 ms of generator CPU each, taken from the gateway under test on a 2-core machine),
 * so they come here too; answer bodies are never read, only the status and, on 429/503, Retry-After.
 * Resolves (which need the body) stay on node:http.
 *
 * Supported answers: a body framed by Content-Length, none (1xx/204/304), or chunked (read until the
 * terminating zero chunk; only JSON bodies, which cannot contain a bare CRLF, are expected). Anything
 * else closes the socket after the head.
 */
import * as net from 'node:net';

export interface ResponseHead {
  status: number;
  /** Bytes of the head including the blank line. */
  headLength: number;
  /** Body bytes after the head; -1: chunked (scan for the last chunk); -2: until close. */
  bodyLength: number;
  /** The server will close the socket (Connection: close). */
  close: boolean;
  /**
   * Seconds of Retry-After, read only on 429/503 (the answers a client waits on; a heartbeat's 204 pays
   * nothing for it); undefined when absent or not a number of seconds (an HTTP date: the caller backs off).
   */
  retryAfterSeconds: number | undefined;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** The head of an HTTP/1.1 answer at the start of `buf`, or undefined while it is incomplete. Throws on garbage. */
export function parseResponseHead(buf: Buffer): ResponseHead | undefined {
  const end = buf.indexOf(CRLFCRLF);
  if (end < 0) {
    if (buf.length > 64 * 1024) throw new Error('response head too long');
    return undefined;
  }
  const head = buf.toString('latin1', 0, end);
  if (!head.startsWith('HTTP/1.')) throw new Error(`not an HTTP/1.x answer: ${JSON.stringify(head.slice(0, 20))}`);
  const status = Number(head.slice(9, 12));
  if (!Number.isInteger(status) || status < 100) throw new Error(`bad status line: ${JSON.stringify(head.split('\r\n')[0])}`);
  const lower = head.toLowerCase();
  const close = /\r\nconnection:[ \t]*close/.test(lower);
  let bodyLength: number;
  const length = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
  if (status < 200 || status === 204 || status === 304) bodyLength = 0;
  else if (length) bodyLength = Number(length[1]);
  else if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) bodyLength = -1;
  else bodyLength = -2;
  const retryAfterSeconds = status === 429 || status === 503 ? readRetryAfter(lower) : undefined;
  return { status, headLength: end + 4, bodyLength, close, retryAfterSeconds };
}

/** As node:http + Number(): the first Retry-After header, if it is a non-negative number. */
function readRetryAfter(lowerHead: string): number | undefined {
  const m = /\r\nretry-after:[ \t]*([^\r]*)/.exec(lowerHead);
  if (!m) return undefined;
  const seconds = Number(m[1]);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** Bytes of the complete answer at the start of `buf` (head + body), or undefined while incomplete. */
export function completeLength(buf: Buffer, head: ResponseHead): number | undefined {
  if (head.bodyLength >= 0) return buf.length >= head.headLength + head.bodyLength ? head.headLength + head.bodyLength : undefined;
  if (head.bodyLength === -1) {
    const at = buf.indexOf(LAST_CHUNK, head.headLength);
    return at >= 0 && (at === head.headLength || buf[at - 1] === 0x0a) ? at + LAST_CHUNK.length : undefined;
  }
  return undefined; // until close
}

/**
 * `err` is a short label ("timeout", "ECONNRESET", ...) or undefined with the status;
 * `retryAfterSeconds` as in ResponseHead (only ever set on 429/503); `body`: the answer's body bytes
 * when it was framed by Content-Length (a view into the receive buffer, valid during the call only;
 * undefined for a chunked body), for the few callers that read it (a node agent's per-ref outcomes).
 */
export type RawCallback = (err: string | undefined, status: number, retryAfterSeconds?: number, body?: Buffer) => void;

/**
 * A whole request, head and body, ready to write: a string written as latin1 (ASCII only, the cheap
 * case: no Buffer per request), or the bytes of one whose body needed utf8.
 */
export type RawRequest = string | Buffer;

interface Conn {
  socket?: net.Socket;
  buf?: Buffer;
  head?: ResponseHead;
  cb?: RawCallback;
  /** When the request in flight was written (ms); 0 = idle. */
  since: number;
}

export interface RawHttpPoolOptions {
  sockets: number;
  /** A request without an answer this long after it got a socket fails with "timeout" (its socket is closed). */
  timeoutMs: number;
}

export class RawHttpPool {
  private readonly conns: Conn[];
  private readonly idle: number[] = [];
  private readonly host: string;
  private readonly port: number;
  private readonly hostHeader: string;
  // FIFO of requests waiting for a socket, with a moving head (shift() on 100k entries is not free).
  private queue: Array<{ bytes: RawRequest; cb: RawCallback }> = [];
  private queueHead = 0;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  /** Requests written to a socket so far. */
  written = 0;

  constructor(baseUrl: string, private readonly opts: RawHttpPoolOptions) {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:') throw new Error(`raw HTTP pool speaks plain http only, got ${url.protocol}`);
    this.host = url.hostname;
    this.port = Number(url.port || 80);
    this.hostHeader = url.host;
    this.conns = Array.from({ length: opts.sockets }, () => ({ since: 0 }));
    for (let i = opts.sockets - 1; i >= 0; i--) this.idle.push(i);
    // One sweep for every socket instead of a timer per request.
    this.sweeper = setInterval(() => this.sweepTimeouts(Date.now()), Math.min(1000, Math.max(50, opts.timeoutMs / 4)));
    this.sweeper.unref();
  }

  /** Requests waiting for a socket. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** The request line and headers for a body-less request (build once per distinct path; `path` is ASCII). */
  requestBytes(method: string, path: string): string {
    return `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\ncontent-length: 0\r\n\r\n`;
  }

  /**
   * A request with a JSON body (`json`, already serialized; `path` is ASCII). Content-Length counts utf8
   * bytes. An ASCII body (utf8 length equal to the string's: any other character takes 2+ bytes) stays
   * one string written as latin1; anything else is encoded as utf8, which latin1 would corrupt.
   */
  jsonRequestBytes(method: string, path: string, json: string): RawRequest {
    const length = Buffer.byteLength(json, 'utf8');
    const head = `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
    return length === json.length ? head + json : Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(json, 'utf8')]);
  }

  /** Sends `bytes` (from requestBytes or jsonRequestBytes) on the next free socket; `cb` runs exactly once. */
  send(bytes: RawRequest, cb: RawCallback): void {
    if (this.closed) return cb('closed', 0);
    const slot = this.idle.pop();
    if (slot === undefined) {
      this.queue.push({ bytes, cb });
      return;
    }
    this.dispatch(slot, bytes, cb);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const c of this.conns) c.socket?.destroy();
    const waiting = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    for (const w of waiting) w.cb('closed', 0);
  }

  private dispatch(slot: number, bytes: RawRequest, cb: RawCallback): void {
    const c = this.conns[slot];
    if (!c.socket || c.socket.destroyed) c.socket = this.connect(slot);
    c.cb = cb;
    c.since = Date.now();
    c.buf = undefined;
    c.head = undefined;
    c.socket.write(bytes, 'latin1');
    this.written++;
  }

  private connect(slot: number): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => this.onData(slot, socket, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(slot, socket, err.code ?? err.message.slice(0, 40)));
    socket.on('close', () => this.fail(slot, socket, 'ECONNRESET'));
    return socket;
  }

  private onData(slot: number, socket: net.Socket, chunk: Buffer): void {
    const c = this.conns[slot];
    if (c.socket !== socket) return;
    if (!c.cb) return this.fail(slot, socket, 'unexpected data');
    c.buf = c.buf ? Buffer.concat([c.buf, chunk]) : chunk;
    let total: number | undefined;
    try {
      c.head ??= parseResponseHead(c.buf);
      if (!c.head) return;
      total = completeLength(c.buf, c.head);
    } catch (err) {
      return this.fail(slot, socket, (err as Error).message.slice(0, 40));
    }
    if (total === undefined) return;
    const { status, close, retryAfterSeconds, headLength, bodyLength } = c.head;
    const extra = c.buf.length > total;
    const body = bodyLength > 0 ? c.buf.subarray(headLength, total) : undefined;
    const cb = c.cb;
    this.release(slot);
    // Bytes beyond the answer (never expected without pipelining) or a closing server: a fresh socket next time.
    if (close || extra) {
      c.socket = undefined;
      socket.destroy();
    }
    cb(undefined, status, retryAfterSeconds, body);
    this.next(slot);
  }

  private fail(slot: number, socket: net.Socket, label: string): void {
    const c = this.conns[slot];
    if (c.socket !== socket) return;
    c.socket = undefined;
    socket.destroy();
    const cb = c.cb;
    if (!cb) return; // an idle socket closed by the server: reconnect on next use
    this.release(slot);
    cb(label, 0);
    this.next(slot);
  }

  private release(slot: number): void {
    const c = this.conns[slot];
    c.cb = undefined;
    c.since = 0;
    c.buf = undefined;
    c.head = undefined;
  }

  /** The slot is free: the oldest waiting request takes it, or it goes idle. */
  private next(slot: number): void {
    if (this.closed) return;
    if (this.queueHead < this.queue.length) {
      const w = this.queue[this.queueHead++];
      if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      this.dispatch(slot, w.bytes, w.cb);
    } else {
      this.idle.push(slot);
    }
  }

  private sweepTimeouts(now: number): void {
    for (let slot = 0; slot < this.conns.length; slot++) {
      const c = this.conns[slot];
      if (c.since && c.socket && now - c.since > this.opts.timeoutMs) this.fail(slot, c.socket, 'timeout');
    }
  }
}
