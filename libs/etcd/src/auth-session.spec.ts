import { EtcdInvalidAuthTokenError } from 'etcd3';
import { AuthSession, retryOnStaleToken } from './auth-session';

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

describe('retryOnStaleToken', () => {
  const stale = () => new EtcdInvalidAuthTokenError('etcdserver: invalid auth token');

  /** An AuthSession that hands out t1, t2, ... (or runs `authenticate`), and what the call saw. */
  function setup(authenticate?: () => Promise<string>) {
    let authentications = 0;
    const session = new AuthSession(authenticate ?? (async () => `t${++authentications}`));
    const used: Array<string | undefined> = [];
    const settled: string[] = [];
    return { session, used, settled, onSettled: (result: string) => settled.push(result) };
  }

  it('retries once with the re-fetched token after etcd refused a stale one, and reports one success', async () => {
    const { session, used, settled, onSettled } = setup();
    const answer = await retryOnStaleToken(
      session,
      async (token) => {
        used.push(token);
        if (token === 't1') throw stale();
        return 'granted';
      },
      onSettled,
    );
    expect(answer).toBe('granted');
    expect(used).toEqual(['t1', 't2']);
    expect(settled).toEqual(['ok']);
  });

  it('takes a second refusal as a real error: no third call, one error reported', async () => {
    const { session, used, settled, onSettled } = setup();
    const call = retryOnStaleToken(
      session,
      async (token) => {
        used.push(token);
        throw stale();
      },
      onSettled,
    );
    await expect(call).rejects.toBeInstanceOf(EtcdInvalidAuthTokenError);
    expect(used).toEqual(['t1', 't2']);
    expect(settled).toEqual(['error']);
  });

  it('does not retry other errors', async () => {
    const { session, used, settled, onSettled } = setup();
    const call = retryOnStaleToken(
      session,
      async (token) => {
        used.push(token);
        throw new Error('etcdserver: permission denied');
      },
      onSettled,
    );
    await expect(call).rejects.toThrow('permission denied');
    expect(used).toEqual(['t1']);
    expect(settled).toEqual(['error']);
  });

  it('does not retry without a token source (no auth): there is no token to renew', async () => {
    const used: Array<string | undefined> = [];
    const call = retryOnStaleToken(undefined, async (token) => {
      used.push(token);
      throw stale();
    });
    await expect(call).rejects.toBeInstanceOf(EtcdInvalidAuthTokenError);
    expect(used).toEqual([undefined]);
  });

  it('reports nothing when the token cannot be fetched (Authenticate reports that itself)', async () => {
    const { session, used, settled, onSettled } = setup(async () => {
      throw new Error('etcd unreachable');
    });
    const call = retryOnStaleToken(
      session,
      async (token) => {
        used.push(token);
        return 'granted';
      },
      onSettled,
    );
    await expect(call).rejects.toThrow('etcd unreachable');
    expect(used).toEqual([]);
    expect(settled).toEqual([]);
  });

  it('lets calls that failed with the same stale token share one re-authentication', async () => {
    let authentications = 0;
    const session = new AuthSession(async () => `t${++authentications}`);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        retryOnStaleToken(session, async (token) => {
          if (token === 't1') throw stale();
          return token;
        }),
      ),
    );
    expect(new Set(answers)).toEqual(new Set(['t2']));
    expect(authentications).toBe(2);
  });
});
