/**
 * The history-based consistency checker. It reads a recorded history (history.ts) and the database's
 * facts, and reports every violation of docs/guarantees.md it can prove, each with the slice of history
 * that shows it:
 *
 * - oversell, stock-mismatch, spurious-sold-out: no copy sold twice, stock never below zero, stock
 *   changed by exactly the order rows and keyed restocks written, and "sold out" only when it was (guarantees.md G1);
 * - lost-order, duplicate-order, phantom-order: exactly one order row per successful purchase, none
 *   for a rejected one, none that no client asked for (guarantees.md G1, idempotency keys);
 * - read-your-writes, monotonic-reads: per client (session), by book version (guarantees.md G2);
 * - stale-read: real time across clients: a read invoked after a write was acknowledged to anyone
 *   never shows an older version (guarantees.md G2, guarantees.md G3);
 * - real-time-read: real time between reads (strict mode's linearizable reads): a read invoked after
 *   another read completed, whichever client, front or pod served either, never shows an older version;
 * - version-conflict: one version of a book always shows the same stock and price;
 * - lost-restock, duplicate-restock, phantom-restock: a keyed restock is applied exactly once when it
 *   was acknowledged, never when it was rejected, and never under a key nobody sent.
 *
 * Which of these a store promises depends on its consistency mode: kindsFor(mode) below.
 *
 * The run must own its books: no writers but its clients while it runs (restocks only under keys).
 */
import { outcome, type BookState, type DbFacts, type Op, type OrderRow, type RestockRow } from './history.js';

/** The store's consistency modes (the same union as the devstack's and the services' config). */
export type ConsistencyMode = 'strict' | 'session' | 'eventual';

