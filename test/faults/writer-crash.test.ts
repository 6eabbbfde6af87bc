/**
 * A writer that dies between COMMIT and its invalidation push (docs/guarantees.md G2, G3).
 *
 * In `session` mode the write is committed, no front heard of it, and nobody retries. The fronts'
 * reconciliation (CACHE_RECONCILE_INTERVAL_MS) must bring every front to the new version within one
 * interval plus the standby's lag, although the cache TTL (60 s here) is far longer. And the keyed
 * retry of such a write must push again before it answers, so a client that does retry sees every
 * front fresh at once.
 *
 * In `strict` mode the write was announced to every front before it committed: no front serves the
 * old version at all, and each caches the book again once the announcement expired.
 *
 * The crash is real: the order pod's test hook SIGKILLs the process right after its statement
 * committed and before it pushed anything.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, startTestStack, type TestStack } from '../api/harness.js';
import { metric, ms, now, scrape, sleep } from './support.js';

const BOOK = 4;
const TTL_MS = 60_000;

interface Book {
  version: number;
  stock: number;
}

/** Reads the book through a front until it is a cache hit (so that front really holds an entry). */
async function cachedOn(front: string): Promise<Book> {
  for (let i = 0; i < 10; i++) {
    const res = await call<Book>(front, 'GET', `/info/${BOOK}`);
    assert.equal(res.status, 200);
    if (res.headers.get('x-cache') === 'hit') return res.body;
  }
  throw new Error(`${front} never served book ${BOOK} from its cache`);
}

/** Arms the order pod to die right after its next purchase commits, then sends that purchase to it. */
async function purchaseThatKillsItsWriter(t: TestStack, key: string): Promise<void> {
  const order = t.stack.orders[0]!;
  const armed = await call(order.url, 'POST', '/internal/test-hooks', {
    headers: bearer(t.stack.internalToken),
    body: { crashAfterCommit: true },
  });
  assert.equal(armed.status, 200);
  await assert.rejects(
    call(order.url, 'POST', `/purchase/${BOOK}`, { headers: { 'idempotency-key': key } }),
    'the order pod answered although it should have died after COMMIT',
  );
  for (let i = 0; i < 100 && order.running(); i++) await sleep(20);
  assert.equal(order.running(), false, 'the order pod is still running');
}

async function committedVersion(t: TestStack, key: string): Promise<number> {
  const res = await t.db.query<{ book_version: string }>(
    'SELECT book_version::text FROM orders WHERE idempotency_key = $1',
    [key],
  );
  assert.equal(res.rowCount, 1, `the purchase under ${key} did not commit`);
  return Number(res.rows[0]!.book_version);
}

describe('session: a writer dies after COMMIT, nobody retries: reconciliation bounds the staleness', () => {
  const INTERVAL_MS = 500;
  let t: TestStack;
  before(async () => {
    t = await startTestStack({
      consistencyMode: 'session',
      cacheTtlMs: TTL_MS,
      env: { CACHE_RECONCILE_INTERVAL_MS: String(INTERVAL_MS) },
    });
  });
  after(async () => t?.stop());

  it('every front serves the committed version within one interval (+ lag), not the TTL', async () => {
    const fronts = t.stack.fronts.map((f) => f.url);
    const before = await Promise.all(fronts.map(cachedOn));
    const staleBefore = await Promise.all(
      fronts.map(async (f) => metric(await scrape(f), 'bazar_cache_reconcile_stale_total')),
    );
    const key = `writer-crash-${Date.now()}`;
    const crashed = now();
    await purchaseThatKillsItsWriter(t, key);
    const version = await committedVersion(t, key);
    assert.ok(
      before.every((b) => b.version < version),
      'the fronts held the old version',
    );

    // Cached reads only (no Cache-Control): what a client of each front sees.
    const freshAfter: number[] = [];
    for (const front of fronts) {
      for (;;) {
        const res = await call<Book>(front, 'GET', `/info/${BOOK}`);
        assert.equal(res.status, 200);
        if (res.body.version >= version) break;
        assert.ok(now() - crashed < TTL_MS / 2, `${front} still served version ${res.body.version}`);
        await sleep(20);
      }
      freshAfter.push(now() - crashed);
    }
    const bound = INTERVAL_MS + 1500;
    console.log(
      `# writer killed after COMMIT: fronts fresh after ${freshAfter.map(ms).join(', ')} ` +
        `(reconcile interval ${INTERVAL_MS} ms, TTL ${TTL_MS} ms)`,
    );
    for (const elapsed of freshAfter) {
      assert.ok(elapsed <= bound, `a front was stale for ${ms(elapsed)} (bound ${ms(bound)})`);
    }
    // It was the reconciliation that found them (nobody pushed: the writer was dead).
    const staleAfter = await Promise.all(
      fronts.map(async (f) => metric(await scrape(f), 'bazar_cache_reconcile_stale_total')),
    );
    console.log(`# reconciled stale entries before ${staleBefore.join(',')} after ${staleAfter.join(',')}`);
    staleAfter.forEach((n, i) => assert.ok(n > staleBefore[i]!, `front ${i}: no stale entry was reconciled`));
    await t.stack.orders[0]!.start();
  });
});

