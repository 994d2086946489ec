/** Why a wait ended: the document changed, the wait ran out, the caller gave up, or the waiters were closed. */
export type WaitOutcome = 'changed' | 'timeout' | 'aborted' | 'closed';

interface Waiter {
  settle(outcome: WaitOutcome): void;
}

/**
 * Callers parked until a document changes (blocking queries). `notify(key)` wakes every waiter of
 * that key at once; each waiter also ends on its own timeout, when its AbortSignal fires (the HTTP
 * client went away, so its slot is free at once) or on `close()` (shutdown: answer everyone now).
 *
 * Waiting costs memory only: one promise, one timer and one set entry per waiter. Node keeps timers
 * in a list per duration, so thousands of them cost no CPU until they fire. Timers are unref'd:
 * a parked caller never keeps a process alive.
 */
export class ChangeWaiters {
  private readonly byKey = new Map<string, Set<Waiter>>();
  private count = 0;
  private closed = false;

  /** Waiters parked right now, over all keys. */
  get size(): number {
    return this.count;
  }

  /** Whether anyone waits for `key` (the cache keeps such documents in memory). */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** Resolves (never rejects) with the reason the wait ended. After close(), resolves 'closed' at once. */
  wait(key: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.closed) return Promise.resolve('closed');
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise<WaitOutcome>((resolve) => {
      let waiters = this.byKey.get(key);
      if (!waiters) this.byKey.set(key, (waiters = new Set()));
      const parked = waiters;
      let done = false;
      const onAbort = () => waiter.settle('aborted');
      const waiter: Waiter = {
        settle: (outcome) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          parked.delete(waiter);
          if (parked.size === 0 && this.byKey.get(key) === parked) this.byKey.delete(key);
          this.count--;
          resolve(outcome);
        },
      };
      const timer = setTimeout(() => waiter.settle('timeout'), Math.max(0, timeoutMs));
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      parked.add(waiter);
      this.count++;
    });
  }

  /** Wakes every waiter of `key`. Waiters that park afterwards wait for the next change. */
  notify(key: string): void {
    const waiters = this.byKey.get(key);
    if (!waiters) return;
    this.byKey.delete(key);
    for (const waiter of [...waiters]) waiter.settle('changed');
  }

  /** Wakes every waiter of every key (the whole registry was read again). */
  notifyAll(): void {
    for (const key of [...this.byKey.keys()]) this.notify(key);
  }

  /** Ends every wait with 'closed', now and for every later wait() (shutdown answers held requests). */
  close(): void {
    this.closed = true;
    for (const waiters of [...this.byKey.values()]) for (const waiter of [...waiters]) waiter.settle('closed');
    this.byKey.clear();
  }
}
