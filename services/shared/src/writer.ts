import type { Got } from 'got';
import { int, urlList, type NamedUrl } from './config.js';
import { Database } from './db/database.js';
import { CommitGuard } from './db/write-transaction.js';
import { createDiscovery, type DiscoveryConfig } from './discovery-factory.js';
import type { Discovery } from './discovery.js';
import { InvalidationPublisher } from './invalidation.js';
import type { Logger } from './logger.js';
import { counter, gauge, type Metrics } from './metrics.js';
import type { PolicyStore } from './policy.js';

/** Settings of a service that writes books (order pods, the catalog origin). */
export const writerSchema = {
  /** Static discovery of the fronts, to which writes push invalidations. */
  FRONT_URLS: urlList(),
  SYNC_COMMIT_TIMEOUT_MS: int({ default: 2000, min: 50, max: 60_000 }),
};

export interface Writer {
  /** Commits on the primary at the consistency mode's level (see CommitGuard). */
  guard: CommitGuard;
  /** Pushes invalidations to every front and waits for them. */
  publisher: InvalidationPublisher;
  fronts: Discovery;
  close(): Promise<void>;
}

/**
 * Everything a writer needs beside its primary pool: the commit guard (with its own small control
 * pool to cancel a stuck synchronous commit), the discovery of the fronts and the invalidation
 * publisher. Shared by order pods and the catalog origin so both keep the same promise.
 */
export async function createWriter(opts: {
  config: DiscoveryConfig & {
    SYNC_COMMIT_TIMEOUT_MS: number;
    INTERNAL_TOKEN: string;
    FRONT_URLS: NamedUrl[];
  };
  primaryUrl: string;
  primary: Database;
  podName: string;
  logger: Logger;
  metrics: Metrics;
  policy: PolicyStore;
  http: Got;
}): Promise<Writer> {
  const { config, podName, logger, metrics, policy } = opts;
  const control = new Database('primary', opts.primaryUrl, logger, {
    applicationName: `${podName}-control`,
    max: 2,
  });
  const guard = new CommitGuard({
    primary: opts.primary,
    control,
    policy,
    logger,
    syncTimeoutMs: config.SYNC_COMMIT_TIMEOUT_MS,
    degradedGauge: gauge(
      metrics,
      'bazar_consistency_degraded',
      '1 while strict writes are degraded to local commits',
    ),
    syncTimeouts: counter(
      metrics,
      'bazar_sync_commit_timeouts_total',
      'Commits whose standby confirmation timed out',
    ),
  });
  const fronts = await createDiscovery({
    service: 'front',
    config,
    staticEndpoints: config.FRONT_URLS,
    logger,
    metrics,
  });
  const publisher = new InvalidationPublisher({
    fronts,
    http: opts.http,
    internalToken: () => config.INTERNAL_TOKEN,
    policy,
    logger,
    metrics,
    podName,
  });
  return {
    guard,
    publisher,
    fronts,
    async close() {
      guard.close();
      await fronts.close();
      await control.close();
    },
  };
}
