/**
 * A failover that loses writes (asynchronous replication: the session and eventual modes) must never
 * let one (book, version) pair name two different contents (docs/guarantees.md, "Failover").
 *
 * Real PostgreSQL, real promotion: the store's schema on a primary + standby pair; a price change the
 * standby has; the standby stopped; a second price change on the primary alone (acknowledged, as an
 * asynchronous commit is); the primary stopped and the standby promoted (pg_promote: timeline 2), as
 * Patroni does when the primary is lost. Then the product's own statements (setPrice, restock, the
 * purchase) on the promoted server: before bazar_next_version, the next write of the book took the
 * lost write's version number for other contents (verified: `version = version + 1` gives 3 here).
 * The writers' PrimaryIdentity, reaching the servers through one address as the services reach the
 * primary Service, reports the new member and timeline, and tells the commit guard, which finds no
 * synchronous standby streaming from the promoted server and degrades strict writes at once (rather
 * than make each commit wait SYNC_COMMIT_TIMEOUT_MS for one).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { migrate, VERSIONS_PER_TIMELINE } from '../../services/shared/src/db/migrations.js';
import { PrimaryIdentity } from '../../services/shared/src/db/primary-identity.js';
import { createLogger } from '../../services/shared/src/logger.js';
import { restock, setPrice } from '../../services/catalog/src/books.js';
import { purchaseInOneStatement } from '../../services/order/src/orders.js';
import { TcpProxy, metric, scratchPgCluster, strictCommitGuard, waitFor } from './support.js';

const BOOK = 2;
const logger = createLogger({ name: 'lossy-failover-test', level: 'silent' });

let pair: Awaited<ReturnType<typeof scratchPgCluster>> | undefined;
const proxy = new TcpProxy({ host: '127.0.0.1', port: 0 }, 'primary-service');

const portOf = (url: string): number => Number(new URL(url).port);

/** One statement on `url` as the superuser, at the given synchronous_commit level. */
async function onServer<T>(url: string, level: string, run: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  // pool.end() resolves once its client is asked to end, not once the server has read that: a server
  // stopped meanwhile (stopPrimary, right after) says 57P01 to the idle client, which the pool emits as
  // 'error', fatal without a listener (reproduced: the backend stopped across pool.end(), then SIGTERM).
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    try {
      await client.query(`SET synchronous_commit = ${level}`);
      return await run(client);
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
}

before(async () => {
  pair = await scratchPgCluster('lossy-failover');
  proxy.target = { host: '127.0.0.1', port: portOf(pair.cluster.primaryUrl) };
  await proxy.listen();
});

after(async () => {
  await proxy.close();
  await pair?.remove();
});

test('a failover that lost a write: versions written after it are new numbers, and the writers see the new primary', async () => {
  const c = pair!.cluster;
  const viaService = new URL(c.primaryUrl);
  viaService.port = String(proxy.port);
  const writer = strictCommitGuard(viaService.href, {
    name: 'lossy-failover',
    syncTimeoutMs: 2000,
    standbyLoss: 'degrade', // the degradation at once is what this test shows
    logger,
  });
  const { guard, primary, control, metrics } = writer;
  const identity = new PrimaryIdentity({
    db: primary,
    logger,
    metrics,
    intervalMs: 50,
    onChange: (facts) => void guard.newPrimary(facts.member),
  });
  try {
    await migrate(primary, logger);
    identity.start();
    await waitFor('the writer to find its primary', async () => identity.facts !== undefined);
    const first = identity.facts;
    assert.equal(first?.timeline, 1, 'a new cluster is on timeline 1');
    assert.equal(first?.member, `127.0.0.1:${portOf(c.primaryUrl)}`);
    assert.equal(guard.degradedReason, undefined, 'the primary first found changes nothing');

    // On timeline 1 versions count as they always did.
    const replicated = await onServer(c.primaryUrl, 'remote_apply', (cl) => setPrice(cl, BOOK, 61));
    assert.equal(replicated?.version, 2);

    // The standby goes away; the primary acknowledges one more write alone, then is lost.
    await c.stopStandby();
    const lost = await onServer(c.primaryUrl, 'local', (cl) => setPrice(cl, BOOK, 62));
    assert.equal(lost?.version, 3);
    await c.stopPrimary();

    // Promotion (what Patroni does): the standby, which never had version 3, becomes the primary.
    await c.startStandby();
    await onServer(c.standbyUrl, 'local', (cl) => cl.query('SELECT pg_promote(true, 60)'));
    const before = await onServer(c.standbyUrl, 'local', (cl) =>
      cl.query<{ version: number; price: number }>('SELECT version, price FROM books WHERE id = $1', [BOOK]),
    );
    assert.deepEqual(
      before.rows[0],
      { version: 2, price: 61 },
      'the write acknowledged by the primary alone is lost',
    );

    // The primary's address refuses connections for a while (the Service has no endpoint): the guard's
    // polls find it unreachable and its control pool fails fast. Told of the new primary while it still
    // does, the guard must ask again until it gets through, not give up at once (CI once saw it stay
    // undegraded: its pool had failed fast since the old primary's shutdown).
    const port = proxy.port;
    await proxy.close();
    await waitFor('the control pool failing fast', async () => control.knownUnreachable(), 10_000);

    // The primary Service now leads to the promoted server: the old connections are gone.
    proxy.target = { host: '127.0.0.1', port: portOf(c.standbyUrl) };
    await proxy.listen(port);
    assert.ok(control.knownUnreachable(), 'the control pool still fails fast');
    await guard.newPrimary(`127.0.0.1:${portOf(c.standbyUrl)}`);
    assert.match(
      guard.degradedReason ?? '',
      /has no synchronous standby streaming/,
      'degraded once the control pool got through',
    );

    const floor = VERSIONS_PER_TIMELINE + 1;
    const priced = await onServer(viaService.href, 'local', (cl) => setPrice(cl, BOOK, 63));
    assert.ok(priced);
    assert.notEqual(priced.version, lost!.version, 'version 3 already named price 62, on the lost timeline');
    assert.equal(priced.version, floor, 'the first version of timeline 2');
    const restocked = await onServer(viaService.href, 'local', (cl) => restock(cl, BOOK, 5));
    assert.ok(restocked && restocked !== 'overflow');
    assert.equal(restocked.book.version, floor + 1);
    const other = await onServer(viaService.href, 'local', (cl) => purchaseInOneStatement(cl, 3, undefined));
    assert.equal(
      other.purchase.version,
      floor,
      'a book not written since the failover moves past the floor too',
    );

    await waitFor('the writer to see the new primary', async () => identity.facts?.timeline === 2, 10_000);
    const now = identity.facts!;
    assert.equal(now.member, `127.0.0.1:${portOf(c.standbyUrl)}`);
    assert.equal(now.systemIdentifier, first!.systemIdentifier, 'the same cluster');
    const text = await metrics.registry.metrics();
    assert.equal(metric(text, 'bazar_db_primary_timeline'), 2);
    assert.equal(metric(text, 'bazar_db_primary_changes_total'), 1);
    assert.equal(metric(text, 'bazar_db_primary_info', { member: now.member }), 1);
    assert.equal(metric(text, 'bazar_db_primary_info', { member: first!.member }), 0);

    // No standby streams from the promoted server: strict writes degrade at once, visibly.
    await waitFor('the commit guard to degrade', async () => guard.degradedReason !== undefined, 5000);
    assert.match(guard.degradedReason!, /new primary 127\.0\.0\.1:\d+ has no synchronous standby streaming/);
    assert.equal(guard.commitLevel(), 'local');
    assert.equal(metric(await metrics.registry.metrics(), 'bazar_consistency_degraded'), 1);
  } finally {
    identity.close();
    await writer.close();
  }
});
