import type { Counter } from 'prom-client';
import type { Logger } from '../logger.js';

/** How a write's wait for a primary ended (the `result` label of bazar_write_primary_waits_total). */
export type PrimaryWaitResult =
  /** The write was tried again once the primary took writes, and that try answered (2xx or 4xx). */
  | 'served'
  /** No writable primary within the budget: the write answered 503 primary_unavailable. */
  | 'expired'
  /** A try after the wait ended in another error (e.g. 503 commit_outcome_unknown). */
  | 'failed';

/** How often a waiting writer asks whether the primary takes writes again. */
const DEFAULT_POLL_MS = 150;

/**
 * The bounded wait of a write that found no writable primary (PRIMARY_WAIT_MS, docs/guarantees.md G5),
 * what Vitess's vtgate does for a planned reparent: instead of failing at once, the write waits until
 * the primary looks writable again (reachable, not in recovery), then is tried once more, as long as
 * its budget (counted from the write's arrival) lasts. One poll serves every waiting write: while any
 * waits, the primary is asked every `pollMs` (one cheap statement), and each waiter is released by the
 * first answer "writable" to a question asked after it began to wait.
 */
export class PrimaryWait {
  readonly #waiters = new Set<{ since: number; release: (writable: boolean) => void }>();
  #polling = false;
  #closed = false;

  constructor(
    private readonly opts: {
      /** PRIMARY_WAIT_MS: 0 turns the wait off (a write fails at once, as before). */
      budgetMs: number;
      /** Whether the primary takes writes now (reachable and not in recovery); never throws. */
      acceptsWrites: () => Promise<boolean>;
      logger: Logger;
      /** bazar_write_primary_waits_total{result}. */
      episodes: Counter<'result'>;
      pollMs?: number;
    },
  ) {}

  get budgetMs(): number {
    return this.opts.budgetMs;
  }

  /**
   * Resolves true as soon as a poll that began after this call finds the primary writable, false once
   * `deadline` (performance.now() time) passes first, or when the writer closes.
   */
  untilWritable(deadline: number): Promise<boolean> {
    if (this.#closed || performance.now() >= deadline) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        since: performance.now(),
        release: (writable: boolean) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(writable);
        },
      };
      const timer = setTimeout(() => waiter.release(false), deadline - performance.now());
      this.#waiters.add(waiter);
      void this.#poll();
    });
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      while (this.#waiters.size > 0 && !this.#closed) {
        const askedAt = performance.now();
        const writable = await this.opts.acceptsWrites();
        let waitingForNext = false;
        for (const waiter of [...this.#waiters]) {
          if (writable && waiter.since <= askedAt) waiter.release(true);
          else waitingForNext = true;
        }
        // A waiter that came after this question was asked needs another: at once if the answer was
        // "writable" (it most likely is still), else after the poll interval.
        if (waitingForNext && !writable) await sleep(this.opts.pollMs ?? DEFAULT_POLL_MS);
      }
    } finally {
      this.#polling = false;
    }
  }

  /** Counts and logs one episode: a write that waited at least once, and how it ended. */
  ended(episode: { result: PrimaryWaitResult; waitedMs: number; attempts: number; bookId: number }): void {
    this.opts.episodes.inc({ result: episode.result });
    this.opts.logger.info(
      { ...episode, waitedMs: Math.round(episode.waitedMs), budgetMs: this.opts.budgetMs },
      episode.result === 'served'
        ? 'a write waited for a writable primary and was served'
        : 'a write waited for a writable primary in vain',
    );
  }

  /** Releases every waiting write (it answers its last error): the writer is shutting down. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.release(false);
  }
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });
