/**
 * The checker can fail: each hand-made history below breaks exactly one rule, and the checker must
 * name that rule (and only that one) with the offending operations in its slice. A clean history of
 * the same shape must pass.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  check,
  DEFAULT_KINDS,
  formatOp,
  formatReport,
  kindsFor,
  VIOLATION_KINDS,
  type CheckOptions,
  type ConsistencyMode,
  type ViolationKind,
} from './check.js';
import type { BookState, DbFacts, Op, OrderRow, RestockRow } from './history.js';

let nextId = 0;
let clock = 0;
/** One operation taking 1 ms, invoked 1 ms after the previous one (so sequential by default). */
function op(fields: Partial<Op> & Pick<Op, 'client' | 'kind' | 'bookId'>): Op {
  clock += 2;
  return { id: nextId++, invoke: clock, complete: clock + 1, status: 200, front: 'front-0', ...fields };
}
const read = (
  client: string,
  bookId: number,
  version: number,
  stock: number,
  price = 30,
  extra: Partial<Op> = {},
) => op({ client, kind: 'read', bookId, version, stock, resultPrice: price, ...extra });
const buy = (
  client: string,
  bookId: number,
  key: string,
  orderId: string,
  version: number,
  remaining: number,
  price = 30,
) =>
  op({
    client,
    kind: 'purchase',
    bookId,
    key,
    orderId,
    version,
    remainingStock: remaining,
    resultPrice: price,
  });
const row = (id: string, bookId: number, key: string | null, version = 0, remaining = 0): OrderRow => ({
  id,
  bookId,
  key,
  bookVersion: version,
  remainingStock: remaining,
});
const state = (stock: number, version: number, price = 30): BookState => ({ stock, version, price });
const restock = (
  client: string,
  bookId: number,
  key: string,
  quantity: number,
  version: number,
  stock: number,
  price = 30,
) => op({ client, kind: 'restock', bookId, key, quantity, version, stock, resultPrice: price });
const restockRow = (
  key: string,
  bookId: number,
  quantity: number,
  version: number,
  stock: number,
): RestockRow => ({
  key,
  bookId,
  quantity,
  bookVersion: version,
  stock,
});

function facts(
  initial: [number, BookState][],
  final: [number, BookState][],
  orders: OrderRow[],
  restocks?: RestockRow[],
): DbFacts {
  return { initial: new Map(initial), final: new Map(final), orders, ...(restocks ? { restocks } : {}) };
}

/** A correct history with keyed restocks: book 1 sells out, is restocked, sells again (stock 1 → 1). */
function restockHistory(): { history: Op[]; db: DbFacts } {
  const history = [
    buy('a', 1, 'k-a-1', 'o1', 11, 0),
    op({ client: 'b', kind: 'purchase', bookId: 1, key: 'k-b-1', status: 409, error: 'out_of_stock' }),
    restock('a', 1, 'r-a-1', 2, 12, 2),
    buy('b', 1, 'k-b-2', 'o2', 13, 1),
    restock('b', 1, 'r-b-1', 1, 14, 2),
    // Remaining stock 1 again, a different version: allowed once a restock happened.
    buy('a', 1, 'k-a-2', 'o3', 15, 1),
    read('a', 1, 15, 1),
    read('b', 1, 15, 1),
  ];
  const db = facts(
    [[1, state(1, 10)]],
    [[1, state(1, 15)]],
    [row('o1', 1, 'k-a-1', 11, 0), row('o2', 1, 'k-b-2', 13, 1), row('o3', 1, 'k-a-2', 15, 1)],
    [restockRow('r-a-1', 1, 2, 12, 2), restockRow('r-b-1', 1, 1, 14, 2)],
  );
  return { history, db };
}

