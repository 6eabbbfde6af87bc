/**
 * (c) in `eventual` mode: with replay paused on the standby, reads through the catalog replica show
 * old versions. Eventual mode promises no read rule, so this measures the staleness (and proves the
 * checker sees it on a live system), while the stock and order rules must still hold.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../api/harness.js';
import { checkedRun } from '../../tools/checker/src/run.js';
import { formatReport, measureStaleness } from '../../tools/checker/src/check.js';
import { setStock } from '../../tools/checker/src/db-facts.js';
import { ms, now, onStandby, percentile, sleep, FAULT_BOOKS, mixedWorkload } from './support.js';

const BOOKS = FAULT_BOOKS;
const CACHE_TTL_MS = 1000;

describe('fault injection, eventual mode', () => {
  let t: TestStack;

  before(async () => {
    t = await startTestStack({ consistencyMode: 'eventual', cacheTtlMs: CACHE_TTL_MS });
    await setStock(t.db, new Map(BOOKS.map((b) => [b, 100_000])));
  });
  after(async () => t?.stop());

  it('(c) standby replay paused, eventual: staleness shows up and is measured; no oversell, no lost order', async () => {
    let pausedAt = 0;
    let resumedAt = 0;
    const run = await checkedRun(
      {
        db: t.db,
        workload: mixedWorkload(
          t.stack,
          t.stack.fronts.map((f) => ({ name: f.name, url: f.url })),
        ),
      },
      async () => {
        await sleep(300);
        await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
        pausedAt = now();
        await sleep(1500);
        await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
        resumedAt = now();
        await sleep(CACHE_TTL_MS + 500);
      },
    );
    const failed = run.recorded.filter((o) => o.status !== 200);
    assert.equal(failed.length, 0, `failed operations: ${JSON.stringify(failed.slice(0, 3))}`);
    // What eventual mode still promises.
    const integrity = [
      'oversell',
      'stock-mismatch',
      'lost-order',
      'duplicate-order',
      'phantom-order',
    ] as const;
    const counts = run.report.counts;
    for (const kind of integrity) assert.equal(counts[kind] ?? 0, 0, formatReport(run.report, run.t0));
    // What it does not: the checker sees the stale reads.
    const stale = measureStaleness(run.recorded);
    const duringPause = stale.filter((s) => s.op.invoke >= pausedAt && s.op.invoke <= resumedAt);
    assert.ok(duringPause.length > 0, 'reads through the paused standby showed old versions');
    assert.ok((counts['stale-read'] ?? 0) > 0, 'the checker reports them as stale-read violations');
    const reads = run.recorded.filter((o) => o.kind === 'read');
    const pausedReads = reads.filter((o) => o.invoke >= pausedAt && o.invoke <= resumedAt);
    const after = stale.filter((s) => s.op.invoke > resumedAt);
    const late = stale.filter((s) => s.op.invoke > resumedAt + CACHE_TTL_MS + 200);
    const behind = duringPause.map((s) => s.versionsBehind);
    const staleFor = duringPause.map((s) => s.staleForMs);
    console.log(
      `fault(c) replay paused ${ms(resumedAt - pausedAt)}, eventual: ${run.recorded.length} ops; during the pause ` +
        `${duringPause.length}/${pausedReads.length} reads stale (${duringPause.filter((s) => s.op.cache === 'hit').length} from cache), ` +
        `up to ${Math.max(...behind)} versions behind (p50 ${percentile(behind, 50)}), ` +
        `showing a state superseded ${ms(percentile(staleFor, 50))} (p50) / ${ms(Math.max(...staleFor))} (max) earlier; ` +
        `after resume ${after.length} stale reads (max ${ms(Math.max(0, ...after.map((s) => s.staleForMs)))}), ` +
        `${late.length} later than TTL+200 ms; checker: ${Object.entries(counts)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}; stock and orders intact`,
    );
  });
});
