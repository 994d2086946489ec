import { AuthSession } from './auth-session';

describe('AuthSession', () => {
  it('authenticates once for many concurrent callers', async () => {
    let calls = 0;
    const session = new AuthSession(async () => `t${++calls}`);
    const tokens = await Promise.all(Array.from({ length: 500 }, () => session.token()));
    expect(new Set(tokens)).toEqual(new Set(['t1']));
    expect(calls).toBe(1);
  });

  it('shares one re-authentication across 500 in-flight calls that failed with the same stale token', async () => {
    let calls = 0;
    const session = new AuthSession(async () => `t${++calls}`);
    const stale = await session.token();
    // Failures arrive one after another, interleaved with callers that already re-fetched.
    for (let i = 0; i < 500; i++) {
      session.invalidate(stale);
      expect(await session.token()).toBe('t2');
    }
    expect(calls).toBe(2);
  });

  it('lets a burst of callers share a failed attempt, then retries', async () => {
    let calls = 0;
    const session = new AuthSession(async () => {
      calls++;
      if (calls === 1) throw new Error('etcd down');
      return 'ok';
    }, 20);
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => session.token()));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(calls).toBe(1);
    await new Promise((r) => setTimeout(r, 30));
    await expect(session.token()).resolves.toBe('ok');
    expect(calls).toBe(2);
  });
});
