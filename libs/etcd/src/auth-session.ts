import type { TokenSource } from './etcd-connection';
import { isStaleTokenRejection } from './etcd-errors';

/**
 * Holds the auth token of one etcd connection.
 *
 * Why not etcd3's own Authenticator: it forgets the token whenever *any* call fails with "invalid
 * auth token". After an etcd restart hundreds of in-flight calls fail one after another, each of them
 * forgets the token that a neighbour has just fetched, and etcd sees a burst of Authenticate calls
 * (bcrypt + raft each, ~30/s on our machines). Here a failure only invalidates the token it was made
 * with, so all calls that failed with the same stale token share one re-authentication.
 */
export class AuthSession {
  private pending: Promise<string> | undefined;
  private current: string | undefined;

  constructor(
    private readonly authenticate: () => Promise<string>,
    /** A failed Authenticate is remembered this long, so a burst of callers during an outage shares it. */
    private readonly failureHoldMs = 500,
  ) {}

  token(): Promise<string> {
    if (!this.pending) {
      const attempt = this.authenticate().then(
        (token) => {
          if (this.pending === attempt) this.current = token;
          return token;
        },
        (err: unknown) => {
          setTimeout(() => {
            if (this.pending === attempt) this.pending = undefined;
          }, this.failureHoldMs).unref();
          throw err;
        },
      );
      this.pending = attempt;
    }
    return this.pending;
  }

  /** Drops `staleToken` if it is still the current one; a token fetched since stays. */
  invalidate(staleToken: string): void {
    if (this.current === staleToken) {
      this.current = undefined;
      this.pending = undefined;
    }
  }
}

/**
 * THE stale-token retry of a unary call: runs `call` with the current token and, if etcd refuses that
 * token (an etcd restart forgot every token), drops it (only it: see AuthSession) and runs `call` once
 * more with the token the shared re-authentication fetches. Once is enough: a second refusal is a real
 * error. (Streams drop the token the same way and reopen: KeepAliveStreams, RegistryWatch.)
 *
 * `settled` hears how the call ended, once: not the refused attempt that was retried, and not a token
 * that could not be fetched (Authenticate reports that itself).
 */
export async function retryOnStaleToken<T>(
  tokens: TokenSource | undefined,
  call: (token: string | undefined) => Promise<T>,
  settled?: (result: 'ok' | 'error') => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const token = tokens ? await tokens.token() : undefined;
    let result: T;
    try {
      result = await call(token);
    } catch (err) {
      if (token && attempt === 1 && isStaleTokenRejection(err)) {
        tokens!.invalidate(token);
        continue;
      }
      settled?.('error');
      throw err;
    }
    settled?.('ok');
    return result;
  }
}
