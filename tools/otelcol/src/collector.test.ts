/**
 * The test collector is real: the binary scripts/otelcol.sh builds receives one OTLP/JSON trace (a
 * parent and its child span) over HTTP, its batch processor and file exporter write both spans to
 * traces.jsonl, readSpans gives them back with their ids, parent link, names, kinds, attributes and
 * service.name, and stop() ends the process.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readSpans, startCollector, type Collector, type ExportedSpan } from './collector.js';

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const PARENT_ID = 'eee19b7ec3c1b173';
const CHILD_ID = 'eee19b7ec3c1b174';
// OTLP/JSON's SpanKind numbers; readSpans gives their names.
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

function otlpTrace(): unknown {
  const start = BigInt(Date.now()) * 1_000_000n;
  const ns = (offsetMs: number) => String(start + BigInt(offsetMs) * 1_000_000n);
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'bazar-otelcol-test' } },
            { key: 'service.instance.id', value: { stringValue: 'front-0' } },
          ],
        },
        scopeSpans: [
          {
            scope: { name: 'collector.test' },
            spans: [
              {
                traceId: TRACE_ID,
                spanId: PARENT_ID,
                name: 'GET /books/:id',
                kind: SPAN_KIND_SERVER,
                startTimeUnixNano: ns(0),
                endTimeUnixNano: ns(20),
                attributes: [
                  { key: 'http.request.method', value: { stringValue: 'GET' } },
                  { key: 'http.response.status_code', value: { intValue: '200' } },
                ],
                status: { code: 1 },
              },
              {
                traceId: TRACE_ID,
                spanId: CHILD_ID,
                parentSpanId: PARENT_ID,
                name: 'pg.query',
                kind: SPAN_KIND_CLIENT,
                startTimeUnixNano: ns(5),
                endTimeUnixNano: ns(15),
                attributes: [
                  { key: 'db.system.name', value: { stringValue: 'postgresql' } },
                  { key: 'db.cached', value: { boolValue: false } },
                  { key: 'db.duration_ratio', value: { doubleValue: 0.5 } },
                ],
              },
            ],
          },
        ],
      },
    ],
  };
}

async function waitForSpans(file: string, count: number, timeoutMs: number): Promise<ExportedSpan[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = readSpans(file);
    if (spans.length >= count) return spans;
    if (Date.now() > deadline) {
      assert.fail(`${spans.length} of ${count} spans in ${file} after ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

describe('the test OpenTelemetry Collector', { timeout: 90_000 }, () => {
  let workDir: string | undefined;
  let collector: Collector | undefined;

  after(async () => {
    await collector?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('receives a trace over OTLP/HTTP, writes both spans to its file, and stops', async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-otelcol-test-'));
    // A directory that does not exist yet: startCollector makes it.
    collector = await startCollector({ workDir: path.join(workDir, 'collector') });
    assert.match(collector.otlpHttpEndpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(isRunning(collector.pid), 'the collector runs');

    const res = await fetch(`${collector.otlpHttpEndpoint}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpTrace()),
    });
    const body = await res.text();
    assert.equal(res.status, 200, `POST /v1/traces: ${res.status} ${body}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const answer = JSON.parse(body) as { partialSuccess?: { rejectedSpans?: string } };
    assert.equal(Number(answer.partialSuccess?.rejectedSpans ?? 0), 0, `rejected spans: ${body}`);

    const spans = await waitForSpans(collector.tracesFile, 2, 10_000);
    assert.equal(spans.length, 2, `exactly the two spans sent: ${JSON.stringify(spans)}`);
    const parent = spans.find((s) => s.spanId === PARENT_ID);
    const child = spans.find((s) => s.spanId === CHILD_ID);
    assert.ok(parent && child, `spans ${spans.map((s) => s.spanId).join(', ')}`);

    assert.equal(parent.traceId, TRACE_ID);
    assert.equal(child.traceId, TRACE_ID);
    assert.equal(parent.parentSpanId, '', 'the parent is a root span');
    assert.equal(child.parentSpanId, PARENT_ID, 'the child points at its parent');
    assert.equal(parent.name, 'GET /books/:id');
    assert.equal(child.name, 'pg.query');
    assert.equal(parent.kind, 'SERVER');
    assert.equal(child.kind, 'CLIENT');
    for (const s of [parent, child]) {
      assert.equal(s.serviceName, 'bazar-otelcol-test');
      assert.equal(s.serviceInstance, 'front-0');
    }
    assert.deepEqual(parent.attributes, { 'http.request.method': 'GET', 'http.response.status_code': 200 });
    assert.deepEqual(child.attributes, {
      'db.system.name': 'postgresql',
      'db.cached': false,
      'db.duration_ratio': 0.5,
    });
    assert.deepEqual(parent.status, { code: 'OK', message: '' });
    assert.deepEqual(child.status, { code: 'UNSET', message: '' });
    assert.ok(BigInt(child.startTimeUnixNano) > BigInt(parent.startTimeUnixNano));
    assert.ok(BigInt(child.endTimeUnixNano) < BigInt(parent.endTimeUnixNano));

    const pid = collector.pid;
    await collector.stop();
    assert.equal(isRunning(pid), false, `the collector (pid ${pid}) is gone after stop()`);
    await collector.stop(); // idempotent
  });
});
