/**
 * The knobs of a running store (control.ts) through `npm run ctl`'s own code (ctl.ts), against a real
 * stack: the live policy reaches every process, a bad one is refused whole, processes stop and start,
 * the PostgreSQL servers stop and start, and the standby's replay lags and pauses — each seen in the
 * store's behaviour, not only in the knob's answer.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveControl, StoreControl, type ControlFile, type ControlServer } from './control.js';
import { metric } from '../../bench/src/prom.js';
import { parseCtl, runCtl, CtlUsageError } from './ctl.js';
import { startStack, type Stack } from './stack.js';

describe('the knobs of a running store (npm run ctl)', { timeout: 240_000 }, () => {
  let dataDir: string;
  let stack: Stack;
  let server: ControlServer;

  /** `npm run ctl -- <argv>` against this stack: its exit code and output. */
  async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const parsed = parseCtl([...argv, '--data-dir', dataDir]);
    assert.notEqual(parsed, 'help');
    return runCtl((parsed as Exclude<typeof parsed, 'help'>).request, dataDir);
  }

  async function readyz(
    url: string,
  ): Promise<{ policy: { consistencyMode: string; cacheMaxEntries: number } }> {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as { policy: { consistencyMode: string; cacheMaxEntries: number } };
  }

  async function timedPurchase(id: number): Promise<{ status: number; ms: number }> {
    const t0 = performance.now();
    const res = await fetch(`${stack.fronts[0]!.url}/purchase/${id}`, {
      method: 'POST',
      signal: AbortSignal.timeout(20_000),
    });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - t0 };
  }

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bazar-control-test-'));
    const policyFile = path.join(dataDir, 'policy.json');
    stack = await startStack({
      dataDir,
      fronts: 2,
      fsync: false,
      logLevel: 'warn',
      logDir: path.join(dataDir, 'logs'),
      policyFile,
    });
    server = await serveControl(new StoreControl(stack, policyFile), stack.adminToken);
    await fs.writeFile(path.join(dataDir, 'admin-token'), stack.adminToken);
    const file: ControlFile = { url: server.url, pid: process.pid };
    await fs.writeFile(path.join(dataDir, 'control.json'), JSON.stringify(file));
  });

  after(async () => {
    server?.close();
    await stack?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('a policy change is in force on every process when the command returns; a bad one is refused whole', async () => {
    const done = await ctl('policy', '--mode', 'eventual', '--cache-max', '3');
    assert.equal(done.code, 0, done.err);
    assert.match(done.out, /in force on 6 processes/);
    for (const p of stack.all) assert.equal((await readyz(p.url)).policy.consistencyMode, 'eventual', p.name);
    for (const f of stack.fronts) assert.equal((await readyz(f.url)).policy.cacheMaxEntries, 3, f.name);

    const before = await fs.readFile(path.join(dataDir, 'policy.json'), 'utf8');
    for (const argv of [
      ['--mode', 'linearizable'],
      ['--cache-max', '0'],
      ['--balancing', 'least-loaded'],
    ]) {
      const refused = await ctl('policy', ...argv);
      assert.equal(refused.code, 1, argv.join(' '));
      assert.match(refused.err, /policy refused: /);
    }
    assert.equal(
      await fs.readFile(path.join(dataDir, 'policy.json'), 'utf8'),
      before,
      'the file is untouched',
    );
    assert.equal((await readyz(stack.fronts[0]!.url)).policy.consistencyMode, 'eventual');

    const back = await ctl('policy', '--mode', 'strict', '--cache-max', '10000');
    assert.equal(back.code, 0, back.err);
  });

  test('usage errors are exit 2 material; without a running store the exit code is 3', async () => {
    for (const argv of [
      [],
      ['lag'],
      ['lag', 'soon'],
      ['policy'],
      ['restart', 'primary'],
      ['status', 'now'],
      ['frobnicate'],
    ]) {
      assert.throws(() => parseCtl(argv), CtlUsageError, argv.join(' '));
    }
    const parsed = parseCtl(['status']);
    assert.notEqual(parsed, 'help');
    const none = await runCtl(
      (parsed as Exclude<typeof parsed, 'help'>).request,
      path.join(dataDir, 'nothing-here'),
    );
    assert.equal(none.code, 3);
  });

  test('the control server wants the admin token', async () => {
    const res = await fetch(`${server.url}/status`);
    assert.equal(res.status, 401);
    const wrong = await fetch(`${server.url}/status`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'unauthorized');
  });

  test('a front killed is gone, and back when started; an unknown name is refused with the list', async () => {
    const front = stack.fronts[1]!;
    const killed = await ctl('kill', front.name);
    assert.equal(killed.code, 0, killed.err);
    assert.equal(front.running(), false);
    await assert.rejects(fetch(`${front.url}/livez`, { signal: AbortSignal.timeout(2000) }));
    assert.equal((await ctl('start', front.name)).code, 0);
    assert.equal((await fetch(`${front.url}/readyz`)).status, 200);
    const again = await ctl('start', front.name);
    assert.equal(again.code, 1);
    assert.match(again.err, /already running/);
    const unknown = await ctl('restart', 'front-9');
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /front-0, front-1, catalog-origin-0/);
  });

  test('the standby lags by the delay asked for: a strict purchase waits for it, an eventual one does not', async () => {
    const lag = await ctl('lag', '1000');
    assert.equal(lag.code, 0, lag.err);
    assert.match(lag.out, /delay 1000 ms/);
    const strict = await timedPurchase(1);
    assert.equal(strict.status, 200);
    assert.ok(
      strict.ms >= 900,
      `a strict purchase waits for the standby's delayed replay (took ${strict.ms.toFixed(0)} ms)`,
    );
    // What an operator sees of it: the catalog replica's gauges of its standby.
    const replica = stack.catalogs.find((c) => c.role === 'replica')!;
    assert.equal(await gaugeOf(replica.url, 'bazar_standby_apply_delay_seconds'), 1);
    assert.equal(await gaugeOf(replica.url, 'bazar_standby_streaming'), 1);
    assert.equal((await ctl('policy', '--mode', 'eventual')).code, 0);
    const eventual = await timedPurchase(1);
    assert.equal(eventual.status, 200);
    assert.ok(eventual.ms < 900, `an eventual purchase does not wait (took ${eventual.ms.toFixed(0)} ms)`);
    // Its commit is on its way to the standby, not applied yet: the replica's gauges show the lag.
    assert.ok(
      (await gaugeOf(replica.url, 'bazar_standby_unapplied_wal_bytes')) > 0,
      'WAL received, not applied',
    );
    assert.ok((await gaugeOf(replica.url, 'bazar_standby_replay_lag_seconds')) > 0, 'the replay is behind');
    assert.equal((await ctl('policy', '--mode', 'strict')).code, 0);
    assert.equal((await ctl('lag', '0')).code, 0);
    const fast = await timedPurchase(1);
    assert.ok(fast.ms < 900, `lag 0 undoes it (took ${fast.ms.toFixed(0)} ms)`);
  });

  test('pause and resume the replay; stop and start each PostgreSQL server', async () => {
    const paused = await ctl('pause');
    assert.match(paused.out, /replay PAUSED/);
    assert.match((await ctl('resume')).out, /replay running/);

    const stopped = await ctl('stop', 'primary');
    assert.equal(stopped.code, 0, stopped.err);
    assert.match(stopped.out, /primary STOPPED/);
    assert.equal((await timedPurchase(2)).status, 503, 'no purchase without the primary');
    assert.equal((await ctl('start', 'primary')).code, 0);
    assert.equal((await timedPurchase(2)).status, 200);

    assert.match((await ctl('stop', 'standby')).out, /standby STOPPED/);
    const replica = stack.catalogs.find((c) => c.role === 'replica')!;
    assert.equal(
      await gaugeOf(replica.url, 'bazar_standby_streaming'),
      0,
      'a stopped standby streams nothing',
    );
    const pause = await ctl('pause');
    assert.equal(pause.code, 1, 'no pause of a stopped standby');
    assert.match((await ctl('start', 'standby')).out, /streaming/);
    const status = await ctl('status');
    assert.match(status.out, /primary up, standby up/);
  });
});

/** A gauge with no labels but the defaults, from a process's /metrics. */
async function gaugeOf(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  if (!new RegExp(`^${name}[{ ]`, 'm').test(text)) throw new Error(`${url}/metrics has no ${name}`);
  return metric(text, name);
}
