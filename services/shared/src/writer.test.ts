import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CommitGuard } from './db/write-transaction.js';
import { HttpError } from './errors.js';
import type { Announcement, FanoutResult, Invalidation, InvalidationPublisher } from './invalidation.js';
import { writeBook } from './writer.js';

const ALL: FanoutResult = { fronts: 2, acknowledged: 2, failed: [] };

/** A publisher and a guard that record what writeBook did, in order. */
function writer(opts: { strict: boolean; degradeDuringCommit?: boolean }) {
  const steps: string[] = [];
  let level: 'remote_apply' | 'local' = opts.strict ? 'remote_apply' : 'local';
  const guard = {
    announcesWrites: () => level === 'remote_apply',
    commitLevel: () => level,
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

  it('strict, degraded during its commit: the settlement is waited for (readers must be fenced first)', async () => {
    const { w, commit, settle } = writer({ strict: true, degradeDuringCommit: true });
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
    settle();
    assert.equal((await write).fanout.acknowledged, 1);
  });

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
