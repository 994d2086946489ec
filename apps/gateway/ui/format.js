// Text for numbers, ratios and ages. Pure functions: no DOM.

export const MISSING = '—';

/** "42 s", "5 min", "3 h 12 min", "4 d 2 h"; MISSING for an unknown or future time. */
export function formatAge(ms) {
  if (!Number.isFinite(ms) || ms < 0) return MISSING;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** Age of an ISO timestamp at `nowMs`; MISSING when the timestamp is absent or unreadable. */
export function ageOf(iso, nowMs) {
  const at = typeof iso === 'string' && iso !== '' ? Date.parse(iso) : NaN;
  return Number.isNaN(at) ? MISSING : formatAge(Math.max(0, nowMs - at));
}

export function formatCount(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : MISSING;
}

/** Rates below 10/s keep one decimal: a few heartbeats a second must not read as "0". */
export function formatRate(n) {
  if (!Number.isFinite(n)) return MISSING;
  return n < 10 ? (Math.round(n * 10) / 10).toFixed(1) : Math.round(n).toLocaleString('en-US');
}

export function formatRatio(r) {
  return Number.isFinite(r) ? `${(Math.floor(r * 1000) / 10).toFixed(1)} %` : MISSING;
}
