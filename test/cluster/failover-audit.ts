/**
 * The failover scenarios' key judgement (test/cluster/failover.test.ts): is every write the store
 * acknowledged (200) still in the database after a failover? Compares a recorded history (the
 * checker's, tools/checker) with rows read by psql inside a PostgreSQL pod, independently of the
 * checker:
 *   - an acknowledged purchase: its order row (same id, book and Idempotency-Key);
 *   - an acknowledged restock: its `restocks` row (same key, book and quantity);
 *   - an acknowledged price change (not keyed, no row of its own): the book's next state the
 *     database holds (the next order or restock row by version, or the book row itself) still has
 *     its price, unless a later price change explains the difference;
 *   - one (book, version) never names two contents (price, stock), across the history and the rows;
 *   - each book's stock is its stock before the run, minus the run's order rows, plus its restocks.
 * Versions are compared only for order (a failover may make them jump: migration 4 of the services
 * gives every timeline versions above the last one's), never by arithmetic.
 */
import { outcome, type Op } from '../../tools/checker/src/history.js';

export interface OrderRowDb {
  id: string;
  bookId: number;
  key: string;
  version: number;
  remainingStock: number;
  price: number;
}

export interface RestockRowDb {
  key: string;
  bookId: number;
  quantity: number;
  version: number;
  stock: number;
  price: number;
}

export interface BookRowDb {
  version: number;
  stock: number;
  price: number;
}

/** What psql read in one pod: the run's rows (by its key prefix) and its books. */
export interface DbRows {
  orders: OrderRowDb[];
  restocks: RestockRowDb[];
  books: Map<number, BookRowDb>;
}

/** A book's content at one version, as something showed it. */
export interface BookState {
  bookId: number;
  version: number;
  price: number;
  stock?: number;
  /** What showed it: `order <id>`, `restock <key>`, `book row`, or `<kind> op <id>`. */
  source: string;
}

export interface LostPrice {
  op: Op;
  /** The database's next state of the book after the change's version, with another price. */
  next: BookState;
}

export interface Conflict {
  bookId: number;
  version: number;
  states: BookState[];
}

export interface StockMismatch {
  bookId: number;
  initial: number;
  orders: number;
  restocked: number;
  expected: number;
  actual: number | undefined;
}

export interface Audit {
  acknowledged: { purchases: number; restocks: number; setPrices: number };
  /** Acknowledged price changes the rows confirm / that a later acknowledged change hid. */
  pricesConfirmed: number;
  pricesSuperseded: number;
  lostOrders: Op[];
  lostRestocks: Op[];
  lostPrices: LostPrice[];
  conflicts: Conflict[];
  stock: StockMismatch[];
  /** Acknowledged writes that are not in the database: lost orders, restocks and price changes. */
  lost: number;
}

const isWriteKind = (o: Op): boolean => o.kind !== 'read';
const acknowledged = (o: Op): boolean => isWriteKind(o) && outcome(o) === 'ok';

/** The state an acknowledged write's answer showed (undefined when it showed no version). */
export function stateOfOp(o: Op): BookState | undefined {
  if (o.version === undefined || o.resultPrice === undefined) return undefined;
  const stock = o.kind === 'purchase' ? o.remainingStock : o.stock;
  return {
    bookId: o.bookId,
    version: o.version,
    price: o.resultPrice,
    ...(stock !== undefined ? { stock } : {}),
    source: `${o.kind} op ${o.id}`,
  };
}

/** Every state the rows show: each order and restock row, and each book row. */
export function statesOfRows(rows: DbRows): BookState[] {
  return [
    ...rows.orders.map((r) => ({
      bookId: r.bookId,
      version: r.version,
      price: r.price,
      stock: r.remainingStock,
      source: `order ${r.id}`,
    })),
    ...rows.restocks.map((r) => ({
      bookId: r.bookId,
      version: r.version,
      price: r.price,
      stock: r.stock,
      source: `restock ${r.key}`,
    })),
    ...[...rows.books].map(([bookId, b]) => ({
      bookId,
      version: b.version,
      price: b.price,
      stock: b.stock,
      source: 'book row',
    })),
  ];
}

/**
 * `history`: the whole history (recorded operations and the settling retries); `initialStock`: each
 * book's stock before the run; `rows`: the run's rows as one pod holds them.
 */
