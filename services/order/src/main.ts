import { readConfig, oneOf, databaseUrl, urlList, int, ConfigError } from '../../shared/src/config.js';
import { commonSchema } from '../../shared/src/service-config.js';
import { createLogger } from '../../shared/src/logger.js';
import { createMetrics, gauge, counter } from '../../shared/src/metrics.js';
import { PolicyStore } from '../../shared/src/policy.js';
import { Lifecycle, listen, installShutdown, boundUrl } from '../../shared/src/server.js';
import { Database } from '../../shared/src/db/database.js';
import { SchemaGate } from '../../shared/src/db/schema-gate.js';
import { CommitGuard } from '../../shared/src/db/write-transaction.js';
import { InvalidationPublisher } from '../../shared/src/invalidation.js';
import { createHttpClient } from '../../shared/src/http-client.js';
import { createDiscovery, discoverySchema } from '../../shared/src/discovery-factory.js';
import { startPolicyWatch } from '../../shared/src/policy-watch.js';
import { runMain } from '../../shared/src/main-helpers.js';
import { createApp } from './app.js';

export const orderSchema = {
  ...commonSchema,
  ...discoverySchema,
  /** Both roles commit on the primary; only the origin applies migrations. */
  ROLE: oneOf(['origin', 'replica'] as const),
  DATABASE_URL: databaseUrl(),
  /** Static discovery of the fronts, to which purchases push invalidations. */
  FRONT_URLS: urlList(),
  SYNC_COMMIT_TIMEOUT_MS: int({ default: 2000, min: 50, max: 60_000 }),
  DB_POOL_MAX: int({ default: 10, min: 1, max: 200 }),
};

async function main(): Promise<void> {
  const config = readConfig(orderSchema);
  if (!config.DATABASE_URL) throw new ConfigError('DATABASE_URL', 'is required');
  const podName = config.SERVICE_NAME;
  const logger = createLogger({ name: podName, level: config.LOG_LEVEL });
  const metrics = createMetrics({ service: 'order', podName });
  const lifecycle = new Lifecycle();
  const policy = new PolicyStore({
    cacheMaxEntries: 1000,
    cacheTtlMs: 60_000,
    loadBalancing: config.LOAD_BALANCING,
    consistencyMode: config.CONSISTENCY_MODE,
    invalidationTimeoutMs: config.INVALIDATION_TIMEOUT_MS,
  });
  const http = createHttpClient({ timeoutMs: config.UPSTREAM_TIMEOUT_MS });
  const primary = new Database('primary', config.DATABASE_URL, logger, {
    applicationName: podName,
    max: config.DB_POOL_MAX,
  });
  const control = new Database('primary', config.DATABASE_URL, logger, {
    applicationName: `${podName}-control`,
    max: 2,
  });
  const gate = new SchemaGate(primary, logger, config.ROLE === 'origin' ? 'migrate' : 'wait');
  void gate.run();
  const guard = new CommitGuard({
    primary,
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
    http,
    internalToken: () => config.INTERNAL_TOKEN,
    policy,
    logger,
    metrics,
    podName,
  });
  const policyWatch = await startPolicyWatch({ config, policy, logger, metrics });

  const app = createApp({
    podName,
    logger,
    metrics,
    lifecycle,
    policy,
    primary,
    guard,
    publisher,
    purchases: counter(metrics, 'bazar_purchases_total', 'Purchases by result', ['result']),
    readiness: async () => ({
      schema: gate.status(),
      database: await primary.ping(),
      discovery: fronts.synced() && policyWatch.synced() ? 'ok' : 'discovery not synced',
    }),
    details: () => ({
      role: config.ROLE,
      consistency: {
        mode: policy.current.consistencyMode,
        ...(guard.degradedReason ? { degraded: guard.degradedReason } : {}),
      },
    }),
  });
  const server = await listen(app, config.HOST, config.PORT, {
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
  });
  logger.info(
    { url: boundUrl(server), role: config.ROLE, mode: policy.current.consistencyMode },
    'order listening',
  );
  installShutdown({
    logger,
    server,
    lifecycle,
    delayMs: config.SHUTDOWN_DELAY_MS,
    drainTimeoutMs: config.DRAIN_TIMEOUT_MS,
    closers: [
      async () => gate.stop(),
      async () => guard.close(),
      () => policyWatch.close(),
      () => fronts.close(),
      () => control.close(),
      () => primary.close(),
    ],
  });
}

runMain(main);
