/**
 * A previous release of the gateway, run for real beside this one (rolling-upgrade tests): its source
 * is taken from git (`git archive <commit>`, nothing in the repository changes) into a temporary
 * directory that borrows this checkout's node_modules, and it runs like startGatewayProcess (ts-node,
 * transpile only: ~5 s to listen, no build).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { GatewayProcess, startGatewayProcess } from './gateway';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');

export interface PreviousRelease {
  commit: string;
  /** Where its source was extracted. */
  root: string;
  /** Starts one replica of it (a real process); stop it with `child.kill()` and await `exited`. */
  start(env: Record<string, string>): Promise<GatewayProcess>;
  /** Removes the extracted source. */
  dispose(): void;
}

/**
 * The gateway as it was at `commit`. Fails with a hint when the commit is not in this clone (a shallow
 * CI checkout: fetch it, e.g. `git fetch --deepen=500`). Its package.json must match this checkout's
 * (the dependencies are borrowed), which is checked.
 */
export async function previousRelease(commit: string): Promise<PreviousRelease> {
  try {
    await run('git', ['cat-file', '-e', `${commit}^{commit}`], { cwd: ROOT });
  } catch {
    throw new Error(`commit ${commit} (the previous release) is not in this clone; fetch more history (git fetch --deepen=500)`);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `registry-gateway-${commit.slice(0, 7)}-`));
  const archive = path.join(root, 'source.tar');
  await run('git', ['archive', '--format=tar', `--output=${archive}`, commit, 'apps', 'libs', 'package.json', 'tsconfig.json'], { cwd: ROOT });
  await run('tar', ['-xf', archive, '-C', root]);
  fs.rmSync(archive);
  const dependencies = (dir: string) => JSON.stringify((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies: unknown }).dependencies);
  if (dependencies(root) !== dependencies(ROOT)) throw new Error(`the dependencies of ${commit} differ from this checkout's: its node_modules cannot be borrowed`);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  return {
    commit,
    root,
    start: (env) => startGatewayProcess(env, root),
    dispose: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
