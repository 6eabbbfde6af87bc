import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process. Every service shares the HTTP and upstream metrics; services add their own
 * with the registry they are handed.
 */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  upstreamDuration: Histogram<'service' | 'outcome'>;
  upstreamErrors: Counter<'service' | 'reason'>;
}

export function createMetrics(opts: { service: string; podName: string; defaultMetrics?: boolean }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service, pod: opts.podName });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
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
      help: 'Latency of calls to other Bazar services, by target service and outcome',
      labelNames: ['service', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'bazar_upstream_errors_total',
      help: 'Failed calls to other Bazar services, by target service and reason',
      labelNames: ['service', 'reason'],
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
