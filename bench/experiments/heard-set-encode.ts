/**
 * What one heard-set pass costs the HTTP thread: hashing and encoding the keys heard during the pass
 * (HeardSetPublisher.pass). Run: node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/heard-set-encode.ts
 */
import { encodeHeardSet } from '../../libs/etcd/src/liveness/heard-sets';
for (const n of [10_000, 66_700, 200_000]) {
  const keys = Array.from({ length: n }, (_, i) => `/registry/services/service-${i % 500}/pod-${i}-abcdef`);
  const times: number[] = [];
  for (let r = 0; r < 9; r++) {
    const t = process.hrtime.bigint();
    encodeHeardSet(0, 1, keys);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  console.log(`${n} keys: median ${times[4].toFixed(2)} ms per pass (${((times[4] * 1e6) / n).toFixed(0)} ns/key)`);
}
