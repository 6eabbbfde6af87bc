import type pg from 'pg';

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
 * On a standby: the book, and whether the standby has applied all the WAL it has received (false while
 * its replay is paused or behind, i.e. it is known to miss committed writes). On a primary the LSN
 * functions are NULL, which counts as caught up.
 */
export async function findBookOnStandby(
  db: Queryable,
  id: number,
): Promise<{ book: Book | undefined; caughtUp: boolean }> {
  const res = await db.query<Book & { caught_up: boolean | null }>(
    `SELECT b.id, b.title, b.topic, b.price, b.stock, b.version, s.caught_up
       FROM (SELECT pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() AS caught_up) s
       LEFT JOIN books b ON b.id = $1`,
    [id],
  );
  const row = res.rows[0];
  const caughtUp = row?.caught_up !== false;
  if (!row || row.id === null) return { book: undefined, caughtUp };
  const { caught_up: _caughtUp, ...book } = row;
  return { book, caughtUp };
}

export async function searchBooks(db: Queryable, topic: string): Promise<BookSummary[]> {
  const res = await db.query<BookSummary>('SELECT id, title FROM books WHERE lower(topic) = $1 ORDER BY id', [
    topic,
  ]);
  return res.rows;
}

export async function setPrice(client: pg.PoolClient, id: number, price: number): Promise<Book | undefined> {
  const res = await client.query<Book>(
    `UPDATE books SET price = $2, version = version + 1 WHERE id = $1 RETURNING ${BOOK_COLUMNS}`,
    [id, price],
  );
  return res.rows[0];
}

/** Adds stock; refuses (returns 'overflow') rather than wrap past the column's range. */
export async function restock(
  client: pg.PoolClient,
  id: number,
  quantity: number,
): Promise<Book | 'overflow' | undefined> {
  const res = await client.query<Book>(
    `UPDATE books SET stock = stock + $2, version = version + 1
     WHERE id = $1 AND stock <= 2147483647 - $2 RETURNING ${BOOK_COLUMNS}`,
    [id, quantity],
  );
  if (res.rows[0]) return res.rows[0];
  return (await findBook(client, id)) ? 'overflow' : undefined;
}
