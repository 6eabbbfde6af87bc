// Placeholder until the Kubernetes discovery lands (issue 3); the static source is used meanwhile.
import type { Discovery } from '../discovery.js';
import type { DiscoveryConfig, LogicalService } from '../discovery-factory.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

export class EndpointSliceDiscovery {
  static async start(_opts: {
    service: LogicalService;
    kubernetesService: string;
    config: DiscoveryConfig;
    logger: Logger;
    metrics: Metrics;
  }): Promise<Discovery> {
    throw new Error('DISCOVERY=kubernetes is not available in this build');
  }
}
