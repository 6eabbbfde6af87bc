/**
 * Strict reads never go back in time (docs/guarantees.md, "strict"), each anomaly made deterministic on
 * a real PostgreSQL primary + standby and real service processes (2 fronts, catalog origin + replica,
 * order origin + replica):
 *
 * - the remote_apply window held open: the primary waits for a standby confirmation that does not come
 *   (`synchronous_standby_names = 'nobody'`) while the standby keeps replaying, so the standby shows
 *   the new version and a fresh snapshot on the primary the old one. Reads one after the other
 *   through both fronts (cached and `no-cache`) and straight from the catalog origin and replica must
 *   never return a version older than one already returned;
 * - a standby back from its volume that does not stream yet, and a front restarted meanwhile: a
 *   front with no fence must not take the standby's old version for the current one;
 * - a front restarted while a write was announced and not yet committed: it must not cache what it
 *   reads before the commit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, startTestStack, type TestStack } from '../api/harness.js';
import { onServer, onStandby, readyz, sleep, waitFor } from './support.js';

interface Book {
  id: number;
  price: number;
  stock: number;
  version: number;
}

/** A standby confirmation can be awaited this long before a strict write degrades: the window's width. */
const SYNC_COMMIT_TIMEOUT_MS = 15_000;

/** Names a synchronous standby that does not exist: commits wait on the primary, the standby replays. */
async function holdWindowOpen(t: TestStack): Promise<void> {
  await onServer(t.stack.primaryUrl, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
  await onServer(t.stack.primaryUrl, 'SELECT pg_reload_conf()');
  await waitFor('the primary to wait for a standby named nobody', async () => {
    const [row] = await onServer(t.stack.primaryUrl, 'SHOW synchronous_standby_names');
    return row?.synchronous_standby_names === 'nobody';
  });
}

async function closeWindow(t: TestStack): Promise<void> {
  await onServer(t.stack.primaryUrl, 'ALTER SYSTEM RESET synchronous_standby_names');
  await onServer(t.stack.primaryUrl, 'SELECT pg_reload_conf()');
}

/** Every writer commits at remote_apply again (none is degraded: the standby confirms). */
async function untilStrict(t: TestStack): Promise<void> {
  const writers = [...t.stack.orders, t.stack.catalogs.find((c) => c.role === 'origin')!];
  await waitFor(
    'every writer to commit at remote_apply again',
    async () => {
      for (const w of writers)
        if (JSON.stringify((await readyz(w.url)).body).includes('degraded')) return false;
      return true;
    },
    30_000,
  );
}

async function standbyVersion(t: TestStack, id: number): Promise<number> {
  const rows = await onStandby<{ version: string }>(t.stack, 'SELECT version FROM books WHERE id = $1', [id]);
  return Number(rows[0]?.version);
}

/** One read and where it came from, for the failure message. */
interface Seen {
  via: string;
  status: number;
  version?: number;
  cache?: string | null;
  servedBy?: string | null;
}

/**
 * Reads one after the other (each begins after the last completed) through every path; asserts that
 * none returns a version older than one returned before it. `allowWriteInFlight`: paths straight to
 * the catalog origin may answer 503 write_in_flight instead (the fronts then ask another pod).
 */
async function readInTurn(t: TestStack, id: number, rounds: number): Promise<Seen[]> {
  const catalogOrigin = t.stack.catalogs.find((c) => c.role === 'origin')!;
  const catalogReplica = t.stack.catalogs.find((c) => c.role === 'replica')!;
  const paths: Array<{ via: string; base: string; path: string; headers?: Record<string, string> }> = [
    { via: 'front-0', base: t.front(0), path: `/info/${id}` },
    { via: 'front-1', base: t.front(1), path: `/info/${id}` },
    {
      via: 'front-0 no-cache',
      base: t.front(0),
      path: `/info/${id}`,
      headers: { 'cache-control': 'no-cache' },
    },
    {
      via: 'front-1 no-cache',
      base: t.front(1),
      path: `/info/${id}`,
      headers: { 'cache-control': 'no-cache' },
    },
    { via: 'catalog replica', base: catalogReplica.url, path: `/books/${id}` },
    { via: 'catalog origin', base: catalogOrigin.url, path: `/books/${id}` },
  ];
  const seen: Seen[] = [];
  let newest = 0;
  for (let i = 0; i < rounds * paths.length; i++) {
    const p = paths[i % paths.length]!;
    const res = await call<Book & { error?: { code: string } }>(p.base, 'GET', p.path, {
      ...(p.headers ? { headers: p.headers } : {}),
    });
    const read: Seen = {
      via: p.via,
      status: res.status,
      cache: res.headers.get('x-cache'),
      servedBy: res.headers.get('x-served-by'),
      ...(res.status === 200 ? { version: res.body.version } : {}),
    };
    seen.push(read);
    const trail = () =>
      seen
        .map((s) => `${s.via}: ${s.status} v${s.version ?? '-'} ${s.cache ?? ''} ${s.servedBy ?? ''}`)
        .join('\n  ');
    if (res.status !== 200) {
      assert.ok(
        p.via === 'catalog origin' && res.status === 503 && res.body.error?.code === 'write_in_flight',
        `read ${i} via ${p.via} answered ${res.status} ${JSON.stringify(res.body)}:\n  ${trail()}`,
      );
      continue;
    }
    assert.ok(
      res.body.version >= newest,
      `read ${i} via ${p.via} went back in time: version ${res.body.version} after ${newest} was returned:\n  ${trail()}`,
    );
    newest = res.body.version;
  }
  return seen;
}

describe('strict reads never go back in time (linearizable), on loopback with real PostgreSQL', () => {
  let t: TestStack;
  const admin = () => bearer(t.stack.adminToken);

  before(async () => {
    t = await startTestStack({
      consistencyMode: 'strict',
      // The window is a commit the standby has not confirmed yet; its last case lets it time out and
      // degrade (the default, refuse, is strict-refuse.test.ts).
      env: {
        SYNC_COMMIT_TIMEOUT_MS: String(SYNC_COMMIT_TIMEOUT_MS),
        UPSTREAM_WRITE_TIMEOUT_MS: '60000',
        STRICT_STANDBY_LOSS: 'degrade',
      },
    });
  });
  after(async () => {
    if (t) await closeWindow(t).catch(() => undefined);
    await t?.stop();
  });

  for (const writer of [0, 1]) {
    it(`the remote_apply window held open, a price change through front-${writer}: no read through any front or catalog pod goes back`, async () => {
      const id = 2;
      // Warm both fronts' caches: a cached copy is there to be served.
      for (const i of [0, 1]) for (let k = 0; k < 2; k++) await call(t.front(i), 'GET', `/info/${id}`);
      await untilStrict(t);
      const before = (await call<Book>(t.front(0), 'GET', `/info/${id}`)).body.version;
      await holdWindowOpen(t);
      let write: Promise<Awaited<ReturnType<typeof call<Book>>>> | undefined;
      try {
        write = call<Book>(t.front(writer), 'PATCH', `/books/${id}`, {
          headers: admin(),
          body: { price: 100 + writer },
          timeoutMs: SYNC_COMMIT_TIMEOUT_MS + 30_000,
        });
        await waitFor('the standby to show the write the primary still waits on', async () => {
          return (await standbyVersion(t, id)) > before;
        });
        const [primaryRow] = await onServer(t.stack.primaryUrl, `SELECT version FROM books WHERE id = ${id}`);
        assert.equal(
          Number(primaryRow?.version),
          before,
          'the window is open: the primary still shows the old version',
        );
        const opened = Date.now();
        const seen = await readInTurn(t, id, 4);
        assert.ok(
          seen.some((s) => s.version !== undefined && s.version > before),
          'some read saw the new version (else the window was never exercised)',
        );
        const byPath = new Map<string, string[]>();
        for (const r of seen)
          byPath.set(r.via, [
            ...(byPath.get(r.via) ?? []),
            r.status === 200 ? `v${r.version}` : `${r.status}`,
          ]);
        console.log(
          `window held open ${Date.now() - opened} ms, price change through front-${writer}: ${seen.length} reads in turn, ` +
            `${seen.filter((r) => (r.version ?? 0) > before).length} saw the new version, none went back; ` +
            [...byPath].map(([via, vs]) => `${via}: ${vs.join(' ')}`).join('; '),
        );
      } finally {
        await closeWindow(t);
      }
      const done = await write!;
      assert.equal(done.status, 200, JSON.stringify(done.body));
      for (const i of [0, 1]) {
        const info = await call<Book>(t.front(i), 'GET', `/info/${id}`);
        assert.ok(
          info.body.version >= done.body.version,
          `front-${i} after the write: v${info.body.version}`,
        );
      }
    });
  }

  it('a standby that does not stream (as one back from its volume) and a front restarted meanwhile: the acknowledged write is still seen', async () => {
    const id = 3;
    // The standby stops streaming, as one back from its volume does until it reaches its primary.
    await onServer(t.stack.standbyUrl, "ALTER SYSTEM SET primary_conninfo = ''");
    await onServer(t.stack.standbyUrl, 'SELECT pg_reload_conf()');
    try {
      await waitFor('the standby to run without a WAL receiver', async () => {
        const rows = await onStandby<{ n: number }>(
          t.stack,
          'SELECT count(*)::int AS n FROM pg_stat_wal_receiver',
        );
        return rows[0]?.n === 0;
      });
      // A write no standby confirms: committed on the primary after SYNC_COMMIT_TIMEOUT_MS, and the
      // writers degrade (docs/guarantees.md).
      const res = await call<Book>(t.front(0), 'PATCH', `/books/${id}`, {
        headers: admin(),
        body: { price: 77 },
        timeoutMs: SYNC_COMMIT_TIMEOUT_MS + 30_000,
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(
        (await standbyVersion(t, id)) < res.body.version,
        'the standby misses the acknowledged write',
      );
      // front-1 restarts: it has no fence for the book.
      const front1 = t.stack.fronts[1]!;
      await front1.start();
      for (let i = 0; i < 8; i++) {
        const info = await call<Book>(t.front(1), 'GET', `/info/${id}`, {
          headers: { 'cache-control': 'no-cache' },
        });
        assert.equal(info.status, 200, JSON.stringify(info.body));
        assert.ok(
          info.body.version >= res.body.version,
          `read ${i} through the restarted front-1 returned version ${info.body.version} (served by ${info.headers.get('x-served-by')}) after version ${res.body.version} was acknowledged`,
        );
      }
    } finally {
      await onServer(t.stack.standbyUrl, 'ALTER SYSTEM RESET primary_conninfo');
      await onServer(t.stack.standbyUrl, 'SELECT pg_reload_conf()');
      await waitFor(
        'the standby to stream again',
        async () => {
          const rows = await onStandby<{ n: number }>(
            t.stack,
            "SELECT count(*)::int AS n FROM pg_stat_wal_receiver WHERE status = 'streaming'",
          );
          return rows[0]?.n === 1;
        },
        30_000,
      );
    }
  });

  it('a front restarted while a purchase is announced and not yet committed caches nothing it read before the commit', async () => {
    const id = 4;
    for (const order of t.stack.orders) {
      const res = await call(order.url, 'POST', '/internal/test-hooks', {
        headers: bearer(t.stack.internalToken),
        body: { holdBeforeCommitMs: 2500 },
      });
      assert.equal(res.status, 200);
    }
    try {
      await untilStrict(t);
      const before = (await call<Book>(t.front(1), 'GET', `/info/${id}`)).body.version;
      const purchase = call<{ version: number }>(t.front(0), 'POST', `/purchase/${id}`, {
        timeoutMs: SYNC_COMMIT_TIMEOUT_MS + 30_000,
      });
      await sleep(200); // announced to front-1, waiting before its commit
      await t.stack.fronts[1]!.start(); // front-1 restarts: the announcement is lost with it
      await holdWindowOpen(t);
      let done;
      try {
        // Read before the commit: the old version, which front-1 must not cache.
        const early = await call<Book>(t.front(1), 'GET', `/info/${id}`);
        assert.equal(early.status, 200);
        assert.equal(early.body.version, before, 'read before the commit');
        await waitFor(
          'the standby to show the purchase',
          async () => (await standbyVersion(t, id)) > before,
          10_000,
        );
        const seen = await readInTurn(t, id, 3);
        assert.ok(seen.some((s) => (s.version ?? 0) > before));
      } finally {
        await closeWindow(t);
        done = await purchase;
      }
      assert.equal(done.status, 200, JSON.stringify(done.body));
    } finally {
      for (const order of t.stack.orders) {
        await call(order.url, 'POST', '/internal/test-hooks', {
          headers: bearer(t.stack.internalToken),
          body: { holdBeforeCommitMs: 0 },
        });
      }
    }
  });
});
