import { ReopenTimer } from './reopen-timer';

describe('ReopenTimer', () => {
  const policy = { minMs: 100, maxMs: 400, jitter: 0 };
  let reopened: number;
  let timer: ReopenTimer;

  beforeEach(() => {
    jest.useFakeTimers();
    reopened = 0;
    timer = new ReopenTimer(policy, () => reopened++);
  });

  afterEach(() => {
    timer.close();
    jest.useRealTimers();
  });

  it('reopens once after the back-off delay, doubling per failure up to the cap', () => {
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = Date.now();
      timer.schedule();
      while (reopened === i) jest.advanceTimersByTime(1);
      delays.push(Date.now() - before);
    }
    expect(delays).toEqual([100, 200, 400, 400]);
  });

  it('a break reported while a reopen is pending does not schedule a second one', () => {
    timer.schedule();
    timer.schedule();
    timer.schedule(0);
    expect(timer.pending).toBe(true);
    jest.advanceTimersByTime(1_000);
    expect(reopened).toBe(1);
    expect(timer.pending).toBe(false);
  });

  it('starts from the shortest delay again once the stream answered', () => {
    timer.schedule();
    jest.advanceTimersByTime(100);
    timer.schedule();
    jest.advanceTimersByTime(200);
    expect(reopened).toBe(2);
    timer.succeeded();
    timer.schedule();
    jest.advanceTimersByTime(99);
    expect(reopened).toBe(2);
    jest.advanceTimersByTime(1);
    expect(reopened).toBe(3);
  });

  it('honours an explicit delay (0 = next turn) without counting a failure', () => {
    timer.schedule(0);
    jest.advanceTimersByTime(0);
    expect(reopened).toBe(1);
    timer.schedule();
    jest.advanceTimersByTime(100);
    expect(reopened).toBe(2);
  });

  it('cancel() drops the pending reopen and the failures; close() stops for good', () => {
    timer.schedule();
    timer.schedule();
    timer.cancel();
    jest.advanceTimersByTime(1_000);
    expect(reopened).toBe(0);
    timer.schedule();
    jest.advanceTimersByTime(100);
    expect(reopened).toBe(1);
    timer.schedule();
    timer.close();
    timer.schedule();
    jest.advanceTimersByTime(1_000);
    expect(reopened).toBe(1);
  });
});
