import { Backoff, BackoffPolicy } from './backoff';

/**
 * THE reopen loop of a long-lived etcd stream (the keepalive streams, the watch): after a break the
 * stream is reopened once, after the next back-off delay; a break reported while a reopen is already
 * pending changes nothing (one stream per slot, never two). `succeeded()` once the stream answers,
 * so the next outage starts from the shortest delay. The timer never keeps the process alive.
 */
export class ReopenTimer {
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    policy: BackoffPolicy,
    private readonly reopen: () => void,
    random?: () => number,
  ) {
    this.backoff = new Backoff(policy, random);
  }

  /** A reopen is waiting for its delay. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** Reopens after the next back-off delay, or after `delayMs` (0: on the next turn) if given. */
  schedule(delayMs?: number): void {
    if (this.closed || this.timer) return;
    const delay = delayMs ?? this.backoff.next();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reopen();
    }, delay);
    this.timer.unref();
  }

  /** The stream answered: the next break waits the shortest delay again. */
  succeeded(): void {
    this.backoff.reset();
  }

  /** Forgets a pending reopen and the failures so far (the owner reopens by itself, e.g. on a new connection). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.backoff.reset();
  }

  /** For good: nothing is reopened any more. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
