import { EncodedAnswerCache } from './encoded-answers';

describe('EncodedAnswerCache', () => {
  it('encodes once per key and version, and again when any part of the version changes', () => {
    const cache = new EncodedAnswerCache(10, 1_000_000);
    const instances = [{ id: 'a' }];
    let encodes = 0;
    const encode = (value: unknown) => () => (encodes++, JSON.stringify(value));
    const first = cache.get('svc', [instances, 5, false], encode({ instances }));
    expect(cache.get('svc', [instances, 5, false], encode('unused'))).toBe(first);
    expect(encodes).toBe(1);
    expect(first.toString()).toBe('{"instances":[{"id":"a"}]}');

    // A new instances array (the document changed), a new revision, the stale flag: each re-encodes.
    const changed = [{ id: 'a' }, { id: 'b' }];
    expect(cache.get('svc', [changed, 6, false], encode({ instances: changed })).toString()).toContain('"b"');
    expect(cache.get('svc', [changed, 7, false], encode(7)).toString()).toBe('7');
    expect(cache.get('svc', [changed, 7, true], encode(8)).toString()).toBe('8');
    expect(encodes).toBe(4);
    // Another key (the same service with another filter) has its own answer.
    expect(cache.get('svc\n{"zone":"a"}', [changed, 7, true], encode(9)).toString()).toBe('9');
    expect(cache.stats()).toMatchObject({ entries: 2, hits: 1, misses: 5 });
  });

  it('keeps at most maxEntries answers, dropping the oldest', () => {
    const cache = new EncodedAnswerCache(3, 1_000_000);
    const v = [1];
    for (const key of ['a', 'b', 'c', 'd']) cache.get(key, v, () => key);
    expect(cache.stats().entries).toBe(3);
    let encoded = 0;
    cache.get('a', v, () => (encoded++, 'a'));
    cache.get('d', v, () => (encoded++, 'd'));
    expect(encoded).toBe(1);
  });

  it('keeps at most maxBytes, and never keeps an answer over a quarter of them', () => {
    const cache = new EncodedAnswerCache(100, 400);
    for (let i = 0; i < 10; i++) cache.get(`k${i}`, [1], () => 'x'.repeat(100));
    expect(cache.stats()).toMatchObject({ entries: 4, bytes: 400 });
    const big = cache.get('big', [1], () => 'y'.repeat(101));
    expect(big.length).toBe(101);
    expect(cache.stats()).toMatchObject({ entries: 4, bytes: 400 });
    // Re-encoding a kept key replaces its bytes rather than adding to them.
    cache.get('k9', [2], () => 'z');
    expect(cache.stats()).toMatchObject({ entries: 4, bytes: 301 });
  });
});
