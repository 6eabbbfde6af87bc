import type { Logger } from '../logger.js';
import { counter, gauge, type Metrics } from '../metrics.js';
import type { Database } from './database.js';

/** Which server a writer's primary connection reaches, and on which timeline. */
export interface PrimaryFacts {
  /**
   * The server's name: the `bazar.member` setting where the server has one (the Patroni image sets it
   * to the pod's name), else its address and port as this pod reaches it.
   */
  member: string;
  /** PostgreSQL's timeline: 1 on a new cluster, one more after every promotion. */
  timeline: number;
  /** The cluster's system identifier (pg_control_system): changes only with a new cluster. */
  systemIdentifier: string;
  /** When this writer first saw this member on this timeline (ISO 8601). */
  since: string;
}

const IDENTITY_SQL = `
  SELECT coalesce(nullif(current_setting('bazar.member', true), ''),
                  host(inet_server_addr()) || ':' || inet_server_port(),
                  'local socket') AS member,
         pg_is_in_recovery() AS in_recovery,
         CASE WHEN pg_is_in_recovery() THEN NULL
              ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
         (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier`;

/**
 * Watches the writer's primary: which member it is and its timeline, polled on the writer's control
 * pool every `intervalMs`. A failover shows as a new member on a higher timeline: logged, counted
 * (`bazar_db_primary_changes_total`), in `/readyz` (`database.primary`) and in metrics
 * (`bazar_db_primary_timeline`, `bazar_db_primary_info{member}`); whether the last poll reached a
 * primary at all is `bazar_db_primary_up` (the BazarPrimaryUnreachable alert). The catalog origin also sends the
 * timeline with its answers, so that fronts learn of a failover that may have lost writes.
 * Read-only: failover itself is Patroni's.
 */
export class PrimaryIdentity {
  #facts: PrimaryFacts | undefined;
  #lastError: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** The facts `report` has not taken yet (a change, or a report that failed): offered every poll. */
  #unreported: PrimaryFacts | undefined;
  #reporting = false;
  readonly #timelineGauge;
  readonly #up;
  readonly #info;
  readonly #changes;

  constructor(
    private readonly opts: {
      db: Database;
      logger: Logger;
      metrics: Metrics;
      intervalMs: number;
      /** Told of every new primary (the StorePolicy status); a rejection is retried at the next poll. */
      report?: (facts: PrimaryFacts) => Promise<void>;
      /** Told when the primary changes (not when it is first found): the commit guard's newPrimary. */
      onChange?: (facts: PrimaryFacts) => void;
    },
  ) {
    this.#timelineGauge = gauge(
      opts.metrics,
      'bazar_db_primary_timeline',
      'The timeline of the primary this writer reaches (one more after every promotion; 0 until known)',
    );
    // 0 until the first poll: a writer that has not reached a primary yet cannot write.
    this.#up = gauge(
      opts.metrics,
      'bazar_db_primary_up',
      '1 when the last poll reached a primary (0: an error, or a server in recovery), like pg_up',
    );
    this.#info = gauge(opts.metrics, 'bazar_db_primary_info', '1 for the primary this writer reaches', [
      'member',
    ]);
    this.#changes = counter(
      opts.metrics,
      'bazar_db_primary_changes_total',
      'Times this writer found a different primary or a new timeline (failovers and switchovers)',
    );
  }

  start(): this {
    void this.#poll();
    return this;
  }

  /** The primary as last seen; undefined until the first successful poll. */
  get facts(): PrimaryFacts | undefined {
    return this.#facts;
  }

  /** The /readyz view: the facts, and the last poll's error if it failed. */
  report(): { primary?: PrimaryFacts; error?: string } {
    return {
      ...(this.#facts ? { primary: this.#facts } : {}),
      ...(this.#lastError ? { error: this.#lastError } : {}),
    };
  }

  /** One poll; exported for tests. */
  async refresh(): Promise<void> {
    try {
      const { rows } = await this.opts.db.query<{
        member: string;
        in_recovery: boolean;
        timeline: number | null;
        system_identifier: string;
      }>(IDENTITY_SQL);
      const row = rows[0]!;
      if (row.in_recovery || row.timeline === null) {
        // A standby behind the primary Service (a failover under way): not a primary, nothing to note.
        this.#lastError = `${row.member} is in recovery (not a primary)`;
        this.#up.set(0);
        return;
      }
      this.#lastError = undefined;
      this.#up.set(1);
      this.#note(row.member, row.timeline, row.system_identifier);
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#up.set(0);
    }
    this.#offerReport();
  }

  #offerReport(): void {
    const facts = this.#unreported;
    if (!facts || !this.opts.report || this.#reporting) return;
    this.#reporting = true;
    this.opts
      .report(facts)
      .then(() => {
        if (this.#unreported === facts) this.#unreported = undefined;
      })
      .catch(() => undefined)
      .finally(() => (this.#reporting = false));
  }

  #note(member: string, timeline: number, systemIdentifier: string): void {
    const before = this.#facts;
    if (
      before &&
      before.member === member &&
      before.timeline === timeline &&
      before.systemIdentifier === systemIdentifier
    ) {
      return;
    }
    this.#facts = { member, timeline, systemIdentifier, since: new Date().toISOString() };
    this.#unreported = this.#facts;
    this.#timelineGauge.set(timeline);
    this.#info.reset();
    this.#info.set({ member }, 1);
    if (!before) {
      this.opts.logger.info({ member, timeline }, 'primary found');
      return;
    }
    this.#changes.inc();
    this.opts.logger.warn(
      { from: before.member, to: member, timelineFrom: before.timeline, timeline },
      timeline > before.timeline ? 'primary changed: a failover or switchover' : 'primary changed',
    );
    this.opts.onChange?.(this.#facts);
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    await this.refresh();
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#poll(), this.opts.intervalMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
