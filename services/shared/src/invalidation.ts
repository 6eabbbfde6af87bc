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
  /** The version the write produced; fronts refuse to cache anything older from now on. */
  version: number;
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
  readonly #sent: Counter<'result'>;
  readonly #fanout: Histogram<'mode'>;

  constructor(
    private readonly opts: {
      fronts: Discovery;
      http: Got;
      internalToken: () => string;
      policy: PolicyStore;
      logger: Logger;
      metrics: Metrics;
      podName: string;
    },
  ) {
    this.#sent = counter(
      opts.metrics,
      'bazar_invalidations_sent_total',
      'Invalidations pushed to fronts, by result',
      ['result'],
    );
    this.#fanout = histogram(
      opts.metrics,
      'bazar_invalidation_fanout_seconds',
      'Time from commit to every front acknowledging an invalidation',
      ['mode'],
    );
  }

  /**
   * `originFront`: the front the write came through (its `X-Bazar-Front`). It fences its own cache
   * with the answer before relaying it to the client, so it needs no push: it is counted as
   * acknowledged, and the write costs one push fewer.
   */
  async publish(items: Invalidation[], originFront?: string): Promise<FanoutResult> {
    const mode = this.opts.policy.current.consistencyMode;
    const all = this.opts.fronts.endpoints();
    const targets = originFront === undefined ? all : all.filter((front) => front.name !== originFront);
    const pending = this.#push(items, targets).then((result) => ({
      ...result,
      fronts: all.length,
      acknowledged: result.acknowledged + (all.length - targets.length),
    }));
    if (mode === 'eventual') {
      void pending;
      return { fronts: all.length, acknowledged: 0, failed: [] };
    }
    return pending;
  }

  async #push(items: Invalidation[], targets: readonly Endpoint[]): Promise<FanoutResult> {
    const { http, policy, logger } = this.opts;
    const stop = this.#fanout.startTimer({ mode: policy.current.consistencyMode });
    const timeoutMs = policy.current.invalidationTimeoutMs;
    // Serialised once for every front; each push goes out at once, on the agent's warm connections.
    const body = JSON.stringify({ items, origin: this.opts.podName });
    const headers = { authorization: `Bearer ${this.opts.internalToken()}` };
    const results = await Promise.all(
      targets.map(async (front) => {
        try {
          const res = await send(http, `${front.url}/internal/invalidate`, {
            method: 'POST',
            headers,
            body,
            timeoutMs,
          });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          this.#sent.inc({ result: 'ok' });
          return undefined;
        } catch (err) {
          const reason = (err as { code?: string }).code ?? (err as Error).message;
          this.#sent.inc({ result: reason === 'ETIMEDOUT' ? 'timeout' : 'error' });
          logger.warn({ front: front.name, reason, items }, 'invalidation not acknowledged');
          return front.name;
        }
      }),
    );
    stop();
    const failed = results.filter((name): name is string => name !== undefined);
    return { fronts: targets.length, acknowledged: targets.length - failed.length, failed };
  }
}
