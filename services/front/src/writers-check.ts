import type { Got } from 'got';
import type { Discovery } from '../../shared/src/discovery.js';
import { send } from '../../shared/src/http-client.js';
import type { Logger } from '../../shared/src/logger.js';
import { sleep } from '../../shared/src/main-helpers.js';
import type { FrontCache } from './cache.js';

const RETRY_MS = 250;

export interface WritersCheckOptions {
  cache: FrontCache;
  /** The catalog and order pods: every writer is among them (the catalog origin, the order pods). */
  discoveries: readonly Discovery[];
  http: Got;
  podName: string;
  internalToken: () => string;
  logger: Logger;
  /** Give up after this long (the longest any writer announces a write for) and cache anyway. */
  maxHoldMs: number;
  /** Per question. */
  timeoutMs: number;
}

/**
 * A strict writer announces each write to the fronts it knows before it commits (docs/guarantees.md).
 * A front that starts may have missed announcements of writes still in flight, and a writer may not
 * know the new front yet; either way, a copy this front cached now could turn stale without anything
 * telling it. So a starting front caches nothing until every catalog and order pod has answered that
 * it sends its writes to this front, and then until every write they had in flight has settled or
 * expired. Reads are served meanwhile, uncached. Resolves when the hold is known (not when it ends);
 * after `maxHoldMs` without every answer it caches anyway and says so.
 */
export async function holdForWritersInFlight(opts: WritersCheckOptions): Promise<void> {
  const { cache, logger } = opts;
  cache.holdFillsUntil(Number.POSITIVE_INFINITY);
  const started = performance.now();
  for (;;) {
    const missing = opts.discoveries
      .filter((d) => !d.synced())
      .map((d) => `${d.service} (discovery not synced)`);
    let settleWithinMs = 0;
    const endpoints = opts.discoveries.flatMap((d) => d.endpoints());
    await Promise.all(
      endpoints.map(async (endpoint) => {
        try {
          const res = await send(opts.http, `${endpoint.url}/internal/writes`, {
            method: 'POST',
            headers: { authorization: `Bearer ${opts.internalToken()}` },
            body: JSON.stringify({ front: opts.podName }),
            timeoutMs: opts.timeoutMs,
          });
          const answer = JSON.parse(res.raw.toString()) as { settleWithinMs?: unknown; knowsFront?: unknown };
          if (res.status !== 200 || typeof answer.settleWithinMs !== 'number' || answer.knowsFront !== true) {
            missing.push(
              `${endpoint.name} (${res.status === 200 ? 'does not know this front yet' : `HTTP ${res.status}`})`,
            );
            return;
          }
          settleWithinMs = Math.max(settleWithinMs, answer.settleWithinMs);
        } catch (err) {
          missing.push(`${endpoint.name} (${(err as { code?: string }).code ?? (err as Error).message})`);
        }
      }),
    );
    const waited = performance.now() - started;
    if (missing.length === 0) {
      cache.holdFillsUntil(performance.now() + settleWithinMs);
      logger.info({ writers: endpoints.length, settleWithinMs }, 'writers asked: caching from now on');
      return;
    }
    if (waited >= opts.maxHoldMs) {
      cache.holdFillsUntil(performance.now());
      logger.warn(
        { unanswered: missing, waitedMs: Math.round(waited) },
        'caching without an answer from every writer: a write they announced before this front started could leave it stale until its invalidation arrives',
      );
      return;
    }
    await sleep(RETRY_MS);
  }
}
