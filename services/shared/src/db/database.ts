import pg from 'pg';
import type { Logger } from '../logger.js';
import { HttpError } from '../errors.js';
import { traceQueries, tracingOn, type Queryable } from '../tracing.js';

// numeric → JS number (prices are bounded to 1e6 with two decimals, so no precision is lost);
// bigint → number (versions stay far below 2^53).
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Role = 'primary' | 'standby';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/**
 * Failures to reach the server at all (nothing was sent, so nothing can have been applied): no route,
 * refused, no answer to the connection attempt, the server not accepting connections yet. A pool that
 * merely had no free client in time ("timeout exceeded when trying to connect") is not one.
 */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
  return typeof e?.message === 'string' && /Connection terminated due to connection timeout/i.test(e.message);
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  '57P03', // cannot_connect_now: starting up or shutting down
]);

/** While a server is known unreachable, how often it is tried again in the background. */
const PROBE_INTERVAL_MS = 200;
/** How long one failed attempt (request or probe) makes requests fail at once without trying. */
const FAIL_FAST_MS = 1500;

/** True when the error means "the server is not reachable", as opposed to a problem with the query. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && (CONNECTION_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|connection error|Query read timeout|not queryable/i.test(
    message,
  );
}

/**
 * The server refused a write because it is not (or no longer) a primary: 25006 read_only_sql_transaction
 * ("cannot execute UPDATE in a read-only transaction"), as a demoted primary, or a standby that a
 * primary Service still points at during a failover, answers. Nothing was written.
 */
export function isReadOnlyServer(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '25006';
}

/** The server cancelled a statement at its statement_timeout (57014 is also a cancel by request). */
export function isStatementTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === '57014' && typeof e.message === 'string' && /statement timeout/i.test(e.message);
}

/**
 * A pg pool bound to one server role. Connection failures become a 503 naming that role
 * (`primary_unavailable`) quickly: connect timeout 1 s, statements bounded, so no request hangs on a
 * dead server. Once the server has been found unreachable, requests fail at once (no attempt, nothing
 * sent) while a background probe tries it every PROBE_INTERVAL_MS; the first probe that gets through
 * lets requests through again. Without that, every request would sit out a connect timeout: kube-proxy
 * refuses connections to a Service with no endpoints with an ICMP error, and the kernel rate-limits
 * those (one per second per peer), so most attempts get no answer at all.
 */
