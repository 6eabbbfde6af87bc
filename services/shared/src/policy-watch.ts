import type { DiscoveryConfig } from './discovery-factory.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { PolicyStore } from './policy.js';

export interface PolicyWatch {
  /** True once the custom resource has been read (always true without one). */
  synced(): boolean;
  close(): Promise<void>;
}

/**
 * Keeps `policy` in step with the StorePolicy custom resource named by POLICY_NAME, when running with
 * Kubernetes discovery. Without one, the policy from the environment stays in force.
 */
export async function startPolicyWatch(opts: {
  config: DiscoveryConfig;
  policy: PolicyStore;
  logger: Logger;
  metrics: Metrics;
}): Promise<PolicyWatch> {
  if (opts.config.DISCOVERY !== 'kubernetes' || !opts.config.POLICY_NAME) {
    return { synced: () => true, close: async () => undefined };
  }
  const { StorePolicyWatch } = await import('./kubernetes/store-policy-watch.js');
  return StorePolicyWatch.start({ ...opts, name: opts.config.POLICY_NAME });
}
