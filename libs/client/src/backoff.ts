/**
 * The SDK's one back-off: the pause after the `failures`-th failure in a row (1 = the first) doubles
 * from `minMs` up to `maxMs`, and half of it is random, so that clients which saw a gateway fail do not
 * all come back in the same instant. The gateway's own `Backoff` (libs/concurrency) is the same formula
 * with jitter 0.5; the SDK is published alone and imports nothing from the repository, hence this copy.
 */
export function backoffMs(failures: number, minMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 20));
  return ceiling / 2 + (random() * ceiling) / 2;
}
