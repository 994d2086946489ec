// What the services view shows, from API answers. Pure functions: no DOM, no fetch.

export const STATUSES = ['UP', 'DRAINING', 'DOWN'];

/** Instances per status, e.g. `{ UP: 3, DRAINING: 1, DOWN: 0 }`. */
export function statusCounts(instances) {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const instance of instances) counts[instance.status] = (counts[instance.status] ?? 0) + 1;
  return counts;
}

/**
 * The services whose instances are read in this refresh. Each service is one request, so with many
 * services the dashboard reads `size` per refresh, in turn, instead of all at once. The selected
 * service is read every time, even when it is no longer listed (that is how its removal shows).
 * Returns the names and the cursor for the next refresh.
 */
export function detailBatch(names, cursor, size, selected) {
  let batch = [...names];
  let next = 0;
  if (names.length > size) {
    const start = cursor % names.length;
    batch = Array.from({ length: size }, (_, i) => names[(start + i) % names.length]);
    next = (start + size) % names.length;
  }
  if (selected !== undefined && !batch.includes(selected)) batch.push(selected);
  return { names: batch, cursor: next };
}
