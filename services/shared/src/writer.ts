import type { Got } from 'got';
import { PRIMARY_WAITED_HEADER } from './http-client.js';
import { int, oneOf, urlList, type NamedUrl } from './config.js';
import { Database } from './db/database.js';
import { CommitGuard, UnconfirmedCommit, type StandbyLoss } from './db/write-transaction.js';
import { PrimaryIdentity, type PrimaryFacts } from './db/primary-identity.js';
import { PrimaryWait, type PrimaryWaitResult } from './db/primary-wait.js';
import { createDiscovery, type DiscoveryConfig } from './discovery-factory.js';
import type { Discovery } from './discovery.js';
import { HttpError } from './errors.js';
import { requireObject } from './body.js';
import {
  InvalidationPublisher,
  type Announcement,
  type FanoutResult,
  type Invalidation,
} from './invalidation.js';
import type { Logger } from './logger.js';
import { counter, gauge, type Metrics } from './metrics.js';
import type { PolicyStore } from './policy.js';

/** Settings of a service that writes books (order pods, the catalog origin). */
export const writerSchema = {
  /** Static discovery of the fronts, to which writes push invalidations. */
  FRONT_URLS: urlList(),
  SYNC_COMMIT_TIMEOUT_MS: int({ default: 2000, min: 50, max: 60_000 }),
  /**
   * A strict write no standby confirmed within SYNC_COMMIT_TIMEOUT_MS: `refuse` answers it 503
   * commit_outcome_unknown and leaves its commit waiting (no acknowledged write is on one server only);
   * `degrade` acknowledges it and commits locally until a standby streams again (docs/guarantees.md G6).
   */
  STRICT_STANDBY_LOSS: oneOf(['refuse', 'degrade'] as const satisfies readonly StandbyLoss[], {
    default: 'refuse',
  }),
  /**
   * How long a write that finds no writable primary (503 primary_unavailable: nothing was written) waits
   * for one, counted from the write's arrival (so that its answer time is bounded: a first attempt that
   * hangs until its query timeout spends the budget too), before it answers that 503
   * (docs/guarantees.md G5). 0: it answers at once. The fronts' UPSTREAM_WRITE_TIMEOUT_MS must leave room for it.
   */
  PRIMARY_WAIT_MS: int({ default: 0, min: 0, max: 60_000 }),
};

export interface Writer {
  /** Commits on the primary at the consistency mode's level (see CommitGuard). */
  guard: CommitGuard;
  /** Pushes invalidations to every front and waits for them. */
  publisher: InvalidationPublisher;
  fronts: Discovery;
  /** Which server is the primary, and its timeline (polled every PRIMARY_POLL_MS). */
  primaryIdentity: PrimaryIdentity;
  /** The bounded wait of a write that found no writable primary (PRIMARY_WAIT_MS). */
  primaryWait: PrimaryWait;
  close(): Promise<void>;
}

/** How often a writer asks its primary which member it is and on which timeline. */
const PRIMARY_POLL_MS = 1000;

/** See createWriter's writeBudgetMs. */
const WRITE_SLACK_MS = 1000;

/**
 * One write of one book, under the promise of docs/guarantees.md, for order pods and the catalog
 * origin alike:
 * - `strict` (the standby confirming commits): the write is announced to every front before it
 *   commits (they stop caching the book), committed at remote_apply, then settled with its version
 *   without waiting for the fronts: no front can serve a cached copy once the new version is visible
 *   anywhere, and every read that reaches the database after the commit sees it;
 * - a strict write whose commit the standby did not confirm in time, and `session`: committed, then
 *   the fronts are told its version and the answer waits for them (reads are fenced by version);
 * - `eventual`: committed, the push goes out in the background.
 * `originFront` is the front the write came through: it fences its own cache and gets no push.
 *
 * A write refused with 503 primary_unavailable (no primary reachable, a read-only server, a statement
 * cut at its timeout: each proves nothing was written) waits for a writable primary within
 * `primaryWait`'s budget (PRIMARY_WAIT_MS, from the write's arrival) and is then done again WHOLE: a new
 * announcement (strict), a new commit. One announcement never covers a commit made after a wait: it
 * expires at the fronts one write budget after it was sent, and the wait may be longer. The commit
 * is the caller's, with its idempotency key, so a keyed write stays exactly-once. So is a `keyed` write
 * whose COMMIT lost its connection (503 commit_outcome_unknown: a primary shut down or handed over under
 * it): done again under its key, it applies once, or returns what the first attempt committed, which is
 * what its client would be told to do. Anything else (a 4xx, an unkeyed write's commit_outcome_unknown,
 * any other error that may have committed) is answered as it is, at once.
 */
