import { CustomObjectsApi, type KubernetesListObject } from '@kubernetes/client-node';
import type { DiscoveryConfig } from '../discovery-factory.js';
import type { Logger } from '../logger.js';
import { gauge, type Metrics } from '../metrics.js';
import type { Gauge } from 'prom-client';
import type { PolicyStore } from '../policy.js';
import type { PolicyWatch } from '../policy-watch.js';
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
import { kubeMetrics } from './kube-metrics.js';
import { ResilientInformer, type InformerSource } from './resilient-informer.js';
import {
  applyTrackerFor,
  specToPolicy,
  STORE_POLICY,
  type PolicyApplyTracker,
  type StorePolicyObject,
} from './store-policy.js';

/**
 * List + watch of one StorePolicy, selected by name (RBAC grants list/watch on the namespace's policies),
 * every request bounded.
 */
export function storePolicySource(conn: KubeConnection, name: string): InformerSource<StorePolicyObject> {
  const api = conn.kubeConfig.makeApiClient(CustomObjectsApi);
  const fieldSelector = `metadata.name=${name}`;
  const { group, version, plural } = STORE_POLICY;
  const path = `/apis/${group}/${version}/namespaces/${encodeURIComponent(conn.namespace)}/${plural}`;
  return {
    list: async (signal) =>
      asList(
        await api.listNamespacedCustomObject(
          { group, version, namespace: conn.namespace, plural, fieldSelector },
          abortable(signal),
        ),
      ),
    create: (list, hooks) =>
      new BoundedListWatch<StorePolicyObject>(
        path,
        new BoundedWatch(conn.kubeConfig, hooks.bounds, hooks.onAnswer),
        list,
        { fieldSelector },
      ),
  };
}

/** The custom-objects client returns untyped JSON; check the one thing the informer relies on. */
function asList(value: unknown): KubernetesListObject<StorePolicyObject> {
  const items = (value as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) throw new Error('StorePolicy list answer has no items array');
  return value as KubernetesListObject<StorePolicyObject>;
}

export interface StorePolicyWatchOptions {
  name: string;
  namespace: string;
  policy: PolicyStore;
  logger: Logger;
  metrics: Metrics;
  timings: WatchTimings;
  source: InformerSource<StorePolicyObject>;
}

/**
 * Applies the named StorePolicy's spec to the PolicyStore, live. A refused spec (invalid values) or a
 * deleted resource leaves the last good policy in force; both are logged and recorded for the status
 * writer. Only a new generation (a spec change) is applied: status writes, which the fronts make every
 * few seconds, do not bump it.
 */
export class StorePolicyWatch implements PolicyWatch {
  readonly #informer: ResilientInformer<StorePolicyObject>;
  readonly #tracker: PolicyApplyTracker;
  #reportedAbsent = false;
  /** metadata.generation of the StorePolicy last read, and of the last one applied (not refused). */
  readonly #observedGeneration: Gauge;
  readonly #appliedGeneration: Gauge;

  static async start(opts: {
    config: DiscoveryConfig;
    policy: PolicyStore;
    logger: Logger;
    metrics: Metrics;
    name: string;
  }): Promise<PolicyWatch> {
    const conn = connect(opts.config);
    logConnection(opts.logger, conn, `StorePolicy ${opts.name}`);
    const watch = new StorePolicyWatch({
      name: opts.name,
      namespace: conn.namespace,
      policy: opts.policy,
      logger: opts.logger,
      metrics: opts.metrics,
      timings: watchTimings(opts.config),
      source: storePolicySource(conn, opts.name),
    });
    await watch.begin(INITIAL_SYNC_WAIT_MS);
    return watch;
  }

  constructor(private readonly opts: StorePolicyWatchOptions) {
    this.#tracker = applyTrackerFor(opts.policy);
    this.#observedGeneration = gauge(
      opts.metrics,
      'bazar_store_policy_observed_generation',
      'metadata.generation of the StorePolicy this pod last read',
    );
    this.#appliedGeneration = gauge(
      opts.metrics,
      'bazar_store_policy_applied_generation',
      'metadata.generation of the StorePolicy in force here (a refused spec leaves it behind)',
    );
    this.#informer = new ResilientInformer<StorePolicyObject>({
      watchName: `storepolicies/${opts.name}`,
      create: opts.source.create,
      list: opts.source.list,
      logger: opts.logger,
      metrics: kubeMetrics(opts.metrics),
      ...opts.timings,
    });
    this.#informer.on('change', (objects) => this.#onChange(objects));
  }

  async begin(waitMs: number): Promise<void> {
    this.#informer.start();
    if (!(await this.#informer.waitForSync(waitMs))) {
      this.opts.logger.warn(
        { name: this.opts.name, waitMs },
        'StorePolicy not read yet; the policy from the environment is in force',
      );
    }
  }

  synced(): boolean {
    return this.#informer.synced();
  }

  async close(): Promise<void> {
    await this.#informer.close();
  }

  #onChange(objects: readonly StorePolicyObject[]): void {
    const resource = objects.find((o) => o.metadata?.name === this.opts.name);
    if (resource) this.#apply(resource);
    else this.#absent();
  }

  #absent(): void {
    const { logger, name, namespace, policy } = this.opts;
    const wasPresent = this.#tracker.state.present;
    if (wasPresent) {
      logger.warn(
        { name, namespace, inForce: policy.current },
        'StorePolicy deleted; the last good policy stays in force',
      );
    } else if (!this.#reportedAbsent) {
      logger.warn(
        { name, namespace, inForce: policy.current },
        'StorePolicy not found; the current policy stays in force',
      );
    }
    if (wasPresent || !this.#reportedAbsent) this.#tracker.set({ present: false, problems: [] });
    this.#reportedAbsent = true;
  }

  #apply(resource: StorePolicyObject): void {
    const { logger, name, namespace, policy } = this.opts;
    const uid = resource.metadata?.uid;
    const generation = resource.metadata?.generation;
    const seen = this.#tracker.state;
    if (seen.present && seen.uid === uid && seen.observedGeneration === generation) return;
    const parsed = specToPolicy(resource.spec);
    const result =
      parsed.problems.length > 0
        ? { applied: false, problems: parsed.problems }
        : policy.update(parsed.change, `StorePolicy ${namespace}/${name} generation ${generation ?? '?'}`);
    if (generation !== undefined) {
      this.#observedGeneration.set(generation);
      if (result.applied) this.#appliedGeneration.set(generation);
    }
    if (result.applied) {
      logger.info({ name, namespace, generation, policy: policy.current }, 'StorePolicy applied');
    } else {
      logger.error(
        { name, namespace, generation, problems: result.problems, inForce: policy.current },
        'StorePolicy refused; the last good policy stays in force',
      );
    }
    this.#tracker.set({
      present: true,
      ...(uid !== undefined ? { uid } : {}),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      problems: result.applied ? [] : result.problems,
    });
  }
}
