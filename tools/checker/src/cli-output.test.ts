/** The checker CLI's report lines, line for line. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Op, StaleRead } from './check.js';
import { parseCheckerArgs, type CheckerOptions } from './cli-options.js';
import { availabilityLine, jsonReport, runningLine, stalenessLine, summarize } from './cli-output.js';

const op = (status: number, error?: string): Op => ({
  id: 1,
  client: 'c0',
  kind: 'purchase',
  bookId: 1,
  invoke: 0,
  complete: 1,
  status,
  ...(error ? { error } : {}),
});
const stale = (versionsBehind: number, staleForMs: number): StaleRead => ({
  op: op(200),
  versionsBehind,
  staleForMs,
});

describe('checker CLI: output', () => {
  test('the running line names clients, duration, fronts, books and the fault period', () => {
    const fronts = [
      { name: 'front-0', url: 'http://a' },
      { name: 'front-1', url: 'http://b' },
    ];
    const o = parseCheckerArgs(['--duration', '15s', '--chaos', '5s']) as CheckerOptions;
    assert.equal(
      runningLine(o, fronts),
      'running 8 clients for 15s through http://a, http://b on books 1,2,3, a fault every 5s',
    );
    const quiet = parseCheckerArgs(['--clients', '2', '--books', '4']) as CheckerOptions;
    assert.equal(
      runningLine(quiet, fronts.slice(0, 1)),
      'running 2 clients for 60s through http://a on books 4',
    );
  });

  test('availability counts what did not answer 200 or out_of_stock, by status and code', () => {
    assert.equal(
      availabilityLine({ recorded: [op(200), op(409, 'out_of_stock')], settled: 0, settledReplayed: 0 }),
      'availability: 2/2 operations answered 200 or out_of_stock; 0 unknown outcomes settled by key (0 had committed)',
    );
    assert.equal(
      availabilityLine({
        recorded: [op(200), op(503, 'unavailable'), op(0), op(503, 'unavailable')],
        settled: 3,
        settledReplayed: 1,
      }),
      'availability: 1/4 operations answered 200 or out_of_stock (2 × 503 unavailable, 1 × 0); ' +
        '3 unknown outcomes settled by key (1 had committed)',
    );
  });

  test('staleness: only when a read was behind, noted as allowed when stale reads are not checked', () => {
    assert.equal(stalenessLine([], ['stale-read']), undefined);
    assert.equal(
      stalenessLine([stale(1, 12.4), stale(3, 2)], ['stale-read']),
      'staleness: 2 reads behind an acknowledged write, up to 3 versions / 12 ms',
    );
    assert.equal(
      stalenessLine([stale(2, 40.6)], ['oversell']),
      'staleness: 1 reads behind an acknowledged write, up to 2 versions / 41 ms (allowed in eventual mode)',
    );
  });

  test('summaries keep first-seen order', () => {
    assert.equal(summarize(['b', 'a', 'b']), '2 × b, 1 × a');
  });

  test('the JSON report turns the fact maps into objects', () => {
    const text = jsonReport({
      report: { ok: true } as never,
      history: [],
      facts: { initial: new Map([[1, { stock: 5 }]]), final: new Map(), orders: [] } as never,
    });
    assert.deepEqual(JSON.parse(text), {
      report: { ok: true },
      history: [],
      facts: { initial: { '1': { stock: 5 } }, final: {}, orders: [], restocks: [] },
    });
    const restocked = jsonReport({
      report: { ok: true } as never,
      history: [],
      facts: { initial: new Map(), final: new Map(), orders: [], restocks: [{ key: 'r1' }] } as never,
    });
    assert.deepEqual((JSON.parse(restocked) as { facts: { restocks: unknown } }).facts.restocks, [
      { key: 'r1' },
    ]);
    assert.match(text, /^\{\n "report"/, 'one-space indentation');
  });
});
