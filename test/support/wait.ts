/** The one polling helper of the test tree: outcomes are polled for, never timed. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `predicate` every `intervalMs` until it returns true (or a truthy value, which is returned),
 * or throws after `timeoutMs` naming `what`. A predicate that throws counts as "not yet": a frozen or
 * restarting process is expected to fail probes for a while.
 */
export async function waitFor<T>(
  what: string,
  predicate: () => Promise<T | false | undefined> | T | false | undefined,
  timeoutMs = 30_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}
