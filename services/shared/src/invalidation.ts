import { randomUUID } from 'node:crypto';
import type { Got } from 'got';
import { send } from './http-client.js';
import type { Counter, Histogram } from 'prom-client';
import type { Discovery, Endpoint } from './discovery.js';
import type { Logger } from './logger.js';
import type { PolicyStore } from './policy.js';
import type { Metrics } from './metrics.js';
import { counter, histogram } from './metrics.js';

export interface Invalidation {
  bookId: number;
  /**
   * The version the write produced; fronts refuse to cache anything older from now on. Absent only
   * when settling an announced write that did not happen.
   */
  version?: number;
}

/** A write announced to the fronts before its commit (strict mode): see `InvalidationPublisher.prepare`. */
export interface Announcement {
  writeId: string;
  bookIds: number[];
  /** The fronts' answers to the announcement (what `X-Invalidated` reports for a strict write). */
  fanout: FanoutResult;
  /** How long the fronts hold it unless settled (ms). */
  ttlMs: number;
  /** performance.now() when it was sent. */
  sentAt: number;
}

export interface FanoutResult {
  fronts: number;
  acknowledged: number;
  failed: string[];
}

/**
 * Pushes invalidations to every front pod (discovered, not configured) and waits for their
 * acknowledgements, each bounded by the policy's invalidation timeout, so the writer acknowledges its
 * client only after every reachable front has dropped the old value. A front that cannot be reached
 * is counted, logged and skipped: its staleness is bounded by its reconciliation (or, unreachable from
 * the catalog too, by the cache TTL). In `eventual` mode the push is fire-and-forget.
 */
export class InvalidationPublisher {
  readonly #sent: Counter<'front' | 'result'>;
  readonly #fanout: Histogram<'mode'>;
  readonly #expiredBeforeSettled: Counter;
  /** Announced writes not settled yet: write id → when the fronts let the announcement expire. */
  readonly #inFlight = new Map<string, number>();

