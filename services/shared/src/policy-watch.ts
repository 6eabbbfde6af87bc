import type { DiscoveryConfig } from './discovery-factory.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { PolicyFileWatch } from './policy-file-watch.js';
import type { PolicyStore } from './policy.js';

export interface PolicyWatch {
  /** True once the custom resource has been read (always true without one). */
  synced(): boolean;
  close(): Promise<void>;
}

/**
 * Keeps `policy` in step with the StorePolicy custom resource named by POLICY_NAME, when running with
 * Kubernetes discovery, or with the spec in the local file POLICY_FILE otherwise (`npm start`). Without
 * either, the policy from the environment stays in force.
 */
export async function startPolicyWatch(opts: {
  config: DiscoveryConfig;
  policy: PolicyStore;
  logger: Logger;
  metrics: Metrics;
}): Promise<PolicyWatch> {
  const { DISCOVERY, POLICY_FILE } = opts.config;
  if (POLICY_FILE && DISCOVERY === 'kubernetes') {
    throw new Error(
      'POLICY_FILE is for static discovery; with Kubernetes the StorePolicy (POLICY_NAME) is the policy',
    );
  }
  if (POLICY_FILE) {
    return new PolicyFileWatch({ file: POLICY_FILE, policy: opts.policy, logger: opts.logger }).start();
  }
  if (DISCOVERY !== 'kubernetes' || !opts.config.POLICY_NAME) {
    return { synced: () => true, close: async () => undefined };
  }
  const { StorePolicyWatch } = await import('./kubernetes/store-policy-watch.js');
  return StorePolicyWatch.start({ ...opts, name: opts.config.POLICY_NAME });
}
