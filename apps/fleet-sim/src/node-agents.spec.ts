import { podsPerAgent, scanBatchResults } from './node-agents';
import { PodTable } from './pod-table';

describe('scanBatchResults', () => {
  it('reads every result of a batch answer in request order', () => {
    const body = JSON.stringify({
      results: [
        { service: 'sim-0', id: 'pod-0', result: 'accepted' },
        { service: 'sim-1', id: 'pod-1', result: 'not_found' },
        { service: 'sim-2', id: 'pod-2', result: 'accepted' },
      ],
    });
    const seen: Array<[number, string]> = [];
    expect(scanBatchResults(Buffer.from(body), (k, r) => seen.push([k, r]))).toBe(3);
    expect(seen).toStrictEqual([
      [0, 'accepted'],
      [1, 'not_found'],
      [2, 'accepted'],
    ]);
  });

  it('finds nothing in an answer without results', () => {
    expect(scanBatchResults(Buffer.from('{"error":"bad_request"}'), () => undefined)).toBe(0);
  });
});

describe('podsPerAgent', () => {
  it('spreads the pods over the agents, at most 1000 refs per batch', () => {
    expect(podsPerAgent(100_000, 100)).toBe(1000);
    expect(podsPerAgent(5_000, 5)).toBe(1000);
    expect(podsPerAgent(999, 10)).toBe(100);
    expect(() => podsPerAgent(100_001, 100)).toThrow(/over the limit of 1000/);
  });
});

describe('PodTable', () => {
  it('derives names from the index and finds the index of a key again', () => {
    const t = new PodTable(1_000_000, 100, '/registry/x/');
    expect(t.key(123_456)).toBe('/registry/x/services/sim-56/pod-123456');
    expect(t.indexOfKey(t.key(123_456))).toBe(123_456);
    expect(t.indexOfKey('/registry/x/services/sim-0/pod-1000000')).toBe(-1);
    expect(t.indexOfKey('/registry/y/services/sim-0/pod-1')).toBe(-1);
    expect(t.indexOfKey('/registry/x/gateway/leases/77')).toBe(-1);
  });

  it("keeps a pod's registration in the table, through the views handed to drivers", () => {
    const t = new PodTable(10, 3, '/r/');
    const view = t.pod(4);
    view.registered = true;
    expect(t.registered[4]).toBe(1);
    expect(t.pod(4).registered).toBe(true);
    t.registered[4] = 0;
    expect(view.registered).toBe(false);
  });
});
