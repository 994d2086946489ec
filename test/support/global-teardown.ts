/**
 * Jest globalTeardown: stop the shared etcd and Redis and delete their data, unless
 * KEEP_TEST_STACK=1 (then the data dirs under .local/test/ stay for post-mortems).
 * Even if this never runs (jest killed), @app/stack kills its children when the process exits.
 * It also arms the exit guard: jest must exit on its own, and a leak fails the run (exit-guard.ts).
 */
import * as fs from 'node:fs';
import { armExitGuard } from './exit-guard';
import { STACK_FILE, StackCoordinates } from './stack';
import './global-setup'; // for the globalThis declaration

export default async function globalTeardown(): Promise<void> {
  armExitGuard();
  const handles = globalThis.__REGISTRY_TEST_STACK__;
  globalThis.__REGISTRY_TEST_STACK__ = undefined;
  if (!handles) return;
  const keep = process.env.KEEP_TEST_STACK === '1';
  await Promise.all([
    keep ? handles.etcd.stop() : handles.etcd.dispose(),
    keep ? handles.redis.stop() : handles.redis.dispose(),
  ]);
  // Only if it still describes our stack: a concurrent jest run may have written its own since.
  try {
    const published = JSON.parse(fs.readFileSync(STACK_FILE, 'utf8')) as StackCoordinates;
    if (published.etcd.endpoint === handles.etcd.endpoint) fs.rmSync(STACK_FILE, { force: true });
  } catch {
    /* already gone */
  }
}
