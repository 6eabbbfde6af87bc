/**
 * The waterfall of a synthetic purchase: front server span → its call → the order pod's span → two
 * statements and an invalidation pushed to another front, plus a span whose parent never arrived. Tree
 * order and indentation, aligned columns, bars on the time axis, durations, statements on one line, the
 * orphan and the error marked; listTraces' order and request ids; the list's table.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ExportedSpan } from './collector.js';
import { formatMs, listTraces, MIN_BAR, oneLine, renderList, renderTrace } from './waterfall.js';

const T0 = 1_700_000_000_000n * 1_000_000n; // ns
const ns = (ms: number): string => String(T0 + BigInt(Math.round(ms * 1e6)));

const PURCHASE = '4bf92f3577b34da6a3ce929d0e0e4736';
const INFO = '0af7651916cd43dd8448eb211c80319c';
const PARTIAL = 'e3b0c44298fc1c149afbf4c8996fb924';

function span(
  traceId: string,
  spanId: string,
  parentSpanId: string,
  name: string,
  kind: ExportedSpan['kind'],
  instance: string,
  [start, end]: [number, number],
  attributes: Record<string, unknown> = {},
  status: ExportedSpan['status'] = { code: 'UNSET', message: '' },
): ExportedSpan {
  return {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    serviceName: `bazar-${instance.replace(/-.*/, '')}`,
    serviceInstance: instance,
    attributes,
    startTimeUnixNano: ns(start),
    endTimeUnixNano: ns(end),
    status,
  };
}

const UPDATE = `UPDATE books
   SET stock = stock - 1, version = version + 1
 WHERE id = $1 AND stock > 0
 RETURNING id, stock, version`;

const db = (text: string) => ({ 'db.system.name': 'postgresql', 'db.query.text': text });

/** In file order, which is not start order: the collector writes batches as they come. */
const purchase: ExportedSpan[] = [
  span(PURCHASE, 'a6', 'a3', 'POST /internal/invalidate', 'CLIENT', 'order-origin-0', [31, 35]),
  span(PURCHASE, 'a1', '', 'POST /purchase/:id', 'SERVER', 'front-0', [0, 40], {
    'http.response.status_code': 200,
  }),
  span(PURCHASE, 'a2', 'a1', 'POST /purchase/2', 'CLIENT', 'front-0', [2, 38]),
  span(PURCHASE, 'a5', 'a3', 'UPDATE', 'CLIENT', 'order-origin-0', [20, 30], db(UPDATE)),
  span(PURCHASE, 'a4', 'a3', 'SELECT', 'CLIENT', 'order-origin-0', [6, 7.25], db('SELECT 1')),
  span(PURCHASE, 'a3', 'a2', 'POST /purchase/:id', 'SERVER', 'order-origin-0', [4, 36], {
    'http.response.status_code': 200,
    'bazar.request_id': 'req-1',
  }),
  span(
    PURCHASE,
    'a7',
    'a6',
    'POST /internal/invalidate',
    'SERVER',
    'front-1',
    [32, 34],
    { 'http.response.status_code': 500 },
    { code: 'ERROR', message: '' },
  ),
  span(PURCHASE, 'a8', 'ffffffffffffffff', 'POST /internal/prepare', 'SERVER', 'front-1', [5, 6], {
    'http.response.status_code': 200,
  }),
];
const info = [
  span(INFO, 'b1', '', 'GET /info/:id', 'SERVER', 'front-0', [-10_000, -9_997], {
    'http.response.status_code': 200,
    'bazar.request_id': 'req-0',
    'bazar.cache': 'hit',
  }),
];
const partial = [
  span(PARTIAL, 'c2', 'c1', 'GET /books/:id', 'SERVER', 'catalog-origin-0', [60_000, 60_002], {
    'http.response.status_code': 200,
    'bazar.request_id': 'req-2',
  }),
];

const EXPECTED_ORDER = [
  'POST /purchase/:id',
  '  POST /purchase/2',
  '    POST /purchase/:id',
  '      SELECT',
  '      UPDATE',
  '      POST /internal/invalidate',
  '        POST /internal/invalidate',
  'POST /internal/prepare',
];

describe('renderTrace', () => {
  const out = renderTrace(purchase, {});
  const [header, axis, ...rows] = out.trimEnd().split('\n') as [string, string, ...string[]];
  const row = (i: number) => rows[i]!;
  // The root lasts the whole trace: its bar fills the bar area, which the axis starts.
  const barCol = axis.indexOf('0');
  const barW = [...row(0)].filter((c) => c === '█').length;

  test('a header with the id, the number of spans, the duration, the request id found', () => {
    assert.equal(header, `trace ${PURCHASE}  8 spans  40.00 ms  request req-1`);
    assert.ok(out.endsWith('\n'));
  });

  test('one line per span in tree order, children by start time, 2 spaces per level, the orphan a root', () => {
    assert.equal(rows.length, purchase.length);
    EXPECTED_ORDER.forEach((name, i) => assert.ok(row(i).startsWith(`${name} `), `row ${i}: ${row(i)}`));
  });

  test('columns line up: instance, kind, bar, duration', () => {
    const instanceCol = row(0).indexOf('front-0');
    const instances = ['front-0', 'front-0', 'order-origin-0', 'order-origin-0', 'order-origin-0'];
    instances.forEach((inst, i) => assert.equal(row(i).indexOf(inst), instanceCol, row(i)));
    const kindCol = row(0).indexOf('SERVER');
    for (const r of rows) assert.match(r.slice(kindCol), /^(SERVER|CLIENT) /, r);
    const msCol = row(0).indexOf(' ms');
    for (const r of rows) assert.equal(r.indexOf(' ms'), msCol, r);
    // Every bar character is inside the bar area, and the area ends before the durations.
    for (const r of rows) {
      const bars = [...r].flatMap((c, i) => (c === '█' || c === '▏' ? [i] : []));
      assert.ok(bars.length >= 1, `a bar of one character at least: ${r}`);
      assert.ok(bars[0]! >= barCol && bars.at(-1)! < barCol + barW, r);
    }
    assert.ok(barCol + barW < msCol - '40.00'.length);
  });

  test('the width asked for is the width up to the durations (the note follows)', () => {
    // name, instance, kind, bar, duration (+ the ✘ column): 100 characters by default.
    assert.equal(row(0).indexOf(' ms') + ' ms'.length + 2, 100);
    const narrow = renderTrace(purchase, { width: 10 }).split('\n')[2]!;
    assert.equal([...narrow].filter((c) => c === '█').length, MIN_BAR);
  });

  test('bars on the time axis: a span that starts halfway starts mid-area, a quarter long', () => {
    assert.equal(row(0).indexOf('█'), barCol, 'the root starts the axis');
    const update = row(4);
    const start = update.indexOf('█') - barCol;
    assert.ok(Math.abs(start - barW / 2) <= 1, `starts at ${start} of ${barW}`);
    const length = [...update].filter((c) => c === '█').length;
    assert.ok(Math.abs(length - barW / 4) <= 1, `${length} of ${barW}`);
    // 1.25 ms of 40: a few characters at most, past the start of the area.
    const select = row(3);
    assert.ok(select.indexOf('█') > barCol || select.indexOf('▏') > barCol);
    assert.ok(axis.trimEnd().endsWith('40.00 ms'));
    assert.equal(axis.trimEnd().length, barCol + barW, 'the axis ends where the bars do');
  });

  test('durations in ms with 2 decimals', () => {
    assert.match(row(0), / 40\.00 ms /);
    assert.match(row(3), / 1\.25 ms /);
    assert.match(row(4), / 10\.00 ms /);
    assert.equal(formatMs(0.5), '0.50');
    assert.equal(formatMs(123.456), '123.5');
  });

  test('statements on one line of 60 characters at most; status codes of server spans', () => {
    const update = row(4);
    const statement = update.slice(update.indexOf('UPDATE books'));
    assert.equal(statement, oneLine(UPDATE, 60));
    assert.equal(statement.length, 60);
    assert.ok(statement.endsWith('…'));
    assert.ok(statement.startsWith('UPDATE books SET stock = stock - 1, version = version + 1'));
    assert.ok(row(3).endsWith('SELECT 1'));
    assert.ok(row(0).endsWith('  200'));
    assert.ok(row(2).endsWith('  200'));
    assert.ok(!/\b200\b/.test(row(1)), 'no status for a client span');
  });

  test('an ERROR status is marked ✘; the orphan says its parent was not received', () => {
    assert.match(row(6), / ms ✘ {2}500$/);
    assert.equal(rows.filter((r) => r.includes('✘')).length, 1);
    assert.ok(row(7).endsWith('200  (parent not received)'));
    assert.equal(rows.filter((r) => r.includes('(parent not received)')).length, 1);
  });

  test('a trace of one instant span, and no spans', () => {
    const one = renderTrace([span(INFO, 'z', '', 'GET /x', 'SERVER', 'front-0', [1, 1])]);
    assert.match(one, /^trace 0af7651916cd43dd8448eb211c80319c {2}1 span {2}0\.00 ms\n/);
    assert.ok(one.split('\n')[2]!.includes('▏'));
    assert.equal(renderTrace([]), 'no spans\n');
  });
});

describe('listTraces', () => {
  const list = listTraces([...info, ...purchase, ...partial]);

  test('one entry per trace, newest first, with its root, span count, start, duration, request id', () => {
    assert.deepEqual(
      list.map((t) => [t.traceId, t.root?.spanId, t.spans, t.startNs, t.durationMs, t.requestId]),
      [
        [PARTIAL, undefined, 1, T0 + 60_000_000_000n, 2, 'req-2'],
        [PURCHASE, 'a1', 8, T0, 40, 'req-1'],
        [INFO, 'b1', 1, T0 - 10_000_000_000n, 3, 'req-0'],
      ],
    );
  });

  test("the root's request id before a server span's", () => {
    const both = purchase.map((s) =>
      s.spanId === 'a1' ? { ...s, attributes: { ...s.attributes, 'bazar.request_id': 'at-root' } } : s,
    );
    assert.equal(listTraces(both)[0]!.requestId, 'at-root');
    const none = purchase.map((s) => ({ ...s, attributes: {} }));
    assert.equal(listTraces(none)[0]!.requestId, undefined);
  });

  test('renderList: a table of the newest, up to the limit', () => {
    const table = renderList(list, 2).trimEnd().split('\n');
    assert.equal(table.length, 3);
    assert.match(table[0]!, /^time {2,}trace {2,}root {2,}service {2,}spans {2,}ms {2}request$/);
    assert.match(
      table[1]!,
      /^\d\d:\d\d:\d\d\.\d{3} {2}e3b0c44298fc1c14 {2}\(root not received\) +- +1 +2\.00 {2}req-2$/,
    );
    assert.match(
      table[2]!,
      /^\d\d:\d\d:\d\d\.\d{3} {2}4bf92f3577b34da6 {2}POST \/purchase\/:id +front-0 +8 +40\.00 {2}req-1$/,
    );
    // The numbers are right-aligned.
    assert.equal(table[1]!.indexOf('2.00') + 4, table[2]!.indexOf('40.00') + 5);
    assert.equal(renderList([], 20), 'no traces\n');
  });
});
