import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CommitGuard } from './db/write-transaction.js';
import { HttpError } from './errors.js';
import type { Announcement, FanoutResult, Invalidation, InvalidationPublisher } from './invalidation.js';
import { writeBook } from './writer.js';
import { PrimaryWait } from './db/primary-wait.js';
import { counter, createMetrics } from './metrics.js';
import { createLogger } from './logger.js';

const ALL: FanoutResult = { fronts: 2, acknowledged: 2, failed: [] };

/** A publisher and a guard that record what writeBook did, in order. */
function writer(opts: {
  strict: boolean;
  degradeDuringCommit?: boolean;
  unreplicatedDuringCommit?: boolean;
}) {
  const steps: string[] = [];
  let level: 'remote_apply' | 'local' = opts.strict ? 'remote_apply' : 'local';
  let unreplicated = false;
  const guard = {
    announcesWrites: () => level === 'remote_apply',
    commitLevel: () => level,
    standbyConfirmed: () => level === 'remote_apply' && !unreplicated,
  } as unknown as CommitGuard;
  let settled: (() => void) | undefined;
  const publisher = {
    async prepare(bookIds: number[], origin?: string): Promise<Announcement> {
      steps.push(`prepare ${bookIds.join(',')} skip ${origin}`);
      return { writeId: 'w1', bookIds, fanout: ALL, ttlMs: 4000, sentAt: 0 };
    },
    settle(a: Announcement, items: Invalidation[]): Promise<FanoutResult> {
      steps.push(`settle ${a.writeId} ${JSON.stringify(items)}`);
      // Resolves only when the test says so: whether writeBook waits for it shows.
      return new Promise((resolve) => (settled = () => resolve({ ...ALL, acknowledged: 1 })));
    },
    async publish(items: Invalidation[]): Promise<FanoutResult> {
      steps.push(`publish ${JSON.stringify(items)}`);
      return ALL;
    },
  } as unknown as InvalidationPublisher;
  const commit = (result: () => Promise<{ version: number }>) => async () => {
    steps.push('commit');
    if (opts.degradeDuringCommit) level = 'local';
    if (opts.unreplicatedDuringCommit) unreplicated = true;
    return result();
  };
  return { w: { guard, publisher }, steps, commit, settle: () => settled?.() };
}

