import { SharedChange, SharedDoc, SharedStamp, SharedStore } from './shared-store';

/**
 * SharedStore in memory with the same compare-and-set rules as RedisSharedStore's Lua scripts, for
 * unit tests of the cache (several "replicas" can share one). `up = false` makes every call reject.
 */
export class MemorySharedStore implements SharedStore {
  up = true;
  readonly docs = new Map<string, SharedDoc & { expiresAt: number }>();
  readonly locks = new Map<string, { token: string; expiresAt: number }>();
  readonly calls: Record<'read' | 'poll' | 'replace' | 'apply' | 'tryLock' | 'unlock', number> = {
    read: 0,
    poll: 0,
    replace: 0,
    apply: 0,
    tryLock: 0,
    unlock: 0,
  };

  constructor(private readonly now: () => number = Date.now) {}

  async read(doc: string): Promise<SharedDoc | undefined> {
    this.enter('read');
    const stored = this.live(doc);
    return stored && { revision: stored.revision, readAt: stored.readAt, fields: { ...stored.fields } };
  }

  async poll(doc: string): Promise<{ stamp: SharedStamp | undefined; locked: boolean }> {
    this.enter('poll');
    const stored = this.live(doc);
    return { stamp: stored && { revision: stored.revision, readAt: stored.readAt }, locked: this.lockHolder(doc) !== undefined };
  }

  async replace(doc: string, value: SharedDoc, ttlMs: number): Promise<void> {
    this.enter('replace');
    const stored = this.live(doc);
    if (stored && stored.revision > value.revision) return;
    if (stored && stored.revision === value.revision) {
      stored.readAt = Math.max(stored.readAt, value.readAt);
      stored.expiresAt = this.now() + ttlMs;
      return;
    }
    this.docs.set(doc, { revision: value.revision, readAt: value.readAt, fields: { ...value.fields }, expiresAt: this.now() + ttlMs });
  }

  async apply(changes: readonly SharedChange[]): Promise<void> {
    this.enter('apply');
    for (const { doc, revision, ops } of changes) {
      const stored = this.live(doc);
      if (!stored || stored.revision >= revision) continue;
      for (const op of ops) {
        if (op.op === 'set') stored.fields[op.field] = op.value;
        else if (op.op === 'del') delete stored.fields[op.field];
        else {
          const next = Number(stored.fields[op.field] ?? 0) + op.by;
          if (next > 0) stored.fields[op.field] = String(next);
          else delete stored.fields[op.field];
        }
      }
      stored.revision = revision;
    }
  }

  async tryLock(doc: string, token: string, ttlMs: number): Promise<boolean> {
    this.enter('tryLock');
    if (this.lockHolder(doc) !== undefined) return false;
    this.locks.set(doc, { token, expiresAt: this.now() + ttlMs });
    return true;
  }

  async unlock(doc: string, token: string): Promise<void> {
    this.enter('unlock');
    if (this.lockHolder(doc) === token) this.locks.delete(doc);
  }

  isUp(): boolean {
    return this.up;
  }

  private enter(call: keyof MemorySharedStore['calls']): void {
    this.calls[call]++;
    if (!this.up) throw new Error('shared store down');
  }

  private live(doc: string): (SharedDoc & { expiresAt: number }) | undefined {
    const stored = this.docs.get(doc);
    if (stored && stored.expiresAt <= this.now()) this.docs.delete(doc);
    return this.docs.get(doc);
  }

  private lockHolder(doc: string): string | undefined {
    const lock = this.locks.get(doc);
    if (lock && lock.expiresAt <= this.now()) this.locks.delete(doc);
    return this.locks.get(doc)?.token;
  }
}
