import { EventEmitter } from 'node:events';
import type { EtcdConnection } from './etcd-connection';
import { KeepAliveStreams } from './keepalive-streams';

/** A connection whose keepalive streams are counted; the first `failures` opens fail. */
function fakeConnection(failures = 0) {
  const opened: Array<EventEmitter & { ended: boolean; end(): void; write(): void }> = [];
  let failing = failures;
  const connection = {
    closed: false,
    opened,
    currentToken: async () => 'token',
    invalidateToken: () => undefined,
    isReady: () => true,
    close() {
      connection.closed = true;
    },
    lease: {
      leaseKeepAlive: async () => {
        if (failing-- > 0) throw new Error('14 UNAVAILABLE: connection refused');
        const stream = Object.assign(new EventEmitter(), {
          ended: false,
          end() {
            stream.ended = true;
          },
          write() {},
        });
        opened.push(stream);
        return stream;
      },
    },
  };
  return connection;
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('KeepAliveStreams', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('a reopen pending for the old connection does not open a second stream after replaceConnection()', async () => {
    const old = fakeConnection(1);
    const streams = new KeepAliveStreams([old as unknown as EtcdConnection], { renewalAnswered: () => undefined, streamReset: () => undefined });
    streams.start();
    await settle(); // the first open failed: a reopen is pending
    const next = fakeConnection();
    streams.replaceConnection(0, next as unknown as EtcdConnection);
    await settle();
    jest.advanceTimersByTime(10_000);
    await settle();
    expect(old.opened).toHaveLength(0);
    expect(next.opened).toHaveLength(1);
    expect(next.opened.filter((s) => !s.ended)).toHaveLength(1);
    streams.close();
  });

  it('an open in flight for the old connection ends its stream instead of keeping it beside the new one', async () => {
    const old = fakeConnection();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slowOpen = old.lease.leaseKeepAlive;
    old.lease.leaseKeepAlive = async () => {
      await gate;
      return slowOpen();
    };
    const streams = new KeepAliveStreams([old as unknown as EtcdConnection], { renewalAnswered: () => undefined, streamReset: () => undefined });
    streams.start();
    await settle();
    const next = fakeConnection();
    streams.replaceConnection(0, next as unknown as EtcdConnection);
    release();
    await settle();
    expect(old.opened.every((s) => s.ended)).toBe(true);
    expect(next.opened.filter((s) => !s.ended)).toHaveLength(1);
    expect(streams.liveCount()).toBe(1);
    streams.close();
  });
});
