/**
 * Resolve answers encoded once per content version and query, reused until the content moves.
 * JSON.stringify of a service's instances was most of a warm resolve's CPU; between two changes of a
 * service every lookup with the same filter gets the same bytes.
 *
 * A version is a short tuple compared element by element with `===`: for a service view, the
 * frozen instances array of the read model's view (replaced, never mutated, on every change), its
 * revision and its stale flag, i.e. everything the answer is built from.
 *
 * Bounded: at most `maxEntries` answers and `maxBytes` of encoded bytes, the oldest dropped first;
 * an answer larger than a quarter of `maxBytes` is encoded per request and not kept, so one huge
 * service cannot evict every other answer.
 */
export class EncodedAnswerCache {
  private readonly entries = new Map<string, { version: readonly unknown[]; body: Buffer }>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  /** The bytes for `key` at `version`: kept ones if the version is the same, else `encode()`d now. */
  get(key: string, version: readonly unknown[], encode: () => string): Buffer {
    const kept = this.entries.get(key);
    if (kept && sameVersion(kept.version, version)) {
      this.hits++;
      return kept.body;
    }
    this.misses++;
    const body = Buffer.from(encode());
    if (kept) this.drop(key, kept.body);
    if (body.length <= this.maxBytes / 4) {
      this.entries.set(key, { version, body });
      this.bytes += body.length;
      this.evict();
    }
    return body;
  }

  stats(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses };
  }

  private evict(): void {
    // A Map iterates in insertion order: the first key is the answer encoded longest ago.
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldest, entry] = this.entries.entries().next().value as [string, { body: Buffer }];
      this.drop(oldest, entry.body);
    }
  }

  private drop(key: string, body: Buffer): void {
    this.entries.delete(key);
    this.bytes -= body.length;
  }
}

function sameVersion(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