  constructor(
    private readonly opts: {
      fronts: Discovery;
      http: Got;
      internalToken: () => string;
      policy: PolicyStore;
      logger: Logger;
      metrics: Metrics;
      podName: string;
      /**
       * The longest a write may take from its announcement to its settlement (the statement, its wait
       * for the standby, the pushes): the announcement's lifetime at the fronts.
       */
      writeBudgetMs: () => number;
    },
  ) {
    this.#sent = counter(
      opts.metrics,
      'bazar_invalidations_sent_total',
      'Invalidations and announcements pushed to fronts, by front and result (ok, timeout, error)',
      ['front', 'result'],
    );
    this.#fanout = histogram(
      opts.metrics,
      'bazar_invalidation_fanout_seconds',
      'Time for every front to answer an invalidation or (strict) an announcement',
      ['mode'],
    );
    this.#expiredBeforeSettled = counter(
      opts.metrics,
      'bazar_write_announcements_expired_total',
      'Strict writes settled only after their announcement had expired at the fronts',
    );
  }

  /**
   * Strict mode, before a write commits: tells every front (but `originFront`, which does it itself)
   * that these books are about to change, and waits for their answers (each bounded by the
   * invalidation timeout). Each front drops the books and caches nothing of them until `settle`.
   */
  async prepare(bookIds: number[], originFront?: string): Promise<Announcement> {
    const writeId = randomUUID();
    const ttlMs = this.opts.policy.current.invalidationTimeoutMs + this.opts.writeBudgetMs();
    const sentAt = performance.now();
    this.#inFlight.set(writeId, sentAt + ttlMs);
    const body = JSON.stringify({ bookIds, writeId, ttlMs, origin: this.opts.podName });
    const fanout = await this.#fanOut('/internal/prepare', body, originFront, { bookIds, writeId });
    return { writeId, bookIds, fanout, ttlMs, sentAt };
  }

  /**
   * Ends an announced write: committed (`items` carry versions) or not done (no versions). Whether
   * the caller waits for the fronts is its choice: a strict write whose commit the standby confirmed
   * need not (the fronts cache nothing of the book meanwhile, and its readers get the new version).
   */
  async settle(
    announcement: Announcement,
    items: Invalidation[],
    originFront?: string,
  ): Promise<FanoutResult> {
    const { writeId } = announcement;
    this.#inFlight.delete(writeId);
    if (performance.now() > announcement.sentAt + announcement.ttlMs) {
      this.#expiredBeforeSettled.inc();
      this.opts.logger.warn(
        { writeId, ttlMs: announcement.ttlMs, items },
        'a strict write settled after its announcement expired at the fronts',
      );
    }
    const body = JSON.stringify({ items, writeId, origin: this.opts.podName });
    return this.#fanOut('/internal/invalidate', body, originFront, items);
  }

  /**
   * What a starting front asks before it caches anything: how long until every write this writer has
   * announced is settled or expired, and whether this writer already sends its writes to that front.
   */
  writesInFlight(front: string): { settleWithinMs: number; knowsFront: boolean } {
    const now = performance.now();
    let settleWithinMs = 0;
    for (const [writeId, expires] of this.#inFlight) {
      if (expires <= now) this.#inFlight.delete(writeId);
      else settleWithinMs = Math.max(settleWithinMs, Math.ceil(expires - now));
    }
    return { settleWithinMs, knowsFront: this.opts.fronts.endpoints().some((e) => e.name === front) };
  }

  /**
   * `originFront`: the front the write came through (its `X-Bazar-Front`). It fences its own cache
   * with the answer before relaying it to the client, so it needs no push: it is counted as
   * acknowledged, and the write costs one push fewer.
   */
  async publish(items: Invalidation[], originFront?: string): Promise<FanoutResult> {
    const mode = this.opts.policy.current.consistencyMode;
    const body = JSON.stringify({ items, origin: this.opts.podName });
    const pending = this.#fanOut('/internal/invalidate', body, originFront, items);
    if (mode === 'eventual') {
      void pending;
      return { fronts: this.opts.fronts.endpoints().length, acknowledged: 0, failed: [] };
    }
    return pending;
  }

  /** `body` to `path` of every front but `originFront` (counted as acknowledged: it did it itself). */
  async #fanOut(
    path: string,
    body: string,
    originFront: string | undefined,
    what: unknown,
  ): Promise<FanoutResult> {
    const all = this.opts.fronts.endpoints();
    const targets = originFront === undefined ? all : all.filter((front) => front.name !== originFront);
    const result = await this.#push(path, body, targets, what);
    return {
      ...result,
      fronts: all.length,
      acknowledged: result.acknowledged + (all.length - targets.length),
    };
  }

  async #push(
    path: string,
    body: string,
    targets: readonly Endpoint[],
    what: unknown,
  ): Promise<FanoutResult> {
    const { http, policy, logger } = this.opts;
    const stop = this.#fanout.startTimer({ mode: policy.current.consistencyMode });
    const timeoutMs = policy.current.invalidationTimeoutMs;
    // Serialised once for every front; each push goes out at once, on the agent's warm connections.
    const headers = { authorization: `Bearer ${this.opts.internalToken()}` };
    const results = await Promise.all(
      targets.map(async (front) => {
        try {
          const res = await send(http, `${front.url}${path}`, {
            method: 'POST',
            headers,
            body,
            timeoutMs,
          });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          this.#sent.inc({ front: front.name, result: 'ok' });
          return undefined;
        } catch (err) {
          const reason = (err as { code?: string }).code ?? (err as Error).message;
          this.#sent.inc({ front: front.name, result: reason === 'ETIMEDOUT' ? 'timeout' : 'error' });
          logger.warn({ front: front.name, reason, path, what }, 'invalidation not acknowledged');
          return front.name;
        }
      }),
    );
    stop();
    const failed = results.filter((name): name is string => name !== undefined);
    logger.debug({ path, what, fronts: targets.map((f) => f.name), failed }, 'pushed to the fronts');
    return { fronts: targets.length, acknowledged: targets.length - failed.length, failed };
  }
}