/** A correct history: two clients, purchases and reads of book 1 (stock 3 → 1). */
function cleanHistory(): { history: Op[]; db: DbFacts } {
  const history = [
    read('a', 1, 10, 3),
    buy('a', 1, 'k-a-1', 'o1', 11, 2),
    read('a', 1, 11, 2),
    read('b', 1, 11, 2),
    buy('b', 1, 'k-b-1', 'o2', 12, 1),
    read('b', 1, 12, 1),
    read('a', 1, 12, 1),
    op({ client: 'b', kind: 'purchase', bookId: 2, key: 'k-b-2', status: 409, error: 'out_of_stock' }),
  ];
  const db = facts(
    [
      [1, state(3, 10)],
      [2, state(0, 5)],
    ],
    [
      [1, state(1, 12)],
      [2, state(0, 5)],
    ],
    [row('o1', 1, 'k-a-1', 11, 2), row('o2', 1, 'k-b-1', 12, 1)],
  );
  return { history, db };
}

function kindsOf(history: Op[], db: DbFacts, options: CheckOptions = {}): ViolationKind[] {
  return [...new Set(check(history, db, options).violations.map((v) => v.kind))].sort();
}

/** An operation at exact times (ms). */
const at = (invoke: number, complete: number): Partial<Op> => ({ invoke, complete });
/** A read answered from a front's cache. */
const hit = (front: string): Partial<Op> => ({ front, cache: 'hit', servedBy: front });
/** A read the front answered from a catalog pod: a miss, or (noCache) a read that bypassed the cache. */
const miss = (front: string, servedBy: string, noCache = false): Partial<Op> => ({
  front,
  cache: 'miss',
  servedBy,
  ...(noCache ? { noCache: true } : {}),
});

/**
 * Book 1 at version 10 (stock 5); client a buys a copy (version 11) over [100, 200]: a long write,
 * so reads of both versions overlap it. Nothing is acknowledged before 200.
 */
function slowWrite(): { write: Op; db: DbFacts } {
  const write = buy('a', 1, 'k1', 'o1', 11, 4);
  Object.assign(write, at(100, 200));
  return { write, db: facts([[1, state(5, 10)]], [[1, state(4, 11)]], [row('o1', 1, 'k1', 11, 4)]) };
}

