/**
 * When strict writes were degraded (docs/guarantees.md G2, "while writes are degraded"): a store's
 * writers say so in /readyz (`consistency.degraded`) from the moment a commit's standby confirmation
 * timed out until a synchronous standby streams again. The checker is told these intervals, the way
 * Jepsen records a nemesis, and does not hold reads that overlap one to strict's read-after-read rule.
 */
import type { Interval } from './check.js';
import { now } from './workload.js';

export interface WriterEndpoint {
  name: string;
  url: string;
}

const SAMPLE_MS = 100;

/**
 * Samples every writer's /readyz until stop(); returns the degraded intervals on the history's clock.
 * Each starts `syncTimeoutMs` + one sample before the first sample that saw a degradation (the commit
 * that timed out had been waiting that long, already visible on the primary) and ends at the first
 * sample that saw none again (or at stop()).
 */
export function watchDegradation(
  writers: readonly WriterEndpoint[],
  syncTimeoutMs: number,
): { intervals: Interval[]; stop: () => Promise<Interval[]> } {
  const intervals: Interval[] = [];
  let running = true;
  let open: Interval | undefined;
  const sample = async (w: WriterEndpoint): Promise<boolean> => {
    try {
      const res = await fetch(`${w.url}/readyz`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { consistency?: { degraded?: unknown } };
      return body.consistency?.degraded !== undefined;
    } catch {
      return false; // a writer that is down commits nothing
    }
  };
  const loop = (async () => {
    while (running) {
      const t = now();
      const degraded = (await Promise.all(writers.map(sample))).some(Boolean);
      if (degraded && !open) {
        open = { from: t - syncTimeoutMs - SAMPLE_MS, to: Number.POSITIVE_INFINITY };
        intervals.push(open);
      } else if (!degraded && open) {
        open.to = now();
        open = undefined;
      }
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
    if (open) open.to = now();
  })();
  return {
    intervals,
    stop: async () => {
      running = false;
      await loop;
      return intervals;
    },
  };
}
