import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, sleep, startTestStack, type TestStack } from './harness.js';

interface Book {
  id: number;
  price: number;
  stock: number;
  version: number;
}

async function setStock(t: TestStack, id: number, stock: number): Promise<void> {
  // Direct SQL, as an operator would: replicated synchronously so the standby has it too.
  const client = await t.db.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL synchronous_commit = remote_apply');
    await client.query('UPDATE books SET stock = $2, version = version + 1 WHERE id = $1', [id, stock]);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

function testHooks(t: TestStack, body: unknown) {
  return call(t.front(0), 'POST', '/internal/test-hooks', {
    headers: bearer(t.stack.internalToken),
    body,
  });
}

/** How many reads front-0 has sent to catalog pods (every outcome), from its own metrics. */
async function catalogReads(t: TestStack): Promise<number> {
  const text = (await call<string>(t.front(0), 'GET', '/metrics')).body;
  let total = 0;
  for (const line of text.split('\n')) {
    if (
      line.startsWith('bazar_upstream_request_duration_seconds_count{') &&
      line.includes('target="catalog"')
    )
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Acknowledged purchases of one book through front-1, back to back, while something else runs. */
class WriteStream {
  acknowledged = 0;
  lastAcknowledged = 0;

  constructor(
    private readonly t: TestStack,
    private readonly bookId: number,
  ) {}

  async next(): Promise<{ version: number }> {
    const res = await call<{ version: number }>(this.t.front(1), 'POST', `/purchase/${this.bookId}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    this.acknowledged++;
    this.lastAcknowledged = Math.max(this.lastAcknowledged, res.body.version);
    return res.body;
  }

  /** Runs `work` with writes going on until it settles (and the write in flight then is acknowledged). */
  async during<T>(work: () => Promise<T>): Promise<T> {
    let done = false;
    const loop = (async () => {
      while (!done) await this.next();
    })();
    try {
      return await work();
    } finally {
      done = true;
      await loop;
    }
  }
}

for (const mode of ['strict', 'session'] as const) {
  describe(`guarantees in ${mode} mode, two fronts`, () => {
    let t: TestStack;

    before(async () => {
      t = await startTestStack({ consistencyMode: mode });
    });
    after(async () => t?.stop());

    it('no oversell: concurrent purchases through two fronts against stock 7 sell exactly 7', async () => {
      await setStock(t, 4, 7);
      const before = (await t.db.query('SELECT count(*)::int AS n FROM orders WHERE book_id = 4')).rows[0].n;
      const attempts = 40;
      const results = await Promise.all(
        Array.from({ length: attempts }, (_, i) =>
          call<Record<string, unknown>>(t.front(i % 2), 'POST', '/purchase/4'),
        ),
      );
      const ok = results.filter((r) => r.status === 200);
      const soldOut = results.filter((r) => r.status === 409);
      assert.equal(ok.length, 7, `statuses: ${results.map((r) => r.status).join(',')}`);
      assert.equal(soldOut.length, attempts - 7);
      for (const r of soldOut)
        assert.equal((r.body as { error: { code: string } }).error.code, 'out_of_stock');
      assert.equal(new Set(ok.map((r) => r.body.orderId)).size, 7, 'one distinct order per success');
      assert.deepEqual(
        ok.map((r) => r.body.remainingStock).sort(),
        [0, 1, 2, 3, 4, 5, 6],
        'each success saw a distinct remaining stock',
      );
      const row = (await t.db.query('SELECT stock FROM books WHERE id = 4')).rows[0];
      assert.equal(row.stock, 0);
      const orders = (await t.db.query('SELECT count(*)::int AS n FROM orders WHERE book_id = 4')).rows[0].n;
      assert.equal(orders - before, 7, 'exactly one order row per success');
      for (const i of [0, 1]) {
        const info = await call<Book>(t.front(i), 'GET', '/info/4');
        assert.equal(info.body.stock, 0, `front-${i} shows the sold-out stock`);
      }
    });

    it('read-your-writes: after an acknowledged purchase or price change every front shows it at once', async () => {
      const admin = bearer(t.stack.adminToken);
      for (let round = 0; round < 12; round++) {
        // Warm both caches so a stale entry would be there to serve.
        for (const i of [0, 1]) await call(t.front(i), 'GET', '/info/1');
        const writer = round % 2;
        let acknowledged: { version: number; stock?: number; price?: number };
        if (round % 3 === 2) {
          const res = await call<Book>(t.front(writer), 'PATCH', '/books/1', {
            headers: admin,
            body: { price: 30 + round },
          });
          assert.equal(res.status, 200);
          acknowledged = { version: res.body.version, price: 30 + round };
        } else {
          const res = await call<{ version: number; remainingStock: number }>(
            t.front(writer),
            'POST',
            '/purchase/1',
          );
          assert.equal(res.status, 200);
          acknowledged = { version: res.body.version, stock: res.body.remainingStock };
        }
        for (const i of [0, 1]) {
          const info = await call<Book>(t.front(i), 'GET', '/info/1');
          assert.equal(info.status, 200);
          assert.ok(
            info.body.version >= acknowledged.version,
            `round ${round}: front-${i} returned version ${info.body.version} < acknowledged ${acknowledged.version} (X-Cache ${info.headers.get('x-cache')})`,
          );
          if (acknowledged.stock !== undefined) assert.equal(info.body.stock, acknowledged.stock);
          if (acknowledged.price !== undefined) assert.equal(info.body.price, acknowledged.price);
        }
      }
    });

    it('the stale-set race is defeated: a fill delayed past an invalidation does not resurrect the old version', async () => {
      // Control: with fencing switched off, the same interleaving does put the old version back.
      // This proves the test really produces the race.
      await testHooks(t, { fencing: false, fillDelay: { bookId: 7, ms: 600 } });
      const staleRead = call<Book>(t.front(0), 'GET', '/info/7');
      await sleep(200);
      const write7 = await call<{ version: number }>(t.front(1), 'POST', '/purchase/7');
      assert.equal(write7.status, 200);
      await staleRead;
      const resurrected = await call<Book>(t.front(0), 'GET', '/info/7');
      assert.equal(resurrected.headers.get('x-cache'), 'hit');
      assert.ok(
        resurrected.body.version < write7.body.version,
        'without fences the old value is back in the cache',
      );
      await testHooks(t, { fencing: true });

      // With fences (the product's behaviour).
      await testHooks(t, { fillDelay: { bookId: 6, ms: 600 } });
      const racingRead = call<Book>(t.front(0), 'GET', '/info/6');
      await sleep(200);
      const write6 = await call<{ version: number }>(t.front(1), 'POST', '/purchase/6');
      assert.equal(write6.status, 200);
      assert.equal(write6.headers.get('x-invalidated'), '2/2', 'both fronts acknowledged the invalidation');
      const raced = await racingRead;
      // It began before the write: either version is linearizable; what matters is the cache.
      assert.equal(raced.status, 200);
      const cached = await call<Book>(t.front(0), 'GET', '/info/6');
      assert.ok(
        cached.body.version >= write6.body.version,
        `cache holds version ${cached.body.version}, write produced ${write6.body.version}`,
      );
    });

    it('a read overtaken by writes on every flight is still served: at least the version acknowledged before it began, nothing superseded cached', async () => {
      await setStock(t, 3, 100_000);
      const writes = new WriteStream(t, 3);
      const before = await catalogReads(t);
      // Every flight of front-0's reads of book 3 is held 150 ms after its answer, while writes land.
      await testHooks(t, { fillDelay: { bookId: 3, ms: 150, times: 1000 } });
      try {
        const startVersion = (await writes.next()).version;
        const reads = await writes.during(async () => {
          const out = [];
          for (let i = 0; i < 5; i++) out.push(await call<Book>(t.front(0), 'GET', '/info/3'));
          return out;
        });
        for (const read of reads) {
          assert.equal(read.status, 200, JSON.stringify(read.body));
          assert.ok(
            read.body.version >= startVersion,
            `served version ${read.body.version} < ${startVersion}`,
          );
        }
        assert.ok(writes.acknowledged >= 5, `${writes.acknowledged} writes overtook the reads`);
        const fetches = (await catalogReads(t)) - before;
        assert.ok(
          fetches <= 10,
          `${fetches} catalog reads for 5 reads: a bar fixed at the start needs no chase`,
        );
      } finally {
        await testHooks(t, { fillDelay: { bookId: 3, ms: 0, times: 1 } });
      }
      const cached = await call<Book>(t.front(0), 'GET', '/info/3');
      assert.ok(cached.body.version >= writes.lastAcknowledged, 'the cache holds no superseded version');
    });

    it('X-Min-Version: a session token is honoured by every front; a version that does not exist is 412, a bad one 400', async () => {
      const bought = await call<{ version: number }>(t.front(0), 'POST', '/purchase/5');
      assert.equal(bought.status, 200);
      for (const i of [0, 1]) {
        const info = await call<Book>(t.front(i), 'GET', '/info/5', {
          headers: { 'x-min-version': String(bought.body.version) },
        });
        assert.equal(info.status, 200);
        assert.ok(info.body.version >= bought.body.version, `front-${i}: v${info.body.version}`);
      }
      const ahead = await call<{ error: { code: string } }>(t.front(1), 'GET', '/info/5', {
        headers: { 'x-min-version': String(bought.body.version + 1000) },
      });
      assert.equal(ahead.status, 412, JSON.stringify(ahead.body));
      assert.equal(ahead.body.error.code, 'unknown_version');
      const bad = await call<{ error: { code: string } }>(t.front(1), 'GET', '/info/5', {
        headers: { 'x-min-version': 'latest' },
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_min_version');
    });

    it('concurrent retries of one purchase under one Idempotency-Key buy exactly once', async () => {
      const key = `concurrent-${mode}-${Date.now()}`;
      const stockBefore = (await t.db.query('SELECT stock FROM books WHERE id = 2')).rows[0].stock;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          call<Record<string, unknown>>(t.front(i % 2), 'POST', '/purchase/2', {
            headers: { 'idempotency-key': key },
          }),
        ),
      );
      for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(new Set(results.map((r) => r.body.orderId)).size, 1);
      assert.equal((await t.db.query('SELECT stock FROM books WHERE id = 2')).rows[0].stock, stockBefore - 1);
      const n = (await t.db.query('SELECT count(*)::int AS n FROM orders WHERE idempotency_key = $1', [key]))
        .rows[0].n;
      assert.equal(n, 1);
    });
  });
}
