import { readConfig, urlList, int, bool, optionalStr } from '../../shared/src/config.js';
import {
  commonSchema,
  adminTokenSchema,
  policyFromConfig,
  registerPolicyInfo,
} from '../../shared/src/service-config.js';
import { createLogger } from '../../shared/src/logger.js';
import { startTracing } from '../../shared/src/tracing.js';
import { createMetrics, gauge, observed, type Metrics } from '../../shared/src/metrics.js';
import { DEFAULT_CACHE_MAX_BYTES, POLICY_LIMITS } from '../../shared/src/policy.js';
import { Lifecycle, listen, installShutdown, boundUrl } from '../../shared/src/server.js';
import { createHttpClient, send, Upstream } from '../../shared/src/http-client.js';
import { createDiscovery, discoverySchema } from '../../shared/src/discovery-factory.js';
import { startPolicyWatch } from '../../shared/src/policy-watch.js';
import { runMain } from '../../shared/src/main-helpers.js';
import { FrontCache, type CacheStats } from './cache.js';
import type { Server } from 'node:http';
import { createApp, type FrontDeps } from './app.js';
import { startStatusReporter } from './status.js';
import { CacheReconciler } from './reconcile.js';
import { holdForWritersInFlight } from './writers-check.js';
import { LiveFeed } from './live/feed.js';
import { searchPagingFrom, searchSchema } from '../../shared/src/search-page.js';

export const frontSchema = {
  ...commonSchema,
  ...adminTokenSchema,
  ...discoverySchema,
  /** Static discovery (laptop, CI): every catalog pod, origin and replicas; reads are balanced over all. */
  CATALOG_URLS: urlList(),
  /** Static discovery: every order pod. */
  ORDER_URLS: urlList(),
  CACHE_MAX_ENTRIES: int({ default: 10_000, ...POLICY_LIMITS.cacheMaxEntries }),
  /** The cache's bound in bytes: bodies, keys and a measured per-entry overhead (cache.ts). */
  CACHE_MAX_BYTES: int({ default: DEFAULT_CACHE_MAX_BYTES, ...POLICY_LIMITS.cacheMaxBytes }),
  CACHE_TTL_MS: int({ default: 60_000, ...POLICY_LIMITS.cacheTtlMs }),
  /**
   * How often cached books are compared with the catalog's versions: the staleness bound left by a
   * writer that died after COMMIT and before pushing its invalidation (independent of the TTL).
   */
  CACHE_RECONCILE_INTERVAL_MS: int({ default: 2000, min: 100, max: 600_000 }),
  /** SEARCH_PAGE_SIZE, SEARCH_MAX_PAGE_SIZE: the pages of GET /search/:topic (the catalog reads the same). */
  ...searchSchema,
  /** Enables /internal/test-hooks for the deterministic race tests. Never in production. */
  TEST_HOOKS: bool({ default: false }),
  /**
   * Serve /internal/* (invalidations from writers) on this port only, and not on PORT, so that a
   * NetworkPolicy can keep it to the store's own pods (0: on PORT, beside the public API).
   */
  INTERNAL_PORT: int({ default: 0, min: 0, max: 65_535 }),
  /** The live page (GET /live) and its event stream; it costs the requests nothing while nobody watches. */
  LIVE_PAGE: bool({ default: true }),
  /** The control server of `npm start`, whose knobs the live page offers (set by npm start only). */
  LIVE_KNOBS_URL: optionalStr(),
};

