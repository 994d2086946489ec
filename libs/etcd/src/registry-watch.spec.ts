import { EventEmitter } from 'node:events';
import { IWatchRequest, IWatchResponse } from 'etcd3';
import { KeyLayout } from '@app/registry';
import { ConnectionPool } from './connection-pool';
import { EtcdConnection } from './etcd-connection';
import { RegistryEvent, RegistryWatch } from './registry-watch';
import { StoredRange } from './registry-store';

const layout = new KeyLayout('/registry/');

/** A Watch stream as etcd3 hands it out: writes are recorded, cancel() errors and ends it like gRPC does. */
class FakeStream extends EventEmitter {
  readonly writes: IWatchRequest[] = [];
  cancelled = false;
  write(request: IWatchRequest): void {
    this.writes.push(request);
  }
  end(): void {}
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('error', new Error('1 CANCELLED: Cancelled on client'));
    this.emit('end');
  }
  respond(res: Partial<IWatchResponse> & { revision?: number }): void {
    const { revision = 0, ...rest } = res;
    this.emit('data', {
      header: { revision: String(revision) },
      watch_id: '0',
      created: false,
      canceled: false,
      compact_revision: '0',
      cancel_reason: '',
      fragment: false,
      events: [],
      ...rest,
    } as unknown as IWatchResponse);
  }
}

function kv(key: string, modRevision: number, version: number, value = '') {
  return { key: Buffer.from(key), value: Buffer.from(value), mod_revision: String(modRevision), version: String(version), create_revision: '1', lease: '0' };
}

function setup(clusterRevision?: () => number) {
  const streams: FakeStream[] = [];
  let token = 'token-1';
  const connection = {
    watch: {
      watch: async () => {
        const stream = new FakeStream();
        streams.push(stream);
        return stream;
      },
    },
    currentToken: async () => token,
    // Like EtcdConnection: only the token the caller used is dropped (here: replaced by a new one).
    invalidateToken: jest.fn((stale: string | undefined) => {
      if (stale === token) token = `token-${Number(token.split('-')[1]) + 1}`;
    }),
    token: () => token,
  };
  const rebuild: StoredRange = { revision: '500', items: [{ key: '/registry/services/a/1', value: 'x', leaseId: '0', modRevision: '400' }] };
  const store = { layout, scanAll: jest.fn(async () => rebuild) };
  const delivered: RegistryEvent[][] = [];
  const resyncs: StoredRange[] = [];
  const states: Array<[boolean, string | undefined]> = [];
  const watch = new RegistryWatch(
    { pick: () => connection as unknown as EtcdConnection } as Pick<ConnectionPool, 'pick'>,
    store,
    { events: (e) => delivered.push(e), resync: (r) => resyncs.push(r), stateChanged: (up, reason) => states.push([up, reason]) },
    { progressIntervalMs: 1_000, silenceTimeoutMs: 3_000, backoffMinMs: 100, backoffMaxMs: 100, clusterRevision },
  );
  const latest = () => streams[streams.length - 1];
  return { watch, streams, latest, connection, store, delivered, resyncs, states };
}

