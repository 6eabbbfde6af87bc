import pg from 'pg';
import type { Logger } from '../logger.js';
import { HttpError } from '../errors.js';

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
 * A pg pool bound to one server role. Connection failures become a 503 naming that role
 * (`primary_unavailable`) quickly: connect timeout 1 s, statements bounded, so no request hangs on a
 * dead server.
 */
export class Database {
  readonly pool: pg.Pool;

  constructor(
    readonly role: Role,
    url: string,
    private readonly logger: Logger,
    opts: { applicationName: string; max?: number; statementTimeoutMs?: number; connectTimeoutMs?: number },
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 1000,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs ?? 5000,
      query_timeout: (opts.statementTimeoutMs ?? 5000) + 1000,
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
  }

  unavailable(): HttpError {
    return new HttpError(503, `${this.role}_unavailable`, `the ${this.role} database is unavailable`);
  }

  /** Maps connection failures to 503 `<role>_unavailable`; other errors pass through. */
  mapError(err: unknown): unknown {
    if (err instanceof HttpError) return err;
    if (isConnectionError(err)) return this.unavailable();
    return err;
  }

  async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, params);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /** A cheap reachability probe for /readyz; never throws. */
  async ping(sql = 'SELECT 1'): Promise<string> {
    try {
      await this.pool.query({ text: sql, query_timeout: 1000 } as pg.QueryConfig);
      return 'ok';
    } catch (err) {
      return `${this.role} unreachable: ${(err as Error).message}`;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