async function main(): Promise<void> {
  const config = readConfig(frontSchema);
  const search = searchPagingFrom(config);
  const podName = config.SERVICE_NAME;
  const logger = createLogger({ name: podName, level: config.LOG_LEVEL });
  const metrics = createMetrics({ service: 'front', podName });
  const lifecycle = new Lifecycle();
  const policy = policyFromConfig(config);
  registerPolicyInfo(metrics, policy);
  // Before any pool or client is made: they are traced only if tracing is on when they are built.
  const stopTracing = await startTracing({ config, service: 'front', podName, logger });
  const cache = new FrontCache({
    maxEntries: policy.current.cacheMaxEntries,
    maxBytes: policy.current.cacheMaxBytes,
    ttlMs: policy.current.cacheTtlMs,
  });
  // Nothing is cached until the writers have said which writes they have in flight (writers-check.ts).
  cache.holdFillsUntil(Number.POSITIVE_INFINITY);
  // Writers stop pushing invalidations here as soon as the pod is terminating; clients may still reach
  // it for the shutdown delay: from then on, only fresh reads.
  lifecycle.onShutdown(() => cache.retire());
  policy.on('change', (next, previous, source) => {
    cache.reconfigure(next.cacheMaxEntries, next.cacheTtlMs, next.cacheMaxBytes);
    logger.info({ policy: next, previous, source }, 'runtime policy applied');
  });
  const http = createHttpClient({ timeoutMs: config.UPSTREAM_TIMEOUT_MS });
  // Purchases (and order lookups) through a client of their own: a strict purchase may wait for the
  // standby and the fronts before it answers (no per-call options on the purchase's hot path).
  const writeHttp = createHttpClient({ timeoutMs: config.UPSTREAM_WRITE_TIMEOUT_MS });
  const catalogs = await createDiscovery({
    service: 'catalog',
    config,
    staticEndpoints: config.CATALOG_URLS,
    logger,
    metrics,
  });
  const orders = await createDiscovery({
    service: 'order',
    config,
    staticEndpoints: config.ORDER_URLS,
    logger,
    metrics,
  });
  const upstream = (service: string, discovery: typeof catalogs, client = http) =>
    new Upstream({
      service,
      discovery,
      http: client,
      metrics,
      logger,
      loadBalancing: () => policy.current.loadBalancing,
      maxAttempts: config.UPSTREAM_MAX_ATTEMPTS,
    });
  const policyWatch = await startPolicyWatch({ config, policy, logger, metrics });

  registerCacheMetrics(metrics, cache);
  const endpointsGauge = gauge(
    metrics,
    'bazar_discovered_endpoints',
    'Ready endpoints per discovered service',
    ['target'],
  );
  endpointsGauge.set({ target: 'catalog' }, catalogs.endpoints().length);
  endpointsGauge.set({ target: 'order' }, orders.endpoints().length);
  catalogs.on('change', (eps) => endpointsGauge.set({ target: 'catalog' }, eps.length));
  orders.on('change', (eps) => endpointsGauge.set({ target: 'order' }, eps.length));

  let writersAsked = false;
  const readiness = async () => ({
    discovery: catalogs.synced() && orders.synced() ? 'ok' : 'discovery not synced',
    writers: writersAsked ? 'ok' : 'asking the writers which writes are in flight',
    policy: policyWatch.synced() ? 'ok' : 'policy not read yet',
  });
  const catalog = upstream('catalog', catalogs);
  const reconciler = new CacheReconciler({
    cache,
    // Its own round-robin and metrics series: a background round never shifts which pod serves the
    // next client read, nor shows up among the client reads' upstream errors.
    catalog: upstream('catalog-reconcile', catalogs),
    internalToken: () => config.INTERNAL_TOKEN,
    intervalMs: config.CACHE_RECONCILE_INTERVAL_MS,
    logger,
    metrics,
  });
  const deps: FrontDeps = {
    podName,
    logger,
    metrics,
    lifecycle,
    policy,
    cache,
    catalog,
    order: upstream('order', orders, writeHttp),
    adminToken: () => config.ADMIN_TOKEN,
    internalToken: () => config.INTERNAL_TOKEN,
    writeTimeoutMs: config.UPSTREAM_WRITE_TIMEOUT_MS,
    readTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    search,
    testHooks: config.TEST_HOOKS,
    readiness,
    details: () => ({
      policy: policy.current,
      endpoints: { catalog: catalogs.endpoints().length, order: orders.endpoints().length },
    }),
  };
  if (config.LIVE_PAGE) {
    deps.live = {
      feed: new LiveFeed(podName),
      catalogPods: () =>
        Promise.all(
          catalogs.endpoints().map(async ({ name, url }) => {
            try {
              const res = await send(http, `${url}/readyz`, { method: 'GET', timeoutMs: 800 });
              return { name, readyz: JSON.parse(res.raw.toString('utf8')) as unknown };
            } catch (err) {
              return { name, error: (err as { code?: string }).code ?? (err as Error).message };
            }
          }),
        ),
      ...(config.LIVE_KNOBS_URL ? { knobsUrl: config.LIVE_KNOBS_URL } : {}),
    };
  }
  const split = config.INTERNAL_PORT > 0;
  const server = await listen(createApp(deps, split ? 'public' : 'all'), config);
  const internalServer = split
    ? await listen(createApp(deps, 'internal'), { ...config, PORT: config.INTERNAL_PORT })
    : undefined;
  // Only once this front listens: an announcement sent after a writer answered must reach it.
  void holdForWritersInFlight({
    cache,
    discoveries: [catalogs, orders],
    http,
    podName,
    internalToken: () => config.INTERNAL_TOKEN,
    logger,
    maxHoldMs: config.UPSTREAM_WRITE_TIMEOUT_MS + policy.current.invalidationTimeoutMs,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
  }).then(() => (writersAsked = true));
  const status = await startStatusReporter({
    config,
    logger,
    policy,
    cache,
    discoveries: { catalog: catalogs, order: orders },
    ready: async () => Object.values(await readiness()).every((v) => v === 'ok'),
  });
  reconciler.start();
  logger.info(
    {
      url: boundUrl(server),
      ...(internalServer ? { internalUrl: boundUrl(internalServer) } : {}),
      mode: policy.current.consistencyMode,
    },
    'front listening',
  );
  installShutdown({
    logger,
    server,
    lifecycle,
    delayMs: config.SHUTDOWN_DELAY_MS,
    drainTimeoutMs: config.DRAIN_TIMEOUT_MS,
    closers: [
      // Invalidations are taken until the public side has drained; then the internal listener goes.
      () => closeNow(internalServer),
      () => reconciler.stop(),
      () => status.close(),
      () => policyWatch.close(),
      () => catalogs.close(),
      () => orders.close(),
      // Last: the spans of the drained requests are flushed.
      async () => stopTracing?.(),
    ],
  });
}