describe('RegistryWatch', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('opens one watch on the services prefix and delivers instance events with their revisions', async () => {
    const { watch, streams, latest, delivered } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(streams).toHaveLength(1);
    const create = latest().writes[0].create_request!;
    expect(create.key!.toString()).toBe('/registry/services/');
    expect(create.range_end!.toString()).toBe('/registry/services0');
    expect(create.start_revision).toBeUndefined();

    latest().respond({ created: true, revision: 41 });
    expect(watch.isUp()).toBe(true);
    expect(watch.epoch).toBe(1);
    expect(watch.revision).toBe(41);

    latest().respond({
      revision: 43,
      events: [
        { type: 'Put', kv: kv('/registry/services/a/1', 42, 1, 'v'), prev_kv: undefined },
        { type: 'Put', kv: kv('/registry/not-an-instance', 43, 1), prev_kv: undefined },
        { type: 'Delete', kv: kv('/registry/services/b/2', 43, 0), prev_kv: undefined },
      ] as unknown as IWatchResponse['events'],
    });
    expect(delivered).toEqual([
      [
        { type: 'put', service: 'a', id: '1', value: 'v', leaseId: '0', revision: 42, created: true },
        { type: 'delete', service: 'b', id: '2', value: undefined, revision: 43, created: false },
      ],
    ]);
    expect(watch.revision).toBe(43);
    watch.close();
  });

  it('resumes from the last delivered revision + 1 after the stream breaks', async () => {
    const { watch, streams, latest, states } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, revision: 10 });
    latest().respond({ revision: 12, events: [{ type: 'Put', kv: kv('/registry/services/a/1', 12, 2) }] as unknown as IWatchResponse['events'] });
    latest().emit('error', new Error('14 UNAVAILABLE: Connection dropped'));
    expect(watch.isUp()).toBe(false);
    expect(watch.confirmedAt).toBe(0);
    await jest.advanceTimersByTimeAsync(100);
    expect(streams).toHaveLength(2);
    expect(latest().writes[0].create_request!.start_revision).toBe(13);
    latest().respond({ created: true, revision: 20 });
    expect(watch.epoch).toBe(1); // nothing was missed: same continuity
    expect(states.map(([up]) => up)).toEqual([true, false, true]);
    watch.close();
  });

  it('rebuilds from one read when etcd compacted the revisions it missed, then watches from there', async () => {
    const { watch, streams, latest, store, resyncs } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, revision: 10 });
    latest().emit('error', new Error('14 UNAVAILABLE'));
    await jest.advanceTimersByTimeAsync(100);
    latest().respond({ created: true, revision: 480 });
    latest().respond({ canceled: true, compact_revision: '450' });
    await jest.advanceTimersByTimeAsync(0);
    expect(store.scanAll).toHaveBeenCalledTimes(1);
    expect(resyncs.map((r) => r.revision)).toEqual(['500']);
    expect(watch.epoch).toBe(2);
    expect(streams).toHaveLength(3);
    expect(latest().writes[0].create_request!.start_revision).toBe(501);
    watch.close();
  });

  it('re-authenticates when etcd cancels the watch for an invalid token, and only if nobody did yet', async () => {
    const { watch, streams, latest, connection } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, canceled: true, cancel_reason: 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token' });
    await jest.advanceTimersByTimeAsync(100);
    expect(connection.invalidateToken).toHaveBeenCalledWith('token-1');
    expect(connection.token()).toBe('token-2');
    expect(streams).toHaveLength(2);

    // The stream was opened with the token that is current now: no second invalidation for a stale one.
    latest().respond({ created: true, revision: 5 });
    expect(watch.isUp()).toBe(true);
    watch.close();
  });

  it('does not re-authenticate again when someone else already replaced the token its stream was opened with', async () => {
    const { watch, streams, latest, connection } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    // Another caller on the same connection met the stale token first and re-authenticated.
    connection.invalidateToken('token-1');
    expect(connection.token()).toBe('token-2');
    latest().respond({ created: true, canceled: true, cancel_reason: 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token' });
    await jest.advanceTimersByTimeAsync(100);
    // The watch names the token it used (token-1), which is no longer current: nothing more is dropped.
    expect(connection.invalidateToken).toHaveBeenLastCalledWith('token-1');
    expect(connection.token()).toBe('token-2');
    expect(streams).toHaveLength(2);
    latest().respond({ created: true, revision: 5 });
    expect(watch.isUp()).toBe(true);
    watch.close();
  });

  it('asks for progress while healthy and treats a silent stream (frozen etcd) as broken', async () => {
    const { watch, streams, latest } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, revision: 10 });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(latest().writes.filter((w) => w.progress_request)).toHaveLength(1);
    latest().respond({ watch_id: '-1', revision: 10 });
    const confirmed = watch.confirmedAt;
    expect(confirmed).toBeGreaterThan(0);

    await jest.advanceTimersByTimeAsync(4_100); // no answer any more
    expect(streams[0].cancelled).toBe(true);
    expect(watch.isUp()).toBe(false);
    expect(streams.length).toBeGreaterThanOrEqual(2);
    expect(latest().writes[0].create_request!.start_revision).toBe(11);
    watch.close();
  });

  // RELIABILITY.md finding 3: etcd 3.4 answers a progress request at once with its member's own
  // revision, also while that member (just thawed) is still catching up with the cluster.
  it('does not take an answer from a member behind the cluster as confirmation; ordinary lag of less than one interval is current', async () => {
    let cluster = 10;
    const { watch, latest } = setup(() => cluster);
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, revision: 10 });
    const createdAt = watch.confirmedAt;
    expect(createdAt).toBeGreaterThan(0);

    cluster = 50; // the rest of the cluster moved on (e.g. this member was frozen)
    await jest.advanceTimersByTimeAsync(1_000); // progress request 1: the floor is what the cluster had reached one interval before (nothing known yet)
    latest().respond({ watch_id: '-1', revision: 12 });
    expect(watch.confirmedAt).toBe(Date.now()); // behind by less than an interval: current

    await jest.advanceTimersByTimeAsync(1_000); // progress request 2: floor 50
    latest().respond({ watch_id: '-1', revision: 12 }); // the member still lags
    expect(watch.confirmedAt).toBe(Date.now() - 1_000);
    expect(watch.isUp()).toBe(true); // alive, only not current: no reconnect
    latest().respond({ revision: 50, events: [{ type: 'Delete', kv: kv('/registry/services/a/1', 49, 0) }] as unknown as IWatchResponse['events'] });
    expect(watch.confirmedAt).toBe(Date.now()); // caught up
    watch.close();
  });

  it('after resuming from an older revision, confirms only once the backlog window (one interval) has passed', async () => {
    const { watch, latest } = setup(() => 0);
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, revision: 10 });
    latest().emit('error', new Error('14 UNAVAILABLE'));
    await jest.advanceTimersByTimeAsync(5_000);
    latest().respond({ created: true, revision: 30 });
    latest().respond({ watch_id: '-1', revision: 30 });
    expect(watch.confirmedAt).toBeLessThan(Date.now() - 4_000); // not confirmed by the resumed stream yet
    await jest.advanceTimersByTimeAsync(1_000);
    latest().respond({ watch_id: '-1', revision: 30 });
    expect(watch.confirmedAt).toBe(Date.now());
    watch.close();
  });

  it('resolves revision waiters once the change was delivered (read-your-writes)', async () => {
    const { watch, latest } = setup();
    watch.start();
    await jest.advanceTimersByTimeAsync(0);
    latest().respond({ created: true, revision: 10 });
    const waiting = watch.waitForRevision(12, 1_000);
    latest().respond({ revision: 12, events: [{ type: 'Delete', kv: kv('/registry/services/a/1', 12, 0) }] as unknown as IWatchResponse['events'] });
    await expect(waiting).resolves.toBe(true);
    const never = watch.waitForRevision(99, 1_000);
    await jest.advanceTimersByTimeAsync(1_000);
    await expect(never).resolves.toBe(false);
    watch.close();
  });
});
