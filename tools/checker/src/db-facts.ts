/** Reads (and, to set a run up, writes) the database facts the checker compares a history with. */
import type pg from 'pg';
import type { BookState, DbFacts, OrderRow, RestockRow } from './history.js';

export async function readBooks(db: pg.Pool, books: readonly number[]): Promise<Map<number, BookState>> {
  const res = await db.query<{ id: number; stock: number; version: string; price: string }>(
    'SELECT id, stock, version::text, price::text FROM books WHERE id = ANY($1::int[])',
    [books],
  );
  return new Map(
    res.rows.map((r) => [r.id, { stock: r.stock, version: Number(r.version), price: Number(r.price) }]),
  );
}

/** The database's clock: order rows are selected by created_at, which the primary stamps. */
export async function dbNow(db: pg.Pool): Promise<Date> {
  const res = await db.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  return res.rows[0]!.now;
}

export async function readOrders(db: pg.Pool, books: readonly number[], since: Date): Promise<OrderRow[]> {
  const res = await db.query<{
    id: string;
    book_id: number;
    idempotency_key: string | null;
    book_version: string;
    remaining_stock: number;
  }>(
    `SELECT id::text, book_id, idempotency_key, book_version::text, remaining_stock
       FROM orders WHERE book_id = ANY($1::int[]) AND created_at >= $2`,
    [books, since],
  );
  return res.rows.map((r) => ({
    id: r.id,
    bookId: r.book_id,
    key: r.idempotency_key,
    bookVersion: Number(r.book_version),
    remainingStock: r.remaining_stock,
  }));
}

/** Every keyed restock of `books` written since `since` (the `restocks` table, one row per key). */
export async function readRestocks(
  db: pg.Pool,
  books: readonly number[],
  since: Date,
): Promise<RestockRow[]> {
  const res = await db.query<{
    idempotency_key: string;
    book_id: number;
    quantity: number;
    book_version: string;
    stock: number;
  }>(
    `SELECT idempotency_key, book_id, quantity, book_version::text, stock
       FROM restocks WHERE book_id = ANY($1::int[]) AND created_at >= $2`,
    [books, since],
  );
  return res.rows.map((r) => ({
    key: r.idempotency_key,
    bookId: r.book_id,
    quantity: r.quantity,
    bookVersion: Number(r.book_version),
    stock: r.stock,
  }));
}

/**
 * Sets the stock of the run's books as an operator would (one transaction that also bumps the
 * version), committed with remote_apply so a synchronous standby has it before the run starts. Call it
 * only while the standby streams: without one, a remote_apply commit waits.
 */
export async function setStock(db: pg.Pool, stock: Map<number, number>): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL synchronous_commit = remote_apply');
    for (const [id, n] of stock) {
      await client.query('UPDATE books SET stock = $2, version = version + 1 WHERE id = $1', [id, n]);
    }
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

/** Collects the facts for `check`: `initial` was read before the run, `since` is dbNow() from then. */
export async function collectFacts(
  db: pg.Pool,
  books: readonly number[],
  initial: Map<number, BookState>,
  since: Date,
): Promise<DbFacts> {
  return {
    initial,
    final: await readBooks(db, books),
    orders: await readOrders(db, books, since),
    restocks: await readRestocks(db, books, since),
  };
}