/** Closes a listener and every connection it still has (writers' idle keep-alive ones). */
function closeNow(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Cache figures are read at scrape time from the cache itself, so the hit path does no metric work. */
function registerCacheMetrics(metrics: Metrics, cache: FrontCache): void {
  const stat = (field: keyof CacheStats) => () => cache.stats()[field];
  observed(metrics, 'counter', 'bazar_cache_hits_total', 'Cache hits', stat('hits'));
  observed(metrics, 'counter', 'bazar_cache_misses_total', 'Cache misses', stat('misses'));
  observed(
    metrics,
    'counter',
    'bazar_cache_evictions_total',
    'Entries evicted for capacity',
    stat('evictions'),
  );
  observed(
    metrics,
    'counter',
    'bazar_cache_invalidations_total',
    'Invalidations applied',
    stat('invalidations'),
  );
  observed(
    metrics,
    'counter',
    'bazar_cache_rejected_fills_total',
    'Fills refused: older than the fence',
    stat('rejectedFills'),
  );
  observed(
    metrics,
    'counter',
    'bazar_cache_write_announcements_total',
    'Strict writes announced to this front before their commit',
    stat('prepares'),
  );
  observed(
    metrics,
    'counter',
    'bazar_cache_write_announcements_expired_total',
    'Announced writes that expired here before their writer settled them (a writer died or was cut off)',
    stat('expiredPrepares'),
  );
  observed(
    metrics,
    'counter',
    'bazar_cache_timeline_resets_total',
    'Fences and entries dropped because the primary changed timeline in a mode that may lose writes',
    stat('timelineResets'),
  );
  observed(
    metrics,
    'gauge',
    'bazar_db_timeline',
    "The primary's PostgreSQL timeline as the catalog origin last reported it (0: not yet)",
    stat('timeline'),
  );
  observed(
    metrics,
    'counter',
    'bazar_cache_oversized_total',
    'Fills not cached because the one entry counts for more than the byte bound',
    stat('oversized'),
  );
  observed(metrics, 'gauge', 'bazar_cache_entries', 'Entries in the cache', stat('size'));
  observed(
    metrics,
    'gauge',
    'bazar_cache_bytes',
    'Bytes the cached entries count for (bodies, keys and a fixed per-entry overhead)',
    stat('bytes'),
  );
  observed(
    metrics,
    'gauge',
    'bazar_cache_max_bytes',
    'The byte bound of the cache in force',
    stat('maxBytes'),
  );
}

runMain(main);
