/* global document, setTimeout, clearTimeout, AbortController */
// When the dashboard refreshes.

/**
 * Runs `refresh` now, then again `intervalMs` after each run has finished: runs never overlap, so a
 * slow gateway slows the dashboard down instead of piling up requests. A hidden tab does not poll.
 * The /metrics figures use this: counters have no index to wait on. The registry uses
 * startBlockingQuery below.
 */
export function startPolling(refresh, intervalMs) {
  let timer;
  let running = false;
  let again = false;
  let stopped = false;

  const run = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (running) {
      // Asked for while a run is under way (a new token, a click): run once more right after it.
      again = true;
      return;
    }
    running = true;
    try {
      await refresh();
    } catch (err) {
      // A bug in one refresh must not stop the dashboard for good.
      console.error('dashboard refresh failed', err);
    } finally {
      running = false;
      if (again) {
        again = false;
        void run();
      } else if (!stopped && !document.hidden) {
        timer = setTimeout(run, intervalMs);
      }
    }
  };
  const onVisibility = () => {
    if (!document.hidden) void run();
  };
  document.addEventListener('visibilitychange', onVisibility);
  void run();

  return {
    refreshNow: () => void run(),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}

/**
 * Keeps one API resource current with blocking queries: `read({ index, wait, signal })` is sent with
 * the X-Registry-Index of the previous answer, the gateway holds it until the content changes (or
 * `wait` runs out), and the next one is sent as soon as `onAnswer` has shown the answer. One request
 * in flight per query, so the dashboard holds at most one per resource it shows.
 *
 * It falls back to reading every `intervalMs` where blocking cannot work: a gateway that answers
 * without an index or turns `index`/`wait` down with a 400 (older than blocking queries). Failures
 * (429 beyond MAX_BLOCKING_QUERIES, 5xx, no answer) are retried after Retry-After or a growing pause,
 * so that a struggling gateway is not hammered by every open tab. A hidden tab aborts its held
 * request and sends nothing until it is shown again.
 *
 * `onError(err)` reports each failure; when it returns true (a refused token) the query pauses until
 * `restart()`. `restart()` forgets the index and reads at once (a new token: the old answers say
 * nothing about what it may read).
 */
export function startBlockingQuery(read, onAnswer, onError, { intervalMs, wait = '30s', maxBackoffMs = 30_000 }) {
  let index;
  /** false once this gateway turned blocking down: plain reads every `intervalMs` from then on. */
  let blocking = true;
  let paused = false;
  let stopped = false;
  let failures = 0;
  /** Bumped by every stop, restart and hide: an older loop and its answers are dropped. */
  let generation = 0;
  let controller;
  let wake;

  const sleep = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = async (gen) => {
    while (!stopped && !paused && gen === generation && !document.hidden) {
      const held = blocking && index !== undefined;
      controller = new AbortController();
      const sentAt = Date.now();
      let pauseMs = 0;
      try {
        const answer = await read(held ? { index, wait, signal: controller.signal } : { signal: controller.signal });
        if (gen !== generation) return;
        const previous = index;
        index = /^\d+$/.test(answer.index ?? '') ? answer.index : undefined;
        await onAnswer(answer);
        if (gen !== generation) return;
        failures = 0;
        if (!blocking || index === undefined) pauseMs = intervalMs;
        // Not held and nothing new (a replica restarting, a proxy cutting the wait short): do not spin.
        else if (held && index === previous && Date.now() - sentAt < 1_000) pauseMs = intervalMs;
      } catch (err) {
        if (gen !== generation) return; // aborted on purpose: stop(), restart(), tab hidden
        if (held && err.status === 400) {
          // An older gateway validates its query strictly: it cannot block, so read it on a timer.
          blocking = false;
          continue;
        }
        if (onError(err) === true) {
          paused = true;
          return;
        }
        failures += 1;
        pauseMs = err.retryAfterMs ?? Math.min(intervalMs * 2 ** (failures - 1), maxBackoffMs);
      }
      if (pauseMs > 0) await sleep(pauseMs);
    }
  };

  const interrupt = () => {
    generation += 1;
    controller?.abort();
    wake?.();
  };
  const onVisibility = () => {
    if (document.hidden) interrupt();
    else if (!stopped) {
      interrupt();
      // The index is kept: a query behind the gateway's index is answered at once.
      void loop(generation);
    }
  };
  document.addEventListener('visibilitychange', onVisibility);
  void loop(generation);

  return {
    /** 'blocking' while changes arrive by held requests, 'polling' on a gateway without them. */
    get mode() {
      return blocking ? 'blocking' : 'polling';
    },
    /** Aborts the held request and sends nothing until restart(): a forgotten token. */
    pause: () => {
      interrupt();
      paused = true;
    },
    restart: () => {
      if (stopped) return;
      interrupt();
      index = undefined;
      paused = false;
      failures = 0;
      void loop(generation);
    },
    stop: () => {
      stopped = true;
      interrupt();
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
