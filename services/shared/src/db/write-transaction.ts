import type pg from 'pg';
import type { Logger } from '../logger.js';
import { isConnectionError, isReadOnlyServer, type Database } from './database.js';
import { HttpError } from '../errors.js';
import { COMMIT_UNCONFIRMED_HEADER } from '../http-client.js';
import type { PolicyStore } from '../policy.js';
import type { Gauge, Counter } from 'prom-client';

/** What a strict write does when the standby has not confirmed it within SYNC_COMMIT_TIMEOUT_MS. */
export type StandbyLoss = 'refuse' | 'degrade';

/**
 * 503 `commit_outcome_unknown` for a strict write the standby did not confirm within
 * `syncTimeoutMs` (`refuse`): the write was NOT acknowledged. Its statement is left running on the
 * primary, where PostgreSQL keeps the commit invisible until a standby has applied it: it takes effect
 * then, or never (its server lost first). `ended` resolves once it has ended either way.
 */
export class UnconfirmedCommit extends HttpError {
  constructor(
    readonly ended: Promise<void>,
    timeoutMs: number,
  ) {
    super(
      503,
      'commit_outcome_unknown',
      `no standby confirmed the write within ${timeoutMs} ms: it is not acknowledged, and takes effect only ` +
        'once a standby has applied it; retry with the same Idempotency-Key',
      { [COMMIT_UNCONFIRMED_HEADER]: String(timeoutMs) },
    );
  }
}

/** How often the backends of unconfirmed commits are looked for, and how long an unreachable primary is given. */
const PENDING_POLL_MS = 250;
const PENDING_GIVE_UP_MS = 10_000;
/** How often a strict writer reads its primary's synchronous_standby_names. */
const STANDBY_NAMES_POLL_MS = 250;

/**
 * Decides how a write commits and keeps the promise of docs/guarantees.md G6:
 * - strict: `synchronous_commit = remote_apply`, so the standby has applied the write before we ack it;
 * - session / eventual: `local`; readers are fenced by version instead (or not at all, for eventual).
 * If the standby does not confirm a strict write within `syncTimeoutMs`:
 * - `refuse` (the default): the write is answered 503 `commit_outcome_unknown` and NOT acknowledged; its
 *   commit stays waiting on the primary (invisible there until a standby has it), as Patroni's
 *   synchronous_mode_strict intends. No acknowledged write is ever on one server only.
 * - `degrade`: the wait is cancelled: PostgreSQL has already committed locally, so the write is reported
 *   as committed, and the guard degrades to `local` commits until a synchronous standby streams again
 *   (visible in metrics, logs and /readyz details). Writes stay available; one acknowledged while
 *   degraded is lost if a standby that lacks it is promoted.
 * Either way, while the primary names no synchronous standby (Patroni's synchronous_mode without
 * `strict` once no standby is left: it first takes them off its `sync` key, so none of them can be
 * promoted) PostgreSQL commits without waiting, and the guard is *unreplicated*: writes stay at
 * remote_apply (they wait again the moment a standby is named) but are fenced like `session` ones
 * before they are acknowledged, since a standby that rejoins may serve reads before it has them.
 */
export class CommitGuard {
  #degradedReason: string | undefined;
  #unreplicatedReason: string | undefined;
  #standbyNamesPoll: NodeJS.Timeout | undefined;
  #standbyNamesPolling = false;
  readonly #standbyNamesPollMs: number;
  #probe: NodeJS.Timeout | undefined;
  /** Cancels of the commits now waiting for the standby (all are cut short once one times out). */
  readonly #waiting = new Set<() => void>();
  /** The session-level synchronous_commit each pooled connection is at (statement()). */
  readonly #sessionLevel = new WeakMap<pg.PoolClient, 'remote_apply' | 'local'>();
  /** `refuse`: the backends of unconfirmed commits, by pid, and what to call once each has ended. */
  readonly #pending = new Map<number, () => void>();
  #pendingPoll: NodeJS.Timeout | undefined;
  #pendingPolling = false;
  #pendingUnreachableSince: number | undefined;

