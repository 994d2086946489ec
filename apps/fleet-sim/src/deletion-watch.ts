/**
 * When each instance key of the fleet disappears from etcd: one watch on `<prefix>services/` from
 * now on, the time its delete event arrived, per pod index. Cheaper for etcd than polling (a watch
 * sends only the events; a poll of 10,000 keys every second would itself be the Range calls the
 * hold is meant to show at 0), and exact to the arrival of the event.
 */
import { Etcd3, Watcher } from 'etcd3';
import { EtcdTarget, etcdClient } from './etcd-probe';
import { PodTable } from './pod-table';

export class DeletionWatch {
  /** Pod index -> when its delete event arrived (ms); the last one if it was deleted twice. */
  readonly goneAt = new Map<number, number>();
  /** Disconnections of the watch (each may have lost events until it resumed). */
  disconnects = 0;

  private constructor(
    private readonly client: Etcd3,
    private readonly watcher: Watcher,
  ) {}

  static async start(target: EtcdTarget, table: PodTable): Promise<DeletionWatch> {
    const client = etcdClient(target);
    const watcher = await client.watch().prefix(`${table.prefix}services/`).create();
    const watch = new DeletionWatch(client, watcher);
    watcher.on('delete', (kv) => {
      const i = table.indexOfKey(kv.key.toString());
      if (i >= 0) watch.goneAt.set(i, Date.now());
    });
    watcher.on('disconnected', () => watch.disconnects++);
    return watch;
  }

  async close(): Promise<void> {
    await this.watcher.cancel().catch(() => undefined);
    this.client.close();
  }
}
