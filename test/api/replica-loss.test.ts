import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, sleep, startTestStack, type TestStack } from './harness.js';

/** Runs `worker` on `concurrency` loops until `stop` resolves; returns every outcome. */
async function stream<T>(
  concurrency: number,
  worker: (n: number) => Promise<T>,
  stop: Promise<void>,
): Promise<T[]> {
  let done = false;
  void stop.then(() => (done = true));
  const out: T[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!done) out.push(await worker(n++));
    }),
  );
  return out;
}

describe('replica loss is masked (docs/guarantees.md G4)', () => {
  let t: TestStack;

  before(async () => {
    t = await startTestStack({ catalogReplicas: 2, orderReplicas: 1 });
  });
  after(async () => t?.stop());

  it('killing a catalog replica under a stream of uncached reads fails no read', async () => {
    const victim = t.stack.catalogs.find((c) => c.role === 'replica')!;
    const reads = stream(
      4,
      async (n) => {
        const res = await call(t.front(n % 2), 'GET', `/info/${(n % 7) + 1}`, {
          headers: { 'cache-control': 'no-cache' },
        });
        return { status: res.status, servedBy: res.headers.get('x-served-by') ?? '', at: Date.now() };
      },
      (async () => {
        await sleep(800);
        await victim.kill('SIGKILL');
        await sleep(1500);
      })(),
    );
    const killedAt = Date.now() + 800;
    const results = await reads;
    const failed = results.filter((r) => r.status !== 200);
    assert.equal(failed.length, 0, `failed reads: ${JSON.stringify(failed.slice(0, 5))}`);
    assert.ok(results.length > 50, `enough traffic to mean something (${results.length} reads)`);
    const late = results.filter((r) => r.at > killedAt + 300);
    assert.ok(late.length > 0);
    assert.ok(
      !late.some((r) => r.servedBy === victim.name),
      'the killed replica serves nothing after its death',
    );
    const survivors = new Set(late.map((r) => r.servedBy));
    assert.ok(survivors.size >= 2, `traffic rebalanced over the survivors: ${[...survivors].join(', ')}`);
    await victim.start();
  });

  it('killing an order pod under a stream of keyed purchases loses and doubles none', async () => {
    await call(t.front(0), 'POST', '/books/5/restock', {
      headers: bearer(t.stack.adminToken),
      body: { quantity: 10_000 },
    });
    const stockBefore = (await t.db.query('SELECT stock FROM books WHERE id = 5')).rows[0].stock as number;
    const victim = t.stack.orders.find((o) => o.role === 'replica')!;
    const run = `kill-${Date.now()}`;
    const results = await stream(
      4,
      async (n) => {
        const key = `${run}-${n}`;
        const res = await call<{ orderId?: string }>(t.front(n % 2), 'POST', '/purchase/5', {
          headers: { 'idempotency-key': key },
        });
        return { key, status: res.status, orderId: res.body.orderId, body: res.body };
      },
      (async () => {
        await sleep(800);
        await victim.kill('SIGKILL');
        await sleep(1500);
      })(),
    );
    const failed = results.filter((r) => r.status !== 200);
    assert.equal(failed.length, 0, `failed purchases: ${JSON.stringify(failed.slice(0, 5))}`);
    assert.ok(results.length > 20, `enough purchases to mean something (${results.length})`);
    const rows = await t.db.query<{ idempotency_key: string; id: string }>(
      'SELECT idempotency_key, id::text FROM orders WHERE idempotency_key LIKE $1',
      [`${run}-%`],
    );
    assert.equal(rows.rowCount, results.length, 'exactly one order row per acknowledged purchase');
    const byKey = new Map(rows.rows.map((r) => [r.idempotency_key, r.id]));
    for (const r of results)
      assert.equal(byKey.get(r.key), r.orderId, `order of ${r.key} is the one acknowledged`);
    const stockAfter = (await t.db.query('SELECT stock FROM books WHERE id = 5')).rows[0].stock as number;
    assert.equal(
      stockBefore - stockAfter,
      results.length,
      'stock fell by exactly the acknowledged purchases',
    );
    await victim.start();
  });
});
