/**
 * A strict write no standby confirmed in time, when the standby that stalls still counts as the
 * synchronous one, and the primary is then lost with its node: the lost acknowledged write of the
 * node-faults tier (docs/reliability.md), reproduced on real PostgreSQL.
 *
 * The stall: the primary's walsender is stopped (SIGSTOP). The standby receives nothing more, yet the
 * primary still lists it as `streaming` and `sync` (until wal_sender_timeout), which is what Patroni
 * reads: it stays the member Patroni would promote. A standby starved of CPU on a busy node looks the
 * same for as long as it lags. The loss: every process of the primary SIGKILLed at once (a node's
 * power cut), and the standby promoted (pg_promote, as Patroni does).
 *
 * - STRICT_STANDBY_LOSS=degrade: the write is acknowledged once SYNC_COMMIT_TIMEOUT_MS is over, and the
 *   next one at once (the guard commits locally now). The promoted standby has neither: two
 *   acknowledged strict writes lost.
 * - refuse (the default): 503 commit_outcome_unknown; the commit stays invisible on the primary while
 *   it waits. With the walsender resumed, it takes effect (on both servers) and its `ended` resolves;
 *   with the primary lost, it is gone, never acknowledged.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pgDataDirs } from '../../tools/devstack/src/postgres-config.js';
import { migrate } from '../../services/shared/src/db/migrations.js';
import { UnconfirmedCommit, type StandbyLoss } from '../../services/shared/src/db/write-transaction.js';
import { createLogger } from '../../services/shared/src/logger.js';
import { setPrice } from '../../services/catalog/src/books.js';
import { metric, onServer, useScratchPair, waitFor } from './support.js';

const SYNC_TIMEOUT_MS = 500;
const logger = createLogger({ name: 'stalled-standby-test', level: 'silent' });

const scratch = useScratchPair('stalled-standby', logger);

/** A writer's commit guard on the primary, strict, with the given STRICT_STANDBY_LOSS. */
const guardOn = (standbyLoss: StandbyLoss) =>
  scratch.guard({ name: `stalled-standby-${standbyLoss}`, syncTimeoutMs: SYNC_TIMEOUT_MS, standbyLoss });

const prices = (url: string) =>
  onServer<{ id: number; price: number }>(
    url,
    'SELECT id, price FROM books WHERE id IN (1, 2, 3) ORDER BY id',
  );

/** The primary's walsender for the standby, stopped or resumed. */
async function walsender(url: string, signal: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
  const rows = await onServer<{ pid: number }>(url, 'SELECT pid FROM pg_stat_replication');
  assert.equal(rows.length, 1, 'one walsender');
  process.kill(rows[0]!.pid, signal);
}

const timed = async <T>(work: Promise<T>): Promise<{ ms: number; value?: T; err?: unknown }> => {
  const t0 = performance.now();
  try {
    const value = await work;
    return { ms: performance.now() - t0, value };
  } catch (err) {
    return { ms: performance.now() - t0, err };
  }
};

