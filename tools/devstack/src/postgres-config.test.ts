/**
 * The cluster's plan without Postgres: paths, the settings each server is written with, the
 * initdb and pg_ctl command lines, and the meta file that says a cluster is set up.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import {
  clusterLayout,
  clusterUrl,
  formatClusterMeta,
  initdbArgs,
  parseClusterMeta,
  pgCtlStopArgs,
  pgDataDirs,
  serverConf,
} from './postgres-config.js';

const layout = clusterLayout({ dataDir: 'rel/pg', primaryPort: 5501, standbyPort: 5502 });

describe('cluster layout', () => {
  test('every path is under the resolved data directory', () => {
    const root = path.resolve('rel/pg');
    assert.equal(layout.dataDir, root);
    assert.deepEqual(layout.pgdata, pgDataDirs('rel/pg'));
    assert.deepEqual(layout.pgdata, {
      primary: path.join(root, 'primary'),
      standby: path.join(root, 'standby'),
    });
    assert.deepEqual(layout.logFile, {
      primary: path.join(root, 'primary.log'),
      standby: path.join(root, 'standby.log'),
    });
    assert.equal(layout.metaFile, path.join(root, 'cluster.json'));
    assert.equal(layout.passwordFile, path.join(root, '.pwfile'));
    assert.deepEqual(layout.port, { primary: 5501, standby: 5502 });
    assert.equal(layout.fsync, true, 'fsync by default');
  });

  test('the two servers need two ports', () => {
    assert.throws(
      () => clusterLayout({ dataDir: '/x', primaryPort: 5501, standbyPort: 5501 }),
      /^Error: primaryPort and standbyPort must differ$/,
    );
  });

  test('URLs name the superuser, the password and the database', () => {
    assert.equal(clusterUrl(5501, 'pw'), 'postgres://bazar:pw@127.0.0.1:5501/bazar');
  });
});

describe('server settings', () => {
  const settings = (text: string): Map<string, string> =>
    new Map(
      text
        .split('\n')
        .filter((l) => l.includes(' = '))
        .map((l) => [l.slice(0, l.indexOf(' = ')), l.slice(l.indexOf(' = ') + 3)]),
    );

  test('each server listens on loopback on its own port, no Unix socket', () => {
    const primary = settings(serverConf(layout, 'primary', 'pw'));
    const standby = settings(serverConf(layout, 'standby', 'pw'));
    assert.equal(primary.get('port'), '5501');
    assert.equal(standby.get('port'), '5502');
    for (const s of [primary, standby]) {
      assert.equal(s.get('listen_addresses'), "'127.0.0.1'");
      assert.equal(s.get('unix_socket_directories'), "''");
      assert.equal(s.get('synchronous_standby_names'), "'*'");
      assert.equal(s.get('fsync'), 'on');
    }
  });

  test('only the standby follows the primary, through the slot, under its application name', () => {
    const primary = settings(serverConf(layout, 'primary', 'pw'));
    const standby = settings(serverConf(layout, 'standby', 'secret'));
    assert.equal(primary.has('primary_conninfo'), false);
    assert.equal(
      standby.get('primary_conninfo'),
      "'host=127.0.0.1 port=5501 user=bazar password=secret application_name=bazar_standby connect_timeout=5'",
    );
    assert.equal(standby.get('primary_slot_name'), "'bazar_standby'");
  });

  test('fsync off also turns off full page writes and initdb syncing', () => {
    const fast = clusterLayout({ dataDir: '/x', primaryPort: 1, standbyPort: 2, fsync: false });
    const s = settings(serverConf(fast, 'primary', 'pw'));
    assert.equal(s.get('fsync'), 'off');
    assert.equal(s.get('full_page_writes'), 'off');
    assert.equal(initdbArgs(fast).at(-1), '--no-sync');
    assert.equal(initdbArgs(layout).includes('--no-sync'), false);
  });

  test('initdb makes the primary with the password file, UTF8 and the C locale', () => {
    const args = initdbArgs(layout);
    assert.deepEqual(args.slice(0, 5), [
      '-D',
      layout.pgdata.primary,
      '-U',
      'bazar',
      `--pwfile=${layout.passwordFile}`,
    ]);
    assert.ok(args.includes('--locale=C') && args.includes('UTF8'));
  });

  test('pg_ctl stops fast with a longer wait than immediate', () => {
    assert.deepEqual(pgCtlStopArgs('/d', 'fast'), ['stop', '-w', '-t', '60', '-m', 'fast', '-D', '/d']);
    assert.deepEqual(pgCtlStopArgs('/d', 'immediate'), [
      'stop',
      '-w',
      '-t',
      '30',
      '-m',
      'immediate',
      '-D',
      '/d',
    ]);
  });
});

describe('cluster meta file', () => {
  test('round trip, in the format written so far', () => {
    const text = formatClusterMeta('pw');
    assert.equal(text, '{\n  "format": 1,\n  "password": "pw"\n}\n');
    assert.deepEqual(parseClusterMeta(text), { format: 1, password: 'pw' });
  });

  test('anything else means "not set up"', () => {
    for (const text of [
      '',
      '{',
      'null',
      '[]',
      '{"format":2,"password":"pw"}',
      '{"format":1,"password":3}',
      '{"format":1}',
    ]) {
      assert.equal(parseClusterMeta(text), undefined, text);
    }
  });
});
