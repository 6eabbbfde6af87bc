import { EventEmitter } from 'node:events';
import { DiscoveryV1Api, type V1EndpointSlice } from '@kubernetes/client-node';
import type { Discovery, Endpoint } from '../discovery.js';
import type { DiscoveryConfig, LogicalService } from '../discovery-factory.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { BoundedListWatch, BoundedWatch } from './bounded-watch.js';
import {
  abortable,
  connect,
  INITIAL_SYNC_WAIT_MS,
  logConnection,
  watchTimings,
  type KubeConnection,
  type WatchTimings,
} from './client.js';
import { endpointsFromSlices, sameEndpoints, type EndpointSelection } from './endpoints.js';
import { kubeMetrics } from './kube-metrics.js';
import { ResilientInformer, type InformerSource } from './resilient-informer.js';

/** The label the EndpointSlice controller puts on every slice of a Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * List + watch of one Service's EndpointSlices in one namespace (one informer per Service), every
 * request bounded (the list is aborted on its signal, the watch is a BoundedWatch).
 */
export function sliceSource(
  conn: KubeConnection,
  kubernetesService: string,
): InformerSource<V1EndpointSlice> {
  const api = conn.kubeConfig.makeApiClient(DiscoveryV1Api);
  const labelSelector = `${SERVICE_NAME_LABEL}=${kubernetesService}`;
  const path = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(conn.namespace)}/endpointslices`;
  return {
    list: (signal) =>
      api.listNamespacedEndpointSlice({ namespace: conn.namespace, labelSelector }, abortable(signal)),
    create: (list, hooks) =>
      new BoundedListWatch<V1EndpointSlice>(
        path,
        new BoundedWatch(conn.kubeConfig, hooks.bounds, hooks.onAnswer),
        list,
        { labelSelector },
      ),
  };
}

export interface EndpointSliceDiscoveryOptions {
  service: LogicalService;
  kubernetesService: string;
  portName: string;
  /** Ready endpoints (default), or every one with an address (see EndpointSelection). */
  selection?: EndpointSelection;
  logger: Logger;
  metrics: Metrics;
  timings: WatchTimings;
  source: InformerSource<V1EndpointSlice>;
}

/**
 * Discovery from the EndpointSlices of a Kubernetes Service: the ready (or every) endpoints of its slices,
 * in a stable order, announced with `change` only when that set changes. While the API is
 * unreachable the last known set stays in use.
 */
export class EndpointSliceDiscovery
  extends EventEmitter<{ change: [readonly Endpoint[]] }>
  implements Discovery
{
  readonly service: string;
  readonly #informer: ResilientInformer<V1EndpointSlice>;
  #endpoints: readonly Endpoint[] = Object.freeze([]);

  static async start(opts: {
    service: LogicalService;
    kubernetesService: string;
    /** The EndpointSlice port to use (default: the config's DISCOVERY_PORT_NAME). */
    portName?: string;
    selection?: EndpointSelection;
    config: DiscoveryConfig;
    logger: Logger;
    metrics: Metrics;
  }): Promise<Discovery> {
    const conn = connect(opts.config);
    logConnection(opts.logger, conn, `discovery of ${opts.service}`);
    const discovery = new EndpointSliceDiscovery({
      service: opts.service,
      kubernetesService: opts.kubernetesService,
      portName: opts.portName ?? opts.config.DISCOVERY_PORT_NAME,
      selection: opts.selection ?? 'ready',
      logger: opts.logger,
      metrics: opts.metrics,
      timings: watchTimings(opts.config),
      source: sliceSource(conn, opts.kubernetesService),
    });
    await discovery.begin(INITIAL_SYNC_WAIT_MS);
    return discovery;
  }

  constructor(private readonly opts: EndpointSliceDiscoveryOptions) {
    super();
    this.service = opts.service;
    const metrics = kubeMetrics(opts.metrics);
    this.#informer = new ResilientInformer<V1EndpointSlice>({
      watchName: `endpointslices/${opts.kubernetesService}`,
      create: opts.source.create,
      list: opts.source.list,
      logger: opts.logger,
      metrics,
      ...opts.timings,
    });
    this.#informer.on('change', (slices) => this.#update(slices));
    metrics.endpoints.set({ target: opts.service, kubernetes_service: opts.kubernetesService }, 0);
  }

  /**
   * Starts watching and waits (bounded) for the first list, so the service starts with endpoints when
   * the API is healthy, and starts anyway (not ready) when it is not.
   */
  async begin(waitMs: number): Promise<void> {
    this.#informer.start();
    if (!(await this.#informer.waitForSync(waitMs))) {
      this.opts.logger.warn(
        { service: this.service, kubernetesService: this.opts.kubernetesService, waitMs },
        'EndpointSlices not listed yet; readiness stays false until they are',
      );
    }
  }

  endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  synced(): boolean {
    return this.#informer.synced();
  }

  async close(): Promise<void> {
    await this.#informer.close();
  }

  #update(slices: readonly V1EndpointSlice[]): void {
    const next = endpointsFromSlices(slices, this.opts.portName, this.opts.selection);
    if (sameEndpoints(next, this.#endpoints)) return;
    this.#endpoints = Object.freeze(next);
    kubeMetrics(this.opts.metrics).endpoints.set(
      { target: this.service, kubernetes_service: this.opts.kubernetesService },
      next.length,
    );
    this.opts.logger.info(
      {
        service: this.service,
        kubernetesService: this.opts.kubernetesService,
        endpoints: next.map((e) => e.name),
      },
      'endpoints changed',
    );
    this.emit('change', this.#endpoints);
  }
}
