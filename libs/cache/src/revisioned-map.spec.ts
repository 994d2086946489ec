import { RevisionedMap } from './revisioned-map';

describe('RevisionedMap', () => {
  it('applies revisions in order and skips revisions it already includes', () => {
    const doc = new RevisionedMap<string>(10, new Map([['a', 'v10']]));
    expect(doc.apply(9, [{ op: 'set', field: 'a', value: 'v9' }])).toBe(false);
    expect(doc.apply(10, [{ op: 'del', field: 'a' }])).toBe(false);
    expect(doc.apply(11, [{ op: 'set', field: 'b', value: 'v11' }])).toBe(true);
    expect(doc.apply(11, [{ op: 'del', field: 'b' }])).toBe(false); // a replay of revision 11
    expect(doc.revision).toBe(11);
    expect(doc.entries()).toEqual([
      ['a', 'v10'],
      ['b', 'v11'],
    ]);
  });

  it('applies all changes of one revision (a transaction) together', () => {
    const doc = new RevisionedMap<string>(1);
    doc.apply(2, [
      { op: 'set', field: 'x', value: '1' },
      { op: 'set', field: 'y', value: '2' },
    ]);
    expect(doc.values()).toEqual(['1', '2']);
  });

  it('removes only the deleted field: a delete never clears the document', () => {
    const doc = new RevisionedMap<string>(1, new Map([['a', '1'], ['b', '2']]));
    doc.apply(2, [{ op: 'del', field: 'a' }]);
    doc.apply(3, [{ op: 'del', field: 'missing' }]);
    expect(doc.values()).toEqual(['2']);
  });

  it('counts with add and drops a counter that reaches zero', () => {
    const counts = new RevisionedMap<number>(1);
    counts.apply(2, [{ op: 'add', field: 's', by: 1 }, { op: 'add', field: 's', by: 1 }]);
    expect(counts.fields.get('s')).toBe(2);
    counts.apply(3, [{ op: 'add', field: 's', by: -2 }]);
    expect(counts.fields.has('s')).toBe(false);
  });

  it('memoises the sorted view until the next change', () => {
    const doc = new RevisionedMap<string>(1, new Map([['b', '2'], ['a', '1']]));
    const first = doc.values();
    expect(doc.values()).toBe(first);
    expect(first).toEqual(['1', '2']);
    doc.apply(2, [{ op: 'set', field: 'c', value: '3' }]);
    expect(doc.values()).not.toBe(first);
    expect(doc.values()).toEqual(['1', '2', '3']);
  });
});
