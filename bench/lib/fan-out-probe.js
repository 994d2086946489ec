/**
 * Preloaded into the replica that holds the blocking queries (`node -r bench/lib/fan-out-probe.js
 * .../main.js`, bench/blocking-queries.ts --probe): times one fan-out on the server side, so the
 * client's latencies can be split into "etcd + watch", "the replica writes the answers" and "the
 * client reads them". Plain JavaScript: the built gateway runs without ts-node.
 *
 * For each read-model change that wakes held queries it records, as epoch ms (performance.timeOrigin
 * + now, comparable with the client's clock on the same machine):
 *   appliedAt   RegistryReadModel.applyEvents() entered (the watch event reached the read model)
 *   wokenAt     applyEvents() returned (every waiter of the service settled)
 *   ends        each blocking answer's res.end() (the bytes handed to the socket), first and last
 *   finishes    each answer's 'finish' (the socket took the last byte), last
 * and prints one `[fan-out-probe] {json}` line to stderr 1 s after the burst's last answer.
 */
'use strict';
const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { isMainThread } = require('node:worker_threads');
const { setTimeout, clearTimeout } = require('node:timers');

// Worker threads inherit the preload (execArgv): only the HTTP thread answers blocking queries.
if (isMainThread) probe();

function probe() {
  const epoch = () => performance.timeOrigin + performance.now();
  // main.js is dist/apps/gateway/apps/gateway/src/main.js; the libs are beside apps/ (tsc output).
  const readModelFile = path.join(path.dirname(process.argv[1]), '..', '..', '..', 'libs', 'cache', 'src', 'registry-read-model.js');
  const { RegistryReadModel } = require(readModelFile);

  let burst;
  let flushTimer;

  const applyEvents = RegistryReadModel.prototype.applyEvents;
  RegistryReadModel.prototype.applyEvents = function probedApplyEvents(events) {
    const appliedAt = epoch();
    const result = applyEvents.call(this, events);
    const wokenAt = epoch();
    // A change that woke nobody (the seed registration) is replaced by the next one.
    if (!burst || burst.answers === 0) burst = { appliedAt, wokenAt, events: events.length, answers: 0, firstEnd: 0, lastEnd: 0, lastFinish: 0 };
    return result;
  };

  const end = http.ServerResponse.prototype.end;
  http.ServerResponse.prototype.end = function probedEnd(...args) {
    const req = this.req;
    if (burst && req && req.method === 'GET' && req.url.includes('index=')) {
      const current = burst;
      const at = epoch();
      current.answers++;
      current.firstEnd ||= at;
      current.lastEnd = at;
      this.once('finish', () => {
        current.lastFinish = Math.max(current.lastFinish, epoch());
        clearTimeout(flushTimer);
        flushTimer = setTimeout(flush, 1000);
      });
    }
    return end.apply(this, args);
  };

  function flush() {
    if (!burst) return;
    const b = burst;
    burst = undefined;
    process.stderr.write(`[fan-out-probe] ${JSON.stringify(b)}\n`);
  }
}
