import { ChangeWaiters, WaitOutcome } from './change-waiters';

describe('ChangeWaiters', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** Settles pending promise callbacks without moving the fake clock. */
  const flush = () => Promise.resolve().then(() => undefined);

  function track(promise: Promise<WaitOutcome>) {
    const state: { outcome?: WaitOutcome } = {};
    void promise.then((outcome) => (state.outcome = outcome));
    return state;
  }

  it('wakes every waiter of a key on notify, and only that key', async () => {
    const waiters = new ChangeWaiters();
    const a = [track(waiters.wait('a', 60_000)), track(waiters.wait('a', 60_000))];
    const b = track(waiters.wait('b', 60_000));
    expect(waiters.size).toBe(3);
    expect(waiters.has('a')).toBe(true);

    waiters.notify('a');
    await flush();
    expect(a.map((w) => w.outcome)).toEqual(['changed', 'changed']);
    expect(b.outcome).toBeUndefined();
    expect(waiters.size).toBe(1);
    expect(waiters.has('a')).toBe(false);
  });

  it('a waiter that parks after a notify waits for the next one', async () => {
    const waiters = new ChangeWaiters();
    waiters.notify('a');
    const late = track(waiters.wait('a', 60_000));
    await flush();
    expect(late.outcome).toBeUndefined();
    waiters.notify('a');
    await flush();
    expect(late.outcome).toBe('changed');
  });

  it('times out after its own wait and frees its slot', async () => {
    const waiters = new ChangeWaiters();
    const short = track(waiters.wait('a', 1_000));
    const long = track(waiters.wait('a', 5_000));
    jest.advanceTimersByTime(999);
    await flush();
    expect(short.outcome).toBeUndefined();
    jest.advanceTimersByTime(1);
    await flush();
    expect(short.outcome).toBe('timeout');
    expect(long.outcome).toBeUndefined();
    expect(waiters.size).toBe(1);
    jest.advanceTimersByTime(4_000);
    await flush();
    expect(long.outcome).toBe('timeout');
    expect(waiters.size).toBe(0);
    expect(waiters.has('a')).toBe(false);
  });

  it('ends a wait at once when its signal aborts (client gone), before or while waiting', async () => {
    const waiters = new ChangeWaiters();
    const gone = new AbortController();
    const parked = track(waiters.wait('a', 60_000, gone.signal));
    const other = track(waiters.wait('a', 60_000));
    gone.abort();
    await flush();
    expect(parked.outcome).toBe('aborted');
    expect(other.outcome).toBeUndefined();
    expect(waiters.size).toBe(1);

    expect(await waiters.wait('a', 60_000, gone.signal)).toBe('aborted');
    expect(waiters.size).toBe(1);
  });

  it('settles each waiter once: a notify after a timeout or abort changes nothing', async () => {
    const waiters = new ChangeWaiters();
    const gone = new AbortController();
    const aborted = track(waiters.wait('a', 60_000, gone.signal));
    const timedOut = track(waiters.wait('a', 10));
    gone.abort();
    jest.advanceTimersByTime(10);
    waiters.notify('a');
    gone.abort();
    await flush();
    expect([aborted.outcome, timedOut.outcome]).toEqual(['aborted', 'timeout']);
    expect(waiters.size).toBe(0);
  });

  it('close() ends every wait with closed, and later waits end at once', async () => {
    const waiters = new ChangeWaiters();
    const held = Array.from({ length: 50 }, (_, i) => track(waiters.wait(`k${i % 5}`, 60_000)));
    waiters.close();
    await flush();
    expect(held.every((w) => w.outcome === 'closed')).toBe(true);
    expect(waiters.size).toBe(0);
    expect(await waiters.wait('k0', 60_000)).toBe('closed');
    expect(waiters.size).toBe(0);
  });
});
