/**
 * etcd connections of a worker thread that never authenticate: each asks the HTTP thread for the token
 * of the pooled connection it mirrors, so a worker's channels cost etcd no Authenticate (etcd counts
 * exactly ETCD_POOL_SIZE per replica start, however many workers there are). Used by the lease
 * engine's worker and the lease-grant worker. Imports are relative only: workers load it by path.
 */
import type { MessagePort } from 'node:worker_threads';
import { AuthSession } from '../auth-session';
import { rotate } from '../connection-pool';
import { EtcdConnection, EtcdObserver, EtcdTlsOptions, TokenSource } from '../etcd-connection';
import { decodeEtcdError, encodeEtcdError, WireError } from './wire-errors';

/** Worker -> HTTP thread. */
export type TokenRequest = { t: 'token?'; id: number; connection: number } | { t: 'invalidate'; connection: number; token: string };
/** HTTP thread -> worker. */
export type TokenAnswer = { t: 'token'; id: number; token?: string; error?: WireError };

/** What a worker needs to mirror the HTTP thread's pool (structured-cloned into workerData). */
export interface RelayedPoolData {
  /** One entry per pooled connection of the HTTP thread, in its member preference order. */
  endpointsPerConnection: string[][];
  tls?: EtcdTlsOptions;
  requestTimeoutMs: number;
}

/** Worker side: hands out TokenSources for pooled connection i and matches the HTTP thread's answers. */
export class TokenRelay {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (token: string | undefined) => void; reject: (err: Error) => void }>();

  constructor(private readonly port: Pick<MessagePort, 'postMessage'>) {}

  /** Handles a TokenAnswer; false for any other message. */
  answer(message: { t: string }): boolean {
    if (message.t !== 'token') return false;
    const { id, token, error } = message as TokenAnswer;
    const waiter = this.waiting.get(id);
    if (waiter) {
      this.waiting.delete(id);
      // Typed again, so a token that could not be had because etcd is down still reads as "unavailable".
      if (error) waiter.reject(decodeEtcdError(error));
      else waiter.resolve(token);
    }
    return true;
  }

  /**
   * Pooled connection `connection`'s token, asked for once and kept until a call is refused with it:
   * asking per call would cost every unary call (every lease grant) a round trip through the HTTP
   * thread's loop. Concurrent callers share one question (AuthSession), and a refused token is dropped
   * here and on the HTTP thread (only that token: see AuthSession).
   */
  source(connection: number): TokenSource {
    const session = new AuthSession(() => this.ask(connection) as Promise<string>);
    return {
      token: () => session.token(),
      invalidate: (staleToken) => {
        session.invalidate(staleToken);
        this.port.postMessage({ t: 'invalidate', connection, token: staleToken } satisfies TokenRequest);
      },
    };
  }

  private ask(connection: number): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve, reject });
      this.port.postMessage({ t: 'token?', id, connection } satisfies TokenRequest);
    });
  }
}

/**
 * Worker side: a channel to pooled connection i's members (rotated by `rotation`, to move off a stalled
 * member) on the HTTP thread's tokens.
 */
export function relayedConnection(
  data: RelayedPoolData,
  relay: TokenRelay,
  i: number,
  rotation = 0,
  observer?: EtcdObserver,
  tokens: TokenSource = relay.source(i),
): EtcdConnection {
  return new EtcdConnection({
    endpoints: rotate(data.endpointsPerConnection[i], rotation),
    tls: workerTls(data.tls),
    requestTimeoutMs: data.requestTimeoutMs,
    tokens,
    observer,
  });
}

/** Buffers arrive structured-cloned as plain Uint8Arrays; grpc-js and node:http2 insist on Buffers. */
export function workerTls(tls: EtcdTlsOptions | undefined): EtcdTlsOptions | undefined {
  return tls && { ca: tls.ca && Buffer.from(tls.ca), cert: tls.cert && Buffer.from(tls.cert), key: tls.key && Buffer.from(tls.key) };
}

/** HTTP thread side: answers a worker's TokenRequest from the pooled connections; false for any other message. */
export function serveTokenRequest(connections: readonly EtcdConnection[], message: { t: string }, reply: (answer: TokenAnswer) => void): boolean {
  const request = message as TokenRequest;
  if (request.t === 'invalidate') {
    connections[request.connection]?.invalidateToken(request.token);
    return true;
  }
  if (request.t !== 'token?') return false;
  const connection = connections[request.connection];
  if (!connection) {
    reply({ t: 'token', id: request.id, error: { message: `no pooled connection ${request.connection}` } });
    return true;
  }
  connection.currentToken().then(
    (token) => reply({ t: 'token', id: request.id, token }),
    (err: unknown) => reply({ t: 'token', id: request.id, error: encodeEtcdError(err) }),
  );
  return true;
}
