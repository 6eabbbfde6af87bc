/** The cached-read ladder's pure parts (ladder.ts): wrk output, the same-CPU ratio, the table. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpuRatio, renderLadder, summarise, wrkFailures, wrkRequests } from './ladder.js';

const WRK_OK = `Running 3s test @ http://127.0.0.1:4000/info/1
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms  512.00us   9.80ms   80.00%
    Req/Sec    12.20k   300.00    12.90k    70.00%
  36612 requests in 3.00s, 8.31MB read
Requests/sec:  12203.99
Transfer/sec:      2.77MB
`;

const WRK_BAD = `Running 3s test @ http://127.0.0.1:4000/info/1
  1 threads and 50 connections
  1200 requests in 3.00s, 0.20MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:    400.00
`;

describe('bench: the cached-read ladder', () => {
  it('reads the request count and every failure from wrk', () => {
    assert.equal(wrkRequests(WRK_OK), 36612);
    assert.equal(wrkFailures(WRK_OK), 0);
    assert.equal(wrkRequests(WRK_BAD), 1200);
    assert.equal(wrkFailures(WRK_BAD), 11);
    assert.equal(wrkRequests('unable to connect to 127.0.0.1:4000'), undefined);
  });

  it('divides CPU per request, not CPU: the rung served fewer requests for the same time', () => {
    const round = { baseline: { cpuMs: 1500, requests: 30_000 }, rung: { cpuMs: 1500, requests: 25_000 } };
    assert.equal(cpuRatio(round), 1.2);
    assert.ok(Number.isNaN(cpuRatio({ ...round, rung: { cpuMs: 10, requests: 0 } })));
  });

  it('summarises rounds as their median and range, and prints the step from the rung below', () => {
    const rounds = [1.1, 1.3, 1.2].map((r) => ({
      baseline: { cpuMs: 1000, requests: 20_000 },
      rung: { cpuMs: 1000 * r, requests: 20_000 },
    }));
    const got = summarise('got-loaded', rounds, 0, 61.4);
    assert.ok(Math.abs(got.ratio - 1.2) < 1e-9);
    assert.ok(Math.abs(got.lo - 1.1) < 1e-9 && Math.abs(got.hi - 1.3) < 1e-9);
    assert.equal(got.baselineUs, 50);
    const bare = summarise('bare', rounds.slice(0, 1), 2);
    const table = renderLadder([bare, got]);
    assert.match(table, /\| bare \|.*\| 1\.10x \(1\.10–1\.10\) \| {2}\| 55\.0 \| 50\.0 \| – \|/);
    assert.match(table, /\| got-loaded \|.*\| 1\.20x \(1\.10–1\.30\) \| \+0\.10 \| 60\.0 \| 50\.0 \| 61 \|/);
    assert.match(table, /failed requests: 2$/);
  });
});