export class Database {
  readonly pool: pg.Pool;
  /**
   * Which server this pool reads, as the X-Database header shows it: its role and address, e.g.
   * `standby 127.0.0.1:5433` (a Service's name on Kubernetes).
   */
  readonly label: string;
  /** Until when requests fail at once (the server was found unreachable). */
  #unreachableUntil = 0;
  #probe: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    readonly role: Role,
    url: string,
    private readonly logger: Logger,
    opts: {
      applicationName: string;
      max?: number;
      statementTimeoutMs?: number;
      connectTimeoutMs?: number;
      /**
       * A writer's pool: how long a COMMIT may wait for the standby (SYNC_COMMIT_TIMEOUT_MS) before
       * CommitGuard cancels the wait. The client-side query timeout must outlast it, or a commit that
       * is still waiting (and will commit) is cut off as a lost connection.
       */
      commitWaitMs?: number;
    },
  ) {
    this.label = `${role} ${serverAddress(url)}`;
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 1000,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs ?? 5000,
      query_timeout: (opts.statementTimeoutMs ?? 5000) + (opts.commitWaitMs ?? 0) + 1000,
      application_name: opts.applicationName,
      keepAlive: true,
    });
    // Idle clients lose their server when it restarts; without a listener that error kills the process.
    this.pool.on('error', (err) =>
      this.logger.warn({ err: err.message, role }, 'idle database client failed'),
    );
    // pg-pool removes its listener from a client while it is checked out (a transaction): a server that
    // goes away then (primary stopped mid-purchase) would emit an unhandled 'error' and kill the process.
    // The failure still reaches the query in flight or the next one (the client is no longer queryable),
    // which maps it to 503 and discards the client.
    this.pool.on('connect', (client) =>
      client.on('error', (err) =>
        this.logger.debug({ err: err.message, role }, 'database connection lost while checked out'),
      ),
    );
    // With tracing on (tracing.ts), every statement on this pool's connections is a span.
    if (tracingOn()) {
      const attributes = spanAttributes(role, url);
      this.pool.on('connect', (client) => traceQueries(client as unknown as Queryable, attributes));
    }
  }

  unavailable(): HttpError {
    return new HttpError(503, `${this.role}_unavailable`, `the ${this.role} database is unavailable`);
  }

  /**
   * Maps connection failures to 503 `<role>_unavailable`, and so a statement the server cut at its
   * statement_timeout (e.g. a write queued on a row lock behind a commit that waits for the standby):
   * it did nothing. Other errors pass through.
   */
  mapError(err: unknown): unknown {
    if (err instanceof HttpError) return err;
    if (isConnectionError(err)) return this.unavailable();
    if (this.role === 'primary' && isReadOnlyServer(err)) {
      return new HttpError(
        503,
        'primary_unavailable',
        'the primary database is read-only (demoted, or a failover is under way)',
      );
    }
    if (isStatementTimeout(err)) {
      return new HttpError(
        503,
        `${this.role}_unavailable`,
        `the ${this.role} database did not finish the statement in time`,
      );
    }
    return err;
  }

  async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    if (this.knownUnreachable()) throw this.unavailable();
    try {
      return await this.pool.query<R>(text, params);
    } catch (err) {
      this.#noteFailure(err);
      throw this.mapError(err);
    }
  }

  async connect(): Promise<pg.PoolClient> {
    if (this.knownUnreachable()) throw this.unavailable();
    try {
      return await this.pool.connect();
    } catch (err) {
      this.#noteFailure(err);
      throw this.mapError(err);
    }
  }

  /** True while requests fail at once: the server was found unreachable and no probe got through since. */
  knownUnreachable(): boolean {
    return Date.now() < this.#unreachableUntil;
  }

  #noteFailure(err: unknown): void {
    if (!isUnreachable(err) || this.#closed) return;
    const first = !this.knownUnreachable() && this.#probe === undefined;
    this.#unreachableUntil = Date.now() + FAIL_FAST_MS;
    if (first) {
      this.logger.warn(
        { err: (err as Error).message, role: this.role },
        'database unreachable: failing fast',
      );
    }
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (this.#probe !== undefined || this.#closed) return;
    this.#probe = setTimeout(() => void this.#runProbe(), PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  async #runProbe(): Promise<void> {
    try {
      await this.pool.query({ text: 'SELECT 1', query_timeout: 1000 } as pg.QueryConfig);
      this.#probe = undefined;
      if (this.#unreachableUntil !== 0) {
        this.#unreachableUntil = 0;
        this.logger.info({ role: this.role }, 'database reachable again');
      }
    } catch (err) {
      this.#probe = undefined;
      // Still away (or failing in another way: then requests find out for themselves).
      if (isUnreachable(err)) this.#unreachableUntil = Date.now() + FAIL_FAST_MS;
      if (this.knownUnreachable()) this.#scheduleProbe();
    }
  }

  /**
   * A cheap reachability probe for /readyz; never throws. A ping that gets through also ends the
   * fail-fast period at once: a pod must not say it is ready while it still refuses requests.
   */
  async ping(sql = 'SELECT 1'): Promise<string> {
    try {
      await this.pool.query({ text: sql, query_timeout: 1000 } as pg.QueryConfig);
      if (this.#unreachableUntil !== 0) {
        this.#unreachableUntil = 0;
        this.logger.info({ role: this.role }, 'database reachable again');
      }
      return 'ok';
    } catch (err) {
      return `${this.role} unreachable: ${(err as Error).message}`;
    }
  }

  /**
   * Whether the server takes writes now: it answers, and it is not in recovery (a standby, or a
   * primary being demoted). What a write waiting for a primary polls (PRIMARY_WAIT_MS); never throws.
   * Like ping, an answer ends the fail-fast period at once.
   */
  async acceptsWrites(): Promise<boolean> {
    try {
      const res = await this.pool.query<{ recovery: boolean }>({
        text: 'SELECT pg_is_in_recovery() AS recovery',
        query_timeout: 1000,
      } as pg.QueryConfig);
      if (this.#unreachableUntil !== 0) {
        this.#unreachableUntil = 0;
        this.logger.info({ role: this.role }, 'database reachable again');
      }
      return res.rows[0]?.recovery === false;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#probe);
    await this.pool.end();
  }
}

/**
 * The header by which a catalog or order pod names the PostgreSQL server a read was answered from
 * (Database.label); fronts relay it on the answers that reached a database (not on cache hits).
 */
export const DATABASE_HEADER = 'X-Database';

/** host:port of a connection URL (never its credentials); `unknown` when it does not parse. */
function serverAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}`;
  } catch {
    return 'unknown';
  }
}

/** What a statement's span says about its server (OpenTelemetry's database conventions). */
function spanAttributes(role: Role, url: string): Record<string, string | number> {
  const attributes: Record<string, string | number> = {
    'db.system.name': 'postgresql',
    'bazar.database.role': role,
  };
  try {
    const u = new URL(url);
    attributes['server.address'] = u.hostname;
    attributes['server.port'] = Number(u.port || '5432');
    const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
    if (name !== '') attributes['db.namespace'] = name;
  } catch {
    // An unparsable URL fails at connect; the span says only what is known.
  }
  return attributes;
}
