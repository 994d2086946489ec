import { SharedParts } from './shared-parts';

describe('SharedParts', () => {
  it('answers one frozen copy of equal parts', () => {
    const parts = new SharedParts();
    const a = parts.object({ version: '1.0.0' });
    const b = parts.object({ version: '1.0.0' });
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(parts.object(['sim'])).toBe(parts.object(['sim']));
    expect(parts.object({ version: '2' })).not.toBe(a);
    expect(parts.string(undefined)).toBeUndefined();
  });

  it('stays bounded when parts never repeat', () => {
    const parts = new SharedParts(10);
    for (let i = 0; i < 100; i++) parts.object({ pod: `p${i}` });
    const first = parts.object({ pod: 'again' });
    expect(parts.object({ pod: 'again' })).toBe(first);
    expect((parts as unknown as { objects: Map<string, object> }).objects.size).toBeLessThanOrEqual(10);
  });
});
