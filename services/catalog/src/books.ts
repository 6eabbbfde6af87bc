import type pg from 'pg';
import { HttpError } from '../../shared/src/errors.js';
import { searchResult, type SearchPageRequest, type SearchResult } from '../../shared/src/search-page.js';

export interface Book {
  id: number;
  title: string;
  topic: string;
  price: number;
  stock: number;
  version: number;
}

export interface BookSummary {
  id: number;
  title: string;
}

const BOOK_COLUMNS = 'id, title, topic, price, stock, version';

/** Anything that runs a query: a Database (pool with error mapping) or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

export async function findBook(db: Queryable, id: number): Promise<Book | undefined> {
  const res = await db.query<Book>(`SELECT ${BOOK_COLUMNS} FROM books WHERE id = $1`, [id]);
  return res.rows[0];
}

/**
 * Whether the transaction in a row's `xmax` (the one updating it, if any) was still running for the
 * snapshot `pg_current_snapshot()` printed (`xmin:xmax:xip,…`, 64-bit xids). `xmax` is the 32-bit xid;
 * its 64-bit form is rebuilt from the snapshot's own xmax (a running xid is within 2^31 of it). Our
 * writes take no row locks but their UPDATEs, so `xmax` is a plain xid, never a MultiXact. Done here,
 * not in SQL: the same test as pg_visible_in_snapshot() in the query cost the origin's every read
 * ~0.4 ms more than the plain SELECT (bench); fetching the two texts costs nothing measurable.
 */
export function writerInFlight(xmax: string, snapshot: string): boolean {
  if (xmax === '0') return false;
  const [xminText, xmaxText, xipText] = snapshot.split(':');
  const snapXmin = BigInt(xminText ?? '0');
  const snapXmax = BigInt(xmaxText ?? '0');
  const low = BigInt(xmax);
  const EPOCH = 1n << 32n;
  const HALF = 1n << 31n;
  let xid = (snapXmax & ~(EPOCH - 1n)) | low;
  if (xid - snapXmax > HALF) xid -= EPOCH;
  else if (snapXmax - xid > HALF) xid += EPOCH;
  if (xid < snapXmin) return false;
  if (xid >= snapXmax) return true;
  return xipText !== undefined && xipText !== '' && xipText.split(',').some((x) => BigInt(x) === xid);
}

/**
 * On the primary: the book, and whether a write of it is still in flight. With `synchronous_commit =
 * remote_apply` a committing backend waits for the standby *after* its commit record is written and
 * while it still counts as running: the standby already shows the new version, a snapshot here still
 * the old one. A read that saw `writing` must not answer with this row (it would go back in time
 * against a read served by the standby): it waits for the writer instead.
 */
export async function findBookOnPrimary(
  db: Queryable,
  id: number,
): Promise<{ book: Book | undefined; writing: boolean }> {
  const res = await db.query<Book & { row_xmax: string; snap: string }>(
    `SELECT ${BOOK_COLUMNS}, xmax::text AS row_xmax, pg_current_snapshot()::text AS snap
       FROM books WHERE id = $1`,
    [id],
  );
  const row = res.rows[0];
  if (!row) return { book: undefined, writing: false };
  const { row_xmax: rowXmax, snap, ...book } = row;
  return { book, writing: writerInFlight(rowXmax, snap) };
}

/** On the primary: whether any standby streams from it (one that may show a commit before it does). */
export async function standbyStreaming(db: Queryable): Promise<boolean> {
  const res = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
  );
  return (res.rows[0]?.n ?? 0) > 0;
}

/** How a standby's replay stands (a replica's /readyz shows it, and the fronts' live page). */
export interface StandbyReplay {
  /** Its WAL receiver streams from a primary. */
  receiving: boolean;
  /** WAL received but not applied yet. */
  unappliedBytes: number;
  /** Replay paused (pg_wal_replay_pause). */
  paused: boolean;
  /** recovery_min_apply_delay, in ms (a lag made on purpose). */
  applyDelayMs: number;
  /** How long ago the last transaction it applied was committed on the primary (null: none yet). */
  lastAppliedCommitAgoMs: number | null;
  /**
   * How far its replay is behind: 0 when it has applied all it received, else how long ago the last
   * commit it applied was made (an idle primary is not lag, unlike the age of the last commit alone).
   */
  replayLagSeconds: number;
}

export async function standbyReplay(db: Queryable): Promise<StandbyReplay> {
  const res = await db.query<{
    receiving: boolean;
    unapplied: string | null;
    paused: boolean;
    delay: number;
    ago: number | null;
    lag: number;
  }>(
    `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS receiving,
            pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text AS unapplied,
            pg_get_wal_replay_pause_state() <> 'not paused' AS paused,
            (EXTRACT(EPOCH FROM current_setting('recovery_min_apply_delay')::interval) * 1000)::float8 AS delay,
            (EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS ago,
            CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn()
                 THEN 0
                 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
            END::float8 AS lag`,
  );
  const row = res.rows[0]!;
  return {
    receiving: row.receiving,
    unappliedBytes: Math.max(0, Number(row.unapplied ?? 0)),
    paused: row.paused,
    applyDelayMs: row.delay,
    lastAppliedCommitAgoMs: row.ago === null ? null : Math.round(row.ago),
    replayLagSeconds: Math.max(0, row.lag),
  };
}

/**
 * On a standby: the book, and whether the standby is known to hold every committed write: it streams
 * from a primary and has applied all the WAL it has received (false while it is not connected, e.g.
 * back from its volume before it streams, or while its replay is paused or behind). On a primary (not
 * in recovery) it is always caught up.
 */
