import { EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { RegistryUnavailableError } from '@app/registry';
import { etcdFailure, grpcStatusOf, isEtcdUnavailable } from '../etcd-errors';
import { encodeEtcdError } from '../worker-threads/wire-errors';
import { CompletedCalls, GrantAnswers, GrantItem, GrantRequests, GrantResult } from './grant-batching';

/** A manual event loop: flushes run when the test ends the turn. */
class Turns {
  private queued: Array<() => void> = [];
  readonly schedule = (flush: () => void) => void this.queued.push(flush);
  end(): void {
    for (const flush of this.queued.splice(0)) flush();
  }
  get pending(): number {
    return this.queued.length;
  }
}

const settled = <T>(promise: Promise<T>) => {
  const state: { value?: T; error?: Error } = {};
  promise.then(
    (value) => (state.value = value),
    (error: Error) => (state.error = error),
  );
  return state;
};
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GrantRequests (HTTP thread side)', () => {
  function setup(deadlineMs = 5_000) {
    const turns = new Turns();
    const sent: GrantItem[][] = [];
    let now = 1_000;
    const requests = new GrantRequests((items) => sent.push(items), deadlineMs, turns.schedule, () => now);
    return { turns, sent, requests, advance: (ms: number) => (now += ms) };
  }

  it('sends the grants of one turn as ONE message, and the next turn as another', () => {
    const { turns, sent, requests } = setup();
    for (let i = 0; i < 50; i++) void requests.request(30);
    expect(sent).toEqual([]);
    expect(turns.pending).toBe(1);
    turns.end();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toHaveLength(50);
    expect(sent[0].every(([, ttl]) => ttl === 30)).toBe(true);
    void requests.request(10);
    turns.end();
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual([[51, 10]]);
  });

  it('matches answers to requests by id, in any order, and ignores ids it does not know', async () => {
    const { turns, sent, requests } = setup();
    const a = settled(requests.request(10));
    const b = settled(requests.request(20));
    turns.end();
    const [[idA], [idB]] = sent[0];
    requests.answer([
      [idB, '222'],
      [999, '999'],
      [idA, '111'],
    ]);
    await tick();
    expect(a.value).toBe('111');
    expect(b.value).toBe('222');
    expect(requests.inFlight).toBe(0);
  });

  it('re-creates the etcd error class and status an answer carries, so the HTTP mapping stays the same', async () => {
    const { turns, sent, requests } = setup();
    const unavailable = settled(requests.request(10));
    const leaseGone = settled(requests.request(10));
    const denied = settled(requests.request(10));
    turns.end();
    const ids = sent[0].map(([id]) => id);
    const results: GrantResult[] = [
      [ids[0], encodeEtcdError(new GRPCUnavailableError('14 UNAVAILABLE: No connection established'))],
      [ids[1], encodeEtcdError(new EtcdLeaseInvalidError('7'))],
      [ids[2], { message: '7 PERMISSION_DENIED: etcdserver: permission denied', status: 'PERMISSION_DENIED' }],
    ];
    requests.answer(results);
    await tick();
    expect(unavailable.error).toBeInstanceOf(GRPCUnavailableError);
    expect(isEtcdUnavailable(unavailable.error)).toBe(true);
    expect(etcdFailure(unavailable.error, 'granting')).toBeInstanceOf(RegistryUnavailableError);
    expect(grpcStatusOf(leaseGone.error)).toBe('NOT_FOUND');
    expect(grpcStatusOf(denied.error)).toBe('PERMISSION_DENIED');
    expect(etcdFailure(denied.error, 'granting a 10 s lease')?.message).toContain('PERMISSION_DENIED');
  });

  it('an error without a gRPC status stays a plain error (not mistaken for an etcd answer)', async () => {
    const { turns, sent, requests } = setup();
    const bug = settled(requests.request(10));
    turns.end();
    requests.answer([[sent[0][0][0], encodeEtcdError(new TypeError('boom'))]]);
    await tick();
    expect(bug.error?.message).toBe('boom');
    expect(grpcStatusOf(bug.error)).toBeUndefined();
  });

  it('fails every unanswered grant, queued or sent, when the worker exits', async () => {
    const { turns, sent, requests } = setup();
    const sentOne = settled(requests.request(10));
    turns.end();
    const queuedOne = settled(requests.request(10));
    requests.failAll(new GRPCUnavailableError('the lease-grant worker exited'));
    await tick();
    expect(isEtcdUnavailable(sentOne.error)).toBe(true);
    expect(isEtcdUnavailable(queuedOne.error)).toBe(true);
    expect(requests.inFlight).toBe(0);
    turns.end();
    expect(sent).toHaveLength(1); // the failed queued grant is not sent afterwards
    // A late answer for a failed grant changes nothing.
    requests.answer([[sent[0][0][0], '123']]);
    expect(sentOne.value).toBeUndefined();
  });

  it('fails grants past their deadline as unavailable (deadline exceeded), and only those', async () => {
    const { turns, requests, advance } = setup(5_000);
    const old = settled(requests.request(10));
    turns.end();
    advance(3_000);
    const young = settled(requests.request(10));
    advance(2_000);
    expect(requests.expire()).toBe(1);
    await tick();
    expect(old.error).toBeInstanceOf(GRPCDeadlineExceededError);
    expect(isEtcdUnavailable(old.error)).toBe(true);
    expect(young.error).toBeUndefined();
    expect(requests.inFlight).toBe(1);
  });
});

describe('GrantAnswers (worker side)', () => {
  it('sends the answers and call counts of one worker turn as ONE message', () => {
    const turns = new Turns();
    const sent: Array<{ results: GrantResult[]; calls: CompletedCalls }> = [];
    const answers = new GrantAnswers((results, calls) => sent.push({ results, calls }), turns.schedule);
    for (let id = 1; id <= 30; id++) {
      answers.counted('leaseGrant', id === 7 ? 'error' : 'ok');
      answers.add(id, id === 7 ? { message: '14 UNAVAILABLE: x', status: 'UNAVAILABLE' } : String(1000 + id));
    }
    expect(turns.pending).toBe(1);
    turns.end();
    expect(sent).toHaveLength(1);
    expect(sent[0].results).toHaveLength(30);
    expect(sent[0].results[6]).toEqual([7, { message: '14 UNAVAILABLE: x', status: 'UNAVAILABLE' }]);
    expect(sent[0].calls).toEqual(
      expect.arrayContaining([
        ['leaseGrant', 'ok', 29],
        ['leaseGrant', 'error', 1],
      ]),
    );
    turns.end();
    expect(sent).toHaveLength(1); // nothing new, no message
    answers.add(31, '1031');
    turns.end();
    expect(sent[1]).toEqual({ results: [[31, '1031']], calls: [] });
  });
});
