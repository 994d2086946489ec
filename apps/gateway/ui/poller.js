/* global document, setTimeout, clearTimeout */
// When the dashboard refreshes.

/**
 * Runs `refresh` now, then again `intervalMs` after each run has finished: runs never overlap, so a
 * slow gateway slows the dashboard down instead of piling up requests. A hidden tab does not poll.
 *
 * Seam for blocking queries (`GET /v1/services/{s}?index=<X-Registry-Index>&wait=30s`): a second
 * source with the same `{ refreshNow, stop }` shape, calling `refresh` whenever a blocking request
 * returns (ApiClient already hands back each answer's `index`), replaces this one in app.js. The
 * /metrics figures keep a timer either way: counters have no index to wait on.
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
