/** Thrown by BoundedQueue when both its workers and its waiting room are full. */
export class QueueFullError extends Error {
  constructor(readonly capacity: number) {
    super(`queue full (${capacity} waiting)`);
    this.name = 'QueueFullError';
  }
}

/**
 * At most `concurrency` tasks run at once and at most `capacity` wait; beyond that `run` rejects at
 * once with QueueFullError instead of queueing without bound. Used in front of etcd writes, so a
 * registration storm turns into fast 503s, not into unbounded memory and etcd timeouts.
 */
export class BoundedQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly concurrency: number,
    readonly capacity: number,
  ) {}

  get depth(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.capacity) throw new QueueFullError(this.capacity);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` never undercounts.
      if (next) next();
      else this.running--;
    }
  }
}
