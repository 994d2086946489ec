/**
 * Durations as Consul takes them: Go's time.ParseDuration syntax (`10s`, `120000ms`, `1m30s`, `1.5h`),
 * which is also what Go clients send (`fmt.Sprint(30*time.Second)` is `30s`, a minute is `1m0s`).
 */
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds, or undefined when `text` is not a Go duration (negative durations are refused too). */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '' || text.length > 64) return undefined;
  let ms = 0;
  PART.lastIndex = text.startsWith('+') ? 1 : 0;
  while (PART.lastIndex < text.length) {
    const match = PART.exec(text);
    if (!match) return undefined;
    ms += Number(match[1]) * UNIT_MS[match[2]];
  }
  return Number.isFinite(ms) ? ms : undefined;
}
