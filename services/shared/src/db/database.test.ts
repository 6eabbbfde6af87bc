/**
 * A database found unreachable fails requests at once (503 naming its role, no connection attempt)
 * while a background probe tries it again; the first probe that gets through lets requests through.
 * On a real node a Service with no endpoints answers with rate-limited ICMP errors, so without this
 * most writes sat out the 1 s connect timeout while the primary pod was away (p50 1.0 s, max 3.0 s).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type pg from 'pg';
import { HttpError } from '../errors.js';
import { createLogger } from '../logger.js';
import { Database, isReadOnlyServer, isUnreachable } from './database.js';

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('isUnreachable: the server cannot be reached, not a busy pool nor a failed query', () => {
  for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT', '57P03']) {
    assert.equal(isUnreachable({ code }), true, code);
  }
  assert.equal(isUnreachable(new Error('Connection terminated due to connection timeout')), true);
  assert.equal(isUnreachable(new Error('timeout exceeded when trying to connect')), false, 'a busy pool');
  assert.equal(isUnreachable({ code: '57P01' }), false, 'a session ended by a shutdown: it was reached');
  assert.equal(isUnreachable({ code: '23505' }), false);
});

test('an unreachable server: requests fail at once while it is away, and go through once a probe does', async () => {
  const db = new Database(
    'primary',
    `postgres://nobody@127.0.0.1:${await closedPort()}/none`,
    createLogger({ name: 'database-test', level: 'silent' }),
    { applicationName: 'database-test' },
  );
  let attempts = 0;
  const connect = db.pool.connect.bind(db.pool) as () => Promise<pg.PoolClient>;
  (db.pool as { connect: unknown }).connect = () => {
    attempts++;
    return connect();
  };
  try {
    const refused = (err: unknown) =>
      err instanceof HttpError && err.status === 503 && err.code === 'primary_unavailable';
    await assert.rejects(db.connect(), refused);
    assert.equal(attempts, 1);
    assert.equal(db.knownUnreachable(), true);
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await assert.rejects(db.connect(), refused);
      await assert.rejects(db.query('SELECT 1'), refused);
      assert.ok(Date.now() - t0 < 50, 'answered at once');
    }
    assert.equal(attempts, 1, 'no connection was attempted while the server was known away');
    // The server is back: the background probe (pool.query) gets through, requests try again.
    (db.pool as { query: unknown }).query = async () => ({ rows: [{ '?column?': 1 }] });
    const deadline = Date.now() + 3000;
    while (db.knownUnreachable() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(db.knownUnreachable(), false, 'a probe that got through ended the fail-fast window');
    await assert.rejects(db.connect(), refused);
    assert.equal(attempts, 2, 'the next request tried the server again');
  } finally {
    await db.close();
  }
});

test('a write refused by a read-only server (a demoted primary) is 503 primary_unavailable, never a 500', async () => {
  const logger = createLogger({ name: 'database-test', level: 'silent' });
  const readOnly = Object.assign(new Error('cannot execute UPDATE in a read-only transaction'), {
    code: '25006',
  });
  assert.equal(isReadOnlyServer(readOnly), true);
  assert.equal(isReadOnlyServer({ code: '23505' }), false);
  const primary = new Database('primary', 'postgres://x@127.0.0.1:1/none', logger, { applicationName: 't' });
  const standby = new Database('standby', 'postgres://x@127.0.0.1:1/none', logger, { applicationName: 't' });
  try {
    const mapped = primary.mapError(readOnly);
    assert.ok(mapped instanceof HttpError);
    assert.equal(mapped.status, 503);
    assert.equal(mapped.code, 'primary_unavailable');
    assert.equal(standby.mapError(readOnly), readOnly, 'a standby is read-only by design: not a failover');
  } finally {
    await primary.close();
    await standby.close();
  }
});
