import { Gauge, type Counter, type Registry } from 'prom-client';
import { counter, gauge, type Metrics } from '../metrics.js';

/** Anything whose sync state is worth a gauge (every ResilientInformer registers itself). */
export interface SyncSource {
  readonly watchName: string;
  synced(): boolean;
  /** Milliseconds since the API server last answered this watch. */
  silenceMs?(): number;
}

export interface KubeMetrics {
  /**
   * Restarts of a watch, by watch and reason: error (a failed request), timeout (a request past its
   * deadline), watchdog (neither an answer nor a failure for the watchdog's bound).
   */
  watchRestarts: Counter<'watch' | 'reason'>;
  /** Endpoints in use from EndpointSlices (ready ones; every one with an address for the fronts), by logical target. */
  endpoints: Gauge<'target' | 'kubernetes_service'>;
  track(source: SyncSource): () => void;
}

/**
 * The Kubernetes metrics of one registry. A process runs several watches (the front: catalog, order
 * and its StorePolicy) that share these series, and a registry refuses a second metric of the same
 * name, so they are created once per registry.
 */
const byRegistry = new WeakMap<Registry, KubeMetrics>();

export function kubeMetrics(metrics: Metrics): KubeMetrics {
  const existing = byRegistry.get(metrics.registry);
  if (existing) return existing;
  const sources = new Set<SyncSource>();
  new Gauge({
    name: 'bazar_kubernetes_watch_synced',
    help: '1 while a Kubernetes watch is synced (listed, and the API not lost for longer than the grace period)',
    labelNames: ['watch'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const source of sources) this.set({ watch: source.watchName }, source.synced() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'bazar_kubernetes_watch_silence_seconds',
    help: 'Seconds since the API server last answered a Kubernetes watch (a list, a watch response, an event or bookmark, the end of a watch); a healthy watch stays below its timeout (10 s by default)',
    labelNames: ['watch'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const source of sources) {
        if (source.silenceMs) this.set({ watch: source.watchName }, Math.round(source.silenceMs()) / 1000);
      }
    },
  });
  const created: KubeMetrics = {
    watchRestarts: counter(
      metrics,
      'bazar_kubernetes_watch_restarts_total',
      'Kubernetes watch restarts, by watch and reason (error, timeout, watchdog)',
      ['watch', 'reason'],
    ),
    endpoints: gauge(
      metrics,
      'bazar_kubernetes_endpoints',
      'Endpoints in use from EndpointSlices, by target service (ready ones; for the fronts, every one with an address)',
      ['target', 'kubernetes_service'],
    ),
    track(source) {
      sources.add(source);
      return () => sources.delete(source);
    },
  };
  byRegistry.set(metrics.registry, created);
  return created;
}
