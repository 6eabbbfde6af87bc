/**
 * The only standby gone under Patroni's synchronous_mode without `strict` (the chart's default): at its
 * next loop Patroni takes the standby off its `sync` key (so it can no longer be promoted) and then
 * empties synchronous_standby_names, which lets the commits waiting for it go. Emulated here on real
 * PostgreSQL the way Patroni does it (ALTER SYSTEM, reload).
 *
 * A strict writer (STRICT_STANDBY_LOSS=refuse) must then not acknowledge such a commit as confirmed: a
 * standby that rejoins streams, and serves reads, before it has replayed what the primary committed
 * alone. The guard turns *unreplicated*: every strict write is fenced by version at the fronts before
 * its answer (as `session` does), visibly (/readyz, bazar_consistency_degraded), until a synchronous
 * standby streams again and has caught up. Its commits stay at remote_apply throughout: the moment a
 * standby is named again, they wait for it, so no acknowledged write is on one server only while a
 * standby Patroni may promote lacks it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { migrate } from '../../services/shared/src/db/migrations.js';
import { createLogger } from '../../services/shared/src/logger.js';
import type {
  Announcement,
  FanoutResult,
  Invalidation,
  InvalidationPublisher,
} from '../../services/shared/src/invalidation.js';
import { writeBook } from '../../services/shared/src/writer.js';
import { setPrice, type Book } from '../../services/catalog/src/books.js';
import { metric, onServer, useScratchPair, waitFor } from './support.js';

// Longer than the emulated Patroni takes to let the waiting commit go.
const SYNC_TIMEOUT_MS = 5000;
const logger = createLogger({ name: 'unreplicated-test', level: 'silent' });

const scratch = useScratchPair('unreplicated', logger);

/** What Patroni does to the primary's synchronous_standby_names: ALTER SYSTEM, then a reload. */
async function nameStandbys(url: string, names: string): Promise<void> {
  await onServer(url, `ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
  await onServer(url, 'SELECT pg_reload_conf()');
}

/** A publisher that records what the fronts were told, and when, against the write's answer. */
function recordingPublisher() {
  const events: string[] = [];
  const fanout: FanoutResult = { fronts: 2, acknowledged: 2, failed: [] };
  const publisher = {
    async prepare(bookIds: number[]): Promise<Announcement> {
      events.push(`prepare ${bookIds.join(',')}`);
      return { writeId: `w${events.length}`, bookIds, fanout, ttlMs: 10_000, sentAt: performance.now() };
    },
    async settle(_a: Announcement, items: Invalidation[]): Promise<FanoutResult> {
      events.push(`settle v${items.map((i) => i.version).join(',')}`);
      return fanout;
    },
    async publish(items: Invalidation[]): Promise<FanoutResult> {
      events.push(`publish v${items.map((i) => i.version).join(',')}`);
      return fanout;
    },
  };
  return { publisher: publisher as unknown as InvalidationPublisher, events };
}

test('the only standby gone and unnamed (Patroni without synchronous_mode_strict): strict writes go on, fenced before their answer, visibly; back to confirmed once a standby is named and caught up', async () => {
  const c = scratch.cluster();
  const g = scratch.guard({ name: 'unreplicated', syncTimeoutMs: SYNC_TIMEOUT_MS, standbyLoss: 'refuse' });
  await migrate(g.primary, logger);
  const { publisher, events } = recordingPublisher();
  const write = async (price: number) => {
    const t0 = performance.now();
    const { result } = await writeBook<Book>({ guard: g.guard, publisher }, 3, undefined, () =>
      g.guard.run(async (cl) => (await setPrice(cl, 3, price))!),
    );
    events.push(`answer v${result.version}`);
    return { result, ms: performance.now() - t0 };
  };
  const degraded = async () => metric(await g.metrics.registry.metrics(), 'bazar_consistency_degraded') === 1;

  // Confirmed: announced, committed at remote_apply, answered, settled after the answer.
  const first = await write(80);
  await waitFor('the settlement after the answer', async () => events.length === 3, 2000);
  assert.deepEqual(events.splice(0), [
    'prepare 3',
    `answer v${first.result.version}`,
    `settle v${first.result.version}`,
  ]);
  assert.equal(g.guard.standbyConfirmed(), true);

  // The standby gone: a write waits for it, until "Patroni" unnames it a second later.
  await c.stopStandby();
  const waiting = write(81);
  await new Promise((r) => setTimeout(r, 1000));
  await nameStandbys(c.primaryUrl, '');
  const released = await waiting;
  assert.ok(
    released.ms >= 1000 && released.ms < SYNC_TIMEOUT_MS,
    `let go by the emptied names, not refused (${Math.round(released.ms)} ms)`,
  );
  assert.match(g.guard.degradedReason ?? '', /names no synchronous standby/);
  assert.deepEqual(g.guard.consistencyReport().degraded, g.guard.degradedReason, '/readyz says so');
  assert.ok(await degraded(), 'bazar_consistency_degraded 1');
  assert.deepEqual(
    events.splice(0),
    ['prepare 3', `settle v${released.result.version}`, `answer v${released.result.version}`],
    'the write the emptied names let go is fenced at the fronts before its answer',
  );

  // While unreplicated: at once, still announced, fenced before the answer, and still remote_apply.
  const alone = await write(82);
  assert.ok(alone.ms < SYNC_TIMEOUT_MS / 5, `at once (${Math.round(alone.ms)} ms)`);
  assert.deepEqual(events.splice(0), [
    'prepare 3',
    `settle v${alone.result.version}`,
    `answer v${alone.result.version}`,
  ]);
  assert.equal(g.guard.commitLevel(), 'remote_apply', 'never local: a standby named again is waited for');

  // Named again and back (Patroni names it once it streams; here first, so that the pair's start can
  // wait for a synchronous standby): writes wait for it again, and once it has caught up the guard is
  // confirmed again.
  await nameStandbys(c.primaryUrl, '*');
  await c.startStandby();
  await waitFor('confirmed again', async () => g.guard.degradedReason === undefined, 10_000);
  assert.equal(await degraded(), false, 'bazar_consistency_degraded 0');
  const back = await write(83);
  const [standby] = await onServer<{ price: number }>(c.standbyUrl, 'SELECT price FROM books WHERE id = 3');
  assert.equal(standby?.price, 83, 'applied on the standby before the answer');
  await waitFor('the settlement after the answer', async () => events.length === 3, 2000);
  assert.deepEqual(events.splice(0), [
    'prepare 3',
    `answer v${back.result.version}`,
    `settle v${back.result.version}`,
  ]);
  console.log(
    `unreplicated: the waiting write let go after ${Math.round(released.ms)} ms and fenced before its answer; ` +
      `alone ${Math.round(alone.ms)} ms; confirmed again once the standby was named and caught up`,
  );
});
