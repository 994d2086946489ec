/**
 * One frozen copy of the small parts that repeat across the instances of a fleet (tags, metadata,
 * zone, status): a cached service holds one decoded object per instance, and without this every one
 * of them carries its own `['sim']`, `{ version: '1.0.0' }` and `'zone-1'` (~150 bytes per instance,
 * bench/results/memory.md). Bounded: once `capacity` distinct parts are known it starts over, so
 * parts that never repeat (a pod name in metadata) cost a bounded table, not a second copy of each.
 *
 * Shared parts are frozen: nothing downstream may change one instance's metadata through another's.
 */
export class SharedParts {
  private readonly strings = new Map<string, string>();
  private readonly objects = new Map<string, object>();

  constructor(private readonly capacity = 4_096) {}

  string<T extends string | undefined>(value: T): T {
    if (value === undefined) return value;
    const known = this.strings.get(value);
    if (known !== undefined) return known as T;
    if (this.strings.size >= this.capacity) this.strings.clear();
    this.strings.set(value, value);
    return value;
  }

  /** `value` must be JSON data (what an instance record holds). */
  object<T extends object>(value: T): T {
    const json = JSON.stringify(value);
    const known = this.objects.get(json);
    if (known !== undefined) return known as T;
    if (this.objects.size >= this.capacity) this.objects.clear();
    this.objects.set(json, Object.freeze(value));
    return value;
  }
}
