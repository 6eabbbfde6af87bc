/**
 * `npm run trace`: its command line, the choice of the trace among the spans of a file, and the command
 * itself run on a file in the collector's format (OTLP/JSON, one TracesData per line): exit 0 with the
 * waterfall or the list, 1 without the file or the trace, 2 with the usage for a bad command line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ExportedSpan } from './collector.js';
import {
  LIST_LIMIT,
  missingFileMessage,
  parseTraceArgs,
  selectTrace,
  SelectionError,
  UsageError,
  type TraceArgs,
} from './trace-select.js';

const CWD = '/work/here';
const run = (argv: string[]): TraceArgs => {
  const args = parseTraceArgs(argv, CWD);
  assert.notEqual(args, 'help');
  return args as TraceArgs;
};
const refused = (argv: string[], message: RegExp): void => {
  assert.throws(
    () => parseTraceArgs(argv, CWD),
    (err: unknown) => err instanceof UsageError && message.test(err.message),
  );
};
const DEFAULT_FILE = '/work/here/.bazar/traces/traces.jsonl';

describe('npm run trace: command line', () => {
  test('no argument: the newest trace, from .bazar/traces/traces.jsonl here', () => {
    assert.deepEqual(run([]), {
      query: { by: 'newest', all: false },
      file: DEFAULT_FILE,
      explicitFile: false,
    });
  });

  test('a trace id or its start (6 hex characters or more, any case)', () => {
    assert.deepEqual(run(['4BF92F'])['query'], { by: 'id', prefix: '4bf92f' });
    assert.deepEqual(run(['4bf92f3577b34da6a3ce929d0e0e4736']).query, {
      by: 'id',
      prefix: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    refused(['4bf92'], /^TRACE_ID must be 6 to 32 hex characters/);
    refused(['not-hex'], /^TRACE_ID must be/);
    refused(['4bf92f3577b34da6a3ce929d0e0e47360'], /^TRACE_ID must be/);
    refused(['4bf92f', '0af765'], /^one trace id at most/);
  });

  test('--request, --list, --all, --file, --data-dir, --help', () => {
    assert.deepEqual(run(['--request', 'abc-1']).query, { by: 'request', requestId: 'abc-1' });
    assert.deepEqual(run(['--list']).query, { by: 'list', limit: LIST_LIMIT, all: false });
    assert.deepEqual(run(['--list', '--all']).query, { by: 'list', limit: LIST_LIMIT, all: true });
    assert.deepEqual(run(['--all']).query, { by: 'newest', all: true });
    assert.equal(LIST_LIMIT, 20);
    assert.deepEqual(run(['--file', 'x/t.jsonl']), {
      query: { by: 'newest', all: false },
      file: '/work/here/x/t.jsonl',
      explicitFile: true,
    });
    assert.equal(run(['--file', '/abs/t.jsonl']).file, '/abs/t.jsonl');
    assert.equal(run(['--data-dir', '../d']).file, '/work/d/traces/traces.jsonl');
    assert.equal(parseTraceArgs(['-h'], CWD), 'help');
    assert.equal(parseTraceArgs(['--list', '--help'], CWD), 'help');
  });

  test('refused: unknown options, missing values, ways that do not go together', () => {
    refused(['--bogus'], /--bogus/);
    refused(['--request'], /--request/);
    refused(['--request', ' '], /^--request must not be empty$/);
    refused(['4bf92f', '--list'], /^TRACE_ID and --list do not go together/);
    refused(['--request', 'r', '--list'], /^--request and --list do not go together/);
    refused(['--file', 'f', '--data-dir', 'd'], /^--file and --data-dir do not go together/);
    refused(['--data-dir', ''], /^--data-dir must not be empty$/);
    refused(['4bf92f', '--all'], /^--all goes with --list or no TRACE_ID, not with TRACE_ID$/);
    refused(['--all', '--request', 'r'], /^--all goes with --list or no TRACE_ID, not with --request$/);
  });

  test('no file: how to make one', () => {
    assert.equal(
      missingFileMessage(run([]), CWD),
      'no traces yet: .bazar/traces/traces.jsonl does not exist; ' +
        'start the store with `npm start -- --traces`, then make a request',
    );
    assert.match(
      missingFileMessage(run(['--file', '/tmp/none.jsonl']), CWD),
      /^no such file: \/tmp\/none\.jsonl \(start the store with `npm start -- --traces`, then make a request/,
    );
  });
});

const T0 = 1_700_000_000_000n * 1_000_000n;

function span(
  traceId: string,
  spanId: string,
  parentSpanId: string,
  startMs: number,
  attrs = {},
  kind: ExportedSpan['kind'] = parentSpanId === '' ? 'SERVER' : 'CLIENT',
): ExportedSpan {
  return {
    traceId,
    spanId,
    parentSpanId,
    name: kind === 'SERVER' ? 'POST /purchase/:id' : 'SELECT',
    kind,
    serviceName: 'bazar-front',
    serviceInstance: 'front-0',
    attributes: attrs,
    startTimeUnixNano: String(T0 + BigInt(startMs) * 1_000_000n),
    endTimeUnixNano: String(T0 + BigInt(startMs + 5) * 1_000_000n),
    status: { code: 'UNSET', message: '' },
  };
}

const A = 'abcdef0000000000000000000000000a';
const B = 'abcdef1100000000000000000000000b';
const C = 'c0000000000000000000000000000000';
const D = 'd0000000000000000000000000000000';
const E = 'e0000000000000000000000000000000';
const spans: ExportedSpan[] = [
  span(A, 'a1', '', 0, { 'bazar.request_id': 'r-1' }),
  span(A, 'a2', 'a1', 1),
  span(B, 'b1', '', 100, { 'bazar.request_id': 'r-1' }),
  span(C, 'c1', '', 200, { 'bazar.request_id': 'r-2' }),
  // No root yet.
  span(D, 'd2', 'd1', 300),
  // The newest: a service's own statement (a poll), no request's.
  span(E, 'e1', '', 400, {}, 'CLIENT'),
];

const picked = (query: Parameters<typeof selectTrace>[1]) => {
  const s = selectTrace(spans, query, 'f');
  assert.equal(s.kind, 'trace');
  return s as Extract<typeof s, { kind: 'trace' }>;
};
const notFound = (query: Parameters<typeof selectTrace>[1], message: RegExp, from = spans) => {
  assert.throws(
    () => selectTrace(from, query, 'f'),
    (err: unknown) => err instanceof SelectionError && message.test(err.message),
  );
};

describe('npm run trace: which trace', () => {
  test("by default the newest request whose root has arrived, all its spans; --all: the services' own work too", () => {
    const s = picked({ by: 'newest', all: false });
    assert.equal(s.traceId, C);
    assert.deepEqual(
      s.spans.map((x) => x.spanId),
      ['c1'],
    );
    assert.equal(picked({ by: 'newest', all: true }).traceId, E);
    notFound({ by: 'newest', all: false }, /^none of the 1 trace\(s\) in f has its root span yet/, [
      span(D, 'd2', 'd1', 0),
    ]);
    notFound(
      { by: 'newest', all: false },
      /^no request in f yet, only the services' own work \(1 trace\(s\): npm run trace -- --all shows the newest\)/,
      [span(D, 'd2', 'd1', 0), span(E, 'e1', '', 400, {}, 'CLIENT')],
    );
  });

  test('by id or by a prefix that only one id has', () => {
    assert.equal(picked({ by: 'id', prefix: 'abcdef0' }).traceId, A);
    assert.deepEqual(
      picked({ by: 'id', prefix: A }).spans.map((x) => x.spanId),
      ['a1', 'a2'],
    );
    assert.equal(picked({ by: 'id', prefix: 'd00000' }).traceId, D, 'a trace without its root, when named');
    notFound(
      { by: 'id', prefix: 'abcdef' },
      /^abcdef starts 2 trace ids \(abcdef11.*, abcdef00.*\): give more of it$/,
    );
    notFound({ by: 'id', prefix: 'eeeeee' }, /^no trace eeeeee… in f /);
  });

  test('by request id: the newest of the traces with a server span of that request', () => {
    const s = picked({ by: 'request', requestId: 'r-1' });
    assert.equal(s.traceId, B);
    assert.match(
      s.note ?? '',
      new RegExp(`^2 traces carry request id r-1; this is the newest \\(the others: ${A}\\)$`),
    );
    assert.equal(picked({ by: 'request', requestId: 'r-2' }).note, undefined);
    notFound({ by: 'request', requestId: 'r-9' }, /^no trace in f has a server span of request r-9/);
    notFound({ by: 'request', requestId: 'undefined' }, /^no trace in f/);
  });

  test("the list, newest first, without the services' own work unless --all; an empty file is an error", () => {
    const requests = selectTrace(spans, { by: 'list', limit: 20, all: false }, 'f');
    assert.ok(requests.kind === 'list');
    assert.deepEqual(
      requests.traces.map((t) => t.traceId),
      [D, C, B, A],
    );
    assert.equal(requests.background, 1);
    const all = selectTrace(spans, { by: 'list', limit: 20, all: true }, 'f');
    assert.ok(all.kind === 'list');
    assert.deepEqual(
      all.traces.map((t) => t.traceId),
      [E, D, C, B, A],
    );
    assert.equal(all.background, 0);
    notFound(
      { by: 'newest', all: false },
      /^no spans in f yet: start the store with `npm start -- --traces`/,
      [],
    );
  });
});

// ---------------------------------------------------------------- the command, on a file

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'trace-cli.js');

/** The spans as the collector's file exporter writes them: one TracesData per line, enums as numbers. */
function otlpLine(group: ExportedSpan[]): string {
  const kinds = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
  const attributes = (o: Record<string, unknown>) =>
    Object.entries(o).map(([key, v]) => ({
      key,
      value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: String(v) },
    }));
  return JSON.stringify({
    resourceSpans: [
      {
        resource: {
          attributes: attributes({ 'service.name': 'bazar-front', 'service.instance.id': 'front-0' }),
        },
        scopeSpans: [
          {
            scope: { name: 'bazar' },
            spans: group.map((s) => ({
              traceId: s.traceId,
              spanId: `${s.spanId}00000000000000`.slice(0, 16),
              parentSpanId: s.parentSpanId === '' ? '' : `${s.parentSpanId}00000000000000`.slice(0, 16),
              name: s.name,
              kind: kinds.indexOf(s.kind),
              startTimeUnixNano: s.startTimeUnixNano,
              endTimeUnixNano: s.endTimeUnixNano,
              attributes: attributes({ ...s.attributes, 'http.response.status_code': 200 }),
              status: {},
            })),
          },
        ],
      },
    ],
  });
}