  constructor(
    private readonly opts: {
      primary: Database;
      /** A separate small pool used only to cancel a stuck commit wait. */
      control: Database;
      policy: PolicyStore;
      logger: Logger;
      syncTimeoutMs: number;
      degradedGauge: Gauge;
      syncTimeouts: Counter;
      recoveryProbeMs?: number;
      /** STRICT_STANDBY_LOSS; `refuse` unless told. */
      standbyLoss?: StandbyLoss;
      /** How often synchronous_standby_names is read (STANDBY_NAMES_POLL_MS unless told). */
      standbyNamesPollMs?: number;
    },
  ) {
    opts.degradedGauge.set(0);
    this.#standbyNamesPollMs = opts.standbyNamesPollMs ?? STANDBY_NAMES_POLL_MS;
    this.#standbyNamesPoll = setInterval(() => void this.#pollStandbyNames(), this.#standbyNamesPollMs);
    this.#standbyNamesPoll.unref();
  }

  /** Why strict writes are not what strict promises now (degraded or unreplicated), if they are not. */
  get degradedReason(): string | undefined {
    return this.#degradedReason ?? this.#unreplicatedReason;
  }

  /** What /readyz shows: the mode in force and, while degraded or unreplicated, why. */
  consistencyReport(): { mode: string; degraded?: string } {
    const mode = this.opts.policy.current.consistencyMode;
    const degraded = this.degradedReason;
    return degraded === undefined ? { mode } : { mode, degraded };
  }

  /** The synchronous_commit level for the next write. */
  commitLevel(): 'remote_apply' | 'local' {
    return this.opts.policy.current.consistencyMode === 'strict' && this.#degradedReason === undefined
      ? 'remote_apply'
      : 'local';
  }

  /** Whether writes are announced to the fronts before they commit: strict mode, not degraded. */
  announcesWrites(): boolean {
    return this.commitLevel() === 'remote_apply';
  }

  /**
   * Whether a strict write just committed was confirmed by a standby, so that its settlement may follow
   * its answer: not once degraded (a local commit) or unreplicated (no standby named to wait for).
   */
  standbyConfirmed(): boolean {
    return this.commitLevel() === 'remote_apply' && this.#unreplicatedReason === undefined;
  }

  get standbyLoss(): StandbyLoss {
    return this.opts.standbyLoss ?? 'refuse';
  }

  /** Commits answered 503 (`refuse`) that still wait on the primary for a standby. */
  get unconfirmedCommits(): number {
    return this.#pending.size;
  }

  /** The book's version on the primary now (what a write that ended late left it at). */
  async versionOf(bookId: number): Promise<number | undefined> {
    const res = await this.opts.primary.query<{ version: number }>(
      'SELECT version FROM books WHERE id = $1',
      [bookId],
    );
    return res.rows[0]?.version;
  }

