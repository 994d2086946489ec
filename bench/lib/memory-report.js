/**
 * Preloaded into a gateway (`BENCH_GATEWAY_NODE_ARGS="--expose-gc -r bench/lib/memory-report.js"`):
 * on SIGUSR2 the HTTP thread prints `[memory-report] {json}` to stderr with process.memoryUsage()
 * as it is, then again after two full collections (what is live), and, when MEMORY_REPORT_DIR is
 * set, writes a heap snapshot there (bench/experiments/heap-by-constructor.ts reads it).
 * Plain JavaScript: the built gateway runs without ts-node.
 */
'use strict';
const path = require('node:path');
const v8 = require('node:v8');
const { isMainThread, threadId } = require('node:worker_threads');
const { setInterval } = require('node:timers');

const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;
const usage = () => Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mb(v)]));

// Worker threads inherit the preload (execArgv): each reports its own isolate's heap every 30 s
// (the lease worker's heap is part of the RSS, not of the HTTP thread's figures).
if (!isMainThread) {
  setInterval(() => {
    const heap = v8.getHeapStatistics();
    process.stderr.write(`[memory-report worker] ${JSON.stringify({ threadId, heapUsed: mb(heap.used_heap_size), heapTotal: mb(heap.total_heap_size), external: mb(heap.external_memory) })}\n`);
  }, 30_000).unref();
} else {
  process.on('SIGUSR2', () => {
    const asIs = usage();
    if (typeof globalThis.gc === 'function') {
      globalThis.gc();
      globalThis.gc();
    }
    const live = usage();
    const dir = process.env.MEMORY_REPORT_DIR;
    const snapshot = dir ? v8.writeHeapSnapshot(path.join(dir, `gateway-${process.pid}-${Date.now()}.heapsnapshot`)) : undefined;
    process.stderr.write(`[memory-report] ${JSON.stringify({ pid: process.pid, asIs, live, snapshot })}\n`);
  });
}
