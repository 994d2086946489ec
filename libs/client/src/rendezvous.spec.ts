import { rendezvousOrder } from './rendezvous';

const gateways = ['http://gw-1:8080', 'http://gw-2:8080', 'http://gw-3:8080'];
const keys = Array.from({ length: 3000 }, (_, i) => `svc-${i % 7}/pod-${i}`);

describe('rendezvousOrder', () => {
  it('is a deterministic permutation, whatever order the URLs are configured in', () => {
    for (const key of keys.slice(0, 50)) {
      const order = rendezvousOrder(key, gateways);
      expect([...order].sort()).toEqual(gateways);
      expect(rendezvousOrder(key, [...gateways].reverse())).toEqual(order);
    }
  });

  it('spreads preferred gateways evenly over instances', () => {
    const counts = new Map<string, number>();
    for (const key of keys) counts.set(rendezvousOrder(key, gateways)[0], (counts.get(rendezvousOrder(key, gateways)[0]) ?? 0) + 1);
    for (const g of gateways) expect(counts.get(g)).toBeGreaterThan(keys.length * 0.28);
  });

  it('removing a gateway moves only the instances that preferred it, each to its own second choice', () => {
    let moved = 0;
    for (const key of keys) {
      const before = rendezvousOrder(key, gateways);
      const after = rendezvousOrder(key, gateways.filter((g) => g !== 'http://gw-2:8080'));
      if (before[0] === 'http://gw-2:8080') {
        moved++;
        expect(after[0]).toBe(before[1]);
      } else {
        expect(after[0]).toBe(before[0]);
      }
    }
    expect(moved).toBeGreaterThan(0);
  });
});