  /** `degrade` only: its two callers (#syncWatch, newPrimary) are never reached under `refuse`. */
  #degrade(reason: string): void {
    if (this.#degradedReason !== undefined) return;
    this.#degradedReason = reason;
    this.opts.degradedGauge.set(1);
    this.opts.logger.warn(
      { reason },
      'consistency degraded: strict writes now commit locally (session fencing)',
    );
    this.#startRecoveryProbe();
    // The other commits waiting on the same standby would each sit out their own timeout, one after
    // the other when they queue on a row lock: release them now (they are committed locally).
    for (const cancel of this.#waiting) cancel();
  }

  async #tryRecover(): Promise<void> {
    try {
      if ((await this.#syncStandbys({ caughtUp: true })) > 0) this.restore();
    } catch {
      // primary unreachable: stay degraded, try again later
    }
  }

  /**
   * Strict mode: unreplicated once the primary names no synchronous standby (its commits then wait for
   * none), until a synchronous standby streams and has caught up, as for a degradation (restore()).
   */
  async #pollStandbyNames(): Promise<void> {
    // A primary known to be away is not asked: each failure would prolong the control pool's fail-fast.
    if (this.#standbyNamesPolling || this.opts.control.knownUnreachable()) return;
    this.#standbyNamesPolling = true;
    try {
      await this.#checkStandbyNames();
    } finally {
      this.#standbyNamesPolling = false;
    }
  }

  async #checkStandbyNames(): Promise<void> {
    if (this.#unreplicatedReason !== undefined) return;
    if (this.opts.policy.current.consistencyMode !== 'strict') return;
    try {
      const res = await this.opts.control.query<{ names: string; standby: boolean }>(
        `SELECT current_setting('synchronous_standby_names') AS names, pg_is_in_recovery() AS standby`,
      );
      const row = res.rows[0];
      if (!row || row.standby || row.names.trim() !== '' || this.#unreplicatedReason !== undefined) return;
      this.#unreplicatedReason =
        'the primary names no synchronous standby (synchronous_standby_names is empty): commits wait for none';
      this.opts.degradedGauge.set(1);
      this.opts.logger.warn(
        { reason: this.#unreplicatedReason },
        'consistency degraded: strict writes are fenced by version until a synchronous standby has caught up',
      );
      this.#startRecoveryProbe();
    } catch {
      // primary unreachable: the writes find out on their own
    }
  }

  #startRecoveryProbe(): void {
    this.#probe ??= setInterval(() => void this.#tryRecover(), this.opts.recoveryProbeMs ?? 1000);
    this.#probe.unref();
  }

  /**
   * How many synchronous standbys stream from the primary; with `caughtUp`, only those that have also
   * replayed everything the primary has written so far. Asks through the control pool; throws when
   * the primary cannot be reached (each caller decides what that means).
   */
  async #syncStandbys(opts: { caughtUp: boolean }): Promise<number> {
    const replayed = opts.caughtUp ? 'AND replay_lsn IS NOT NULL AND replay_lsn >= pg_current_wal_lsn()' : '';
    const res = await this.opts.control.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_replication
       WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum') ${replayed}`,
    );
    return res.rows[0]?.n ?? 0;
  }

  /**
   * Told of a new primary (PrimaryIdentity saw another member or timeline: a failover or switchover).
   * A new primary that no synchronous standby streams from yet (Patroni's new leader, until the old one
   * rejoins) would make every strict commit wait SYNC_COMMIT_TIMEOUT_MS before degrading: degrade at
   * once instead, which also releases the commits already waiting. Restored as always, once a
   * synchronous standby streams and has caught up.
   */
  async newPrimary(member: string): Promise<void> {
    // The old server's backends, and with them its unconfirmed commits, are no longer ours to watch.
    this.#endAllPending();
    if (this.standbyLoss === 'refuse') return; // strict commits wait for the new primary's standby
    if (this.opts.policy.current.consistencyMode !== 'strict' || this.#degradedReason !== undefined) return;
    // The writes' pool has just reached the new primary; the control pool may still be failing fast
    // from the old one's outage: a ping that gets through ends that at once (Database.ping).
    await this.opts.control.ping();
    let streaming: number;
    try {
      streaming = await this.#syncStandbys({ caughtUp: false });
    } catch {
      return; // unreachable again: the commits' own timeout decides
    }
    if (streaming === 0) this.#degrade(`the new primary ${member} has no synchronous standby streaming yet`);
  }

  restore(): void {
    const was = this.degradedReason;
    if (was === undefined) return;
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.opts.logger.info({ was }, 'consistency restored: synchronous standby streaming');
    this.#degradedReason = undefined;
    this.#unreplicatedReason = undefined;
    this.opts.degradedGauge.set(0);
  }

  close(): void {
    clearInterval(this.#probe);
    clearInterval(this.#standbyNamesPoll);
    this.#endAllPending();
  }

  /**
   * `refuse`: `work` (a statement, or a COMMIT, on `client`, begun at `startedAt`) within
   * `syncTimeoutMs`, or UnconfirmedCommit. The statement is then left running; the caller drops the
   * connection (the backend does not notice while it waits: its commit completes once a standby has
   * applied it, or never), and `ended` follows the backend in pg_stat_activity.
   */
  async #withinConfirmTimeout<T>(client: pg.PoolClient, startedAt: number, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(
        () => resolve('timeout'),
        Math.max(0, startedAt + this.opts.syncTimeoutMs - performance.now()),
      );
    });
    try {
      const first = await Promise.race([work.then((value) => ({ value })), timedOut]);
      if (first !== 'timeout') {
        // A commit that waited may have been let go because the standbys were unnamed (Patroni, once
        // none is left), not confirmed: find out before it is answered, rather than at the next poll.
        if (performance.now() - startedAt > this.#standbyNamesPollMs) await this.#checkStandbyNames();
        return first.value;
      }
    } finally {
      clearTimeout(timer);
    }
    work.catch(() => undefined); // ends with the dropped connection
    this.opts.syncTimeouts.inc();
    const pid = (client as unknown as { processID: number }).processID;
    this.opts.logger.warn(
      { pid, timeoutMs: this.opts.syncTimeoutMs },
      'no standby confirmed a strict write in time: answered 503 commit_outcome_unknown, its commit left waiting',
    );
    throw new UnconfirmedCommit(this.#watchPending(pid), this.opts.syncTimeoutMs);
  }

  #watchPending(pid: number): Promise<void> {
    return new Promise((resolve) => {
      this.#pending.set(pid, resolve);
      this.#pendingPoll ??= setInterval(() => void this.#pollPending(), PENDING_POLL_MS);
    });
  }

  async #pollPending(): Promise<void> {
    if (this.#pendingPolling) return;
    this.#pendingPolling = true;
    try {
      const pids = [...this.#pending.keys()];
      const res = await this.opts.control.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state = 'active'`,
        [pids],
      );
      this.#pendingUnreachableSince = undefined;
      const running = new Set(res.rows.map((r) => r.pid));
      for (const pid of pids) if (!running.has(pid)) this.#endPending(pid);
    } catch {
      // The primary cannot be asked: its backends end with it, or a new primary (newPrimary) is found.
      this.#pendingUnreachableSince ??= performance.now();
      if (performance.now() - this.#pendingUnreachableSince > PENDING_GIVE_UP_MS) this.#endAllPending();
    } finally {
      this.#pendingPolling = false;
    }
  }

  #endPending(pid: number): void {
    this.#pending.get(pid)?.();
    this.#pending.delete(pid);
    if (this.#pending.size === 0) {
      clearInterval(this.#pendingPoll);
      this.#pendingPoll = undefined;
      this.#pendingUnreachableSince = undefined;
    }
  }

  #endAllPending(): void {
    for (const pid of [...this.#pending.keys()]) this.#endPending(pid);
  }

  /**
   * Runs `fn`, ONE autocommit statement, on the primary at the current level. The level is set on the
   * connection itself (`SET synchronous_commit`, sent only when the connection's level differs: after
   * a mode change or a degradation), so a write is one round trip and holds its row locks for exactly
   * one statement, where run() needs three (BEGIN, the statement, COMMIT). A stuck standby wait is cut
   * short as in run(); a cancel that lands before the statement commits (it was still waiting for a
   * row lock) aborts it with nothing written, and it runs once more at the degraded level.
   * Connection loss before the statement → 503 `primary_unavailable`; during it → 503
   * `commit_outcome_unknown` (retry under the idempotency key).
   */
  async statement<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const { primary } = this.opts;
    const client = await primary.connect();
    let broken = false;
    let sent = false;
    try {
      for (;;) {
        const level = this.commitLevel();
        if (this.#sessionLevel.get(client) !== level) {
          await client.query(`SET synchronous_commit = ${level}`);
          this.#sessionLevel.set(client, level);
        }
        sent = true;
        const outcome = await this.#guardedStatement(client, level, fn);
        if (outcome.done) return outcome.result;
        // Cancelled before it committed: nothing was written, and the guard is degraded now.
      }
    } catch (err) {
      if (err instanceof UnconfirmedCommit) {
        broken = true; // the statement still runs: the connection is dropped under it
        throw err;
      }
      const mapped = primary.mapError(err);
      // A read-only server wrote nothing; its connection goes, so the next one finds the new primary.
      if (isReadOnlyServer(err)) broken = true;
      if (isConnectionError(err)) {
        broken = true;
        if (sent) {
          throw new HttpError(
            503,
            'commit_outcome_unknown',
            'the database connection was lost during the write; retry with the same Idempotency-Key',
          );
        }
      }
      throw mapped;
    } finally {
      client.release(broken);
    }
  }

  /** One statement; at remote_apply, watched for a standby that does not confirm (see #syncWatch). */
  async #guardedStatement<T>(
    client: pg.PoolClient,
    level: 'remote_apply' | 'local',
    fn: (client: pg.PoolClient) => Promise<T>,
  ): Promise<{ done: true; result: T } | { done: false }> {
    if (level === 'local') return { done: true, result: await fn(client) };
    if (this.standbyLoss === 'refuse') {
      return { done: true, result: await this.#withinConfirmTimeout(client, performance.now(), fn(client)) };
    }
    const watch = this.#syncWatch(client, {});
    try {
      return { done: true, result: await fn(client) };
    } catch (err) {
      // 57014 query_canceled: our cancel reached the statement before it committed.
      if (watch.cancelled() && (err as { code?: string }).code === '57014') return { done: false };
      throw err;
    } finally {
      await watch.end();
    }
  }

  /**
   * Runs `fn` in one transaction on the primary and commits with the current level. Connection loss
   * before COMMIT → 503 `primary_unavailable` (nothing written). Connection loss *during* COMMIT →
   * 503 `commit_outcome_unknown`: the caller must retry under its idempotency key, which returns the
   * committed result if there is one.
   */
  async run<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const { primary } = this.opts;
    const client = await primary.connect();
    let broken = false;
    // The standby's time runs from the start: a transaction that first waited for a row lock held by
    // another writer's stalled commit must not then wait a whole timeout of its own.
    const startedAt = performance.now();
    try {
      const level = this.commitLevel();
      // One round trip: a simple-protocol query may carry both statements.
      await client.query(`BEGIN; SET LOCAL synchronous_commit = ${level}`);
      const refusing = level === 'remote_apply' && this.standbyLoss === 'refuse';
      const transaction = async (): Promise<T> => {
        let result: T;
        try {
          result = await fn(client);
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
          throw err;
        }
        // A degradation while this transaction ran applies to its commit too.
        let commitLevel = level;
        if (level === 'remote_apply' && this.commitLevel() === 'local') {
          commitLevel = 'local';
          await client.query('SET LOCAL synchronous_commit = local');
        }
        try {
          await (refusing ? client.query('COMMIT') : this.#commit(client, commitLevel, startedAt));
        } catch (err) {
          broken = true;
          if (err instanceof UnconfirmedCommit) throw err;
          if (primary.mapError(err) instanceof HttpError) {
            throw new HttpError(
              503,
              'commit_outcome_unknown',
              'the database connection was lost while committing; retry with the same Idempotency-Key',
            );
          }
          throw err;
        }
        return result;
      };
      // `refuse`: the whole transaction within the standby's time. Cut before its COMMIT was sent, it
      // is rolled back with the dropped connection; after, it commits once a standby has it, or never.
      return refusing
        ? await this.#withinConfirmTimeout(client, startedAt, transaction())
        : await transaction();
    } catch (err) {
      if (err instanceof UnconfirmedCommit) {
        broken = true;
        throw err;
      }
      if (!(err instanceof HttpError)) broken ||= isConnectionError(err) || isReadOnlyServer(err);
      throw primary.mapError(err);
    } finally {
      client.release(broken);
    }
  }

  async #commit(client: pg.PoolClient, level: 'remote_apply' | 'local', startedAt: number): Promise<void> {
    if (level === 'local') {
      await client.query('COMMIT');
      return;
    }
    const watch = this.#syncWatch(client, { startedAt });
    try {
      await client.query('COMMIT');
    } finally {
      await watch.end();
    }
  }

  /**
   * Watches a write at remote_apply: once `syncTimeoutMs` have passed since `startedAt` (default: now)
   * and the standby has not confirmed, the backend's wait is cancelled. PostgreSQL answers a cancelled
   * sync wait with a WARNING and the write *is* committed locally, so the guard degrades. The cancel
   * is sent only while the backend is in its SyncRep wait (every 250 ms until it is), never while the
   * statement still runs or waits for a row lock: a cancel there, or in a COMMIT before its commit
   * record, would abort the write.
   */
  #syncWatch(
    client: pg.PoolClient,
    opts: { startedAt?: number },
  ): { cancelled(): boolean; end(): Promise<void> } {
    const pid = (client as unknown as { processID: number }).processID;
    const sql = `SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity
      WHERE pid = $1 AND wait_event = 'SyncRep'`;
    let cancelled = false;
    const inFlight: Promise<unknown>[] = [];
    const cancel = () => {
      inFlight.push(
        this.opts.control.query<{ cancelled: boolean }>(sql, [pid]).then(
          (res) => {
            if (res.rows[0]?.cancelled) cancelled = true;
          },
          (err: unknown) => {
            this.opts.logger.warn(
              { err: (err as Error).message },
              'could not cancel a stuck synchronous commit',
            );
          },
        ),
      );
    };
    let repeat: NodeJS.Timeout | undefined;
    const delay = Math.max(
      0,
      (opts.startedAt ?? performance.now()) + this.opts.syncTimeoutMs - performance.now(),
    );
    const timer = setTimeout(() => {
      cancel();
      repeat = setInterval(cancel, 250);
    }, delay);
    this.#waiting.add(cancel);
    return {
      cancelled: () => cancelled,
      end: async () => {
        this.#waiting.delete(cancel);
        clearTimeout(timer);
        clearInterval(repeat);
        // A cancel still on its way must not land on this connection's next statement.
        await Promise.allSettled(inFlight);
        if (cancelled) {
          this.opts.syncTimeouts.inc();
          this.#degrade(`standby did not confirm a commit within ${this.opts.syncTimeoutMs} ms`);
        }
      },
    };
  }
}