export const VIOLATION_KINDS = [
  'oversell',
  'stock-mismatch',
  'spurious-sold-out',
  'lost-order',
  'duplicate-order',
  'phantom-order',
  'read-your-writes',
  'monotonic-reads',
  'stale-read',
  'real-time-read',
  'version-conflict',
  'lost-restock',
  'duplicate-restock',
  'phantom-restock',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export const CONSISTENCY_MODES: readonly ConsistencyMode[] = ['strict', 'session', 'eventual'];

/**
 * The read rules and the modes that promise them: the one table of what each mode is checked for.
 * Every kind not listed here (stock, orders, restocks, one state per version) holds in every mode.
 *
 * - strict: linearizable reads and writes of a book: after a write was acknowledged, and after a read
 *   completed, no read shows an older version (stale-read, real-time-read), whoever issued either;
 * - session: per client, across fronts (the client carries its session in X-Min-Version): its own
 *   writes (read-your-writes), never older than it read before (monotonic-reads); and no read invoked
 *   after an acknowledged write shows an older version (stale-read, the writer's fence);
 * - eventual: none of the read rules.
 */
export const READ_RULES = {
  'read-your-writes': ['strict', 'session'],
  'monotonic-reads': ['strict', 'session'],
  'stale-read': ['strict', 'session'],
  'real-time-read': ['strict'],
} as const satisfies Partial<Record<ViolationKind, readonly ConsistencyMode[]>>;

/** The kinds a store in this mode promises never to show (in VIOLATION_KINDS order). */
export function kindsFor(mode: ConsistencyMode): ViolationKind[] {
  if (!CONSISTENCY_MODES.includes(mode)) throw new Error(`unknown consistency mode: ${String(mode)}`);
  const rules: Partial<Record<ViolationKind, readonly ConsistencyMode[]>> = READ_RULES;
  return VIOLATION_KINDS.filter((k) => rules[k]?.includes(mode) ?? true);
}

/**
 * What check() checks when given neither `kinds` nor `mode`: every kind but real-time-read (the rule
 * only strict mode promises), the set it checked before the modes were explicit. A caller that
 * knows its store's mode passes `mode`.
 */
export const DEFAULT_KINDS: readonly ViolationKind[] = VIOLATION_KINDS.filter((k) => k !== 'real-time-read');

/** Where two reads were answered: by the same front (X-Front) or by two different ones. */
export type FrontRelation = 'same-front' | 'cross-front';

export interface Violation {
  kind: ViolationKind;
  message: string;
  /** The operations that show it, in invoke order. */
  ops: Op[];
  /** Read-order violations (monotonic-reads, real-time-read): were both reads answered by one front? */
  relation?: FrontRelation;
}

export interface CheckStats {
  ops: number;
  reads: number;
  readsOk: number;
  purchases: { ok: number; failed: number; unknown: number; soldOut: number };
  setPrices: { ok: number; failed: number; unknown: number };
  restocks: { ok: number; failed: number; unknown: number };
  orderRows: number;
  restockRows: number;
  /** Successful reads by how the front answered: from its cache, a miss, or bypassing it (no-cache). */
  readPaths: { hit: number; miss: number; bypass: number };
  /**
   * How many (earlier op, later read) pairs each session/real-time rule compared (staleRead: the
   * newest write acknowledged before the read; realTimeRead: the newest read completed before it).
   */
  compared: {
    readYourWrites: number;
    monotonicReads: number;
    staleRead: number;
    realTimeRead: number;
    /** Read-after-read pairs that went back in time inside a degraded interval (not violations). */
    realTimeReadExempt: number;
    versions: number;
  };
  connFailures: number;
}

export interface CheckReport {
  ok: boolean;
  stats: CheckStats;
  violations: Violation[];
  /** Violations per kind. */
  counts: Partial<Record<ViolationKind, number>>;
  /** Read-order violations per kind, split by whether both reads were answered by the same front. */
  byFront: Partial<Record<ViolationKind, Record<FrontRelation, number>>>;
}

/** A stretch of the history's clock (ms), e.g. one during which strict writes were degraded. */
export interface Interval {
  from: number;
  to: number;
}

export interface CheckOptions {
  /**
   * Kinds to check. Default: kindsFor(mode) when `mode` is given, otherwise DEFAULT_KINDS (all but
   * real-time-read). `eventual` mode promises none of the read rules.
   */
  kinds?: readonly ViolationKind[];
  /** The store's consistency mode: the rules it promises (kindsFor), unless `kinds` is given. */
  mode?: ConsistencyMode;
  /** At most this many violations kept per kind (all are counted). Default 20. */
  maxPerKind?: number;
  /** At most this many operations in one violation's slice. Default 12. */
  maxSlice?: number;
  /**
   * When strict writes were degraded (docs/guarantees.md G2): a read-after-read pair that overlaps
   * one of these is not held to real-time-read (it is counted as exempt instead).
   */
  degraded?: readonly Interval[];
}

const isWrite = (op: Op) => op.kind === 'purchase' || op.kind === 'set-price' || op.kind === 'restock';

export function check(history: readonly Op[], db: DbFacts, options: CheckOptions = {}): CheckReport {
  const kinds = new Set(options.kinds ?? (options.mode ? kindsFor(options.mode) : DEFAULT_KINDS));
  const maxPerKind = options.maxPerKind ?? 20;
  const maxSlice = options.maxSlice ?? 12;
  const violations: Violation[] = [];
  const counts: Partial<Record<ViolationKind, number>> = {};
  const byFront: Partial<Record<ViolationKind, Record<FrontRelation, number>>> = {};
  const report: Report = (kind, message, ops, relation) => {
    if (!kinds.has(kind)) return;
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (relation) {
      const split = (byFront[kind] ??= { 'same-front': 0, 'cross-front': 0 });
      split[relation]++;
    }
    if ((counts[kind] ?? 0) > maxPerKind) return;
    const unique = [...new Map(ops.map((o) => [o.id, o])).values()].sort(byInvoke);
    const slice =
      unique.length > maxSlice
        ? [...unique.slice(0, maxSlice - 2), ...unique.slice(-2)].filter(
            (o, i, a) => a.findIndex((x) => x.id === o.id) === i,
          )
        : unique;
    violations.push({ kind, message, ops: slice, ...(relation ? { relation } : {}) });
  };

  const ops = [...history].sort(byInvoke);
  const stats = statsOf(ops, db);
  checkStock(ops, db, report);
  checkOrders(ops, db, report);
  checkRestocks(ops, db, report);
  checkSessions(ops, stats, report, maxSlice);
  checkRealTime(ops, stats, report);
  checkRealTimeReads(ops, stats, report, options.degraded ?? []);
  checkVersions(ops, stats, report);
  return {
    ok: violations.length === 0 && Object.keys(counts).length === 0,
    stats,
    violations,
    counts,
    byFront,
  };
}

type Report = (kind: ViolationKind, message: string, ops: Op[], relation?: FrontRelation) => void;

/** How a read was answered: from the front's cache (hit), a miss, or bypassing the cache (no-cache). */
export function readPath(op: Op): 'hit' | 'miss' | 'bypass' | '?' {
  if (op.noCache) return 'bypass';
  return op.cache === 'hit' || op.cache === 'miss' ? op.cache : '?';
}

/** "front-1 miss served by catalog-origin-0", "front-0 hit", "front-0 bypass served by catalog-replica-0". */
export function describeRead(op: Op): string {
  const path = readPath(op);
  const served = path !== 'hit' && op.servedBy ? ` served by ${op.servedBy}` : '';
  const sentTo = op.clientFront ? ` (sent to ${op.clientFront})` : '';
  return `${op.front ?? '?'}${sentTo} ${path}${served}`;
}

/** Same front when both answers name the same front (X-Front); otherwise cross-front. */
export function frontRelation(a: Op, b: Op): FrontRelation {
  return a.front !== undefined && a.front === b.front ? 'same-front' : 'cross-front';
}

function byInvoke(a: Op, b: Op): number {
  return a.invoke - b.invoke || a.id - b.id;
}

function statsOf(ops: Op[], db: DbFacts): CheckStats {
  const stats: CheckStats = {
    ops: ops.length,
    reads: 0,
    readsOk: 0,
    purchases: { ok: 0, failed: 0, unknown: 0, soldOut: 0 },
    setPrices: { ok: 0, failed: 0, unknown: 0 },
    restocks: { ok: 0, failed: 0, unknown: 0 },
    orderRows: db.orders.length,
    restockRows: db.restocks?.length ?? 0,
    readPaths: { hit: 0, miss: 0, bypass: 0 },
    compared: {
      readYourWrites: 0,
      monotonicReads: 0,
      staleRead: 0,
      realTimeRead: 0,
      realTimeReadExempt: 0,
      versions: 0,
    },
    connFailures: 0,
  };
  for (const op of ops) {
    stats.connFailures += op.connFailures?.length ?? 0;
    const o = outcome(op);
    if (op.kind === 'read') {
      stats.reads++;
      if (o === 'ok') {
        stats.readsOk++;
        const path = readPath(op);
        if (path !== '?') stats.readPaths[path]++;
      }
    } else if (op.kind === 'purchase') {
      stats.purchases[o]++;
      if (op.error === 'out_of_stock') stats.purchases.soldOut++;
    } else if (op.kind === 'restock') {
      stats.restocks[o]++;
    } else {
      stats.setPrices[o]++;
    }
  }
  return stats;
}

/**
 * guarantees.md G1 on the stock: no copy sold twice, never below zero, stock accounted for by order rows and
 * keyed restocks (the `restocks` rows: what was really added, whatever the clients were told).
 */
function checkStock(ops: Op[], db: DbFacts, report: Report): void {
  const rowsByBook = groupBy(db.orders, (r) => r.bookId);
  const restocksByBook = groupBy(db.restocks ?? [], (r) => r.bookId);
  // The latest moment each key's restock may have been applied: the end of its last attempt.
  const lastAttempt = new Map<string, number>();
  for (const op of ops) {
    if (op.kind === 'restock' && op.key !== undefined)
      lastAttempt.set(op.key, Math.max(lastAttempt.get(op.key) ?? -Infinity, op.complete));
  }
  const purchasesByBook = groupBy(
    ops.filter((o) => o.kind === 'purchase'),
    (o) => o.bookId,
  );
  const books = new Set([...purchasesByBook.keys(), ...rowsByBook.keys()]);
  for (const bookId of books) {
    const purchases = purchasesByBook.get(bookId) ?? [];
    const ok = purchases.filter((o) => outcome(o) === 'ok');
    const rows = rowsByBook.get(bookId) ?? [];
    const restocks = restocksByBook.get(bookId) ?? [];
    const added = restocks.reduce((n, r) => n + r.quantity, 0);
    const initial = db.initial.get(bookId);
    const final = db.final.get(bookId);
    const okByComplete = [...ok].sort((a, b) => a.complete - b.complete);

    for (const op of ok) {
      if (op.remainingStock !== undefined && op.remainingStock < 0) {
        report(
          'oversell',
          `book ${bookId}: purchase acknowledged with remaining stock ${op.remainingStock}`,
          [op],
        );
      }
    }
    // A restock can bring the stock back to a value it had before: then only versions must differ.
    const unique =
      restocks.length === 0
        ? ([
            ['remainingStock', 'remaining stock'],
            ['version', 'version'],
          ] as const)
        : ([['version', 'version']] as const);
    for (const [field, label] of unique) {
      const seen = new Map<number, Op>();
      for (const op of ok) {
        const value = op[field];
        if (value === undefined) continue;
        const other = seen.get(value);
        // Two different orders (replays of one key share one order) that left the same stock or made
        // the same version sold one copy twice.
        if (other && other.orderId !== op.orderId) {
          report(
            'oversell',
            `book ${bookId}: orders ${other.orderId} and ${op.orderId} both acknowledged with ${label} ${value} (one copy sold twice)`,
            [other, op],
          );
        } else seen.set(value, op);
      }
    }
    if (initial) {
      const distinctOrders = new Set(ok.map((o) => o.orderId));
      const supply = `a starting stock of ${initial.stock}${added ? ` and ${added} restocked` : ''}`;
      if (distinctOrders.size > initial.stock + added) {
        report(
          'oversell',
          `book ${bookId}: ${distinctOrders.size} purchases acknowledged with ${supply}`,
          okByComplete.slice(-4),
        );
      }
      if (rows.length > initial.stock + added) {
        report(
          'oversell',
          `book ${bookId}: ${rows.length} order rows written with ${supply}`,
          okByComplete.slice(-4),
        );
      }
    }
    if (final && final.stock < 0) {
      report('oversell', `book ${bookId}: stock is ${final.stock} after the run`, okByComplete.slice(-4));
    }
    if (initial && final && initial.stock - final.stock !== rows.length - added) {
      report(
        'stock-mismatch',
        `book ${bookId}: stock went from ${initial.stock} to ${final.stock} (${final.stock - initial.stock >= 0 ? '+' : '−'}${Math.abs(final.stock - initial.stock)}) but ${rows.length} order rows${added ? ` and ${added} restocked copies` : ''} were written`,
        okByComplete.slice(-4),
      );
    }
    if (final && final.stock > 0) {
      for (const op of purchases) {
        if (op.error !== 'out_of_stock') continue;
        // The stock was 0 at some moment of this purchase; what is left now must have been added
        // since: by restocks whose last attempt ended after the purchase was invoked.
        const later = restocks
          .filter((r) => (lastAttempt.get(r.key) ?? Infinity) > op.invoke)
          .reduce((n, r) => n + r.quantity, 0);
        if (final.stock > later) {
          report(
            'spurious-sold-out',
            `book ${bookId}: purchase answered out_of_stock, yet ${final.stock} copies are left after the run` +
              (later ? ` (at most ${later} restocked after it)` : ''),
            [op],
          );
        }
      }
    }
  }
}

/** Exactly one order row per successful purchase; none for a rejected one; none nobody asked for. */
function checkOrders(ops: Op[], db: DbFacts, report: Report): void {
  const purchases = ops.filter((o) => o.kind === 'purchase');
  const byKey = groupBy(
    purchases.filter((o) => o.key !== undefined),
    (o) => o.key as string,
  );
  const rowsByKey = groupBy(
    db.orders.filter((r) => r.key !== null),
    (r) => r.key as string,
  );
  const rowById = new Map(db.orders.map((r) => [r.id, r]));

  for (const [key, rows] of rowsByKey) {
    if (rows.length > 1) {
      report(
        'duplicate-order',
        `key ${key}: ${rows.length} order rows (${rows.map((r) => r.id).join(', ')})`,
        byKey.get(key) ?? [],
      );
    }
  }
  for (const op of purchases) {
    if (outcome(op) !== 'ok') continue;
    const row = op.orderId !== undefined ? rowById.get(op.orderId) : undefined;
    if (!row) {
      report('lost-order', `purchase acknowledged order ${op.orderId ?? '(none)'} but no such row exists`, [
        op,
      ]);
    } else if (row.bookId !== op.bookId || (op.key !== undefined && row.key !== op.key)) {
      report(
        'lost-order',
        `purchase acknowledged order ${op.orderId} for book ${op.bookId} key ${op.key}, but that row is for book ${row.bookId} key ${row.key}`,
        [op],
      );
    }
  }
  // Different acknowledged orders under one key: the key bought twice.
  for (const [key, keyed] of byKey) {
    const orderIds = new Set(keyed.filter((o) => outcome(o) === 'ok').map((o) => o.orderId));
    if (orderIds.size > 1) {
      report('duplicate-order', `key ${key}: acknowledged as ${orderIds.size} different orders`, keyed);
    }
  }
  const keysOk = new Set(purchases.filter((o) => outcome(o) === 'ok' && o.key).map((o) => o.key));
  for (const row of db.orders) {
    if (row.key === null) {
      report(
        'phantom-order',
        `order ${row.id} (book ${row.bookId}) has no idempotency key: no client sent it`,
        [],
      );
      continue;
    }
    const keyed = byKey.get(row.key);
    if (!keyed) {
      report(
        'phantom-order',
        `order ${row.id} (book ${row.bookId}) has key ${row.key}, which no client sent`,
        [],
      );
    } else if (!keysOk.has(row.key) && keyed.every((o) => outcome(o) === 'failed')) {
      report(
        'phantom-order',
        `order ${row.id} exists though every request with key ${row.key} was rejected (${keyed.map((o) => `${o.status} ${o.error ?? ''}`.trim()).join(', ')})`,
        keyed,
      );
    }
  }
}

/**
 * Keyed restocks: an acknowledged one has its row (same book, quantity, and the version it reported),
 * one key is never acknowledged as two different restocks, and no row exists for a key nobody sent or
 * whose every attempt was rejected.
 */
function checkRestocks(ops: Op[], db: DbFacts, report: Report): void {
  const restocks = ops.filter((o) => o.kind === 'restock' && o.key !== undefined);
  const byKey = groupBy(restocks, (o) => o.key as string);
  const rowByKey = new Map<string, RestockRow>((db.restocks ?? []).map((r) => [r.key, r]));
  for (const op of restocks) {
    if (outcome(op) !== 'ok') continue;
    const row = rowByKey.get(op.key as string);
    if (!row) {
      report('lost-restock', `restock acknowledged under key ${op.key} but no such row exists`, [op]);
    } else if (row.bookId !== op.bookId || row.quantity !== op.quantity || row.bookVersion !== op.version) {
      report(
        'lost-restock',
        `restock acknowledged under key ${op.key} as book ${op.bookId} +${op.quantity} at version ${op.version}, ` +
          `but its row is book ${row.bookId} +${row.quantity} at version ${row.bookVersion}`,
        [op],
      );
    }
  }
  for (const [key, keyed] of byKey) {
    const versions = new Set(keyed.filter((o) => outcome(o) === 'ok').map((o) => o.version));
    if (versions.size > 1) {
      report(
        'duplicate-restock',
        `key ${key}: acknowledged as ${versions.size} different restocks (versions ${[...versions].join(', ')})`,
        keyed,
      );
    }
  }
  for (const row of db.restocks ?? []) {
    const keyed = byKey.get(row.key);
    if (!keyed) {
      report(
        'phantom-restock',
        `restock row for book ${row.bookId} has key ${row.key}, which no client sent`,
        [],
      );
    } else if (keyed.every((o) => outcome(o) === 'failed')) {
      report(
        'phantom-restock',
        `restock row exists though every request with key ${row.key} was rejected (${keyed.map((o) => `${o.status} ${o.error ?? ''}`.trim()).join(', ')})`,
        keyed,
      );
    }
  }
}

/** Read-your-writes and monotonic reads, per client, by book version. */
function checkSessions(ops: Op[], stats: CheckStats, report: Report, maxSlice: number): void {
  const byClient = groupBy(ops, (o) => o.client);
  for (const clientOps of byClient.values()) {
    const written = new Map<number, Op>();
    const read = new Map<number, Op>();
    for (const op of clientOps) {
      if (outcome(op) !== 'ok' || op.version === undefined) continue;
      if (op.kind === 'read') {
        const write = written.get(op.bookId);
        if (write) {
          stats.compared.readYourWrites++;
          if (op.version < (write.version ?? 0)) {
            report(
              'read-your-writes',
              `client ${op.client}: read book ${op.bookId} at version ${op.version} after its own ${write.kind} was acknowledged at version ${write.version} ` +
                `(read: ${describeRead(op)}; ${write.kind} through ${write.front ?? '?'})`,
              between(clientOps, write, op, maxSlice),
            );
          }
        }
        const previous = read.get(op.bookId);
        if (previous) {
          stats.compared.monotonicReads++;
          if (op.version < (previous.version ?? 0)) {
            const relation = frontRelation(op, previous);
            report(
              'monotonic-reads',
              `client ${op.client}: read book ${op.bookId} at version ${op.version} after reading version ${previous.version} ` +
                `(${relation}: ${describeRead(op)} / ${describeRead(previous)})`,
              between(clientOps, previous, op, maxSlice),
              relation,
            );
          }
        }
        if (!previous || (previous.version ?? 0) < op.version) read.set(op.bookId, op);
      } else if (isWrite(op)) {
        const previous = written.get(op.bookId);
        if (!previous || (previous.version ?? 0) < op.version) written.set(op.bookId, op);
      }
    }
  }
}

/** A client's operations from `from` to `to`, inclusive (shortened from the middle). */
function between(clientOps: Op[], from: Op, to: Op, maxSlice: number): Op[] {
  const slice = clientOps.filter((o) => o.invoke >= from.invoke && o.invoke <= to.invoke);
  if (slice.length <= maxSlice) return slice;
  return [...slice.slice(0, 2), ...slice.slice(-(maxSlice - 2))];
}

/** A read invoked after a write was acknowledged (to anyone) shows at least that write's version. */
function checkRealTime(ops: Op[], stats: CheckStats, report: Report): void {
  const writesByBook = groupBy(
    ops.filter((o) => isWrite(o) && outcome(o) === 'ok' && o.version !== undefined),
    (o) => o.bookId,
  );
  const acked = new Map<number, { complete: number[]; best: Op[] }>();
  for (const [bookId, writes] of writesByBook) {
    writes.sort((a, b) => a.complete - b.complete);
    const best: Op[] = [];
    let max: Op | undefined;
    for (const w of writes) {
      if (!max || (w.version ?? 0) > (max.version ?? 0)) max = w;
      best.push(max);
    }
    acked.set(bookId, { complete: writes.map((w) => w.complete), best });
  }
  for (const op of ops) {
    if (op.kind !== 'read' || outcome(op) !== 'ok' || op.version === undefined) continue;
    const book = acked.get(op.bookId);
    if (!book) continue;
    // Last write acknowledged strictly before this read was invoked.
    const i = lastBefore(book.complete, op.invoke);
    if (i < 0) continue;
    const write = book.best[i] as Op;
    stats.compared.staleRead++;
    if (op.version < (write.version ?? 0)) {
      report(
        'stale-read',
        `client ${op.client} read book ${op.bookId} at version ${op.version} (${describeRead(op)}), ` +
          `invoked ${(op.invoke - write.complete).toFixed(1)} ms after version ${write.version} was acknowledged ` +
          `to client ${write.client} (${write.kind} through ${write.front ?? '?'})`,
        [write, op],
      );
    }
  }
}

/**
 * Linearizable reads (strict): a read invoked after another read of the book completed shows at least
 * the version that one showed, whichever clients, fronts, catalog pods or database servers answered
 * them. Reads that overlapped may show either version (either may take effect first). Per book:
 * reads sorted by completion, the newest version completed so far (prefix maximum), and for each read
 * a binary search for the last read completed strictly before it was invoked: O(n log n).
 */
function checkRealTimeReads(
  ops: Op[],
  stats: CheckStats,
  report: Report,
  degraded: readonly Interval[],
): void {
  const reads = ops.filter((o) => o.kind === 'read' && outcome(o) === 'ok' && o.version !== undefined);
  // The acknowledged write that made each version, to show in the slice (when it is in the history).
  const writeOf = new Map<string, Op>();
  for (const o of ops) {
    if (isWrite(o) && outcome(o) === 'ok' && o.version !== undefined) {
      const key = `${o.bookId}@${o.version}`;
      if (!writeOf.has(key)) writeOf.set(key, o);
    }
  }
  for (const [bookId, bookReads] of groupBy(reads, (o) => o.bookId)) {
    const byComplete = [...bookReads].sort((a, b) => a.complete - b.complete || a.id - b.id);
    const complete = byComplete.map((r) => r.complete);
    // best[i]: among the first i+1 reads to complete, the one that showed the newest version (the
    // earliest to complete of those that showed it).
    const best: Op[] = [];
    let max: Op | undefined;
    for (const r of byComplete) {
      if (!max || (r.version as number) > (max.version as number)) max = r;
      best.push(max);
    }
    for (const op of bookReads) {
      const i = lastBefore(complete, op.invoke);
      if (i < 0) continue;
      const prior = best[i] as Op;
      stats.compared.realTimeRead++;
      if ((op.version as number) >= (prior.version as number)) continue;
      if (degraded.some((d) => d.from <= op.complete && d.to >= prior.invoke)) {
        stats.compared.realTimeReadExempt++;
        continue;
      }
      const relation = frontRelation(op, prior);
      const write = writeOf.get(`${bookId}@${prior.version}`);
      const pending =
        write && write.complete >= op.invoke
          ? `; the ${write.kind} that made version ${prior.version} was acknowledged to client ${write.client} only ` +
            `${(write.complete - op.invoke).toFixed(1)} ms after this read was invoked`
          : '';
      report(
        'real-time-read',
        `client ${op.client} read book ${bookId} at version ${op.version} invoked ${(op.invoke - prior.complete).toFixed(1)} ms ` +
          `after client ${prior.client}'s read of version ${prior.version} completed ` +
          `(${relation}: ${describeRead(op)} / ${describeRead(prior)})${pending}`,
        write ? [write, prior, op] : [prior, op],
        relation,
      );
    }
  }
}

/** Index of the last element < t in an ascending array, or -1. */
function lastBefore(sorted: number[], t: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) < t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** One version of a book always shows one stock and one price. */
function checkVersions(ops: Op[], stats: CheckStats, report: Report): void {
  const seen = new Map<string, { state: Omit<BookState, 'version'>; op: Op }>();
  for (const op of ops) {
    if (outcome(op) !== 'ok' || op.version === undefined) continue;
    const stock = op.kind === 'purchase' ? op.remainingStock : op.stock;
    const price = op.resultPrice;
    if (stock === undefined || price === undefined) continue;
    const key = `${op.bookId}@${op.version}`;
    const first = seen.get(key);
    stats.compared.versions++;
    if (!first) {
      seen.set(key, { state: { stock, price }, op });
    } else if (first.state.stock !== stock || first.state.price !== price) {
      report(
        'version-conflict',
        `book ${op.bookId} version ${op.version} shown as stock ${first.state.stock} price ${first.state.price} and as stock ${stock} price ${price}`,
        [first.op, op],
      );
    }
  }
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

export interface StaleRead {
  op: Op;
  /** Acknowledged versions the read did not show. */
  versionsBehind: number;
  /** How long before the read was invoked the first write it missed had been acknowledged. */
  staleForMs: number;
}

/**
 * Every read that showed a version older than one already acknowledged (to anyone) when it was
 * invoked, with how far behind it was. The measure of `eventual` mode.
 */
export function measureStaleness(history: readonly Op[]): StaleRead[] {
  const writes = groupBy(
    history.filter((o) => isWrite(o) && outcome(o) === 'ok' && o.version !== undefined),
    (o) => o.bookId,
  );
  const out: StaleRead[] = [];
  for (const op of history) {
    if (op.kind !== 'read' || outcome(op) !== 'ok' || op.version === undefined) continue;
    const missed = (writes.get(op.bookId) ?? []).filter(
      (w) => w.complete < op.invoke && (w.version as number) > (op.version as number),
    );
    if (missed.length === 0) continue;
    out.push({
      op,
      versionsBehind: Math.max(...missed.map((w) => w.version as number)) - op.version,
      staleForMs: op.invoke - Math.min(...missed.map((w) => w.complete)),
    });
  }
  return out;
}

/** One line per operation, for reports. */
export function formatOp(op: Op, t0 = 0): string {
  const args =
    op.kind === 'purchase'
      ? `book=${op.bookId} key=${op.key ?? '-'}`
      : op.kind === 'set-price'
        ? `book=${op.bookId} price=${op.price}`
        : op.kind === 'restock'
          ? `book=${op.bookId} key=${op.key ?? '-'} quantity=${op.quantity}`
          : `book=${op.bookId}`;
  const result =
    op.status === 200
      ? op.kind === 'purchase'
        ? `order=${op.orderId} v=${op.version} remaining=${op.remainingStock}`
        : `v=${op.version} stock=${op.stock} price=${op.resultPrice}`
      : `${op.error ?? ''}${op.errorMessage ? ` (${JSON.stringify(op.errorMessage)})` : ''}`;
  const path = op.kind === 'read' ? readPath(op) : op.cache;
  const via =
    [op.front, path === '?' ? undefined : path, op.servedBy].filter(Boolean).join('/') +
    (op.clientFront ? ` (sent to ${op.clientFront})` : '');
  const session = op.minVersion !== undefined ? ` min-version=${op.minVersion}` : '';
  const failovers = op.connFailures?.length
    ? ` after ${op.connFailures.map((f) => `${f.front}:${f.code}`).join(',')}`
    : '';
  return (
    `#${op.id} ${op.client} [${(op.invoke - t0).toFixed(1)} → ${(op.complete - t0).toFixed(1)} ms] ` +
    `${op.kind}(${args}${session}) → ${op.status} ${result}${via ? ` via ${via}` : ''}${failovers}`
  );
}

export function formatReport(report: CheckReport, t0 = 0): string {
  const s = report.stats;
  const lines = [
    `checker: ${report.ok ? 'OK' : 'VIOLATIONS'}: ${s.ops} ops (${s.readsOk}/${s.reads} reads ok: ` +
      `${s.readPaths.hit} hit, ${s.readPaths.miss} miss, ${s.readPaths.bypass} bypass; purchases ${s.purchases.ok} ok, ` +
      `${s.purchases.failed} rejected (${s.purchases.soldOut} sold out), ${s.purchases.unknown} unknown; set-price ${s.setPrices.ok} ok, ` +
      `${s.setPrices.unknown} unknown; ` +
      (s.restocks.ok + s.restocks.failed + s.restocks.unknown + s.restockRows > 0
        ? `restocks ${s.restocks.ok} ok, ${s.restocks.failed} rejected, ${s.restocks.unknown} unknown, ${s.restockRows} rows; `
        : '') +
      `${s.orderRows} order rows; ${s.connFailures} front connection failures); compared ` +
      `${s.compared.readYourWrites} read-your-writes, ${s.compared.monotonicReads} monotonic, ${s.compared.staleRead} real-time, ` +
      `${s.compared.realTimeRead} read-after-read` +
      (s.compared.realTimeReadExempt > 0
        ? ` (${s.compared.realTimeReadExempt} went back while writes were degraded: allowed)`
        : '') +
      `, ${s.compared.versions} version pairs`,
  ];
  for (const [kind, n] of Object.entries(report.counts)) {
    const split = report.byFront?.[kind as ViolationKind];
    lines.push(
      `  ${kind}: ${n}` +
        (split ? ` (${split['same-front']} same-front, ${split['cross-front']} cross-front)` : ''),
    );
  }
  for (const v of report.violations) {
    lines.push(`- ${v.kind}: ${v.message}`);
    for (const op of v.ops) lines.push(`    ${formatOp(op, t0)}`);
  }
  return lines.join('\n');
}

export type { Op, DbFacts, OrderRow, RestockRow };