export async function writeBook<T extends { version: number }>(
  writer: Pick<Writer, 'guard' | 'publisher'> & { primaryWait?: PrimaryWait },
  bookId: number,
  originFront: string | undefined,
  commit: () => Promise<T>,
  opts: { keyed?: boolean } = {},
): Promise<{ result: T; fanout: FanoutResult }> {
  const wait = writer.primaryWait;
  if (!wait || wait.budgetMs === 0) return writeOnce(writer, bookId, originFront, commit);
  const deadline = performance.now() + wait.budgetMs;
  let firstRefusal: number | undefined;
  let attempts = 0;
  const end = (result: PrimaryWaitResult) => {
    if (firstRefusal === undefined) return;
    wait.ended({ result, waitedMs: performance.now() - firstRefusal, attempts, bookId });
  };
  for (;;) {
    attempts++;
    try {
      const written = await writeOnce(writer, bookId, originFront, commit);
      end('served');
      return written;
    } catch (err) {
      if (!isPrimaryUnavailable(err) && !(opts.keyed && isOutcomeUnknown(err))) {
        end(err instanceof HttpError && err.status < 500 ? 'served' : 'failed');
        throw err;
      }
      firstRefusal ??= performance.now();
      if (!(await wait.untilWritable(deadline))) {
        end('expired');
        const waitedMs = Math.round(performance.now() - firstRefusal);
        throw new HttpError(err.status, err.code, err.message, {
          ...err.headers,
          [PRIMARY_WAITED_HEADER]: String(waitedMs),
        });
      }
    }
  }
}

/** 503 primary_unavailable: the write found no writable primary, and nothing was written. */
function isPrimaryUnavailable(err: unknown): err is HttpError {
  return err instanceof HttpError && err.status === 503 && err.code === 'primary_unavailable';
}

/**
 * 503 commit_outcome_unknown: the connection died during COMMIT; the write may have committed. Not an
 * unconfirmed commit: that one still waits on the primary, and a retry would queue behind it.
 */
function isOutcomeUnknown(err: unknown): err is HttpError {
  return (
    err instanceof HttpError &&
    err.status === 503 &&
    err.code === 'commit_outcome_unknown' &&
    !(err instanceof UnconfirmedCommit)
  );
}

/** One attempt of writeBook: announce (strict), commit, tell the fronts. */
async function writeOnce<T extends { version: number }>(
  writer: Pick<Writer, 'guard' | 'publisher'>,
  bookId: number,
  originFront: string | undefined,
  commit: () => Promise<T>,
): Promise<{ result: T; fanout: FanoutResult }> {
  const { guard, publisher } = writer;
  const announcement = guard.announcesWrites() ? await publisher.prepare([bookId], originFront) : undefined;
  let result: T;
  try {
    result = await commit();
  } catch (err) {
    if (announcement && err instanceof UnconfirmedCommit) {
      // Not acknowledged, but it may still commit, whenever a standby applies it: every front, the one
      // it came through too (its own fence ends with this answer), caches nothing of the book until then.
      const held = await publisher.prepare([bookId]);
      void holdUntilEnded(writer, bookId, [announcement, held], err.ended);
      throw err;
    }
    // A 4xx proves nothing was written: the fronts may cache the book again at once. Anything else
    // is left to expire at the fronts (an attempt refused with primary_unavailable too: writeBook may
    // do the write again under a new announcement, which the fronts hold on their own).
    if (announcement && err instanceof HttpError && err.status < 500) {
      settleAfterAnswer(publisher, announcement, [{ bookId }], originFront);
    }
    throw err;
  }
  const items = [{ bookId, version: result.version }];
  if (!announcement) return { result, fanout: await publisher.publish(items, originFront) };
  if (guard.standbyConfirmed()) {
    settleAfterAnswer(publisher, announcement, items, originFront);
    return { result, fanout: announcement.fanout };
  }
  // Degraded or unreplicated during this write: a standby may not have it (one that rejoins may serve
  // reads before it does), so readers must be fenced before the ack.
  return { result, fanout: await publisher.settle(announcement, items, originFront) };
}

/**
 * An unconfirmed strict commit (STRICT_STANDBY_LOSS=refuse) is announced again before each announcement
 * would expire at the fronts, for as long as it waits on the primary; once it has ended, every
 * announcement is settled with the book's version then (the write's, if it committed).
 */