describe('writeBook: how a write of one book tells the fronts, per mode', () => {
  it('strict: announced before the commit, settled after without waiting; X-Invalidated is the announcement', async () => {
    const { w, steps, commit } = writer({ strict: true });
    const { result, fanout } = await writeBook(
      w,
      5,
      'front-0',
      commit(async () => ({ version: 9 })),
    );
    assert.equal(result.version, 9);
    assert.deepEqual(fanout, ALL, "the announcement's answers, not the settlement's");
    assert.deepEqual(steps, ['prepare 5 skip front-0', 'commit'], 'the answer goes before the settlement');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(steps, ['prepare 5 skip front-0', 'commit', 'settle w1 [{"bookId":5,"version":9}]']);
  });

  for (const [what, during] of [
    ['degraded (a local commit)', { degradeDuringCommit: true }],
    ['unreplicated (no standby named: it went on alone)', { unreplicatedDuringCommit: true }],
  ] as const) {
    it(`strict, ${what} during its commit: announced, and the settlement is waited for (readers must be fenced first)`, async () => {
      const { w, steps, commit, settle } = writer({ strict: true, ...during });
      let done = false;
      const write = writeBook(
        w,
        5,
        undefined,
        commit(async () => ({ version: 9 })),
      ).then((r) => {
        done = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(done, false, 'still waiting for the fronts');
      assert.deepEqual(steps, ['prepare 5 skip undefined', 'commit', 'settle w1 [{"bookId":5,"version":9}]']);
      settle();
      assert.equal((await write).fanout.acknowledged, 1);
    });
  }

  it('strict: a 4xx proves nothing was written (settled as not done); a 5xx may have committed (left to expire)', async () => {
    const rejected = writer({ strict: true });
    await assert.rejects(
      writeBook(
        rejected.w,
        5,
        undefined,
        rejected.commit(async () => {
          throw new HttpError(409, 'out_of_stock', 'sold out');
        }),
      ),
      /sold out/,
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(rejected.steps.at(-1), 'settle w1 [{"bookId":5}]');
    const unknown = writer({ strict: true });
    await assert.rejects(
      writeBook(
        unknown.w,
        5,
        undefined,
        unknown.commit(async () => {
          throw new HttpError(503, 'commit_outcome_unknown', 'lost');
        }),
      ),
      /lost/,
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unknown.steps, ['prepare 5 skip undefined', 'commit']);
  });

  it('session: no announcement; the new version is pushed after the commit and waited for', async () => {
    const { w, steps, commit } = writer({ strict: false });
    await writeBook(
      w,
      5,
      'front-1',
      commit(async () => ({ version: 3 })),
    );
    assert.deepEqual(steps, ['commit', 'publish [{"bookId":5,"version":3}]']);
  });
});

/** A PrimaryWait whose primary answers "writable" as the test says, with its episodes counted. */
function primaryWait(budgetMs: number, writable: () => boolean) {
  const metrics = createMetrics({ service: 'test', podName: 'test', defaultMetrics: false });
  const episodes = counter(metrics, 'bazar_write_primary_waits_total', 'test', ['result']);
  let polls = 0;
  const wait = new PrimaryWait({
    budgetMs,
    acceptsWrites: async () => {
      polls++;
      return writable();
    },
    logger: createLogger({ name: 'test', level: 'silent' }),
    episodes,
    pollMs: 20,
  });
  const count = async (result: string) =>
    Number(
      new RegExp(`bazar_write_primary_waits_total\\{result="${result}"[^}]*\\} (\\d+)`).exec(
        await metrics.registry.metrics(),
      )?.[1] ?? 0,
    );
  return { wait, count, polls: () => polls };
}

const refused = () => new HttpError(503, 'primary_unavailable', 'the primary database is unavailable');

describe('writeBook with PRIMARY_WAIT_MS: a write that finds no writable primary waits for one, then is done again whole', () => {
  it('strict: refused twice, then committed within the budget: one announcement per attempt, served, counted', async () => {
    const { w, steps, commit } = writer({ strict: true });
    let primaryBack = false;
    const { wait, count } = primaryWait(2000, () => primaryBack);
    let tries = 0;
    const started = performance.now();
    setTimeout(() => (primaryBack = true), 150);
    const { result } = await writeBook(
      { ...w, primaryWait: wait },
      5,
      'front-0',
      commit(async () => {
        tries++;
        if (tries <= 2) {
          // The second try comes after the primary answered "writable" once: it is refused again
          // (a pool still finding its feet), and waits again.
          if (tries === 2) primaryBack = false;
          if (tries === 2) setTimeout(() => (primaryBack = true), 100);
          throw refused();
        }
        return { version: 11 };
      }),
    );
    const tookMs = performance.now() - started;
    assert.equal(result.version, 11);
    assert.equal(tries, 3);
    assert.ok(tookMs >= 240 && tookMs < 1500, `answered once the primary was back (${tookMs.toFixed(0)} ms)`);
    assert.deepEqual(steps, [
      'prepare 5 skip front-0',
      'commit',
      'prepare 5 skip front-0',
      'commit',
      'prepare 5 skip front-0',
      'commit',
    ]);
    await new Promise((r) => setImmediate(r));
    assert.equal(
      steps.filter((s) => s.startsWith('settle')).length,
      1,
      'only the write that committed is settled',
    );
    assert.equal(await count('served'), 1);
    assert.equal(await count('expired'), 0);
  });

  it('the budget runs out: the last 503 primary_unavailable, with how long it waited, counted expired', async () => {
    const { w, steps, commit } = writer({ strict: false });
    const { wait, count, polls } = primaryWait(300, () => false);
    const started = performance.now();
    let tries = 0;
    await assert.rejects(
      writeBook(
        { ...w, primaryWait: wait },
        5,
        undefined,
        commit(async () => {
          tries++;
          throw refused();
        }),
      ),
      (err: unknown) =>
        err instanceof HttpError &&
        err.status === 503 &&
        err.code === 'primary_unavailable' &&
        Number(err.headers['X-Bazar-Primary-Waited-Ms']) >= 290,
    );
    const tookMs = performance.now() - started;
    assert.ok(tookMs >= 290 && tookMs < 800, `gave up after about the budget (${tookMs.toFixed(0)} ms)`);
    assert.equal(tries, 1, 'never writable: never tried again');
    assert.ok(polls() >= 5, `the primary was polled while it waited (${polls()})`);
    assert.deepEqual(steps, ['commit']);
    assert.equal(await count('expired'), 1);
    assert.equal(await count('served'), 0);
  });

  it('an unkeyed write: never retries what may have committed (commit_outcome_unknown, a 500) nor a 4xx', async () => {
    for (const err of [
      new HttpError(503, 'commit_outcome_unknown', 'lost during COMMIT'),
      new HttpError(409, 'out_of_stock', 'sold out'),
      new HttpError(503, 'standby_unavailable', 'not a refusal of the primary'),
      new Error('something else'),
    ]) {
      const { w, steps, commit } = writer({ strict: true });
      const { wait, count, polls } = primaryWait(2000, () => true);
      const started = performance.now();
      await assert.rejects(
        writeBook(
          { ...w, primaryWait: wait },
          5,
          undefined,
          commit(async () => {
            throw err;
          }),
        ),
        (e: unknown) => e === err,
      );
      assert.ok(performance.now() - started < 100, `${err.message}: answered at once`);
      assert.deepEqual(steps.slice(0, 2), ['prepare 5 skip undefined', 'commit'], err.message);
      assert.equal(steps.filter((s) => s === 'commit').length, 1, `${err.message}: committed once`);
      assert.equal(polls(), 0);
      assert.equal((await count('served')) + (await count('expired')) + (await count('failed')), 0);
    }
  });

  it('a keyed write whose COMMIT lost its connection (a primary handed over under it) is done again under its key once a primary takes writes: served', async () => {
    const { w, steps, commit } = writer({ strict: true });
    let primaryBack = false;
    const { wait, count } = primaryWait(2000, () => primaryBack);
    setTimeout(() => (primaryBack = true), 100);
    let tries = 0;
    const { result } = await writeBook(
      { ...w, primaryWait: wait },
      5,
      'front-0',
      commit(async () => {
        tries++;
        // The second try is the key's replay: what the first committed (or a first commit now).
        if (tries === 1) throw new HttpError(503, 'commit_outcome_unknown', 'lost during COMMIT');
        return { version: 12 };
      }),
      { keyed: true },
    );
    assert.equal(result.version, 12);
    assert.equal(tries, 2);
    assert.deepEqual(steps, ['prepare 5 skip front-0', 'commit', 'prepare 5 skip front-0', 'commit']);
    assert.equal(await count('served'), 1);
  });

  it("the budget counts from the write's arrival: a first attempt that hangs before its refusal spends it too", async () => {
    const { w, commit } = writer({ strict: false });
    const { wait, count } = primaryWait(300, () => false);
    const started = performance.now();
    await assert.rejects(
      writeBook(
        { ...w, primaryWait: wait },
        5,
        undefined,
        commit(async () => {
          // A statement on a dead primary's connection, cut at its query timeout.
          await new Promise((r) => setTimeout(r, 200));
          throw refused();
        }),
      ),
      (err: unknown) =>
        err instanceof HttpError &&
        err.code === 'primary_unavailable' &&
        Number(err.headers['X-Bazar-Primary-Waited-Ms']) < 200,
    );
    const tookMs = performance.now() - started;
    assert.ok(
      tookMs >= 290 && tookMs < 450,
      `answered about the budget after it arrived (${tookMs.toFixed(0)} ms)`,
    );
    assert.equal(await count('expired'), 1);
  });

  it('a keyed write whose outcome stays unknown past the budget: the last 503 commit_outcome_unknown, with how long it waited', async () => {
    const { w, commit } = writer({ strict: false });
    const { wait, count } = primaryWait(200, () => false);
    let tries = 0;
    await assert.rejects(
      writeBook(
        { ...w, primaryWait: wait },
        5,
        undefined,
        commit(async () => {
          tries++;
          throw new HttpError(503, 'commit_outcome_unknown', 'lost during COMMIT');
        }),
        { keyed: true },
      ),
      (err: unknown) =>
        err instanceof HttpError &&
        err.code === 'commit_outcome_unknown' &&
        Number(err.headers['X-Bazar-Primary-Waited-Ms']) >= 190,
    );
    assert.equal(tries, 1, 'never writable: never tried again');
    assert.equal(await count('expired'), 1);
  });

  it('a refusal, then an outcome that may have committed: answered as it is, counted failed', async () => {
    const { w, commit } = writer({ strict: false });
    const { wait, count } = primaryWait(2000, () => true);
    let tries = 0;
    await assert.rejects(
      writeBook(
        { ...w, primaryWait: wait },
        5,
        undefined,
        commit(async () => {
          tries++;
          throw tries === 1 ? refused() : new HttpError(503, 'commit_outcome_unknown', 'lost');
        }),
      ),
      /lost/,
    );
    assert.equal(tries, 2);
    assert.equal(await count('failed'), 1);
  });

  it('PRIMARY_WAIT_MS=0: a refusal is answered at once, exactly as without a wait', async () => {
    for (const primaryWaitOf of [() => primaryWait(0, () => true).wait, () => undefined]) {
      const { w, steps, commit } = writer({ strict: true });
      const pw = primaryWaitOf();
      const started = performance.now();
      await assert.rejects(
        writeBook(
          pw ? { ...w, primaryWait: pw } : w,
          5,
          undefined,
          commit(async () => {
            throw refused();
          }),
        ),
        (err: unknown) =>
          err instanceof HttpError &&
          err.code === 'primary_unavailable' &&
          !('X-Bazar-Primary-Waited-Ms' in err.headers),
      );
      assert.ok(performance.now() - started < 50);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(steps, ['prepare 5 skip undefined', 'commit'], 'left to expire, not settled');
    }
  });
});

describe('PrimaryWait', () => {
  it('one poll serves every waiter', async () => {
    let writable = false;
    const { wait, polls } = primaryWait(5000, () => writable);
    const deadline = performance.now() + 2000;
    const waiters = [
      wait.untilWritable(deadline),
      wait.untilWritable(deadline),
      wait.untilWritable(deadline),
    ];
    await new Promise((r) => setTimeout(r, 100));
    const polledWhileDown = polls();
    assert.ok(
      polledWhileDown >= 3 && polledWhileDown <= 8,
      `one poll every 20 ms for all three (${polledWhileDown})`,
    );
    writable = true;
    assert.deepEqual(await Promise.all(waiters), [true, true, true]);
    wait.close();
    assert.equal(await wait.untilWritable(performance.now() + 1000), false, 'closed: released at once');
  });

  it('a waiter is released only by a poll asked after it began to wait', async () => {
    // Every poll takes 60 ms and answers "writable". A waits from 0 ms (the poll asked at 0 releases
    // it at 60); B from 20 ms: the poll asked at 0 began before B was refused, so B needs the next
    // one (asked at 60, answered at 120).
    const wait = new PrimaryWait({
      budgetMs: 5000,
      acceptsWrites: () => new Promise((r) => setTimeout(() => r(true), 60)),
      logger: createLogger({ name: 'test', level: 'silent' }),
      episodes: counter(
        createMetrics({ service: 'test', podName: 'test', defaultMetrics: false }),
        'bazar_write_primary_waits_total',
        'test',
        ['result'],
      ),
      pollMs: 20,
    });
    const t0 = performance.now();
    const deadline = t0 + 2000;
    const a = wait.untilWritable(deadline).then(() => performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
    const b = wait.untilWritable(deadline).then(() => performance.now() - t0);
    const [aMs, bMs] = await Promise.all([a, b]);
    assert.ok(aMs >= 55 && aMs < 100, `A released by the first poll (${aMs.toFixed(0)} ms)`);
    assert.ok(bMs >= 115, `B released by the second poll (${bMs.toFixed(0)} ms)`);
  });

  it('the deadline releases a waiter with false', async () => {
    const { wait } = primaryWait(5000, () => false);
    const t0 = performance.now();
    assert.equal(await wait.untilWritable(t0 + 120), false);
    assert.ok(performance.now() - t0 >= 115);
  });
});
