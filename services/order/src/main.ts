import { readConfig, oneOf, databaseUrl, int, bool, ConfigError } from '../../shared/src/config.js';
import { commonSchema, policyFromConfig, registerPolicyInfo } from '../../shared/src/service-config.js';
import { createLogger } from '../../shared/src/logger.js';
import { startTracing } from '../../shared/src/tracing.js';
import { createMetrics, counter } from '../../shared/src/metrics.js';
import { Lifecycle, listen, installShutdown, boundUrl } from '../../shared/src/server.js';
import { Database } from '../../shared/src/db/database.js';
import { SchemaGate } from '../../shared/src/db/schema-gate.js';
import { createWriter, writerSchema } from '../../shared/src/writer.js';
import { createHttpClient } from '../../shared/src/http-client.js';
import { discoverySchema } from '../../shared/src/discovery-factory.js';
import { startPolicyWatch } from '../../shared/src/policy-watch.js';
import { runMain } from '../../shared/src/main-helpers.js';
import { createApp } from './app.js';

export const orderSchema = {
  ...commonSchema,
  ...discoverySchema,
  ...writerSchema,
  /** Both roles commit on the primary; only the origin applies migrations. */
  ROLE: oneOf(['origin', 'replica'] as const),
  DATABASE_URL: databaseUrl(),
  /** Optional hot standby: order lookups read it first and keep working while the primary is down. */
  DATABASE_REPLICA_URL: databaseUrl(),
  DB_POOL_MAX: int({ default: 10, min: 1, max: 200 }),
  /** Enables /internal/test-hooks for the fault tests (a crash after COMMIT). Never in production. */
  TEST_HOOKS: bool({ default: false }),
};

async function main(): Promise<void> {
  const config = readConfig(orderSchema);
  if (!config.DATABASE_URL) throw new ConfigError('DATABASE_URL', 'is required');
  const podName = config.SERVICE_NAME;
  const logger = createLogger({ name: podName, level: config.LOG_LEVEL });
  const metrics = createMetrics({ service: 'order', podName });
  const lifecycle = new Lifecycle();
  const policy = policyFromConfig(config);
  registerPolicyInfo(metrics, policy);
  // Before any pool or client is made: they are traced only if tracing is on when they are built.
  const stopTracing = await startTracing({ config, service: 'order', podName, logger });
  const http = createHttpClient({ timeoutMs: config.UPSTREAM_TIMEOUT_MS });
  const primary = new Database('primary', config.DATABASE_URL, logger, {
    applicationName: podName,
    max: config.DB_POOL_MAX,
    commitWaitMs: config.SYNC_COMMIT_TIMEOUT_MS,
  });
  const standby = config.DATABASE_REPLICA_URL
    ? new Database('standby', config.DATABASE_REPLICA_URL, logger, {
        applicationName: podName,
        max: config.DB_POOL_MAX,
      })
    : undefined;
  const gate = new SchemaGate(primary, logger, config.ROLE === 'origin' ? 'migrate' : 'wait');
  void gate.run();
  const writer = await createWriter({
    config,
    primaryUrl: config.DATABASE_URL,
    primary,
    podName,
    logger,
    metrics,
    policy,
    http,
  });
  const { guard, fronts } = writer;
  const policyWatch = await startPolicyWatch({ config, policy, logger, metrics });

  const app = createApp({
    podName,
    logger,
    metrics,
    lifecycle,
    policy,
    primary,
    standby,
    writer,
    purchases: counter(metrics, 'bazar_purchases_total', 'Purchases by result', ['result']),
    internalToken: () => config.INTERNAL_TOKEN,
    testHooks: config.TEST_HOOKS,
    readiness: async () => ({
      schema: gate.status(),
      database: await databaseReadiness(primary, standby),
      discovery: fronts.synced() && policyWatch.synced() ? 'ok' : 'discovery not synced',
    }),
    details: () => ({
      role: config.ROLE,
      policy: policy.current,
      consistency: guard.consistencyReport(),
      database: writer.primaryIdentity.report(),
    }),
  });
  const server = await listen(app, config);
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
      () => policyWatch.close(),
      () => writer.close(),
      () => primary.close(),
      async () => standby?.close(),
      // Last: the spans of the drained requests are flushed.
      async () => stopTracing?.(),
    ],
  });
}

/**
 * An order pod serves while either database answers: without the primary it still looks orders up on
 * the standby and refuses purchases fast with 503 `primary_unavailable` (docs/guarantees.md G5), which it can
 * only do while it stays in its Service's endpoints.
 */
async function databaseReadiness(primary: Database, standby: Database | undefined): Promise<string> {
  const onPrimary = await primary.ping();
  if (onPrimary === 'ok' || !standby) return onPrimary;
  const onStandby = await standby.ping();
  return onStandby === 'ok' ? 'ok' : `${onPrimary}; ${onStandby}`;
}

runMain(main);
