import fc from 'fast-check';
import { fromRegistryName, toRegistryName } from './foreign-names';
import { isValidName } from './names';

describe('foreign names', () => {
  it('maps names with colons, spaces and underscores to key-safe names and back', () => {
    for (const foreign of ['host-1:ORDERS:8080', 'my_service', 'a b/c', 'café-ünï', 'UPPER.case-1']) {
      const name = toRegistryName(foreign)!;
      expect(isValidName(name)).toBe(true);
      expect(fromRegistryName(name)).toBe(foreign);
    }
    expect(toRegistryName('host-1:ORDERS:8080')).toBe('host-1_3AORDERS_3A8080');
    expect(toRegistryName('my_service')).toBe('my_5Fservice');
  });

  it('leaves plain names as they are', () => {
    expect(toRegistryName('orders.v2-eu')).toBe('orders.v2-eu');
    expect(fromRegistryName('orders.v2-eu')).toBe('orders.v2-eu');
  });

  it('refuses names that cannot become a key segment', () => {
    expect(toRegistryName('')).toBeUndefined();
    expect(toRegistryName(':leading')).toBeUndefined();
    expect(toRegistryName('../etc')).toBeUndefined();
    expect(toRegistryName('x'.repeat(129))).toBeUndefined();
    expect(toRegistryName('/'.repeat(43))).toBeUndefined();
  });

  it('round-trips every string it accepts, and never yields a name with a slash', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (foreign) => {
        const name = toRegistryName(foreign);
        if (name === undefined) return;
        expect(name).not.toContain('/');
        expect(fromRegistryName(name)).toBe(foreign);
      }),
    );
  });
});
