/**
 * Issue 10, item 4: the lease-grant worker's hand-framed LeaseGrant (LeaseGrantSession) against the
 * real auth-enabled etcd: one etcd LeaseGrant per grant, ids and TTLs as etcd3 reads them, errors of
 * the same etcd3 class and message as the grpc-js path, one retry on a stale token, and a member that
 * refuses connections or never answers is left for the next one. Counts from etcd's own /metrics.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { EtcdConnection, LeaseGrantSession, TokenSource } from '@app/etcd';
import { freePort } from '@app/stack';
import { sharedStack } from './support/stack';
import { waitFor } from './support/wait';

const stack = sharedStack();
const credentials = { username: stack.etcd.username, password: stack.etcd.password };

/** The grpc-js connection's tokens, counted (what the worker's relay hands a session). */
function tokensOf(connection: EtcdConnection): TokenSource & { invalidated: string[] } {
  const invalidated: string[] = [];
  return {
    invalidated,
    token: () => connection.currentToken(),
    invalidate: (stale) => {
      invalidated.push(stale);
      connection.invalidateToken(stale);
    },
  };
}

const outcome = (promise: Promise<unknown>) =>
  promise.then(
    (value) => ({ value }),
    (err: Error) => ({ type: err.constructor.name, message: err.message }),
  );

describe('LeaseGrantSession (real etcd)', () => {
  let connection: EtcdConnection;
  const sessions: LeaseGrantSession[] = [];
  const open = (options: Partial<ConstructorParameters<typeof LeaseGrantSession>[0]> = {}) => {
    const session = new LeaseGrantSession({ endpoints: [stack.etcd.endpoint], requestTimeoutMs: 5_000, tokens: tokensOf(connection), ...options });
    sessions.push(session);
    return session;
  };

  beforeAll(async () => {
    connection = new EtcdConnection({ endpoints: [stack.etcd.endpoint], credentials, requestTimeoutMs: 5_000 });
    await connection.connect();
  });
  afterAll(() => {
    for (const session of sessions) session.close();
    connection.close();
  });

  it('grants leases etcd knows, one etcd LeaseGrant each, counted as leaseGrant calls', async () => {
    const completed: string[] = [];
    const session = open({ observer: { requestCompleted: (method, result) => completed.push(`${method}:${result}`) } });
    await waitFor('the session to connect', () => session.isReady(), 10_000, 20);
    const before = await stack.etcdCounters();
    const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => session.grant(30 + (i % 3))));
    const after = await stack.etcdCounters();

    expect(new Set(ids).size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[1-9][0-9]*$/);
    expect(after.leaseGrant - before.leaseGrant).toBe(100);
    expect(after.authenticate - before.authenticate).toBe(0);
    expect(completed).toEqual(Array(100).fill('leaseGrant:ok'));
    // The ids are etcd's: grpc-js reads each back with the TTL it was granted with.
    const lived = await connection.lease.leaseTimeToLive({ ID: ids[4], keys: false });
    expect(lived.grantedTTL).toBe('31');
    await Promise.all(ids.map((ID) => connection.lease.leaseRevoke({ ID })));
  });

  it('answers etcd errors with the class and message grpc-js calls get, and counts them', async () => {
    const completed: string[] = [];
    const session = open({ observer: { requestCompleted: (method, result) => completed.push(`${method}:${result}`) } });
    await waitFor('the session to connect', () => session.isReady(), 10_000, 20);
    // etcd's upper bound on a lease TTL is 9,000,000,000 s.
    const viaSession = await outcome(session.grant(9_000_000_001));
    const viaGrpc = await outcome(connection.lease.leaseGrant({ TTL: 9_000_000_001, ID: 0 }));
    expect(viaSession).toEqual(viaGrpc);
    expect(viaSession).toMatchObject({ message: expect.stringMatching(/too large lease TTL/) });
    expect(completed).toEqual(['leaseGrant:error']);

  });

  it('drops a stale token and grants once more with a fresh one', async () => {
    const tokens = tokensOf(connection);
    let stale = true;
    const session = open({
      tokens: {
        token: async () => (stale ? 'not-a-token.1' : tokens.token()),
        invalidate: (token) => {
          stale = false;
          tokens.invalidate(token);
        },
      },
    });
    await waitFor('the session to connect', () => session.isReady(), 10_000, 20);
    const id = await session.grant(30);
    expect(id).toMatch(/^[1-9][0-9]*$/);
    expect(tokens.invalidated).toEqual(['not-a-token.1']);
    await connection.lease.leaseRevoke({ ID: id });
  });

  it('leaves a member that refuses connections for the next one in its list', async () => {
    const closedPort = await freePort();
    const session = open({ endpoints: [`127.0.0.1:${closedPort}`, stack.etcd.endpoint] });
    await waitFor('the session to reach the second member', () => session.isReady(), 10_000, 20);
    expect(await session.grant(30)).toMatch(/^[1-9][0-9]*$/);
  });

  it('fails calls a member never answers at their deadline (as grpc-js does), and moves to the next member', async () => {
    // A peer that speaks HTTP/2 and takes the stream, then says nothing: a frozen or partitioned member.
    const silent = http2.createServer();
    const held: http2.ServerHttp2Stream[] = [];
    silent.on('stream', (stream) => held.push(stream));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      const session = open({ endpoints: [`127.0.0.1:${silentPort}`, stack.etcd.endpoint], requestTimeoutMs: 400 });
      await waitFor('the session to connect to the silent member', () => session.isReady(), 10_000, 20);
      const started = Date.now();
      const stuck = await outcome(session.grant(30));
      expect(stuck).toEqual({ type: 'GRPCDeadlineExceededError', message: '4 DEADLINE_EXCEEDED: Deadline exceeded' });
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(held.length).toBe(1);
      expect(held[0].headersSent).toBe(false); // nothing was ever answered
      await waitFor('the session to move to the next member', () => session.isReady(), 10_000, 20);
      expect(await session.grant(30)).toMatch(/^[1-9][0-9]*$/);
      expect(held.length).toBe(1);
    } finally {
      for (const stream of held) stream.close();
      silent.close();
    }
  });

  it('fails every call as unavailable once closed', async () => {
    const session = open();
    await waitFor('the session to connect', () => session.isReady(), 10_000, 20);
    session.close();
    expect(session.isReady()).toBe(false);
    expect(await outcome(session.grant(30))).toEqual({ type: 'GRPCUnavailableError', message: '14 UNAVAILABLE: no connection to etcd for lease grants' });
  });
});
