/** What readiness needs from the lookup cache: its watch, its Redis tier, and what it can answer from memory. */
export interface CacheHealthReport {
  watch: 'up' | 'down';
  l2: 'up' | 'down';
  /** Services with a snapshot in L1 that a lookup can be answered from (stale or not). */
  warmServices: number;
}
