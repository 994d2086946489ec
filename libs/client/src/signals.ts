/**
 * The opt-in SIGTERM/SIGINT hook. One process-wide listener per signal closes every registration
 * that asked for it, then re-raises the signal so the process ends the way it would have without us
 * (exit status 128 + signal number). If the application has its own listener for that signal, it owns
 * the shutdown: we deregister and leave the exit to it.
 */
export type ShutdownSignal = 'SIGTERM' | 'SIGINT';

interface Closable {
  close(): Promise<void>;
}

const members = new Map<ShutdownSignal, Set<Closable>>();
const handlers = new Map<ShutdownSignal, () => void>();

export function closeOnSignals(target: Closable, signals: readonly ShutdownSignal[]): () => void {
  for (const signal of signals) {
    let set = members.get(signal);
    if (!set) members.set(signal, (set = new Set()));
    set.add(target);
    if (!handlers.has(signal)) {
      const handler = (): void => void onSignal(signal, handler);
      handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }
  return () => {
    for (const signal of signals) {
      const set = members.get(signal);
      set?.delete(target);
      if (set && set.size === 0) uninstall(signal);
    }
  };
}

function uninstall(signal: ShutdownSignal): void {
  const handler = handlers.get(signal);
  if (handler) process.removeListener(signal, handler);
  handlers.delete(signal);
  members.delete(signal);
}

async function onSignal(signal: ShutdownSignal, handler: () => void): Promise<void> {
  const appOwnsShutdown = process.listeners(signal).some((l) => l !== handler);
  const targets = [...(members.get(signal) ?? [])];
  uninstall(signal);
  // A failed deregistration must not keep the process alive: etcd expires the lease after the TTL.
  await Promise.allSettled(targets.map((t) => t.close()));
  if (!appOwnsShutdown) process.kill(process.pid, signal);
}