describe('consistency checker (hand-made histories)', () => {
  it('passes a correct history and says how much it compared', () => {
    const { history, db } = cleanHistory();
    const report = check(history, db);
    assert.equal(report.ok, true, formatReport(report));
    assert.ok(report.stats.compared.readYourWrites >= 2);
    assert.ok(report.stats.compared.monotonicReads >= 2);
    assert.ok(report.stats.compared.staleRead >= 3);
    assert.equal(report.stats.purchases.soldOut, 1);
  });

  it('catches oversell: more successes than stock, one copy sold twice', () => {
    const history = [buy('a', 1, 'k1', 'o1', 2, 0), buy('b', 1, 'k2', 'o2', 3, 0)];
    const db = facts([[1, state(1, 1)]], [[1, state(0, 3)]], [row('o1', 1, 'k1'), row('o2', 1, 'k2')]);
    const report = check(history, db);
    assert.ok(report.violations.some((v) => v.kind === 'oversell' && /starting stock of 1/.test(v.message)));
    const twice = report.violations.find((v) => v.kind === 'oversell' && /sold twice/.test(v.message));
    assert.ok(twice, formatReport(report));
    assert.deepEqual(
      twice.ops.map((o) => o.orderId),
      ['o1', 'o2'],
    );
    // The same successes against enough stock are fine.
    const enough = facts([[1, state(2, 1)]], [[1, state(0, 3)]], [row('o1', 1, 'k1'), row('o2', 1, 'k2')]);
    const ok = [buy('a', 1, 'k1', 'o1', 2, 1), buy('b', 1, 'k2', 'o2', 3, 0)];
    assert.deepEqual(kindsOf(ok, enough), []);
  });

  it('catches negative stock and stock that does not match the order rows', () => {
    const history = [buy('a', 1, 'k1', 'o1', 2, 4)];
    assert.deepEqual(kindsOf(history, facts([[1, state(5, 1)]], [[1, state(-1, 2)]], [row('o1', 1, 'k1')])), [
      'oversell',
      'stock-mismatch',
    ]);
    // Stock fell by two, one order row: a copy vanished.
    assert.deepEqual(kindsOf(history, facts([[1, state(5, 1)]], [[1, state(3, 3)]], [row('o1', 1, 'k1')])), [
      'stock-mismatch',
    ]);
  });

  it('catches a spurious sold-out while copies remain', () => {
    const history = [
      op({ client: 'a', kind: 'purchase', bookId: 1, key: 'k1', status: 409, error: 'out_of_stock' }),
    ];
    const report = check(history, facts([[1, state(5, 1)]], [[1, state(5, 1)]], []));
    assert.deepEqual(
      report.violations.map((v) => v.kind),
      ['spurious-sold-out'],
    );
    assert.equal(report.violations[0]!.ops[0]!.key, 'k1');
  });

  it('catches a lost order: acknowledged, but no row (or the row of another purchase)', () => {
    const history = [buy('a', 1, 'k1', 'o1', 2, 4), buy('a', 1, 'k2', 'o2', 3, 3)];
    const db = facts([[1, state(5, 1)]], [[1, state(4, 3)]], [row('o1', 1, 'k1')]);
    const report = check(history, db);
    assert.deepEqual(
      report.violations.map((v) => v.kind),
      ['lost-order'],
    );
    assert.equal(report.violations.find((v) => v.kind === 'lost-order')!.ops[0]!.orderId, 'o2');
    const swapped = facts([[1, state(5, 1)]], [[1, state(4, 2)]], [row('o1', 1, 'other-key')]);
    assert.ok(kindsOf([history[0]!], swapped).includes('lost-order'));
  });

  it('catches a doubled purchase: two rows or two different orders under one key', () => {
    const history = [buy('a', 1, 'k1', 'o1', 2, 4)];
    const db = facts([[1, state(5, 1)]], [[1, state(3, 3)]], [row('o1', 1, 'k1'), row('o9', 1, 'k1')]);
    assert.deepEqual(kindsOf(history, db), ['duplicate-order']);
    const retried = [buy('a', 1, 'k1', 'o1', 2, 4), buy('a', 1, 'k1', 'o2', 3, 3)];
    const both = facts([[1, state(5, 1)]], [[1, state(3, 3)]], [row('o1', 1, 'k1'), row('o2', 1, 'k1')]);
    const report = check(retried, both);
    assert.ok(
      report.violations.some((v) => v.kind === 'duplicate-order' && /2 different orders/.test(v.message)),
    );
  });

  it('catches a phantom order: a row for a rejected purchase, or for a key nobody sent', () => {
    const rejected = [
      op({ client: 'a', kind: 'purchase', bookId: 1, key: 'k1', status: 404, error: 'book_not_found' }),
    ];
    const db = facts([[1, state(5, 1)]], [[1, state(4, 2)]], [row('o1', 1, 'k1')]);
    assert.deepEqual(kindsOf(rejected, db), ['phantom-order']);
    const nobody = facts([[1, state(5, 1)]], [[1, state(4, 2)]], [row('o1', 1, 'never-sent')]);
    assert.deepEqual(kindsOf([], nobody), ['phantom-order']);
    // An unknown outcome (503, or no answer) may or may not have a row: no violation either way.
    const unknown = [
      op({ client: 'a', kind: 'purchase', bookId: 1, key: 'k1', status: 503, error: 'primary_unavailable' }),
    ];
    assert.deepEqual(kindsOf(unknown, db), []);
    assert.deepEqual(kindsOf(unknown, facts([[1, state(5, 1)]], [[1, state(5, 1)]], [])), []);
  });

  it("catches a read-your-writes violation with the client's history slice", () => {
    const history = [
      read('a', 1, 10, 5),
      buy('a', 1, 'k1', 'o1', 11, 4),
      read('a', 2, 3, 9),
      read('a', 1, 10, 5, 30, { cache: 'hit', servedBy: 'catalog-replica-0' }),
    ];
    const db = facts([[1, state(5, 10)]], [[1, state(4, 11)]], [row('o1', 1, 'k1')]);
    const report = check(history, db);
    const v = report.violations.find((x) => x.kind === 'read-your-writes');
    assert.ok(v, formatReport(report));
    assert.deepEqual(
      v.ops.map((o) => o.id),
      history.slice(1).map((o) => o.id),
      'slice runs from the write to the stale read',
    );
    assert.match(
      formatReport(report),
      /read-your-writes: client a: read book 1 at version 10 after its own purchase/,
    );
  });

  it('catches a monotonic-reads violation (and only that, when the client wrote nothing)', () => {
    const history = [read('a', 1, 10, 5), read('b', 1, 12, 3), read('a', 1, 12, 3), read('a', 1, 11, 4)];
    assert.deepEqual(kindsOf(history, facts([[1, state(5, 10)]], [[1, state(5, 10)]], [])), [
      'monotonic-reads',
    ]);
  });

  it('catches a stale read across clients (real time) and ignores reads that overlapped the write', () => {
    const write = buy('a', 1, 'k1', 'o1', 11, 4);
    const stale = read('b', 1, 10, 5);
    const db = facts([[1, state(5, 10)]], [[1, state(4, 11)]], [row('o1', 1, 'k1')]);
    const report = check([write, stale], db);
    assert.deepEqual(
      report.violations.map((v) => v.kind),
      ['stale-read'],
    );
    assert.deepEqual(
      report.violations[0]!.ops.map((o) => o.id),
      [write.id, stale.id],
    );
    // The same read invoked before the purchase was acknowledged is concurrent with it: allowed.
    const concurrent = { ...stale, invoke: write.complete - 0.5 };
    assert.deepEqual(kindsOf([write, concurrent], db), []);
    // Eventual mode promises none of the read rules: the caller leaves them out.
    assert.equal(check([write, stale], db, { kinds: ['oversell', 'lost-order'] }).ok, true);
  });

  it("catches a read that goes back in time after another client's read completed, across fronts, with no write acknowledged in between (strict)", () => {
    const { write, db } = slowWrite();
    // b sees the new version through front-0, bypassing its cache; after b's read completed, c reads
    // the old version from front-1's cache. The purchase is still unacknowledged: no stale-read, no
    // session rule (two clients), yet no linearization exists.
    const fresh = read('b', 1, 11, 4, 30, { ...at(110, 120), ...miss('front-0', 'catalog-origin-0', true) });
    const old = read('c', 1, 10, 5, 30, { ...at(121.2, 125), ...hit('front-1') });
    const history = [write, fresh, old];
    const report = check(history, db, { mode: 'strict' });
    assert.deepEqual(
      report.violations.map((v) => v.kind),
      ['real-time-read'],
      formatReport(report),
    );
    const v = report.violations[0]!;
    assert.equal(v.relation, 'cross-front');
    assert.equal(
      v.message,
      "client c read book 1 at version 10 invoked 1.2 ms after client b's read of version 11 completed " +
        '(cross-front: front-1 hit / front-0 bypass served by catalog-origin-0); the purchase that made ' +
        'version 11 was acknowledged to client a only 78.8 ms after this read was invoked',
    );
    assert.deepEqual(
      v.ops.map((o) => o.id),
      [write.id, fresh.id, old.id],
      'slice: the write, the read that saw it, the read that went back',
    );
    assert.deepEqual(report.byFront, { 'real-time-read': { 'same-front': 0, 'cross-front': 1 } });
    assert.match(formatReport(report), /\n {2}real-time-read: 1 \(0 same-front, 1 cross-front\)\n/);
    assert.match(
      formatReport(report),
      /read\(book=1\) → 200 v=11 stock=4 price=30 via front-0\/bypass\/catalog-origin-0/,
    );
    // While strict writes were degraded the store does not promise it (docs/guarantees.md G2): the
    // pair is counted as exempt, not reported; an interval that ends before the pair began exempts nothing.
    const during = check(history, db, { mode: 'strict', degraded: [{ from: 100, to: 121.5 }] });
    assert.equal(during.ok, true, formatReport(during));
    assert.equal(during.stats.compared.realTimeReadExempt, 1);
    const before = check(history, db, { mode: 'strict', degraded: [{ from: 50, to: 109 }] });
    assert.deepEqual(
      before.violations.map((v) => v.kind),
      ['real-time-read'],
    );
    // The same two reads overlapping (c invoked before b's read completed) may take effect in either order.
    assert.deepEqual(kindsOf([write, fresh, { ...old, ...at(119.9, 125) }], db, { mode: 'strict' }), []);
    // Read order is strict mode's promise only; and without a mode check() keeps its default set.
    assert.deepEqual(kindsOf(history, db, { mode: 'session' }), []);
    assert.deepEqual(kindsOf(history, db, { mode: 'eventual' }), []);
    assert.deepEqual(kindsOf(history, db), []);
    assert.deepEqual(kindsOf(history, db, { kinds: ['real-time-read'] }), ['real-time-read']);
  });

  it('catches a read that goes back in time on the same front (a miss, then an older cached copy)', () => {
    const { write, db } = slowWrite();
    const fresh = read('b', 1, 11, 4, 30, { ...at(110, 120), ...miss('front-0', 'catalog-replica-0') });
    const old = read('c', 1, 10, 5, 30, { ...at(130, 131), ...hit('front-0') });
    const report = check([write, fresh, old], db, { mode: 'strict' });
    assert.deepEqual(
      report.violations.map((v) => [v.kind, v.relation]),
      [['real-time-read', 'same-front']],
      formatReport(report),
    );
    assert.match(
      report.violations[0]!.message,
      /invoked 10\.0 ms after client b's read of version 11 completed \(same-front: front-0 hit \/ front-0 miss served by catalog-replica-0\)/,
    );
    assert.match(formatReport(report), /real-time-read: 1 \(1 same-front, 0 cross-front\)/);
  });

  it('compares a read with the newest version completed before it, not the last read to complete', () => {
    const { write, db } = slowWrite();
    // b saw 11 and completed first; c, overlapping b, saw 10 (allowed) and completed later; d, invoked
    // after both, saw 10: behind b's read, although it agrees with the last read to complete.
    const b = read('b', 1, 11, 4, 30, { ...at(110, 120), ...miss('front-0', 'catalog-origin-0') });
    const c = read('c', 1, 10, 5, 30, { ...at(115, 125), ...hit('front-1') });
    const d = read('d', 1, 10, 5, 30, { ...at(130, 140), ...hit('front-1') });
    const report = check([write, b, c, d], db, { mode: 'strict' });
    assert.deepEqual(
      report.violations.map((v) => v.ops.map((o) => o.id)),
      [[write.id, b.id, d.id]],
      formatReport(report),
    );
    assert.equal(report.stats.compared.realTimeRead, 1, 'only d was invoked after a read had completed');
  });

  it('passes a linearizable history whose overlapping reads see either version', () => {
    const { write, db } = slowWrite();
    const history = [
      read('b', 1, 10, 5, 30, { ...at(50, 60), ...hit('front-0') }),
      write,
      // Concurrent with the write: 11 (it took effect) or 10 (not yet), and concurrent with each other.
      read('b', 1, 11, 4, 30, { ...at(110, 130), ...miss('front-0', 'catalog-origin-0', true) }),
      read('c', 1, 10, 5, 30, { ...at(120, 140), ...hit('front-1') }),
      read('d', 1, 10, 5, 30, { ...at(125, 150), ...hit('front-1') }),
      // Invoked after b's read of 11 completed: 11.
      read('c', 1, 11, 4, 30, { ...at(141, 145), ...miss('front-1', 'catalog-replica-0') }),
      read('e', 1, 11, 4, 30, { ...at(146, 148), ...hit('front-1') }),
      read('d', 1, 11, 4, 30, { ...at(210, 212), ...hit('front-0') }),
    ];
    const report = check(history, db, { mode: 'strict' });
    assert.equal(report.ok, true, formatReport(report));
    assert.equal(report.stats.compared.realTimeRead, 6);
    assert.deepEqual(report.stats.readPaths, { hit: 5, miss: 1, bypass: 1 });
    // Shift one overlapping read of 10 to start after b's read of 11 completed: now it is caught.
    const shifted = history.map((o) => (o === history[3] ? { ...o, ...at(131, 140) } : o));
    assert.deepEqual(kindsOf(shifted, db, { mode: 'strict' }), ['real-time-read']);
  });

  it('session: monotonic reads and read-your-writes hold across a failover between fronts', () => {
    const db = facts([[1, state(5, 10)]], [[1, state(5, 10)]], []);
    const down = { connFailures: [{ front: 'front-0', code: 'ECONNREFUSED', at: 0 }] };
    // Client a reads 12 on its home front-0; front-0 dies; a's next read is answered by front-1.
    const before = read('a', 1, 12, 4, 30, { ...hit('front-0') });
    const clean = [
      before,
      read('a', 1, 12, 4, 30, { ...miss('front-1', 'catalog-replica-0'), minVersion: 12, ...down }),
    ];
    assert.deepEqual(kindsOf(clean, db, { mode: 'session' }), []);
    const back = [
      before,
      read('a', 1, 11, 4, 30, { ...miss('front-1', 'catalog-replica-0'), minVersion: 12, ...down }),
    ];
    const report = check(back, db, { mode: 'session' });
    assert.deepEqual(
      report.violations.map((v) => [v.kind, v.relation]),
      [['monotonic-reads', 'cross-front']],
      formatReport(report),
    );
    assert.match(
      report.violations[0]!.message,
      /^client a: read book 1 at version 11 after reading version 12 \(cross-front: front-1 miss served by catalog-replica-0 \/ front-0 hit\)$/,
    );
    assert.match(formatReport(report), /monotonic-reads: 1 \(0 same-front, 1 cross-front\)/);
    assert.match(
      formatReport(report),
      /read\(book=1 min-version=12\) .* via front-1\/miss\/catalog-replica-0 after front-0:ECONNREFUSED/,
    );
    // Its own purchase through front-0 (version 13), then, after the failover, 12 from front-1.
    const ryw = [
      buy('a', 1, 'k1', 'o1', 13, 4),
      read('a', 1, 12, 5, 30, { ...miss('front-1', 'catalog-replica-0'), minVersion: 13, ...down }),
    ];
    const bought = facts([[1, state(5, 10)]], [[1, state(4, 13)]], [row('o1', 1, 'k1', 13, 4)]);
    const rywReport = check(ryw, bought, { mode: 'session' });
    assert.deepEqual(
      rywReport.violations.map((v) => v.kind),
      ['read-your-writes', 'stale-read'],
      formatReport(rywReport),
    );
    assert.match(
      rywReport.violations[0]!.message,
      /\(read: front-1 miss served by catalog-replica-0; purchase through front-0\)/,
    );
    // Same front, same rule: the relation says which.
    const sameFront = [before, read('a', 1, 11, 4, 30, { ...hit('front-0') })];
    assert.equal(check(sameFront, db, { mode: 'session' }).violations[0]!.relation, 'same-front');
  });

  it('session: another client may read an older version after this one read a newer (no write acknowledged)', () => {
    const { write, db } = slowWrite();
    const history = [
      write,
      read('b', 1, 11, 4, 30, { ...at(110, 120), ...miss('front-0', 'catalog-origin-0') }),
      read('c', 1, 10, 5, 30, { ...at(130, 140), ...miss('front-1', 'catalog-replica-0') }),
      // After the purchase was acknowledged, though, even session mode owes the new version.
      read('c', 1, 10, 5, 30, { ...at(201, 202), ...hit('front-1') }),
    ];
    assert.deepEqual(kindsOf(history, db, { mode: 'session' }), ['stale-read']);
    assert.deepEqual(kindsOf(history, db, { mode: 'strict' }), ['real-time-read', 'stale-read']);
    assert.deepEqual(kindsOf(history, db, { mode: 'eventual' }), []);
  });

  it('each mode checks its own rules: kindsFor', () => {
    const without = (kinds: readonly ViolationKind[]) => VIOLATION_KINDS.filter((k) => !kinds.includes(k));
    assert.deepEqual(kindsFor('strict'), [...VIOLATION_KINDS]);
    assert.deepEqual(without(kindsFor('session')), ['real-time-read']);
    assert.deepEqual(without(kindsFor('eventual')), [
      'read-your-writes',
      'monotonic-reads',
      'stale-read',
      'real-time-read',
    ]);
    assert.deepEqual(without(DEFAULT_KINDS), ['real-time-read']);
    assert.throws(
      () => kindsFor('linearizable' as ConsistencyMode),
      /unknown consistency mode: linearizable/,
    );
    // `kinds` wins over `mode`.
    const { write, db } = slowWrite();
    const stale = read('b', 1, 10, 5, 30, { ...at(201, 202), ...hit('front-1') });
    assert.deepEqual(kindsOf([write, stale], db, { mode: 'eventual', kinds: ['stale-read'] }), [
      'stale-read',
    ]);
  });

  it('formats a read with what it sent and where it went', () => {
    const o = read('a', 1, 12, 4, 30, {
      ...at(10, 12.5),
      ...miss('bazar-front-x2lqp', 'bazar-catalog-replica-k7m2n', true),
      clientFront: 'svc',
      minVersion: 11,
    });
    assert.equal(
      formatOp(o, 10),
      `#${o.id} a [0.0 → 2.5 ms] read(book=1 min-version=11) → 200 v=12 stock=4 price=30 ` +
        'via bazar-front-x2lqp/bypass/bazar-catalog-replica-k7m2n (sent to svc)',
    );
  });

  it('formats a failed write with its error code and message', () => {
    const o = op({
      client: 'c',
      kind: 'purchase',
      bookId: 2,
      key: 'k-1',
      ...at(10, 98),
      status: 503,
      error: 'service_unavailable',
      errorMessage: 'no ready order endpoint',
      front: 'bazar-front-x2lqp',
      servedBy: 'bazar-front-x2lqp',
    });
    assert.equal(
      formatOp(o, 10),
      `#${o.id} c [0.0 → 88.0 ms] purchase(book=2 key=k-1) → 503 service_unavailable ("no ready order endpoint") ` +
        'via bazar-front-x2lqp/bazar-front-x2lqp',
    );
  });

  it('catches two different states shown under one version', () => {
    const history = [read('a', 1, 10, 5, 30), read('b', 1, 10, 4, 30)];
    assert.deepEqual(kindsOf(history, facts([[1, state(5, 10)]], [[1, state(5, 10)]], [])), [
      'version-conflict',
    ]);
  });

  it('passes a correct history with keyed restocks (a sell-out, a restock, the same stock twice)', () => {
    const { history, db } = restockHistory();
    const report = check(history, db);
    assert.equal(report.ok, true, formatReport(report));
    assert.deepEqual(report.stats.restocks, { ok: 2, failed: 0, unknown: 0 });
    assert.equal(report.stats.restockRows, 2);
    assert.match(formatReport(report), /restocks 2 ok, 0 rejected, 0 unknown, 2 rows/);
  });

  it('with restocks: catches stock that does not match, oversell beyond the restocked supply, a late sold-out', () => {
    const { history, db } = restockHistory();
    // The restocks' rows say +3, but the stock ended one lower than the rows account for.
    assert.deepEqual(kindsOf(history, { ...db, final: new Map([[1, state(0, 15)]]) }), ['stock-mismatch']);
    // Without the restock rows, three orders of a starting stock of 1 are an oversell (and a mismatch).
    const unrestocked = facts([[1, state(1, 10)]], [[1, state(1, 15)]], db.orders, []);
    assert.ok(
      kindsOf(
        history.filter((o) => o.kind !== 'restock'),
        unrestocked,
      ).includes('oversell'),
    );
    // Sold out after every restock had completed, yet copies are left: spurious.
    const late = [
      ...history,
      op({ client: 'a', kind: 'purchase', bookId: 1, key: 'k-a-3', status: 409, error: 'out_of_stock' }),
    ];
    const report = check(late, db);
    assert.deepEqual(
      report.violations.map((v) => v.kind),
      ['spurious-sold-out'],
    );
    assert.match(report.violations[0]!.message, /1 copies are left/);
  });

  it('catches a lost restock: acknowledged, but no row, or a row of another quantity or version', () => {
    const { history, db } = restockHistory();
    const noRow = { ...db, restocks: [db.restocks![1]!] };
    // The stock still matches here only if the row's copies are counted: the missing row is also a mismatch.
    assert.ok(kindsOf(history, noRow).includes('lost-restock'));
    const other = { ...db, restocks: [restockRow('r-a-1', 1, 2, 99, 2), db.restocks![1]!] };
    const report = check(history, other);
    assert.deepEqual(
      report.violations.map((v) => v.kind),
      ['lost-restock'],
    );
    assert.match(report.violations[0]!.message, /at version 12, but its row is book 1 \+2 at version 99/);
  });

  it('catches a doubled restock: one key acknowledged as two different restocks', () => {
    const { history, db } = restockHistory();
    const again = restock('a', 1, 'r-a-1', 2, 16, 3);
    // The second answer also names a version the key's one row does not have.
    assert.deepEqual(kindsOf([...history, again], db), ['duplicate-restock', 'lost-restock']);
    // A replay under the key that returns the first result is fine.
    const replay = restock('a', 1, 'r-a-1', 2, 12, 2);
    assert.deepEqual(kindsOf([...history, replay], db), []);
  });

  it('catches a phantom restock: a row for a rejected request, or for a key nobody sent', () => {
    const rejected = [
      op({
        client: 'a',
        kind: 'restock',
        bookId: 1,
        key: 'r1',
        quantity: 2,
        status: 422,
        error: 'idempotency_key_reused',
      }),
    ];
    const applied = facts([[1, state(5, 1)]], [[1, state(7, 2)]], [], [restockRow('r1', 1, 2, 2, 7)]);
    assert.deepEqual(kindsOf(rejected, applied), ['phantom-restock']);
    const nobody = facts([[1, state(5, 1)]], [[1, state(7, 2)]], [], [restockRow('never-sent', 1, 2, 2, 7)]);
    assert.deepEqual(kindsOf([], nobody), ['phantom-restock']);
    // An unknown outcome (503, or no answer) may or may not have been applied: no violation either way.
    const unknown = [
      op({
        client: 'a',
        kind: 'restock',
        bookId: 1,
        key: 'r1',
        quantity: 2,
        status: 503,
        error: 'primary_unavailable',
      }),
    ];
    assert.deepEqual(kindsOf(unknown, applied), []);
    assert.deepEqual(kindsOf(unknown, facts([[1, state(5, 1)]], [[1, state(5, 1)]], [], [])), []);
  });

  it('every kind is covered by one of the cases above', () => {
    assert.equal(VIOLATION_KINDS.length, 14);
  });
});