describe('session: a writer dies after COMMIT, the client retries under its key: the retry pushes first', () => {
  let t: TestStack;
  before(async () => {
    // A reconciliation far slower than the test: only the retry's own push can refresh the fronts.
    t = await startTestStack({
      consistencyMode: 'session',
      cacheTtlMs: TTL_MS,
      env: { CACHE_RECONCILE_INTERVAL_MS: '600000' },
    });
  });
  after(async () => t?.stop());

  it('the replayed answer comes after every front dropped the old version', async () => {
    const fronts = t.stack.fronts.map((f) => f.url);
    await Promise.all(fronts.map(cachedOn));
    const key = `writer-crash-retry-${Date.now()}`;
    await purchaseThatKillsItsWriter(t, key);
    const version = await committedVersion(t, key);
    const stuck = await call<Book>(fronts[1]!, 'GET', `/info/${BOOK}`);
    assert.ok(stuck.body.version < version, 'with its writer dead, the front still held the old version');

    const retry = await call<{ version: number }>(fronts[0]!, 'POST', `/purchase/${BOOK}`, {
      headers: { 'idempotency-key': key },
    });
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(retry.body.version, version);
    assert.equal(retry.headers.get('x-invalidated'), `${fronts.length}/${fronts.length}`);
    for (const front of fronts) {
      const res = await call<Book>(front, 'GET', `/info/${BOOK}`);
      assert.ok(res.body.version >= version, `${front} served version ${res.body.version} after the replay`);
    }
    await t.stack.orders[0]!.start();
  });
});

describe('strict: a writer dies after COMMIT: the fronts had dropped the book when the write was announced', () => {
  const SYNC_COMMIT_TIMEOUT_MS = 1000;
  let t: TestStack;
  before(async () => {
    // No reconciliation during the test: what keeps the fronts fresh is the announcement alone.
    t = await startTestStack({
      consistencyMode: 'strict',
      cacheTtlMs: TTL_MS,
      env: {
        CACHE_RECONCILE_INTERVAL_MS: '600000',
        SYNC_COMMIT_TIMEOUT_MS: String(SYNC_COMMIT_TIMEOUT_MS),
      },
    });
  });
  after(async () => t?.stop());

  it('no front serves the old version, and each caches the book again once the announcement expires', async () => {
    const fronts = t.stack.fronts.map((f) => f.url);
    await Promise.all(fronts.map(cachedOn));
    const expiredBefore = await Promise.all(
      fronts.map(async (f) => metric(await scrape(f), 'bazar_cache_write_announcements_expired_total')),
    );
    const key = `writer-crash-strict-${Date.now()}`;
    const crashed = now();
    await purchaseThatKillsItsWriter(t, key);
    const version = await committedVersion(t, key);
    // Cached reads (no Cache-Control) at once: the announcement dropped the entries before the commit.
    for (const front of fronts) {
      const res = await call<Book>(front, 'GET', `/info/${BOOK}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.version >= version, `${front} served version ${res.body.version} < ${version}`);
      assert.equal(res.headers.get('x-cache'), 'miss', 'nothing was cached while the write was unsettled');
    }
    // The announcement lives the invalidation timeout (1 s) + SYNC_COMMIT_TIMEOUT_MS + 1 s.
    const ttl = 1000 + SYNC_COMMIT_TIMEOUT_MS + 1000;
    await sleep(Math.max(0, ttl - (now() - crashed)) + 200);
    for (const [i, front] of fronts.entries()) {
      await call<Book>(front, 'GET', `/info/${BOOK}`);
      const again = await call<Book>(front, 'GET', `/info/${BOOK}`);
      assert.equal(again.headers.get('x-cache'), 'hit', `${front} caches the book again`);
      assert.ok(again.body.version >= version);
      const expired = metric(await scrape(front), 'bazar_cache_write_announcements_expired_total');
      assert.ok(expired > expiredBefore[i]!, `${front}: the unsettled announcement expired (metric)`);
    }
    await t.stack.orders[0]!.start();
  });
});
