/**
 * A leak fails the run instead of hanging it. Armed from a jest globalTeardown, i.e. after every test
 * file ran: an unref'd timer never keeps the process alive itself, so a clean run exits at once and
 * the timer never fires. If something still holds the event loop (a socket, a child process, a
 * client's reconnect timer), the timer fires, names what is open and exits non-zero. jest's own
 * "did not exit one second after the test run" notice stays a warning and would wait forever.
 * Find the file that leaks with `npx jest --runInBand --detectOpenHandles <file>`.
 */

const GRACE_MS = Number(process.env.TEST_EXIT_GRACE_MS ?? 15_000);

interface HandleLike {
  constructor?: { name?: string };
  remoteAddress?: string;
  remotePort?: number;
  localPort?: number;
  pid?: number;
  spawnargs?: string[];
  address?: () => unknown;
}

function describeHandle(h: HandleLike): string {
  const name = h.constructor?.name ?? 'handle';
  if (h.spawnargs) return `${name} pid ${h.pid}: ${h.spawnargs.join(' ').slice(0, 160)}`;
  if (h.remotePort !== undefined) return `${name} 127.0.0.1:${h.localPort} -> ${h.remoteAddress}:${h.remotePort}`;
  if (typeof h.address === 'function') return `${name} bound to ${JSON.stringify(h.address())}`;
  return name;
}

export function armExitGuard(): void {
  setTimeout(() => {
    const active = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the only API that describes handles
    const handles = ((process as any)._getActiveHandles() as HandleLike[])
      .filter((h) => h !== process.stdout && h !== process.stderr && h !== process.stdin)
      .map(describeHandle);
    process.stderr.write(
      `\nLEAK: jest has not exited ${GRACE_MS} ms after the last test file: something is still open.\n` +
        `  active resources: ${active.join(', ') || '(none)'}\n` +
        handles.map((d) => `  - ${d}\n`).join('') +
        '  Find it with `npx jest --runInBand --detectOpenHandles <file>`, close it at its source. Exiting with 1.\n',
    );
    process.exit(1);
  }, GRACE_MS).unref();
}

/** For projects without a teardown of their own (the unit project). */
export default async function exitGuardTeardown(): Promise<void> {
  armExitGuard();
}
