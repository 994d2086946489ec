import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BackoffPolicy } from '@app/concurrency';

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');

/**
 * Restarts of a worker that exited: growing pauses (100 ms up to 10 s), not a hot loop, for a worker
 * that keeps failing. No jitter: a worker is this process's own, no other replica restarts in step.
 */
export const WORKER_RESTART_BACKOFF: BackoffPolicy = { minMs: 100, maxMs: 10_000, jitter: 0 };

/**
 * Starts the worker whose entry is `fileWithoutExtension` + this file's own extension. Built code
 * (dist/) runs the worker's .js directly. Under ts-node or jest the source is TypeScript, so the worker
 * registers ts-node first (transpile only: a worker's few files compile in well under a second).
 */
export function loadWorker(fileWithoutExtension: string, workerData: unknown): Worker {
  const extension = path.extname(__filename);
  const file = `${fileWithoutExtension}${extension}`;
  if (extension !== '.ts') return new Worker(file, { workerData });
  const bootstrap = [
    `require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } });`,
    // A worker's imports reach @app/* aliases (e.g. @app/registry through etcd-errors).
    `require('tsconfig-paths').register({ baseUrl: ${JSON.stringify(ROOT)}, paths: require(${JSON.stringify(path.join(ROOT, 'tsconfig.json'))}).compilerOptions.paths });`,
    `require(${JSON.stringify(file)});`,
  ].join('\n');
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * Asks `worker` to close (`closeMessage`, the worker ends its streams and exits by itself) and resolves
 * once it exited; a worker that does not exit within `graceMs` is terminated.
 */
export function closeWorker(worker: Worker, closeMessage: unknown, graceMs = 2_000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => void worker.terminate(), graceMs);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.postMessage(closeMessage);
  });
}
