/**
 * What the recorded workload sends and records, against a stand-in front (no store): the no-cache
 * share of reads, X-Min-Version in session mode (the newest version of the book the client has seen,
 * from its reads and its acknowledged writes), and the answering front (X-Front) beside the endpoint
 * the client sent the request to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Op } from './history.js';
import { startWorkload, type WorkloadOptions } from './workload.js';

interface Seen {
  method: string;
  url: string;
  cacheControl: string | undefined;
  minVersion: string | undefined;
}

/**
 * A front stand-in: every purchase makes a new version; a read answers the current version or, every
 * third read, the one before (a lagging replica), so a client's newest version is sometimes only
 * the one its own purchase returned. It answers as pod `front-pod-a`.
 */
function standIn(): { server: http.Server; requests: Seen[]; reset(): void } {
  const requests: Seen[] = [];
  let version = 100;
  let reads = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      cacheControl: header('cache-control'),
      minVersion: header('x-min-version'),
    });
    const reply = (body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-front': 'front-pod-a', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'POST') {
      version++;
      reply({ orderId: `o${version}`, bookId: 1, title: 't', price: 30, remainingStock: 5, version });
    } else {
      const shown = ++reads % 3 === 0 ? version - 1 : version;
      const bypass = header('cache-control') === 'no-cache';
      reply(
        { id: 1, title: 't', topic: 'x', price: 30, stock: 5, version: shown },
        { 'x-cache': bypass ? 'miss' : 'hit', 'x-served-by': bypass ? 'catalog-origin-0' : 'front-pod-a' },
      );
    }
  });
  return {
    server,
    requests,
    reset() {
      requests.length = 0;
      version = 100;
      reads = 0;
    },
  };
}

describe('recorded workload (against a stand-in front)', () => {
  const front = standIn();
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => front.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(front.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => front.server.close(() => resolve())));

  const run = async (opts: Partial<WorkloadOptions>): Promise<Op[]> => {
    front.reset();
    const w = startWorkload({
      fronts: [{ name: 'svc', url }],
      clients: 1,
      books: [1],
      mix: { read: 3, purchase: 1 },
      maxOpsPerClient: 120,
      keyPrefix: 'wl-test',
      ...opts,
    });
    return w.done;
  };

  it('session mode: every read after the first carries the newest version the client has seen', async () => {
    const ops = await run({ mode: 'session' });
    assert.equal(front.requests.length, ops.length);
    let newest: number | undefined;
    let newestRead = -Infinity;
    let fromWrite = 0;
    for (const [i, op] of ops.entries()) {
      const sent = front.requests[i]!;
      assert.equal(op.status, 200);
      if (op.kind === 'read') {
        assert.equal(sent.minVersion, newest === undefined ? undefined : String(newest), `op ${i}`);
        assert.equal(op.minVersion, newest, `op ${i} records what it sent`);
        // A version only the client's own purchase had shown (no read had).
        if (newest !== undefined && newest > newestRead) fromWrite++;
        newestRead = Math.max(newestRead, op.version as number);
      }
      newest = Math.max(newest ?? -Infinity, op.version as number);
    }
    assert.ok(fromWrite > 10, `${fromWrite} reads carried a version only an acknowledged write had shown`);
    assert.ok(ops.filter((o) => o.kind === 'read' && o.minVersion !== undefined).length > 50);
  });

  it('strict and eventual modes send no X-Min-Version unless asked; session mode can be told not to', async () => {
    for (const opts of [
      { mode: 'strict' },
      { mode: 'eventual' },
      {},
      { mode: 'session', minVersionHeader: false },
    ] as const) {
      const ops = await run(opts);
      assert.ok(ops.some((o) => o.kind === 'read'));
      assert.deepEqual(
        front.requests.filter((r) => r.minVersion !== undefined),
        [],
        JSON.stringify(opts),
      );
      assert.ok(ops.every((o) => o.minVersion === undefined));
    }
    await run({ mode: 'strict', minVersionHeader: true });
    assert.ok(front.requests.filter((r) => r.minVersion !== undefined).length > 50);
  });

  it('sends a share of the reads with Cache-Control: no-cache (25 % by default) and records which', async () => {
    const ops = await run({ maxOpsPerClient: 400 });
    const reads = ops.map((o, i) => ({ o, sent: front.requests[i]! })).filter((r) => r.o.kind === 'read');
    const bypassed = reads.filter((r) => r.o.noCache);
    for (const r of reads) assert.equal(r.sent.cacheControl, r.o.noCache ? 'no-cache' : undefined);
    const share = bypassed.length / reads.length;
    assert.ok(share > 0.15 && share < 0.35, `${bypassed.length}/${reads.length} reads bypassed the cache`);
    assert.ok(bypassed.every((r) => r.o.cache === 'miss' && r.o.servedBy === 'catalog-origin-0'));
    const none = await run({ noCacheRatio: 0 });
    assert.ok(none.every((o) => o.noCache === undefined));
    assert.ok(front.requests.every((r) => r.cacheControl === undefined));
  });

  it('records the answering front (X-Front) and keeps the endpoint the client used when it differs', async () => {
    const ops = await run({ maxOpsPerClient: 10 });
    for (const op of ops) {
      assert.equal(op.front, 'front-pod-a');
      assert.equal(op.clientFront, 'svc');
    }
  });
});
