/** Progress bars on stderr (cli-progress prints nothing when stderr is not a terminal). */
import { SingleBar } from 'cli-progress';

export function progressBar(label: string, unit: string): SingleBar {
  return new SingleBar({
    format: `${label.padEnd(22)} |{bar}| {value}/{total} ${unit} {detail}`,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    fps: 5,
    stream: process.stderr,
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function sleepUntil(at: number): Promise<void> {
  const delay = at - Date.now();
  return delay > 0 ? sleep(delay) : Promise.resolve();
}
