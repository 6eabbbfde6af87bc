import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { conflict, notFound, HttpError } from '../../shared/src/errors.js';
import type { Database } from '../../shared/src/db/database.js';

/** What a purchase returns; stored whole enough that a retry under the same key returns it again. */
export interface Purchase {
  orderId: string;
  bookId: number;
  title: string;
  price: number;
  remainingStock: number;
  /** The book version this purchase produced (fronts fence their caches with it). */
  version: number;
}

export interface Order {
  orderId: string;
  bookId: number;
  title: string;
  price: number;
  createdAt: string;
}

interface OrderRow {
  id: string;
  book_id: number;
  title: string;
  price: number;
  remaining_stock: number;
  book_version: number;
  created_at: Date;
}

const ORDER_SELECT = `SELECT o.id, o.book_id, b.title, o.price, o.remaining_stock, o.book_version, o.created_at
  FROM orders o JOIN books b ON b.id = o.book_id`;

function toPurchase(row: OrderRow): Purchase {
  return {
    orderId: row.id,
    bookId: row.book_id,
    title: row.title,
    price: row.price,
    remainingStock: row.remaining_stock,
    version: row.book_version,
  };
}

/** Raised when another request already holds this idempotency key (the statement wrote nothing). */
export class DuplicateKey extends Error {}

/**
 * One autocommit statement (run by CommitGuard.statement): the guarded decrement (never below zero: `stock > 0` in
 * the WHERE, a CHECK behind it) and the order row with its idempotency key (unique). A retry under a
 * key that already bought this book returns the first result (found when the insert hits the unique
 * key, or when nothing is left to decrement); a key used for another book is a conflict.
 */
export async function purchaseInOneStatement(
  client: pg.PoolClient,
  bookId: number,
  idempotencyKey: string | undefined,
): Promise<{ purchase: Purchase; replayed: boolean }> {
  const orderId = randomUUID();
  let bought: pg.QueryResult<{ title: string; price: number; stock: number; version: number }>;
  try {
    // Data-modifying CTEs always run, so the order row is written whenever the decrement happened.
    // A named statement: each connection parses and plans it once (it runs on every purchase).
    bought = await client.query({
      name: 'bazar-purchase',
      text: `WITH book AS (
         UPDATE books SET stock = stock - 1, version = bazar_next_version(version)
         WHERE id = $1 AND stock > 0 RETURNING id, title, price, stock, version
       ), purchase AS (
         INSERT INTO orders (id, book_id, price, idempotency_key, book_version, remaining_stock)
         SELECT $2, id, price, $3, version, stock FROM book RETURNING id
       )
       SELECT title, price, stock, version FROM book`,
      values: [bookId, orderId, idempotencyKey ?? null],
    });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new DuplicateKey();
    throw err;
  }
  const book = bought.rows[0];
  if (!book) {
    if (idempotencyKey !== undefined) {
      // Sold out now, but this very request may have bought the last copy before.
      const previous = await findByKey(client, idempotencyKey);
      if (previous) return { purchase: checkSameBook(previous, bookId), replayed: true };
    }
    const exists = await client.query('SELECT 1 FROM books WHERE id = $1', [bookId]);
    if (exists.rowCount === 0) throw notFound('book_not_found', `no book with id ${bookId}`);
    throw conflict('out_of_stock', `book ${bookId} is out of stock`);
  }
  return {
    purchase: {
      orderId,
      bookId,
      title: book.title,
      price: book.price,
      remainingStock: book.stock,
      version: book.version,
    },
    replayed: false,
  };
}

export async function findByKey(
  db: Pick<pg.PoolClient, 'query'> | Database,
  key: string,
): Promise<Purchase | undefined> {
  const res = await (db as pg.PoolClient).query<OrderRow>(`${ORDER_SELECT} WHERE o.idempotency_key = $1`, [
    key,
  ]);
  return res.rows[0] ? toPurchase(res.rows[0]) : undefined;
}

export function checkSameBook(previous: Purchase, bookId: number): Purchase {
  if (previous.bookId !== bookId) {
    throw new HttpError(
      422,
      'idempotency_key_reused',
      `this Idempotency-Key was already used to buy book ${previous.bookId}`,
    );
  }
  return previous;
}

export async function findOrder(db: Database, orderId: string): Promise<Order | undefined> {
  const res = await db.query<OrderRow>(`${ORDER_SELECT} WHERE o.id = $1`, [orderId]);
  const row = res.rows[0];
  if (!row) return undefined;
  return {
    orderId: row.id,
    bookId: row.book_id,
    title: row.title,
    price: row.price,
    createdAt: row.created_at.toISOString(),
  };
}

const isUnavailable = (err: unknown): err is HttpError => err instanceof HttpError && err.status === 503;

/**
 * GET /orders/:id. With a standby, it is asked first: an order on the standby is committed, and
 * orders never change, so that answer is final and keeps lookups working while the primary is down.
 * In `strict` mode the standby has applied every order acknowledged with `remote_apply` before its
 * answer; in `session` and `eventual` mode (and while strict writes are degraded) it may lag by the
 * newest orders. So a miss on the standby (or a standby that is down) asks the primary, which alone
 * can say 404; if the primary is down too, the truthful answer is 503 `primary_unavailable`, never a
 * 404 for an order that may have been acknowledged.
 */
export async function lookupOrder(
  dbs: { primary: Database; standby?: Database },
  orderId: string,
): Promise<{ order: Order; database: string }> {
  if (dbs.standby) {
    try {
      const order = await findOrder(dbs.standby, orderId);
      if (order) return { order, database: dbs.standby.label };
    } catch (err) {
      if (!isUnavailable(err)) throw err;
    }
  }
  let order: Order | undefined;
  try {
    order = await findOrder(dbs.primary, orderId);
  } catch (err) {
    if (!isUnavailable(err) || !dbs.standby) throw err;
    throw new HttpError(
      503,
      'primary_unavailable',
      `order ${orderId} is not on the standby and the primary database is unavailable; retry later`,
    );
  }
  if (!order) throw notFound('order_not_found', `no order ${orderId}`);
  return { order, database: dbs.primary.label };
}
