/**
 * etcd's LeaseGrant as a plain HTTP/2 request: one stream on a node:http2 session per grant, the
 * messages framed by hand (lease-grant-codec.ts). Why not grpc-js, measured: against the same
 * auth-enabled etcd, 10,000 grants at concurrency 128 cost ~130 µs of CPU each through etcd3's
 * LeaseClient on grpc-js, ~115 µs through grpc-js's raw makeUnaryRequest with hand-made codecs, and
 * ~60 µs here: grpc-js's per-call machinery (interceptors, call stack, resolving call, metadata
 * objects) is most of the cost, not the HTTP/2 stream. A registration needs one grant (etcd has no
 * multi-grant), so this is per-registration CPU (bench/results/registration-rate.md).
 *
 * Only this one call: its request and answer are tiny and fixed, it has no streaming, no retries of
 * its own and no compression. Everything else stays on grpc-js, and so do grants while this session is
 * not connected (the lease-grant worker then uses its grpc-js connections, which keep their own
 * reconnect and keepalive logic). A member that does not answer fails its calls at their deadline and
 * the session moves to the next member of its list; a closed or refused connection does the same.
 * Errors are etcd3's typed classes, made as grpc-js makes them (castGrpcError of "<code> <STATUS>:
 * <details>"), so callers see no difference; a stale token is dropped and the call made once more.
 */
import * as http2 from 'node:http2';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { castGrpcError } from 'etcd3';
import { Backoff } from '@app/concurrency';
import type { EtcdObserver, EtcdTlsOptions, TokenSource } from '../etcd-connection';
import { retryOnStaleToken } from '../auth-session';
import { decodeLeaseGrantResponse, encodeLeaseGrantRequest } from './lease-grant-codec';

const LEASE_GRANT_PATH = '/etcdserverpb.Lease/LeaseGrant';
const MAX_ANSWER_BYTES = 64 * 1024;

export interface LeaseGrantSessionOptions {
  /** host:port of each member, in preference order. */
  endpoints: readonly string[];
  tls?: EtcdTlsOptions;
  /** Deadline of one grant (sent to etcd as grpc-timeout, and enforced here for a member that does not answer). */
  requestTimeoutMs: number;
  tokens?: TokenSource;
  observer?: EtcdObserver;
  now?: () => number;
}

interface GrantCall {
  session: http2.ClientHttp2Session;
  deadline: number;
  fail(err: Error): void;
}

