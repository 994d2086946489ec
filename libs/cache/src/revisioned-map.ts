/** One change to one field of a cached document. */
export type FieldOp<V> =
  | { op: 'set'; field: string; value: V }
  | { op: 'del'; field: string }
  /** Counters only (V = number): a field that drops to 0 disappears. */
  | { op: 'add'; field: string; by: number };

/**
 * Fields derived from etcd at one revision: a service snapshot (instance id -> instance) or the
 * services list (service -> instance count). It changes only by whole etcd revisions newer than its
 * own, so replays (a resumed watch, events buffered during a reload) are harmless, and a delete only
 * ever removes its own field: nothing clears the document.
 */
export class RevisionedMap<V> {
  private sorted: ReadonlyArray<readonly [string, V]> | undefined;
  private sortedValues: readonly V[] | undefined;

  constructor(
    public revision: number,
    readonly fields: Map<string, V> = new Map(),
  ) {}

  get size(): number {
    return this.fields.size;
  }

  /**
   * Applies the changes of ONE etcd revision. A revision at or below ours is already included (a
   * document read at revision R holds every change up to R), so it is skipped; returns whether it applied.
   */
  apply(revision: number, ops: readonly FieldOp<V>[]): boolean {
    if (revision <= this.revision) return false;
    for (const op of ops) {
      if (op.op === 'set') this.fields.set(op.field, op.value);
      else if (op.op === 'del') this.fields.delete(op.field);
      else {
        const next = ((this.fields.get(op.field) as number | undefined) ?? 0) + op.by;
        if (next > 0) this.fields.set(op.field, next as V);
        else this.fields.delete(op.field);
      }
    }
    this.revision = revision;
    this.sorted = undefined;
    this.sortedValues = undefined;
    return true;
  }

  /** Fields in key order, memoised until the next change: lookups read this on every request. */
  entries(): ReadonlyArray<readonly [string, V]> {
    this.sorted ??= [...this.fields.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return this.sorted;
  }

  /**
   * Values in key order, memoised like entries() but not built from it: a service document is only
   * ever read this way, and a memoised [key, value] pair per instance costs ~64 bytes (6 MB per 100k
   * cached instances, bench/results/memory.md).
   */
  values(): readonly V[] {
    if (!this.sortedValues) {
      const keys = [...this.fields.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.sortedValues = keys.map((key) => this.fields.get(key)!);
    }
    return this.sortedValues;
  }
}
