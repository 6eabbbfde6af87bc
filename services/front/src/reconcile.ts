import type { Logger } from '../../shared/src/logger.js';
import { counter, type Metrics } from '../../shared/src/metrics.js';
import type { Upstream } from '../../shared/src/http-client.js';
import type { FrontCache } from './cache.js';

/** Ids per request: the catalog accepts up to 1000 (MAX_VERSION_IDS). */
const CHUNK = 500;

/**
 * The backstop behind pushed invalidations. Every `intervalMs` the front asks a catalog pod for the
 * current version of every book it has cached and drops (and fences) each entry that is older. A write
 * whose writer died after COMMIT and before pushing its invalidation, or a push that never arrived,
 * therefore leaves this front stale for at most one interval plus the standby's replay lag, however
 * long the cache TTL is (docs/guarantees.md G2). Costs one small request per interval per front.
 */
export class CacheReconciler {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  readonly #rounds;
  readonly #stale;

  constructor(
    private readonly opts: {
      cache: FrontCache;
      catalog: Upstream;
      internalToken: () => string;
      intervalMs: number;
      logger: Logger;
      metrics: Metrics;
    },
  ) {
    this.#rounds = counter(
      opts.metrics,
      'bazar_cache_reconcile_rounds_total',
      'Rounds comparing cached book versions with the catalog, by result',
      ['result'],
    );
    this.#stale = counter(
      opts.metrics,
      'bazar_cache_reconcile_stale_total',
      'Cached entries the reconciliation found older than the catalog (a lost invalidation)',
    );
  }

  start(): void {
    const tick = () => {
      this.#running = this.round().then(
        () => undefined,
        () => undefined,
      );
      void this.#running.finally(() => {
        this.#running = undefined;
        if (this.#timer) this.#timer = setTimeout(tick, this.opts.intervalMs).unref();
      });
    };
    this.#timer = setTimeout(tick, this.opts.intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One comparison of every cached book with the catalog; returns how many entries were stale. */
  async round(): Promise<number> {
    const { cache, catalog, logger } = this.opts;
    const cached = cache.cachedBooks();
    if (cached.length === 0) return 0;
    let stale = 0;
    try {
      for (let i = 0; i < cached.length; i += CHUNK) {
        const chunk = cached.slice(i, i + CHUNK);
        const res = await catalog.request({
          method: 'POST',
          path: '/internal/versions',
          headers: { authorization: `Bearer ${this.opts.internalToken()}` },
          json: { ids: chunk.map(([id]) => id) },
          retry: 'idempotent',
        });
        if (res.status !== 200) throw new Error(`catalog answered HTTP ${res.status}`);
        const versions = (res.body as { versions?: Record<string, number> }).versions ?? {};
        for (const [id, version] of chunk) {
          const current = versions[String(id)];
          if (current !== undefined && current > version) {
            cache.invalidate(id, current);
            stale++;
          }
        }
      }
      this.#rounds.inc({ result: 'ok' });
    } catch (err) {
      this.#rounds.inc({ result: 'error' });
      logger.warn({ err: (err as Error).message }, 'cache reconciliation failed; will retry');
    }
    if (stale > 0) {
      this.#stale.inc(stale);
      logger.warn({ stale }, 'cache entries older than the catalog dropped (an invalidation was lost)');
    }
    return stale;
  }
}
