import type { DiscoveryConfig } from '../../shared/src/discovery-factory.js';
import type { Discovery } from '../../shared/src/discovery.js';
import type { Logger } from '../../shared/src/logger.js';
import type { PolicyStore } from '../../shared/src/policy.js';
import type { FrontCache } from './cache.js';

export interface StatusReporter {
  close(): Promise<void>;
}

export interface StatusSource {
  config: DiscoveryConfig;
  logger: Logger;
  policy: PolicyStore;
  cache: FrontCache;
  discoveries: Record<string, Discovery>;
  ready: () => Promise<boolean>;
}

/**
 * With Kubernetes discovery and a StorePolicy resource, the front writes the store's state into that
 * resource's status (so `kubectl get storepolicy` shows it). Elsewhere there is nothing to report to.
 */
export async function startStatusReporter(source: StatusSource): Promise<StatusReporter> {
  if (source.config.DISCOVERY !== 'kubernetes' || !source.config.POLICY_NAME) {
    return { close: async () => undefined };
  }
  const { StorePolicyStatusWriter } = await import('../../shared/src/kubernetes/status-writer.js');
  return StorePolicyStatusWriter.start({ ...source, name: source.config.POLICY_NAME });
}
