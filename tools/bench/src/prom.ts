/** Reads Prometheus /metrics text: one series' value summed over label sets, or one histogram. */

export interface Histogram {
  /** Upper bounds (seconds) → cumulative counts, ascending, +Inf last. */
  buckets: Array<[number, number]>;
  count: number;
  sum: number;
}

function labelsMatch(labels: string, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`));
}

export function parseHistogram(text: string, name: string, want: Record<string, string> = {}): Histogram {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)\{([^}]*)\}\s+(\S+)$/.exec(line) ?? /^(\w+)()\s+(\S+)$/.exec(line);
    if (!m || !labelsMatch(m[2] as string, want)) continue;
    const value = Number(m[3]);
    if (m[1] === `${name}_bucket`) {
      const le = /le="([^"]+)"/.exec(m[2] as string)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    } else if (m[1] === `${name}_count`) count += value;
    else if (m[1] === `${name}_sum`) sum += value;
  }
  return { buckets: [...buckets].sort((a, b) => a[0] - b[0]), count, sum };
}

/** `after - before`: what was observed between two scrapes. */
export function diff(after: Histogram, before: Histogram): Histogram {
  const prev = new Map(before.buckets);
  return {
    buckets: after.buckets.map(([le, c]) => [le, c - (prev.get(le) ?? 0)] as [number, number]),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/** Quantile by linear interpolation inside the bucket (as PromQL's histogram_quantile does). */
export function quantile(h: Histogram, q: number): number {
  if (h.count <= 0) return NaN;
  const rank = q * h.count;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, cum] of h.buckets) {
    if (cum >= rank) {
      if (bound === Infinity) return prevBound;
      const inBucket = cum - prevCount;
      return inBucket <= 0 ? bound : prevBound + ((bound - prevBound) * (rank - prevCount)) / inBucket;
    }
    prevBound = bound;
    prevCount = cum;
  }
  return prevBound;
}

/** Sum of the samples of `name` whose labels include `labels`. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line.trim());
    if (!m || m[1] !== name) continue;
    const present: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      present[l[1]!] = l[2]!;
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