export class LeaseGrantSession {
  private session: http2.ClientHttp2Session | undefined;
  private connected = false;
  private member = 0;
  private reconnectAt = 0;
  /** Reconnects: 100 ms, doubling to 2 s, until etcd answers a call again (see drop). */
  private readonly reconnects = new Backoff({ minMs: 100, maxMs: 2_000, jitter: 0 });
  private closed = false;
  private readonly calls = new Set<GrantCall>();
  private readonly sweep: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly options: LeaseGrantSessionOptions) {
    this.now = options.now ?? Date.now;
    // A member that stopped answering (frozen, partitioned) sends nothing, not even an error.
    this.sweep = setInterval(() => this.failOverdue(), Math.min(1_000, options.requestTimeoutMs));
    this.sweep.unref();
    this.connectIfDue();
  }

  /** Connected and taking grants; if not, starts (re)connecting when its back-off has passed. */
  isReady(): boolean {
    if (!this.connected) this.connectIfDue();
    return this.connected;
  }

  /** A new lease of `ttlSeconds`; rejects with etcd3's typed errors, as EtcdConnection.lease.leaseGrant does. */
  grant(ttlSeconds: number): Promise<string> {
    return retryOnStaleToken(
      this.options.tokens,
      (token) => this.call(ttlSeconds, token),
      (result) => this.options.observer?.requestCompleted?.('leaseGrant', result),
    );
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweep);
    if (this.session) this.drop(this.session, 'the lease-grant session was closed');
  }

  private call(ttlSeconds: number, token: string | undefined): Promise<string> {
    const session = this.session;
    if (!session || !this.connected) return Promise.reject(grpcError(GrpcStatus.UNAVAILABLE, 'no connection to etcd for lease grants'));
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': LEASE_GRANT_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${this.options.requestTimeoutMs}m`,
    };
    if (token) headers.token = token;
    return new Promise<string>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers);
      } catch (err) {
        // The session is going away (GOAWAY received, destroyed): the close handler moves on.
        reject(grpcError(GrpcStatus.UNAVAILABLE, (err as Error).message));
        return;
      }
      let settled = false;
      let grpcStatus: string | undefined;
      let grpcMessage = '';
      let httpStatus = 0;
      let answer: Buffer | undefined;
      const call: GrantCall = { session, deadline: this.now() + this.options.requestTimeoutMs, fail: (err) => settle(err) };
      const settle = (err: Error | undefined, id?: string) => {
        if (settled) return;
        settled = true;
        this.calls.delete(call);
        if (err) {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else {
          resolve(id!);
        }
      };
      this.calls.add(call);
      const readStatus = (fields: http2.IncomingHttpHeaders) => {
        if (fields['grpc-status'] === undefined) return;
        grpcStatus = String(fields['grpc-status']);
        grpcMessage = String(fields['grpc-message'] ?? '');
      };
      stream.on('response', (fields) => {
        httpStatus = Number(fields[':status']);
        readStatus(fields); // a "trailers-only" answer (an error) carries its status here
      });
      stream.on('trailers', readStatus);
      stream.on('data', (chunk: Buffer) => {
        answer = answer ? Buffer.concat([answer, chunk]) : chunk;
        if (answer.length > MAX_ANSWER_BYTES) settle(grpcError(GrpcStatus.RESOURCE_EXHAUSTED, `LeaseGrant answer larger than ${MAX_ANSWER_BYTES} bytes`));
      });
      stream.on('error', (err) => settle(grpcError(GrpcStatus.UNAVAILABLE, err.message)));
      stream.on('close', () => {
        if (grpcStatus !== undefined) this.reconnects.reset(); // etcd answered: this connection works
        const result = outcome(httpStatus, grpcStatus, grpcMessage, answer, stream.rstCode);
        if (typeof result === 'string') settle(undefined, result);
        else settle(result);
      });
      stream.end(encodeLeaseGrantRequest(ttlSeconds));
    });
  }

  private connectIfDue(): void {
    if (this.session || this.closed || this.now() < this.reconnectAt) return;
    const endpoint = this.options.endpoints[this.member % this.options.endpoints.length];
    const tls = this.options.tls;
    const session = tls
      ? http2.connect(`https://${endpoint}`, { ca: tls.ca, cert: tls.cert, key: tls.key })
      : http2.connect(`http://${endpoint}`);
    this.session = session;
    session.once('connect', () => {
      if (this.session === session) this.connected = true;
    });
    session.on('error', () => undefined); // 'close' follows; its calls fail through their streams
    session.once('goaway', () => this.drop(session, 'etcd closed the connection (GOAWAY)'));
    session.once('close', () => this.drop(session, 'the connection to etcd closed'));
  }

  /** Leaves `session` (its calls fail as unavailable) and moves to the next member after a back-off. */
  private drop(session: http2.ClientHttp2Session, reason: string): void {
    for (const call of this.calls) if (call.session === session) call.fail(grpcError(GrpcStatus.UNAVAILABLE, reason));
    if (!session.destroyed) session.destroy();
    if (this.session !== session) return;
    this.session = undefined;
    this.connected = false;
    this.member++;
    // Back off (100 ms, doubling to 2 s) until etcd answers a call again: a connection that opens and
    // is then closed (e.g. a TLS 1.3 client certificate refused after the handshake) must not loop.
    this.reconnectAt = this.now() + this.reconnects.next();
  }

  private failOverdue(): void {
    const now = this.now();
    let stalled: http2.ClientHttp2Session | undefined;
    for (const call of this.calls) {
      if (call.deadline > now) continue;
      call.fail(grpcError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      stalled = call.session;
    }
    // etcd itself answers a grant past its grpc-timeout; no answer at all means the member is stuck.
    if (stalled) this.drop(stalled, 'etcd did not answer within the deadline');
  }
}

/** The call's result once its stream closed: the lease id, or the error. */
function outcome(
  httpStatus: number,
  grpcStatus: string | undefined,
  grpcMessage: string,
  answer: Buffer | undefined,
  rstCode: number,
): string | Error {
  if (grpcStatus === undefined) {
    if (httpStatus && httpStatus !== 200) return grpcError(statusOfHttp(httpStatus), `received HTTP status ${httpStatus} from etcd`);
    return grpcError(GrpcStatus.UNAVAILABLE, `the LeaseGrant stream closed without a gRPC status (HTTP/2 code ${rstCode})`);
  }
  const code = Number(grpcStatus);
  if (code !== GrpcStatus.OK) return grpcError(code, decodeGrpcMessage(grpcMessage));
  if (!answer) return grpcError(GrpcStatus.INTERNAL, 'LeaseGrant answered OK without a message');
  try {
    const granted = decodeLeaseGrantResponse(answer);
    return granted.error ? grpcError(GrpcStatus.UNKNOWN, granted.error) : granted.id;
  } catch (err) {
    return grpcError(GrpcStatus.INTERNAL, (err as Error).message);
  }
}

/** As grpc-js builds a call's error ("14 UNAVAILABLE: ..."), typed by etcd3 as for any other call. */
function grpcError(code: number, details: string): Error {
  const name = (GrpcStatus as unknown as Record<number, string>)[code] ?? 'UNKNOWN';
  return castGrpcError(Object.assign(new Error(`${code} ${name}: ${details}`), { code, details }));
}

/** grpc-js's mapping of a non-gRPC HTTP answer (e.g. from a proxy) to a status. */
function statusOfHttp(httpStatus: number): number {
  if (httpStatus === 429 || httpStatus === 502 || httpStatus === 503 || httpStatus === 504) return GrpcStatus.UNAVAILABLE;
  if (httpStatus === 401) return GrpcStatus.UNAUTHENTICATED;
  if (httpStatus === 403) return GrpcStatus.PERMISSION_DENIED;
  if (httpStatus === 404) return GrpcStatus.UNIMPLEMENTED;
  return GrpcStatus.UNKNOWN;
}

function decodeGrpcMessage(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
