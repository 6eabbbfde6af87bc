/**
 * The checker's CI-sized run: a few seconds of concurrent clients against the real store (strict
 * mode, two fronts, real PostgreSQL replication), with a book that sells out, then the full check
 * with strict mode's rules (kindsFor('strict'): linearizable reads included).
 * The long mode is the CLI (cli.ts; docs/reliability.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../../../test/api/harness.js';
import { formatReport } from './check.js';
import { setStock } from './db-facts.js';
import { checkedRun } from './run.js';

const DURATION_MS = Number(process.env.CHECKER_CI_MS ?? 4000);

describe('history checker, CI-sized run on a live store', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ consistencyMode: 'strict' });
  });
  after(async () => t?.stop());

  it(`${DURATION_MS} ms of 6 concurrent clients through two fronts: no violation of any kind`, async () => {
    // Books 1 and 2 plentiful, book 3 sells out during the run.
    await setStock(
      t.db,
      new Map([
        [1, 1_000_000],
        [2, 1_000_000],
        [3, 25],
      ]),
    );
    const run = await checkedRun(
      {
        db: t.db,
        mode: 'strict',
        workload: {
          fronts: t.stack.fronts.map((f) => ({ name: f.name, url: f.url })),
          clients: 6,
          books: [1, 2, 3],
          mix: { read: 6, purchase: 3, setPrice: 1 },
          adminToken: t.stack.adminToken,
          noCacheRatio: 0.3,
        },
      },
      () => new Promise((r) => setTimeout(r, DURATION_MS)),
    );
    const s = run.report.stats;
    console.log(`checker CI run: ${formatReport(run.report, run.t0).split('\n')[0]}`);
    assert.ok(run.report.ok, formatReport(run.report, run.t0));
    // The run exercised every rule (a vacuous pass would prove nothing).
    assert.ok(s.purchases.soldOut > 0, 'book 3 sold out during the run');
    assert.equal(run.facts.final.get(3)?.stock, 0);
    assert.equal(
      run.facts.orders.filter((o) => o.bookId === 3).length,
      25,
      'exactly the 25 copies were sold',
    );
    assert.ok(s.purchases.ok > 50, `${s.purchases.ok} purchases`);
    assert.ok(s.setPrices.ok > 5, `${s.setPrices.ok} price changes`);
    assert.ok(s.compared.staleRead > 200, `${s.compared.staleRead} real-time comparisons`);
    assert.ok(s.compared.realTimeRead > 200, `${s.compared.realTimeRead} read-after-read comparisons`);
    assert.ok(s.readPaths.bypass > 50, `${s.readPaths.bypass} reads bypassed the cache`);
    assert.ok(s.readPaths.hit > 50, `${s.readPaths.hit} reads answered from a cache`);
    const fronts = new Set(run.recorded.filter((o) => o.kind === 'read').map((o) => o.front));
    assert.deepEqual([...fronts].sort(), ['front-0', 'front-1'], 'reads answered by both fronts (X-Front)');
    assert.ok(
      run.recorded.every((o) => o.minVersion === undefined),
      'no X-Min-Version outside session mode',
    );
    assert.ok(s.compared.readYourWrites > 50, `${s.compared.readYourWrites} read-your-writes comparisons`);
    assert.ok(s.compared.monotonicReads > 50, `${s.compared.monotonicReads} monotonic comparisons`);
    assert.equal(
      run.recorded.filter((o) => o.status !== 200 && o.error !== 'out_of_stock').length,
      0,
      'every operation answered',
    );
  });
});
