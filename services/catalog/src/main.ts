import { readConfig, oneOf, databaseUrl, urlList, int, ConfigError } from '../../shared/src/config.js';
import {
  commonSchema,
  adminTokenSchema,
  policyFromConfig,
  registerPolicyInfo,
} from '../../shared/src/service-config.js';
import { createLogger } from '../../shared/src/logger.js';
import { startTracing } from '../../shared/src/tracing.js';
import { createMetrics } from '../../shared/src/metrics.js';
import { Lifecycle, listen, installShutdown, boundUrl } from '../../shared/src/server.js';
import { Database } from '../../shared/src/db/database.js';
import { SchemaGate } from '../../shared/src/db/schema-gate.js';
import { createWriter, writerSchema, type Writer } from '../../shared/src/writer.js';
import { createHttpClient, Upstream } from '../../shared/src/http-client.js';
import { createDiscovery, discoverySchema } from '../../shared/src/discovery-factory.js';
import { runMain } from '../../shared/src/main-helpers.js';
import { searchPagingFrom, searchSchema } from '../../shared/src/search-page.js';
import { startPolicyWatch } from '../../shared/src/policy-watch.js';
import type { Discovery } from '../../shared/src/discovery.js';
import { createApp } from './app.js';
import { standbyReplay } from './books.js';
import { registerStandbyMetrics } from './standby-metrics.js';

export const catalogSchema = {
  ...commonSchema,
  ...adminTokenSchema,
  ...discoverySchema,
  /** FRONT_URLS, SYNC_COMMIT_TIMEOUT_MS and PRIMARY_WAIT_MS: used by the origin, which writes. */
  ...writerSchema,
  ROLE: oneOf(['origin', 'replica'] as const),
  /** The primary: the origin reads and writes here. */
  DATABASE_URL: databaseUrl(),
  /** A hot standby: replicas read here. */
  DATABASE_REPLICA_URL: databaseUrl(),
  /** Static discovery of the catalog origin(s), where replicas forward writes. */
  CATALOG_ORIGIN_URLS: urlList(),
  REPLICA_WAIT_MS: int({ default: 200, min: 0, max: 10_000 }),
  DB_POOL_MAX: int({ default: 10, min: 1, max: 200 }),
  /** SEARCH_PAGE_SIZE, SEARCH_MAX_PAGE_SIZE: the pages of GET /search/:topic. */
  ...searchSchema,
};

async function main(): Promise<void> {
  const config = readConfig(catalogSchema);
  const search = searchPagingFrom(config);
  const origin = config.ROLE === 'origin';
  if (origin && !config.DATABASE_URL) throw new ConfigError('DATABASE_URL', 'is required for ROLE=origin');
  if (!origin && !config.DATABASE_REPLICA_URL) {
    throw new ConfigError('DATABASE_REPLICA_URL', 'is required for ROLE=replica');
  }
  const podName = config.SERVICE_NAME;
  const logger = createLogger({ name: podName, level: config.LOG_LEVEL });
  const metrics = createMetrics({ service: 'catalog', podName });
  const lifecycle = new Lifecycle();
  const policy = policyFromConfig(config);
  registerPolicyInfo(metrics, policy);
  // Before any pool or client is made: they are traced only if tracing is on when they are built.
  const stopTracing = await startTracing({ config, service: 'catalog', podName, logger });
  const http = createHttpClient({ timeoutMs: config.UPSTREAM_TIMEOUT_MS });
  const closers: Array<() => Promise<unknown>> = [];

  const reads = new Database(
    origin ? 'primary' : 'standby',
    (origin ? config.DATABASE_URL : config.DATABASE_REPLICA_URL)!,
    logger,
    {
      applicationName: podName,
      max: config.DB_POOL_MAX,
      ...(origin ? { commitWaitMs: config.SYNC_COMMIT_TIMEOUT_MS } : {}),
    },
  );
  if (!origin) registerStandbyMetrics(metrics, reads);
  const gate = new SchemaGate(reads, logger, origin ? 'migrate' : 'wait');
  void gate.run();

  let writer: Writer | undefined;
  let originUpstream: Upstream | undefined;
  const discoveries: Discovery[] = [];
  if (origin) {
    writer = await createWriter({
      config,
      primaryUrl: config.DATABASE_URL!,
      primary: reads,
      podName,
      logger,
      metrics,
      policy,
      http,
    });
    const originWriter = writer;
    discoveries.push(writer.fronts);
    closers.push(() => originWriter.close());
  } else {
    const origins = await createDiscovery({
      service: 'catalog-origin',
      config,
      staticEndpoints: config.CATALOG_ORIGIN_URLS,
      logger,
      metrics,
    });
    discoveries.push(origins);
    originUpstream = new Upstream({
      service: 'catalog-origin',
      discovery: origins,
      http,
      metrics,
      logger,
      loadBalancing: () => policy.current.loadBalancing,
      maxAttempts: config.UPSTREAM_MAX_ATTEMPTS,
    });
  }
  const policyWatch = await startPolicyWatch({ config, policy, logger, metrics });

  const app = createApp({
    podName,
    role: config.ROLE,
    logger,
    metrics,
    lifecycle,
    policy,
    reads,
    writer,
    origin: originUpstream,
    adminToken: () => config.ADMIN_TOKEN,
    internalToken: () => config.INTERNAL_TOKEN,
    replicaWaitMs: config.REPLICA_WAIT_MS,
    writeTimeoutMs: config.UPSTREAM_WRITE_TIMEOUT_MS,
    search,
    readiness: async () => ({
      schema: gate.status(),
      // An origin stays ready while the primary is away: it answers writes 503 primary_unavailable at
      // once (the truth), and is there the moment the primary is back. Out of the Services, every admin
      // write would be 503 service_unavailable instead, and resume only a readiness period later.
      database: origin ? 'ok' : await reads.ping(),
      discovery: discoveries.every((d) => d.synced()) ? 'ok' : 'discovery not synced',
      policy: policyWatch.synced() ? 'ok' : 'policy not read yet',
    }),
    details: async () => ({
      role: config.ROLE,
      policy: policy.current,
      consistency: writer?.guard.consistencyReport() ?? { mode: policy.current.consistencyMode },
      ...(writer ? { database: writer.primaryIdentity.report() } : {}),
      // A replica: how its standby's replay stands (its absence says the standby did not answer).
      ...(origin
        ? {}
        : await standbyReplay(reads).then(
            (standby) => ({ standby }),
            () => ({}),
          )),
    }),
  });
  const server = await listen(app, config);
  logger.info(
    { url: boundUrl(server), role: config.ROLE, mode: policy.current.consistencyMode },
    'catalog listening',
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
      ...discoveries.map((d) => () => d.close()),
      ...closers,
      () => reads.close(),
      // Last: the spans of the drained requests are flushed.
      async () => stopTracing?.(),
    ],
  });
}

runMain(main);
