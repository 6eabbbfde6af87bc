/** wrk as the bench's load generator (wrk.ts): the script it writes, its report read back, and a real run. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  correctionInterval,
  luaString,
  parseChildTimes,
  parseWrkReport,
  runWrk,
  uncorrect,
  wrkScript,
  LATENCY_MARK,
  REPORT_MARK,
} from './wrk.js';

/** wrk's stats_correct (stats.c), on a dense histogram: what `uncorrect` must undo. */
function correct(data: number[], expected: number): number[] {
  const out = [...data];
  for (let n = expected * 2; n < out.length; n++) {
    const count = out[n]!;
    for (let m = n - expected; count && m > expected; m -= expected) out[m]! += count;
  }
  return out;
}
const sparse = (data: number[]): [number, number][] =>
  data.flatMap((c, v) => (c > 0 ? [[v, c] as [number, number]] : []));

describe('wrk script and report', () => {
  it('writes any string as a Lua literal that keeps its bytes', () => {
    assert.equal(luaString('/info/1'), '"/info/1"');
    assert.equal(luaString('{"a":"b\\\\c"}'), '"{\\34a\\34:\\34b\\92\\92c\\34}"');
    assert.equal(luaString('é\n'), '"\\195\\169\\10"');
  });

  it('is static unless paths rotate, and reports every latency', () => {
    const fixed = wrkScript({ method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.match(fixed, /^wrk.method = "POST"$/m);
    assert.match(fixed, /^wrk.body = "\{\}"$/m);
    assert.match(fixed, /^wrk.headers\["content-type"\] = "application\/json"$/m);
    assert.doesNotMatch(fixed, /request = function/);
    assert.match(fixed, /latency\(k\)/);
    const rotating = wrkScript({ paths: ['/a', '/b'] });
    assert.match(rotating, /request = function/);
    assert.match(rotating, /^ {2}"\/a",$/m);
  });

  it('reads the summary, expands the histogram into milliseconds, and counts failures apart', () => {
    const out = [
      'Running 1s test @ http://127.0.0.1:1/',
      `${REPORT_MARK} requests=5 duration_us=1000000 connect=1 read=2 write=0 status=3 timeout=4`,
      `${LATENCY_MARK} 250:2,1500:3`,
    ].join('\n');
    const r = parseWrkReport(out, 5, 12.5)!;
    assert.equal(r.requests, 5);
    assert.equal(r.seconds, 1);
    assert.deepEqual([...r.latencies.values()], [0.25, 0.25, 1.5, 1.5, 1.5]);
    assert.equal(r.errors, 3);
    assert.equal(r.timeouts, 4);
    assert.equal(r.status4xx5xx, 3);
    assert.equal(r.cpuMs, 12.5);
    assert.equal(parseWrkReport('unable to connect to 127.0.0.1:1 Connection refused', 1), undefined);
  });

  it("takes wrk's coordinated-omission samples out again, exactly", () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const expected of [1, 3, 10, 37]) {
      const original = Array.from({ length: 400 }, () => (random() < 0.3 ? Math.floor(random() * 20) : 0));
      const corrected = correct(original, expected);
      assert.notDeepEqual(corrected, original);
      assert.deepEqual(uncorrect(sparse(corrected), expected), sparse(original), `interval ${expected}`);
    }
    assert.equal(correctionInterval(1_000_000, 25_683, 2), 77);
    assert.equal(correctionInterval(1_000_000, 1, 2), 0);
  });

  it('refuses a histogram that does not add up to the answers', () => {
    const out = `${REPORT_MARK} requests=2 duration_us=1000000 connect=0 read=0 write=0 status=0 timeout=0\n${LATENCY_MARK} 100:3`;
    assert.throws(() => parseWrkReport(out, 1), /2 answers but 3 latencies/);
  });

  it("reads bash's children's CPU time", () => {
    assert.equal(parseChildTimes('0m0.010s 0m0.002s\n0m1.250s 0m0.500s\n'), 1750);
    assert.equal(parseChildTimes('1m2.000s 0m0.000s\n'), 62_000);
    assert.equal(parseChildTimes('nothing'), undefined);
  });
});

const wrkHere = spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;

// Under CI wrk must be here (scripts/test-tools.sh installs it); elsewhere its absence is said, not failed.
describe(
  'wrk against a real server',
  { skip: !wrkHere && !process.env.CI ? 'wrk is not installed' : false },
  () => {
    const seen: { method: string; path: string; body: string; token: string | undefined }[] = [];
    let server: http.Server;
    let url: string;
    before(async () => {
      server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          seen.push({ method: req.method!, path: req.url!, body, token: req.headers['x-token'] as string });
          res.writeHead(req.url === '/bad' ? 500 : 200, { 'content-type': 'text/plain' }).end('ok');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('sends the method, headers and body, rotates the paths, and counts every answer', async () => {
      const report = await runWrk({
        url,
        connections: 2,
        seconds: 1,
        method: 'POST',
        headers: { 'x-token': 'secret' },
        body: '{"quantity":1}',
        paths: ['/ok/1', '/ok/2', '/bad'],
      });
      assert.ok(report.requests > 30, `only ${report.requests} requests in a second`);
      // Requests still in flight when wrk stops were served but not counted: at most one per connection.
      assert.ok(
        seen.length - report.requests >= 0 && seen.length - report.requests <= 2,
        `${seen.length} served`,
      );
      assert.equal(report.latencies.length, report.requests);
      assert.ok(
        seen.every((s) => s.method === 'POST' && s.body === '{"quantity":1}' && s.token === 'secret'),
      );
      const count = (p: string) => seen.filter((s) => s.path === p).length;
      for (const p of ['/ok/1', '/ok/2', '/bad'])
        assert.ok(Math.abs(count(p) - seen.length / 3) <= 2, `${p}: ${count(p)}`);
      assert.ok(Math.abs(report.status4xx5xx - count('/bad')) <= 2, `${report.status4xx5xx} failed answers`);
      assert.equal(report.errors, 0);
      assert.ok(report.cpuMs !== undefined && report.cpuMs > 0, `wrk's CPU: ${report.cpuMs}`);
    });
  },
);
