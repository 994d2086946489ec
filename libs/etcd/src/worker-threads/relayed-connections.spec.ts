import { GRPCUnavailableError } from 'etcd3';
import { EtcdConnection } from '../etcd-connection';
import { isEtcdUnavailable } from '../etcd-errors';
import { serveTokenRequest, TokenAnswer, TokenRelay, TokenRequest } from './relayed-connections';

/** A worker's TokenRelay wired to serveTokenRequest over fake ports (messages delivered at once). */
function setup(tokenOf: (i: number) => Promise<string | undefined>) {
  const invalidated: Array<[number, string]> = [];
  let asked = 0;
  const connections = [0, 1].map(
    (i) => ({ currentToken: () => (asked++, tokenOf(i)), invalidateToken: (t: string) => invalidated.push([i, t]) }) as unknown as EtcdConnection,
  );
  const toWorker = (answer: TokenAnswer) => relay.answer(structuredClone(answer));
  const relay: TokenRelay = new TokenRelay({ postMessage: (message: TokenRequest) => serveTokenRequest(connections, structuredClone(message), toWorker) });
  return { relay, invalidated, asked: () => asked };
}

describe('TokenRelay / serveTokenRequest', () => {
  it("hands a worker connection the token of the pooled connection it mirrors, and drops only that connection's stale token", async () => {
    const { relay, invalidated } = setup(async (i) => `token-${i}`);
    expect(await relay.source(1).token()).toBe('token-1');
    expect(await relay.source(0).token()).toBe('token-0');
    relay.source(1).invalidate('token-1');
    expect(invalidated).toEqual([[1, 'token-1']]);
  });

  it('asks the HTTP thread once for many calls, and again only after a call was refused with the token', async () => {
    let generation = 1;
    const { relay, invalidated, asked } = setup(async () => `token-g${generation}`);
    const source = relay.source(0);
    const tokens = await Promise.all(Array.from({ length: 100 }, () => source.token()));
    expect(new Set(tokens)).toEqual(new Set(['token-g1']));
    expect(await source.token()).toBe('token-g1');
    expect(asked()).toBe(1);
    generation = 2; // etcd restarted: the HTTP thread re-authenticates when asked again
    source.invalidate('token-g1');
    expect(invalidated).toEqual([[0, 'token-g1']]);
    expect(await source.token()).toBe('token-g2');
    expect(asked()).toBe(2);
  });

  it('keeps "etcd unreachable" typed across the thread, so a grant that could not get a token is a retryable 503', async () => {
    const { relay } = setup(() => Promise.reject(new GRPCUnavailableError('etcd unreachable: No connection established')));
    const err = await relay.source(0).token().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GRPCUnavailableError);
    expect(isEtcdUnavailable(err)).toBe(true);
  });

  it('ignores messages that are not about tokens', () => {
    const { relay } = setup(async () => 't');
    expect(relay.answer({ t: 'grant' })).toBe(false);
    expect(serveTokenRequest([], { t: 'granted' }, () => undefined)).toBe(false);
  });
});
