/**
 * The embedded primary + hot standby: real streaming replication, remote_apply
 * visibility, read-only standby, persistence across restarts, fault helpers and
 * a clean stop. Runs against real Postgres binaries (about 5 s in total).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { pgDataDirs, startPgCluster, type PgCluster } from './postgres-cluster.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Live (non-zombie) process? Orphaned postmasters are reaped lazily by PID 1. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Postmaster pids of the cluster plus all their children (checkpointer, walsender, ...). */
function clusterPids(dataDir: string): number[] {
  const roots = Object.values(pgDataDirs(dataDir))
    .map((d) => path.join(d, 'postmaster.pid'))
    .filter((f) => existsSync(f))
    .map((f) => Number.parseInt(readFileSync(f, 'utf8').split('\n')[0] ?? '', 10));
  const pids = new Set(roots);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (pids.has(ppid)) pids.add(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return [...pids];
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('embedded Postgres primary + hot standby', { timeout: 120_000 }, () => {
  let dataDir: string;
  let primaryPort: number;
  let standbyPort: number;
  let cluster: PgCluster | undefined;
  const logs: string[] = [];
  const start = (): Promise<PgCluster> =>
    startPgCluster({ dataDir, primaryPort, standbyPort, fsync: false, log: (l) => logs.push(l) });

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bazar-pg-test-'));
    primaryPort = await freePort();
    standbyPort = await freePort();
    cluster = await start();
  });

  after(async () => {
    await cluster?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('standby is streaming synchronously', async () => {
    assert.ok(cluster);
    const rows = await withClient(
      cluster.primaryUrl,
      async (c) =>
        (
          await c.query<{ state: string; sync_state: string }>(
            'SELECT state, sync_state FROM pg_stat_replication',
          )
        ).rows,
    );
    assert.deepEqual(rows, [{ state: 'streaming', sync_state: 'sync' }]);
  });

  test('a remote_apply commit on the primary is visible on the standby immediately', async () => {
    assert.ok(cluster);
    const c = cluster;
    await withClient(c.primaryUrl, async (primary) => {
      await withClient(c.standbyUrl, async (standby) => {
        await primary.query('CREATE TABLE kv (k int PRIMARY KEY, v int NOT NULL)');
        await primary.query('INSERT INTO kv VALUES (1, 0)');
        for (let i = 1; i <= 50; i++) {
          await primary.query('BEGIN');
          await primary.query('SET LOCAL synchronous_commit = remote_apply');
          await primary.query('UPDATE kv SET v = $1 WHERE k = 1', [i]);
          await primary.query('COMMIT');
          const r = await standby.query<{ v: number }>('SELECT v FROM kv WHERE k = 1');
          assert.equal(r.rows[0]?.v, i, `standby must return write ${i} right after COMMIT`);
        }
      });
    });
  });

  test('the standby is read-only (SQLSTATE 25006)', async () => {
    assert.ok(cluster);
    await withClient(cluster.standbyUrl, async (standby) => {
      await assert.rejects(standby.query('INSERT INTO kv VALUES (2, 2)'), (err: unknown) => {
        assert.equal((err as { code?: string }).code, '25006');
        return true;
      });
      const r = await standby.query<{ ro: string }>('SELECT pg_is_in_recovery()::text AS ro');
      assert.equal(r.rows[0]?.ro, 'true');
    });
  });

  test('fault helpers: standby and primary can be stopped and started', async () => {
    assert.ok(cluster);
    const c = cluster;
    await c.stopStandby();
    // With the standby gone only a local commit returns; the standby catches up later.
    await withClient(c.primaryUrl, async (p) => {
      await p.query('BEGIN');
      await p.query('SET LOCAL synchronous_commit = local');
      await p.query('UPDATE kv SET v = 100 WHERE k = 1');
      await p.query('COMMIT');
    });
    await c.startStandby();
    await c.stopPrimary();
    const seen = await withClient(
      c.standbyUrl,
      async (s) => (await s.query<{ v: number }>('SELECT v FROM kv')).rows[0]?.v,
    );
    assert.equal(seen, 100, 'reads keep working on the standby while the primary is down');
    await c.startPrimary();
    await withClient(c.primaryUrl, async (p) => {
      await p.query('BEGIN');
      await p.query('SET LOCAL synchronous_commit = remote_apply');
      await p.query('UPDATE kv SET v = 101 WHERE k = 1');
      await p.query('COMMIT');
    });
    const v = await withClient(
      c.standbyUrl,
      async (s) => (await s.query<{ v: number }>('SELECT v FROM kv')).rows[0]?.v,
    );
    assert.equal(v, 101);
  });

  test('stop() leaves no Postgres process; a restart keeps the data', async () => {
    assert.ok(cluster);
    const pids = clusterPids(dataDir);
    assert.ok(pids.length >= 6, `expected postmasters and their children, got ${pids.join(',')}`);
    await cluster.stop();
    cluster = undefined;
    const alive = pids.filter(isRunning);
    assert.deepEqual(alive, [], 'no Postgres process may survive stop()');

    // A stale pid file (e.g. from a killed run) must not block the next start.
    const dead = spawnSync('true').pid;
    assert.ok(dead);
    writeFileSync(
      path.join(pgDataDirs(dataDir).standby, 'postmaster.pid'),
      `${dead}\n${pgDataDirs(dataDir).standby}\n`,
    );

    logs.length = 0;
    const t0 = Date.now();
    cluster = await start();
    const restartMs = Date.now() - t0;
    assert.ok(!logs.some((l) => l.includes('initialised')), 'the existing cluster is reused, not re-created');
    assert.ok(
      logs.some((l) => l.includes('stale')),
      'the stale pid file is reported',
    );
    for (const url of [cluster.primaryUrl, cluster.standbyUrl]) {
      const v = await withClient(
        url,
        async (c) => (await c.query<{ v: number }>('SELECT v FROM kv')).rows[0]?.v,
      );
      assert.equal(v, 101);
    }
    assert.ok(restartMs < 20_000, `restart took ${restartMs} ms`);
  });
});