async function holdUntilEnded(
  writer: Pick<Writer, 'guard' | 'publisher'>,
  bookId: number,
  announcements: Announcement[],
  ended: Promise<void>,
): Promise<void> {
  const { guard, publisher } = writer;
  let over = false;
  const done = ended.then(() => {
    over = true;
  });
  for (;;) {
    const last = announcements[announcements.length - 1]!;
    const renewIn = last.sentAt + last.ttlMs / 2 - performance.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, renewIn))))]);
    clearTimeout(timer);
    if (over) break;
    announcements.push(await publisher.prepare([bookId]));
  }
  const version = await guard.versionOf(bookId).catch(() => undefined);
  const items = [version === undefined ? { bookId } : { bookId, version }];
  await Promise.all(announcements.map((a) => publisher.settle(a, items)));
}

/**
 * A settlement nobody waits for goes out once the write's answer is on its way: building the request
 * (got's options, the ClientRequest) costs the writer a few hundred µs of CPU, which would otherwise
 * come before the answer (the strict purchase at one client: 2.03x and 2.09x the chain's p50 in two
 * full bench runs with it inline). Until it arrives the fronts just do not cache the book.
 */
function settleAfterAnswer(
  publisher: InvalidationPublisher,
  announcement: Announcement,
  items: Invalidation[],
  originFront: string | undefined,
): void {
  setImmediate(() => void publisher.settle(announcement, items, originFront));
}

/**
 * Everything a writer needs beside its primary pool: the commit guard (with its own small control
 * pool to cancel a stuck synchronous commit), the discovery of the fronts and the invalidation
 * publisher. Shared by order pods and the catalog origin so both keep the same promise.
 */
export async function createWriter(opts: {
  config: DiscoveryConfig & {
    SYNC_COMMIT_TIMEOUT_MS: number;
    STRICT_STANDBY_LOSS: StandbyLoss;
    PRIMARY_WAIT_MS: number;
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
    standbyLoss: config.STRICT_STANDBY_LOSS,
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
    // The statement, its wait for the standby (cut at SYNC_COMMIT_TIMEOUT_MS) and a second for row
    // locks held by other writes of the same book and for scheduling.
    writeBudgetMs: () => config.SYNC_COMMIT_TIMEOUT_MS + WRITE_SLACK_MS,
  });
  // On Kubernetes the primary also goes into the StorePolicy status (kubectl get storepolicy).
  let report: ((facts: PrimaryFacts) => Promise<void>) | undefined;
  if (config.DISCOVERY === 'kubernetes' && config.POLICY_NAME) {
    const { databaseStatusReporter } = await import('./kubernetes/database-status.js');
    report = databaseStatusReporter({ config, name: config.POLICY_NAME, podName, logger });
  }
  const primaryIdentity = new PrimaryIdentity({
    db: control,
    logger,
    metrics,
    intervalMs: PRIMARY_POLL_MS,
    ...(report ? { report } : {}),
    onChange: (facts) => void guard.newPrimary(facts.member),
  }).start();
  const primaryWait = new PrimaryWait({
    budgetMs: config.PRIMARY_WAIT_MS,
    // Through the writes' own pool: an answer also ends its fail-fast period, so the write's next try
    // is not refused by a pool that still believes the server away.
    acceptsWrites: () => opts.primary.acceptsWrites(),
    logger,
    episodes: counter(
      metrics,
      'bazar_write_primary_waits_total',
      'Writes that waited for a writable primary (PRIMARY_WAIT_MS), by how the wait ended (served, expired, failed)',
      ['result'],
    ),
  });
  return {
    guard,
    publisher,
    fronts,
    primaryIdentity,
    primaryWait,
    async close() {
      primaryWait.close();
      primaryIdentity.close();
      guard.close();
      await fronts.close();
      await control.close();
    },
  };
}

/**
 * POST /internal/writes `{"front":"<name>"}` → `{"settleWithinMs":N,"knowsFront":bool}`: what a
 * starting front asks every catalog and order pod before it caches anything (docs/guarantees.md). A
 * pod that does not write (a catalog replica) has nothing in flight and sends every front its writes
 * through no one.
 */
export async function writesInFlightAnswer(
  publisher: InvalidationPublisher | undefined,
  body: unknown,
): Promise<{ settleWithinMs: number; knowsFront: boolean }> {
  const { front } = requireObject(body, ['front']);
  if (typeof front !== 'string' || front.length === 0 || front.length > 253) {
    throw new HttpError(400, 'invalid_body', 'front must be a string of 1-253 characters');
  }
  return publisher ? publisher.writesInFlight(front) : { settleWithinMs: 0, knowsFront: true };
}
