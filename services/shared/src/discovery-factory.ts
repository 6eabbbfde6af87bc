import { oneOf, str, optionalStr, type NamedUrl } from './config.js';
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
  /** The StorePolicy custom resource whose spec is the live runtime policy (empty: none). */
  POLICY_NAME: optionalStr(),
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
  POLICY_NAME: string | undefined;
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
    config: opts.config,
    logger: opts.logger,
    metrics: opts.metrics,
  });
}
