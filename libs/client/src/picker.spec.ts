import { Picker } from './picker';
import { Instance } from './types';

const instance = (id: string, weight = 100, zone?: string): Instance => ({ id, address: '10.0.0.1', port: 80, metadata: {}, tags: [], zone, weight, status: 'UP' });
const ids = (picker: Picker, instances: Instance[], n: number) => Array.from({ length: n }, () => picker.pick(instances)?.id);

describe('Picker', () => {
  it('round-robin cycles through the instances in order', () => {
    expect(ids(new Picker(), [instance('a'), instance('b'), instance('c')], 7)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('returns undefined for no instances', () => {
    expect(new Picker({ strategy: 'weighted' }).pick([])).toBeUndefined();
  });

  it('weighted gives every instance exactly its share of each round, interleaved rather than in bursts', () => {
    const instances = [instance('a', 5), instance('b', 1), instance('c', 1)];
    const round = ids(new Picker({ strategy: 'weighted' }), instances, 7);
    expect(round).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    const many = ids(new Picker({ strategy: 'weighted' }), instances, 700);
    expect(many.filter((id) => id === 'a')).toHaveLength(500);
    expect(many.filter((id) => id === 'b')).toHaveLength(100);
  });

  it('weighted never picks weight 0 while others have weight, and shares equally when all are 0', () => {
    expect(new Set(ids(new Picker({ strategy: 'weighted' }), [instance('a', 0), instance('b', 3)], 10))).toEqual(new Set(['b']));
    expect(ids(new Picker({ strategy: 'weighted' }), [instance('a', 0), instance('b', 0)], 4).sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  it('weighted forgets instances that left and adapts to new ones', () => {
    const picker = new Picker({ strategy: 'weighted' });
    ids(picker, [instance('a', 1), instance('b', 1)], 3);
    expect(new Set(ids(picker, [instance('c', 1), instance('d', 1)], 4))).toEqual(new Set(['c', 'd']));
  });

  it('zone prefers the local zone and falls back to every instance when it has none', () => {
    const picker = new Picker({ strategy: 'zone', zone: 'z1' });
    const instances = [instance('a', 100, 'z2'), instance('b', 100, 'z1'), instance('c', 100, 'z1')];
    expect(ids(picker, instances, 4)).toEqual(['b', 'c', 'b', 'c']);
    expect(new Set(ids(picker, [instance('a', 100, 'z2'), instance('d', 100)], 4))).toEqual(new Set(['a', 'd']));
  });

  it('zone preference combines with weights, and the zone strategy insists on a zone', () => {
    const picker = new Picker({ strategy: 'weighted', zone: 'z1' });
    expect(new Set(ids(picker, [instance('a', 900, 'z2'), instance('b', 1, 'z1')], 5))).toEqual(new Set(['b']));
    expect(() => new Picker({ strategy: 'zone' })).toThrow(TypeError);
  });
});