export async function findBookOnStandby(
  db: Queryable,
  id: number,
): Promise<{ book: Book | undefined; caughtUp: boolean }> {
  const res = await db.query<Book & { caught_up: boolean | null }>(
    `SELECT b.id, b.title, b.topic, b.price, b.stock, b.version, s.caught_up
       FROM (SELECT NOT pg_is_in_recovery() OR (
               EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')
               AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()) AS caught_up) s
       LEFT JOIN books b ON b.id = $1`,
    [id],
  );
  const row = res.rows[0];
  const caughtUp = row?.caught_up === true;
  if (!row || row.id === null) return { book: undefined, caughtUp };
  const { caught_up: _caughtUp, ...book } = row;
  return { book, caughtUp };
}

/** The current version of each of `ids` that exists. */
export async function bookVersions(db: Queryable, ids: number[]): Promise<Record<string, number>> {
  const res = await db.query<{ id: number; version: number }>(
    'SELECT id, version FROM books WHERE id = ANY($1::int[])',
    [ids],
  );
  const versions: Record<string, number> = {};
  for (const row of res.rows) versions[String(row.id)] = row.version;
  return versions;
}

/**
 * One page of a topic's books (keyset, search-page.ts): the first `limit` with an id above `after`,
 * by id, and one more row that only says whether there is a next page. One statement, one snapshot;
 * the index on (lower(topic), id) (migration 5) serves it as a range scan that stops after
 * `limit + 1` rows, however deep the page.
 */
export async function searchBooks(
  db: Queryable,
  topic: string,
  page: SearchPageRequest,
): Promise<SearchResult<BookSummary>> {
  const res = await db.query<BookSummary>(
    'SELECT id, title FROM books WHERE lower(topic) = $1 AND id > $2 ORDER BY id LIMIT $3',
    [topic, page.after, page.limit + 1],
  );
  return searchResult(topic, page, res.rows);
}

export async function setPrice(client: pg.PoolClient, id: number, price: number): Promise<Book | undefined> {
  const res = await client.query<Book>(
    `UPDATE books SET price = $2, version = bazar_next_version(version) WHERE id = $1 RETURNING ${BOOK_COLUMNS}`,
    [id, price],
  );
  return res.rows[0];
}

/** Raised inside the transaction when another restock already holds this idempotency key. */
export class DuplicateKey extends Error {}

/** A restock made under an idempotency key, as first answered (its book as it was then). */
export interface KeyedRestock {
  quantity: number;
  book: Book;
}

export type RestockOutcome = { book: Book; replayed: boolean } | 'overflow' | undefined;

/**
 * Adds stock; refuses (returns 'overflow') rather than wrap past the column's range. Under an
 * idempotency key the increment and the key's row are one statement, so a restock is applied at most
 * once per key: a key already used returns its first result (`replayed`; the caller checks the book
 * and quantity match), and a concurrent restock with the same key makes this one fail on the unique
 * key (DuplicateKey: the caller rolls back and returns the winner's result).
 */
export async function restock(
  client: pg.PoolClient,
  id: number,
  quantity: number,
  idempotencyKey?: string,
): Promise<RestockOutcome> {
  if (idempotencyKey !== undefined) {
    const previous = await findRestock(client, idempotencyKey);
    if (previous) return { book: sameRestock(previous, id, quantity), replayed: true };
  }
  let res: pg.QueryResult<Book>;
  try {
    // Data-modifying CTEs always run: the key's row is written whenever the increment happened.
    res = await client.query<Book>(
      `WITH book AS (
         UPDATE books SET stock = stock + $2, version = bazar_next_version(version)
         WHERE id = $1 AND stock <= 2147483647 - $2 RETURNING ${BOOK_COLUMNS}
       ), keyed AS (
         INSERT INTO restocks (idempotency_key, book_id, quantity, price, stock, book_version)
         SELECT $3, id, $2, price, stock, version FROM book WHERE $3::text IS NOT NULL
       )
       SELECT ${BOOK_COLUMNS} FROM book`,
      [id, quantity, idempotencyKey ?? null],
    );
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new DuplicateKey();
    throw err;
  }
  if (res.rows[0]) return { book: res.rows[0], replayed: false };
  if (idempotencyKey !== undefined) {
    // Nothing was added (overflow), perhaps because a restock with this very key just committed.
    const previous = await findRestock(client, idempotencyKey);
    if (previous) return { book: sameRestock(previous, id, quantity), replayed: true };
  }
  return (await findBook(client, id)) ? 'overflow' : undefined;
}

interface RestockRow {
  book_id: number;
  quantity: number;
  title: string;
  topic: string;
  price: number;
  stock: number;
  book_version: number;
}

export async function findRestock(db: Queryable, key: string): Promise<KeyedRestock | undefined> {
  const res = await db.query<RestockRow>(
    `SELECT r.book_id, r.quantity, b.title, b.topic, r.price, r.stock, r.book_version
       FROM restocks r JOIN books b ON b.id = r.book_id WHERE r.idempotency_key = $1`,
    [key],
  );
  const row = res.rows[0];
  if (!row) return undefined;
  return {
    quantity: row.quantity,
    book: {
      id: row.book_id,
      title: row.title,
      topic: row.topic,
      price: row.price,
      stock: row.stock,
      version: row.book_version,
    },
  };
}

/** The first result of a key, if this request is the same restock; a key reused otherwise is a 422. */
export function sameRestock(previous: KeyedRestock, id: number, quantity: number): Book {
  if (previous.book.id !== id || previous.quantity !== quantity) {
    throw new HttpError(
      422,
      'idempotency_key_reused',
      `this Idempotency-Key was already used to restock book ${previous.book.id} with quantity ${previous.quantity}`,
    );
  }
  return previous.book;
}
