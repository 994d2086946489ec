import { BoundedQueue, QueueFullError } from './bounded-queue';
import { Singleflight } from './singleflight';
import { TokenBucket } from './token-bucket';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('Singleflight', () => {
  it('shares one execution between concurrent callers of a key', async () => {
    const flight = new Singleflight<number>();
    const gate = deferred<number>();
    let runs = 0;
    const callers = Array.from({ length: 100 }, () => flight.run('svc', () => (runs++, gate.promise)));
    const other = flight.run('other', async () => 7);
    gate.resolve(42);
    expect(await Promise.all(callers)).toEqual(Array(100).fill(42));
    expect(await other).toBe(7);
    expect(runs).toBe(1);
  });

  it('propagates an error to every waiter and leaks none', async () => {
    const flight = new Singleflight<number>();
    const gate = deferred<number>();
    const callers = Array.from({ length: 10 }, () => flight.run('svc', () => gate.promise));
    gate.reject(new Error('etcd down'));
    const results = await Promise.allSettled(callers);
    expect(results.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'etcd down')).toBe(true);
    expect(flight.size).toBe(0);
  });

  it('runs again after the previous flight settled (no caching)', async () => {
    const flight = new Singleflight<number>();
    let runs = 0;
    await flight.run('k', async () => ++runs);
    await flight.run('k', async () => ++runs);
    expect(runs).toBe(2);
  });

  it('turns a synchronous throw into a rejection', async () => {
    const flight = new Singleflight<number>();
    await expect(
      flight.run('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(flight.size).toBe(0);
  });
});

describe('BoundedQueue', () => {
  it('runs at most `concurrency` tasks and rejects beyond `capacity` waiting', async () => {
    const queue = new BoundedQueue(2, 3);
    const gate = deferred<void>();
    let peak = 0;
    const task = async () => {
      peak = Math.max(peak, queue.active);
      await gate.promise;
    };
    const accepted = Array.from({ length: 5 }, () => queue.run(task));
    await expect(queue.run(task)).rejects.toBeInstanceOf(QueueFullError);
    expect(queue.depth).toBe(3);
    gate.resolve();
    await Promise.all(accepted);
    expect(peak).toBe(2);
    expect(queue.active).toBe(0);
    expect(queue.depth).toBe(0);
  });

  it('frees the slot when a task fails', async () => {
    const queue = new BoundedQueue(1, 0);
    await expect(queue.run(async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(queue.run(async () => 1)).resolves.toBe(1);
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    const bucket = new TokenBucket(10, 5, 0);
    expect(Array.from({ length: 6 }, () => bucket.tryTake(0))).toEqual([true, true, true, true, true, false]);
    expect(bucket.tryTake(100)).toBe(true);
    expect(bucket.tryTake(100)).toBe(false);
  });
});
