import { int, oneOf, str, optionalStr, type NamedUrl } from './config.js';
import { StaticDiscovery, type Discovery } from './discovery.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** Which Kubernetes Service's EndpointSlices stand for each logical service. */
export const discoverySchema = {
  DISCOVERY: oneOf(['static', 'kubernetes'] as const, { default: 'static' }),
  /** The namespace to watch; in a pod, the downward API's metadata.namespace. */
  POD_NAMESPACE: optionalStr(),
  /** Outside a pod: the kubeconfig to use (default: ~/.kube/config or KUBECONFIG). */
  KUBECONFIG: optionalStr(),
  FRONT_SERVICE: str({ default: 'bazar-front' }),
  CATALOG_SERVICE: str({ default: 'bazar-catalog' }),
  CATALOG_ORIGIN_SERVICE: str({ default: 'bazar-catalog-origin' }),
  ORDER_SERVICE: str({ default: 'bazar-order' }),
  /** The name of the port, in the EndpointSlices, that serves HTTP. */
  DISCOVERY_PORT_NAME: str({ default: 'http' }),
  /**
   * The port, in the fronts' EndpointSlices, that serves their /internal/* (writers push invalidations
   * there), when the fronts serve it on a port of its own (their INTERNAL_PORT). Default:
   * DISCOVERY_PORT_NAME.
   */
  FRONT_INTERNAL_PORT_NAME: optionalStr(),
  /** The StorePolicy custom resource whose spec is the live runtime policy (empty: none). */
  POLICY_NAME: optionalStr(),
  /** Static discovery: a JSON file holding a StorePolicy spec, followed live (policy-file-watch.ts). */
  POLICY_FILE: optionalStr(),
  /**
   * The watchdog: a watch whose API server has neither answered nor failed for this long is restarted
   * (at most 30 s whatever is set: bounded-watch.ts; watches end every 10 s and bookmark, so a healthy
   * quiet one is heard from well within it).
   */
  KUBE_WATCH_IDLE_RESTART_MS: int({ default: 30_000, min: 1_000, max: 86_400_000 }),
  /** Ceiling of the exponential backoff between watch restarts after errors. */
  KUBE_WATCH_BACKOFF_MAX_MS: int({ default: 10_000, min: 100, max: 600_000 }),
  /** How long the API may be unreachable before discovery reports not synced (readiness goes false). */
  KUBE_SYNC_GRACE_MS: int({ default: 60_000, min: 0, max: 3_600_000 }),
  /** How often the front writes the StorePolicy status (also written on every policy change). */
  KUBE_STATUS_INTERVAL_MS: int({ default: 5_000, min: 200, max: 600_000 }),
};

export type DiscoveryConfig = {
  DISCOVERY: 'static' | 'kubernetes';
  POD_NAMESPACE: string | undefined;
  KUBECONFIG: string | undefined;
  FRONT_SERVICE: string;
  CATALOG_SERVICE: string;
  CATALOG_ORIGIN_SERVICE: string;
  ORDER_SERVICE: string;
  DISCOVERY_PORT_NAME: string;
  FRONT_INTERNAL_PORT_NAME?: string | undefined;
  POLICY_NAME: string | undefined;
  POLICY_FILE?: string | undefined;
  KUBE_WATCH_IDLE_RESTART_MS: number;
  KUBE_WATCH_BACKOFF_MAX_MS: number;
  KUBE_SYNC_GRACE_MS: number;
  KUBE_STATUS_INTERVAL_MS: number;
};

export type LogicalService = 'front' | 'catalog' | 'catalog-origin' | 'order';

export function kubernetesServiceName(config: DiscoveryConfig, service: LogicalService): string {
  switch (service) {
    case 'front':
      return config.FRONT_SERVICE;
    case 'catalog':
      return config.CATALOG_SERVICE;
    case 'catalog-origin':
      return config.CATALOG_ORIGIN_SERVICE;
    case 'order':
      return config.ORDER_SERVICE;
  }
}

/**
 * The one place that picks a discovery source: a static list (laptop, CI) or EndpointSlices watched
 * through the Kubernetes API. The Kubernetes client is only loaded when it is used.
 */
export async function createDiscovery(opts: {
  service: LogicalService;
  config: DiscoveryConfig;
  staticEndpoints: NamedUrl[];
  logger: Logger;
  metrics: Metrics;
}): Promise<Discovery> {
  if (opts.config.DISCOVERY === 'static') return new StaticDiscovery(opts.service, opts.staticEndpoints);
  const { EndpointSliceDiscovery } = await import('./kubernetes/endpoint-slice-discovery.js');
  return EndpointSliceDiscovery.start({
    service: opts.service,
    kubernetesService: kubernetesServiceName(opts.config, opts.service),
    // Fronts are only ever discovered by writers, for their /internal/invalidate: every front pod
    // with an address, Ready or not yet, or terminating (it may still answer from its cache).
    portName:
      (opts.service === 'front' ? opts.config.FRONT_INTERNAL_PORT_NAME : undefined) ??
      opts.config.DISCOVERY_PORT_NAME,
    selection: opts.service === 'front' ? 'every' : 'ready',
    config: opts.config,
    logger: opts.logger,
    metrics: opts.metrics,
  });
}
