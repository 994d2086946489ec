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
