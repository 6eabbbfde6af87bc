// Placeholder until the StorePolicy watch lands (issue 3).
import type { DiscoveryConfig } from '../discovery-factory.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { PolicyStore } from '../policy.js';
import type { PolicyWatch } from '../policy-watch.js';

export class StorePolicyWatch {
  static async start(_opts: {
    config: DiscoveryConfig;
    policy: PolicyStore;
    logger: Logger;
    metrics: Metrics;
    name: string;
  }): Promise<PolicyWatch> {
    throw new Error('POLICY_NAME is not supported in this build');
  }
}