export function audit(
  history: readonly Op[],
  initialStock: ReadonlyMap<number, number>,
  rows: DbRows,
): Audit {
  const acked = history.filter(acknowledged);
  const orderById = new Map(rows.orders.map((r) => [r.id, r]));
  const restockByKey = new Map(rows.restocks.map((r) => [r.key, r]));

  const lostOrders = acked.filter((o) => {
    if (o.kind !== 'purchase') return false;
    const row = o.orderId === undefined ? undefined : orderById.get(o.orderId);
    return !row || row.bookId !== o.bookId || row.key !== o.key;
  });
  const lostRestocks = acked.filter((o) => {
    if (o.kind !== 'restock') return false;
    const row = o.key === undefined ? undefined : restockByKey.get(o.key);
    return !row || row.bookId !== o.bookId || row.quantity !== o.quantity;
  });

  // Price changes: the database's own states of each book, by version.
  const dbStates = statesOfRows(rows).sort((a, b) => a.version - b.version);
  const setPrices = history.filter((o) => o.kind === 'set-price');
  const lostPrices: LostPrice[] = [];
  let pricesConfirmed = 0;
  let pricesSuperseded = 0;
  for (const op of acked) {
    if (op.kind !== 'set-price' || op.version === undefined) continue;
    const v = op.version;
    const same = dbStates.find((s) => s.bookId === op.bookId && s.version === v);
    const next = same ?? dbStates.find((s) => s.bookId === op.bookId && s.version > v);
    if (!next) {
      // The rows hold nothing at or after its version: the book went back behind it.
      const row = rows.books.get(op.bookId);
      lostPrices.push({
        op,
        next: {
          bookId: op.bookId,
          version: row?.version ?? 0,
          price: row?.price ?? NaN,
          ...(row ? { stock: row.stock } : {}),
          source: row ? 'book row (older than the change)' : 'no book row',
        },
      });
      continue;
    }
    if (next.price === op.resultPrice) {
      pricesConfirmed++;
      continue;
    }
    if (same) {
      // The same version with another price: a version named two contents.
      lostPrices.push({ op, next });
      continue;
    }
    // Another price at the next state: a later acknowledged change (version in (v, next]) hid this one;
    // or one whose answer was lost (5xx, no answer) set exactly that price; else this one is gone.
    const hidden = setPrices.some(
      (o) =>
        o !== op &&
        o.bookId === op.bookId &&
        ((outcome(o) === 'ok' && o.version !== undefined && o.version > v && o.version <= next.version) ||
          (outcome(o) === 'unknown' && o.price === next.price)),
    );
    if (hidden) pricesSuperseded++;
    else lostPrices.push({ op, next });
  }

  // One (book, version), one content: every acknowledged answer and every row.
  const all = [...acked.map(stateOfOp).filter((s): s is BookState => s !== undefined), ...dbStates];
  const byVersion = new Map<string, BookState[]>();
  for (const s of all) {
    const k = `${s.bookId}@${s.version}`;
    byVersion.set(k, [...(byVersion.get(k) ?? []), s]);
  }
  const conflicts: Conflict[] = [];
  for (const states of byVersion.values()) {
    const prices = new Set(states.map((s) => s.price));
    const stocks = new Set(states.filter((s) => s.stock !== undefined).map((s) => s.stock));
    if (prices.size > 1 || stocks.size > 1) {
      conflicts.push({ bookId: states[0]!.bookId, version: states[0]!.version, states });
    }
  }

  const stock: StockMismatch[] = [];
  for (const [bookId, initial] of initialStock) {
    const orders = rows.orders.filter((r) => r.bookId === bookId).length;
    const restocked = rows.restocks.filter((r) => r.bookId === bookId).reduce((n, r) => n + r.quantity, 0);
    const expected = initial - orders + restocked;
    const actual = rows.books.get(bookId)?.stock;
    if (actual !== expected) stock.push({ bookId, initial, orders, restocked, expected, actual });
  }

  return {
    acknowledged: {
      purchases: acked.filter((o) => o.kind === 'purchase').length,
      restocks: acked.filter((o) => o.kind === 'restock').length,
      setPrices: acked.filter((o) => o.kind === 'set-price').length,
    },
    pricesConfirmed,
    pricesSuperseded,
    lostOrders,
    lostRestocks,
    lostPrices,
    conflicts,
    stock,
    lost: lostOrders.length + lostRestocks.length + lostPrices.length,
  };
}

/** One line for the log and the summary. */
export function describeAudit(a: Audit): string {
  return (
    `acknowledged ${a.acknowledged.purchases} purchases, ${a.acknowledged.restocks} restocks, ` +
    `${a.acknowledged.setPrices} price changes (${a.pricesConfirmed} confirmed by the next state, ${a.pricesSuperseded} hidden by a later change); ` +
    `lost: ${a.lostOrders.length} orders, ${a.lostRestocks.length} restocks, ${a.lostPrices.length} price changes; ` +
    `${a.conflicts.length} versions with two contents; ${a.stock.length} stock mismatches`
  );
}

/** The evidence of every finding, one per line (at most `max`). */
export function auditFindings(a: Audit, max = 30): string {
  const lines = [
    ...a.lostOrders.map(
      (o) =>
        `lost order: purchase op ${o.id} [${o.invoke.toFixed(0)} → ${o.complete.toFixed(0)} ms] book ${o.bookId} key ${o.key} order ${o.orderId} v${o.version}`,
    ),
    ...a.lostRestocks.map(
      (o) =>
        `lost restock: op ${o.id} [${o.invoke.toFixed(0)} → ${o.complete.toFixed(0)} ms] book ${o.bookId} key ${o.key} +${o.quantity} v${o.version}`,
    ),
    ...a.lostPrices.map(
      (l) =>
        `lost price change: op ${l.op.id} [${l.op.invoke.toFixed(0)} → ${l.op.complete.toFixed(0)} ms] book ${l.op.bookId} price ${l.op.resultPrice} at v${l.op.version}; ` +
        `next in the database: ${l.next.source} v${l.next.version} price ${l.next.price}`,
    ),
    ...a.conflicts.map(
      (c) =>
        `book ${c.bookId} v${c.version} names ${c.states.length} states: ` +
        c.states.map((s) => `${s.source} price ${s.price} stock ${s.stock ?? '?'}`).join('; '),
    ),
    ...a.stock.map(
      (s) =>
        `book ${s.bookId}: stock ${s.actual} in the database, expected ${s.expected} (${s.initial} - ${s.orders} orders + ${s.restocked} restocked)`,
    ),
  ];
  return lines.slice(0, max).join('\n') + (lines.length > max ? `\n... ${lines.length - max} more` : '');
}