describe('npm run trace: the command', () => {
  let dir: string;
  const cli = (...argv: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...argv], { cwd: dir, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-trace-cli-'));
    mkdirSync(path.join(dir, '.bazar', 'traces'), { recursive: true });
    writeFileSync(
      path.join(dir, '.bazar', 'traces', 'traces.jsonl'),
      `${otlpLine(spans.slice(0, 3))}\n${otlpLine(spans.slice(3))}\n`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the newest trace with its root, from .bazar here', () => {
    const r = cli();
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^trace ${C} {2}1 span {2}5\\.00 ms {2}request r-2\n`));
    assert.match(r.out, /\nPOST \/purchase\/:id +front-0 +SERVER +█+ +5\.00 ms {4}200\n$/);
  });

  test('by prefix, by request, the list; --data-dir', () => {
    const byPrefix = cli('abcdef00');
    assert.equal(byPrefix.code, 0, byPrefix.err);
    assert.match(byPrefix.out, new RegExp(`^trace ${A} {2}2 spans `));
    assert.match(byPrefix.out, /\n {2}SELECT /);
    const byRequest = cli('--request', 'r-1');
    assert.equal(byRequest.code, 0);
    assert.match(byRequest.out, new RegExp(`^trace ${B} `));
    assert.match(byRequest.err, /^trace: 2 traces carry request id r-1/);
    const list = cli('--list');
    assert.equal(list.code, 0, list.err);
    const lines = list.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^time +trace +root/);
    assert.deepEqual(
      lines.slice(1, 5).map((l) => l.split(/ {2,}/)[1]),
      [D, C, B, A].map((id) => id.slice(0, 16)),
    );
    assert.equal(lines[5], "not shown: 1 of the services' own work (--all shows them)");
    const all = cli('--list', '--all').out.split('\n');
    assert.equal(all[1]!.split(/ {2,}/)[1], E.slice(0, 16));
    assert.match(cli('--all').out, new RegExp(`^trace ${E} `));
    assert.equal(cli('--data-dir', '.bazar', 'c00000').code, 0);
  });

  test('exit 1: no file, no such trace; exit 2 with the usage: a bad command line', () => {
    const noFile = cli('--data-dir', 'elsewhere');
    assert.equal(noFile.code, 1);
    assert.equal(
      noFile.err,
      'trace: no traces yet: elsewhere/traces/traces.jsonl does not exist; ' +
        'start the store with `npm start -- --traces`, then make a request\n',
    );
    assert.equal(noFile.out, '');
    const noTrace = cli('eeeeeeee');
    assert.equal(noTrace.code, 1);
    assert.match(noTrace.err, /^trace: no trace eeeeeeee… in \.bazar\/traces\/traces\.jsonl /);
    const bad = cli('--nope');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^trace: Unknown option '--nope'.*\n\nUsage: npm run trace -- /s);
    const help = cli('--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: npm run trace -- /);
  });
});
