import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';

/**
 * One registry per process. Every service shares the HTTP and upstream metrics; services add their own
 * with the registry they are handed.
 */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  upstreamDuration: Histogram<'target' | 'outcome'>;
  upstreamErrors: Counter<'target' | 'reason'>;
}

export function createMetrics(opts: { service: string; podName: string; defaultMetrics?: boolean }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service, pod: opts.podName });
  // The event-loop lag monitor samples on a timer: every 10 ms by default, which alone keeps an idle
  // service at a few ms of CPU a second; 100 ms still shows any lag that matters to a request.
  if (opts.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'bazar_http_request_duration_seconds',
      help: 'Latency of HTTP requests served, by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'bazar_upstream_request_duration_seconds',
      help: 'Latency of calls to other Bazar services, by the service called (target) and outcome',
      // `target`, not `service`: every series already has `service`, the caller's own (a default label).
      labelNames: ['target', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'bazar_upstream_errors_total',
      help: 'Failed calls to other Bazar services, by the service called (target) and reason',
      labelNames: ['target', 'reason'],
      registers: [registry],
    }),
  };
}

export function gauge<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Gauge<L> {
  return new Gauge({ name, help, labelNames, registers: [metrics.registry] });
}

export function counter<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [metrics.registry] });
}

export function histogram<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  buckets: number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
): Histogram<L> {
  return new Histogram({ name, help, labelNames, buckets, registers: [metrics.registry] });
}

/** A metric whose value is read from its source at scrape time (nothing to update on hot paths). */
export function observed(
  metrics: Metrics,
  type: 'counter' | 'gauge',
  name: string,
  help: string,
  read: () => number,
): void {
  if (type === 'gauge') {
    new Gauge({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.set(read());
      },
    });
  } else {
    new Counter({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }
}

/** The prom-client internals boundObserver relies on (checked at run time; see there). */
interface HistogramInternals {
  upperBounds?: unknown;
  hashMap?: Record<
    string,
    { labels: Record<string, unknown>; bucketValues: Record<number, number>; sum: number; count: number }
  >;
  collect?: () => unknown;
  zero(labels: Record<string, string>): void;
}

/**
 * An observer for one label set of a histogram, cheap enough for the hottest paths. prom-client's
 * `observe(labels, v)` validates and hashes the labels on every call (a few µs in a busy server, several
 * per cent of a cache hit); here an observation is a bucket search and three additions, and pending
 * counts are added to the histogram's own series when it is collected (every scrape), so /metrics shows
 * what `observe` would have shown. Falls back to plain `observe` if prom-client's internals differ.
 */
export function boundObserver<T extends string>(
  histogram: Histogram<T>,
  labels: LabelValues<T>,
): (seconds: number) => void {
  const h = histogram as unknown as HistogramInternals;
  const bounds = h.upperBounds;
  if (
    !Array.isArray(bounds) ||
    !bounds.every((b) => typeof b === 'number') ||
    typeof h.hashMap !== 'object' ||
    typeof h.zero !== 'function'
  ) {
    return (seconds) => histogram.observe(labels, seconds);
  }
  const upper = bounds as number[];
  const want = Object.entries(labels as Record<string, string | number>).map(
    ([k, v]) => [k, String(v)] as const,
  );
  const pending = new Float64Array(upper.length);
  let pendingSum = 0;
  let pendingCount = 0;
  const sameLabels = (other: Record<string, unknown>) =>
    Object.keys(other).length === want.length && want.every(([k, v]) => String(other[k]) === v);
  const flush = () => {
    if (pendingCount === 0) return;
    let entry = Object.values(h.hashMap ?? {}).find((e) => sameLabels(e.labels));
    if (!entry) {
      h.zero(Object.fromEntries(want));
      entry = Object.values(h.hashMap ?? {}).find((e) => sameLabels(e.labels));
      if (!entry) return;
    }
    for (let i = 0; i < upper.length; i++) {
      if (pending[i] !== 0)
        entry.bucketValues[upper[i] as number] =
          (entry.bucketValues[upper[i] as number] ?? 0) + (pending[i] as number);
    }
    entry.sum += pendingSum;
    entry.count += pendingCount;
    pending.fill(0);
    pendingSum = 0;
    pendingCount = 0;
  };
  const previous = h.collect;
  h.collect = function (this: unknown) {
    flush();
    return previous?.call(this);
  };
  let series: unknown = h.hashMap;
  return (seconds) => {
    if (h.hashMap !== series) {
      // reset() replaced the series: what was pending belongs to the discarded ones.
      series = h.hashMap;
      pending.fill(0);
      pendingSum = 0;
      pendingCount = 0;
    }
    for (let i = 0; i < upper.length; i++) {
      if (seconds <= (upper[i] as number)) {
        pending[i] = (pending[i] as number) + 1;
        break;
      }
    }
    pendingSum += seconds;
    pendingCount++;
  };
}