test('a synchronous standby that stalls, then the primary lost with its node: degrade loses acknowledged strict writes, refuse acknowledges none', async () => {
  const c = scratch.cluster();
  const refusing = guardOn('refuse');
  const degrading = guardOn('degrade');
  await migrate(refusing.primary, logger);
  const start = await prices(c.primaryUrl);

  // Healthy: both modes commit at remote_apply and acknowledge.
  assert.ok(await refusing.guard.run((cl) => setPrice(cl, 3, 80)));
  assert.equal((await prices(c.standbyUrl))[2]!.price, 80, 'applied on the standby before the answer');

  // 1. refuse, the standby stalled, then back: not acknowledged, invisible while it waits, then applied.
  await walsender(c.primaryUrl, 'SIGSTOP');
  let resumed = false;
  try {
    const answer = await timed(refusing.guard.run((cl) => setPrice(cl, 3, 83)));
    assert.ok(answer.err instanceof UnconfirmedCommit, `refused: ${String(answer.err ?? answer.value)}`);
    assert.equal(answer.err.status, 503);
    assert.equal(answer.err.code, 'commit_outcome_unknown');
    assert.ok(
      answer.ms >= SYNC_TIMEOUT_MS - 20 && answer.ms < SYNC_TIMEOUT_MS + 1500,
      `answered in ${answer.ms} ms`,
    );
    assert.equal(
      (await prices(c.primaryUrl))[2]!.price,
      80,
      'the waiting commit is invisible on the primary',
    );
    const waiting = await onServer<{ n: number }>(
      c.primaryUrl,
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'`,
    );
    assert.equal(waiting[0]!.n, 1, 'its backend waits for the standby, its connection dropped');
    assert.equal(refusing.guard.unconfirmedCommits, 1);
    assert.equal(refusing.guard.degradedReason, undefined, 'refuse never degrades');
    let ended = false;
    void answer.err.ended.then(() => (ended = true));
    await walsender(c.primaryUrl, 'SIGCONT');
    resumed = true;
    await waitFor('the unconfirmed commit to end', async () => ended, 5000);
    assert.deepEqual(
      [(await prices(c.primaryUrl))[2]!.price, (await prices(c.standbyUrl))[2]!.price],
      [83, 83],
      'once a standby applied it, it took effect on both servers',
    );
    const standbyVersion = await onServer<{ version: number }>(
      c.standbyUrl,
      'SELECT version FROM books WHERE id = 3',
    );
    assert.equal(
      await refusing.guard.versionOf(3),
      standbyVersion[0]!.version,
      'versionOf: the version the write left',
    );
    assert.equal(metric(await refusing.metrics.registry.metrics(), 'bazar_sync_commit_timeouts_total'), 1);
  } finally {
    if (!resumed) await walsender(c.primaryUrl, 'SIGCONT');
  }

  // 2. The standby stalls again, and this time the primary is lost with its node.
  await walsender(c.primaryUrl, 'SIGSTOP');
  const refused = await timed(refusing.guard.run((cl) => setPrice(cl, 3, 84)));
  assert.ok(refused.err instanceof UnconfirmedCommit, 'refuse: not acknowledged');
  const degraded = await timed(degrading.guard.run((cl) => setPrice(cl, 2, 72)));
  assert.equal(degraded.value?.price, 72, 'degrade: acknowledged once the standby timed out');
  assert.ok(degraded.ms >= SYNC_TIMEOUT_MS - 20, `after the timeout (${degraded.ms} ms)`);
  assert.match(degrading.guard.degradedReason ?? '', /standby did not confirm/);
  const local = await timed(degrading.guard.run((cl) => setPrice(cl, 1, 71)));
  assert.equal(local.value?.price, 71, 'degrade: the next write acknowledged at once, locally');
  assert.ok(local.ms < SYNC_TIMEOUT_MS, `at once (${local.ms} ms)`);
  // What Patroni reads: the stalled standby is still the synchronous one, so it is the one promoted.
  const replication = await onServer<{ state: string; sync_state: string }>(
    c.primaryUrl,
    'SELECT state, sync_state FROM pg_stat_replication',
  );
  assert.deepEqual(replication, [{ state: 'streaming', sync_state: 'sync' }]);

  // Power lost: every process of the primary at once, the stopped walsender among them.
  const pgdata = pgDataDirs(scratch.dataDir()).primary;
  const postmaster = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map(Number);
  for (const pid of [postmaster, ...children]) process.kill(pid, 'SIGKILL');
  rmSync(path.join(pgdata, 'postmaster.pid'));
  await onServer(c.standbyUrl, 'SELECT pg_promote(true, 60)');

  const promoted = await prices(c.standbyUrl);
  assert.deepEqual(
    promoted.map((r) => r.price),
    [start[0]!.price, start[1]!.price, 83],
    'the promoted standby lacks both writes degrade acknowledged (and the one refuse did not)',
  );
  // The writer that would see the new primary stops watching the old server's backends.
  let refusedEnded = false;
  void refused.err.ended.then(() => (refusedEnded = true));
  void refusing.guard.newPrimary('the promoted standby');
  await waitFor('the refused commit to be given up', async () => refusedEnded, 1000);
  console.log(
    `stalled-standby: refuse answered 503 commit_outcome_unknown in ${Math.round(refused.ms)} ms (not acknowledged; ` +
      `applied on both servers once the standby was back); degrade acknowledged in ${Math.round(degraded.ms)} ms, then ` +
      `${Math.round(local.ms)} ms (local); the standby, still 'sync' to the primary, promoted after the primary's ` +
      `power cut: both acknowledged degrade writes lost`,
  );
});
