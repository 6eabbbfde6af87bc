/**
 * Hostile input (fast-check) over every public, admin and internal route of the front, and the
 * catalog and order pods' own routes: never a 5xx, never a state change on a rejected request (the
 * database snapshot, and the front's cache counters for /internal/*), error bodies always in the
 * documented shape (`{"error":{"code","message"}}`); oversized bodies 413; a body not sent as application/json 415, whatever the
 * type (or none); methods a route does not serve 405; slow clients (slowloris)
 * cut off by the server timeouts; locked-down internals whose tokens never reach the logs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { bearer, call, snapshot, startTestStack, type TestStack } from '../api/harness.js';
import { tokenMatches } from '../../services/shared/src/auth.js';
import { isJsonMediaType } from '../../services/shared/src/body.js';
import { encodeCursor } from '../../services/shared/src/search-page.js';
import { rawRequest, type RawRequest, type RawResponse } from './rawhttp.js';
import { LogSink, ms, now, percentile, sleep } from './support.js';

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const RUNS = Number(process.env.FUZZ_RUNS ?? 120);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const portOf = (url: string) => Number(new URL(url).port);

describe('tokens are compared in constant time, without leaking their length', () => {
  it('tokenMatches accepts only the exact token', () => {
    const token = 'a'.repeat(32);
    assert.equal(tokenMatches(token, token), true);
    for (const other of [
      undefined,
      '',
      'a',
      'a'.repeat(31),
      'a'.repeat(33),
      'b' + 'a'.repeat(31),
      token.toUpperCase(),
    ]) {
      assert.equal(tokenMatches(other, token), false, String(other));
    }
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (a, b) => tokenMatches(a, b) === (a === b)),
      { numRuns: 500 },
    );
  });
});

describe('hostile input and locked-down internals', () => {
  let t: TestStack;
  const logs = new LogSink();
  const stats = { runs: 0, byStatus: new Map<number, number>() };
  const wrong = {
    admin: `wrong-admin-${randomBytes(12).toString('hex')}`,
    internal: `wrong-internal-${randomBytes(12).toString('hex')}`,
  };

  before(async () => {
    t = await startTestStack({
      consistencyMode: 'strict',
      logLevel: 'debug',
      log: logs.add,
      env: {
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        UPSTREAM_TIMEOUT_MS: '500',
      },
    });
    await t.db.query('UPDATE books SET stock = 1000000');
  });
  after(async () => t?.stop());

  const front = (i = 0) => portOf(t.front(i));
  const service = (name: string) => portOf(t.stack.all.find((p) => p.name === name)!.url);

  async function cacheStats(i: number): Promise<{ invalidations: number; size: number }> {
    const res = await call<{ invalidations: number; size: number }>(t.front(i), 'GET', '/internal/cache', {
      headers: bearer(t.stack.internalToken),
    });
    assert.equal(res.status, 200);
    return res.body;
  }

  /** Sends one request; a 5xx, a malformed error body, or a change after a rejection fails the property. */
  async function probe(port: number, req: RawRequest, state: () => Promise<unknown> = () => snapshot(t.db)) {
    const before = await state();
    let res: RawResponse;
    try {
      res = await rawRequest(port, req);
    } catch (err) {
      throw new Error(`${req.method} ${req.path}: ${(err as Error).message}`, { cause: err });
    }
    stats.runs++;
    stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
    const what = `${req.method} ${req.path} ${JSON.stringify(req.headers ?? [])} body=${JSON.stringify(String(req.body ?? '').slice(0, 80))}`;
    assert.ok(res.status < 500, `${what} → ${res.status} ${res.body.slice(0, 200)}`);
    if (res.status >= 400) {
      if (res.body !== '') {
        const error = (res.json as { error?: { code?: unknown; message?: unknown } })?.error;
        assert.ok(
          typeof error?.code === 'string' &&
            /^[a-z0-9_]+$/.test(error.code) &&
            typeof error.message === 'string',
          `${what} → ${res.status} with a body not in the error shape: ${res.body.slice(0, 200)}`,
        );
        assert.doesNotMatch(res.body, /\bat .+:\d+:\d+/, 'no stack trace in an error body');
      }
      assert.deepEqual(await state(), before, `${what} → ${res.status} changed state`);
    }
    return res;
  }

  // ---- arbitraries -------------------------------------------------------------------------------
  const noCrLf = (s: string) => s.replace(/[\r\n]/g, '');
  const weird = fc.constantFrom(
    '0',
    '00',
    '-1',
    '1.5',
    '1e3',
    '0x1',
    '+1',
    '%201',
    '1%20',
    '%31',
    '%00',
    '%',
    '%zz',
    '%E0%A4%A',
    '..',
    '.',
    '2147483647',
    '2147483648',
    '99999999999999999999999999',
    '1;select',
    'null',
    'NaN',
    'Infinity',
    '%2F',
    '1%2F2',
    'a'.repeat(300),
    '%F0%9F%92%A9',
    '\u00e9',
    '1?x=1',
    '1#frag',
  );
  const segment = fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 30 }).map(encodeURIComponent) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent) },
    {
      weight: 2,
      arbitrary: fc.oneof(fc.integer(), fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n })).map(String),
    },
    { weight: 2, arbitrary: weird },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 9 }).map(String) },
    { weight: 1, arbitrary: fc.stringMatching(/^[!-~]{0,16}$/) },
  );
  const headerValue = fc
    .oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.stringMatching(/^[!-~]{1,250}$/),
      weird,
    )
    .map(noCrLf);
  const anyValue = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 10 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.constantFrom(0, -1, 1, 10, 1e6, 1e6 + 1, 0.001, 1.005, 2 ** 31, Number.MAX_SAFE_INTEGER, 1e308, -0),
  );
  const body = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')) },
    {
      weight: 3,
      arbitrary: fc
        .dictionary(fc.constantFrom('price', 'quantity', 'x', '__proto__', 'constructor'), anyValue)
        .map((o) => JSON.stringify(o)),
    },
    { weight: 2, arbitrary: fc.record({ price: anyValue }).map((o) => JSON.stringify(o)) },
    { weight: 2, arbitrary: fc.record({ quantity: anyValue }).map((o) => JSON.stringify(o)) },
    {
      weight: 2,
      arbitrary: fc
        .record({
          items: fc.oneof(
            anyValue,
            fc.array(fc.record({ bookId: anyValue, version: anyValue }), { maxLength: 3 }),
          ),
        })
        .map((o) => JSON.stringify(o)),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 6000 }).map((n) => '['.repeat(n) + ']'.repeat(n)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('{"price":1', '{"price":1}}', '\u0000', '{"price":1e999}', '"', '{}'),
    },
  );
  /** Content types that are application/json: any case, any parameters. */
  const jsonType = fc.constantFrom(
    'application/json',
    'application/json; charset=utf-16',
    'Application/JSON; charset=UTF-8',
    'APPLICATION/JSON',
    'application/json ;charset="utf-8"; q=1',
  );
  /** Content types that are not: none, the usual others, near misses, and any printable string. */
  const notJsonType = fc.oneof(
    fc.constantFrom(
      undefined,
      '',
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'multipart/form-data',
      'application/jsonx',
      'application/json-patch+json',
      'application/vnd.api+json',
      'text/json',
      '*/*',
      'application/ json',
    ),
    fc.stringMatching(/^[!-~][ -~]{0,60}$/).filter((t) => !isJsonMediaType(t)),
  );
  const contentType = fc.oneof(jsonType, notJsonType);
  const auth = (realm: 'admin' | 'internal') =>
    fc
      .constantFrom(
        'none',
        'wrong',
        'right',
        'other-realm',
        'basic',
        'bearer-empty',
        'bearer-extra',
        'lowercase',
      )
      .map((kind) => {
        const right = realm === 'admin' ? t.stack.adminToken : t.stack.internalToken;
        const other = realm === 'admin' ? t.stack.internalToken : t.stack.adminToken;
        const value: Record<string, string | undefined> = {
          none: undefined,
          wrong: `Bearer ${wrong[realm]}`,
          right: `Bearer ${right}`,
          'other-realm': `Bearer ${other}`,
          basic: `Basic ${Buffer.from(`admin:${right}`).toString('base64')}`,
          'bearer-empty': 'Bearer ',
          'bearer-extra': `Bearer ${right} extra`,
          lowercase: `bearer ${right}`,
        };
        return value[kind];
      });
  const headersOf = (entries: [string, string | undefined][]): [string, string][] =>
    entries.filter((e): e is [string, string] => e[1] !== undefined);
  // A failure prints fast-check's seed and path; FUZZ_SEED=<seed> replays the same inputs.
  const opts = { numRuns: RUNS, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) };

  // ---- properties ----------------------------------------------------------------------------------
  it(`fuzz: public reads (GET /info, /search, /orders) with garbage ids and headers (${RUNS} runs each)`, async () => {
    for (const route of ['/info/', '/search/', '/orders/']) {
      await fc.assert(
        fc.asyncProperty(segment, headerValue, headerValue, fc.boolean(), async (seg, h1, h2, noCache) => {
          await probe(front(), {
            method: 'GET',
            path: route + seg,
            headers: headersOf([
              ['Idempotency-Key', h1],
              ['X-Min-Version', h2],
              ['Cache-Control', noCache ? 'no-cache' : undefined],
            ]),
          });
        }),
        opts,
      );
    }
  });

  it(`fuzz: GET /search pages with garbage limits, cursors and parameters, on the fronts and the catalog pods (${RUNS} runs)`, async () => {
    const topics = ['distributed%20systems', 'Undergraduate-School', 'x'];
    // Real cursors, of this topic and of others, beside garbage: a cursor is only ever 200 or 400.
    const realCursor = fc
      .tuple(
        fc.constantFrom('distributed systems', 'undergraduate school', 'x'),
        fc.integer({ min: 1, max: 9 }),
      )
      .map(([topic, id]) => encodeCursor(topic, id));
    const value = fc.oneof(
      segment,
      realCursor,
      realCursor.map((c) => c.slice(0, -1)),
      realCursor.map((c) => c + '%3D'),
      fc.integer({ min: -5, max: 200 }).map(String),
    );
    const param = fc.tuple(
      fc.constantFrom('limit', 'cursor', 'limit', 'cursor', 'offset', 'Limit', ''),
      value,
    );
    const ports = [front(), front(1), service('catalog-origin-0'), service('catalog-replica-0')];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ports),
        fc.constantFrom(...topics),
        fc.array(param, { maxLength: 3 }),
        fc.boolean(),
        async (port, topic, params, noCache) => {
          const query = params.map(([k, v]) => `${k}=${v}`).join('&');
          const path = `/search/${topic}${query === '' ? '' : `?${query}`}`;
          const res = await probe(port, {
            method: 'GET',
            path,
            headers: headersOf([['Cache-Control', noCache ? 'no-cache' : undefined]]),
          });
          assert.ok([200, 400].includes(res.status), `a search page is 200 or 400, got ${res.status}`);
          if (res.status === 400 && res.body === '') {
            // Node's HTTP parser refuses a request target with bytes HTTP does not allow there (say a
            // raw é: FUZZ_SEED=1589677415) before any route sees it, with a bare 400, as probe() allows
            // everywhere; any other 400 is the store's and has its error body.
            assert.match(path, /[^\x21-\x7e]/, `${path}: a bare 400 only for a target the parser refuses`);
          } else if (res.status === 400) {
            const code = (res.json as { error: { code: string } }).error.code;
            assert.ok(
              ['invalid_limit', 'invalid_cursor', 'cursor_topic_mismatch', 'unknown_parameter'].includes(
                code,
              ),
              code,
            );
          }
        },
      ),
      opts,
    );
  });

  it(`fuzz: POST/PUT /purchase with garbage ids, keys and bodies (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('POST', 'PUT'),
        segment,
        fc.option(headerValue),
        body,
        contentType,
        async (method, seg, key, b, ct) => {
          await probe(front(), {
            method,
            path: `/purchase/${seg}`,
            headers: headersOf([
              ['Idempotency-Key', key ?? undefined],
              ['Content-Type', ct],
            ]),
            body: b,
          });
        },
      ),
      opts,
    );
  });

  it(`fuzz: admin PATCH /books/:id and POST /books/:id/restock with every kind of credential (${RUNS} runs each)`, async () => {
    for (const route of [(s: string) => `/books/${s}`, (s: string) => `/books/${s}/restock`]) {
      await fc.assert(
        fc.asyncProperty(segment, auth('admin'), body, contentType, async (seg, authorization, b, ct) => {
          const isPatch = !route('x').endsWith('restock');
          await probe(front(), {
            method: isPatch ? 'PATCH' : 'POST',
            path: route(seg),
            headers: headersOf([
              ['Authorization', authorization],
              ['Content-Type', ct],
            ]),
            body: b,
          });
        }),
        opts,
      );
    }
  });

  it(`fuzz: POST /internal/invalidate with every kind of credential and body (${RUNS} runs)`, async () => {
    // On front-1 only: an authorised, valid invalidation legitimately raises its fences.
    await fc.assert(
      fc.asyncProperty(auth('internal'), body, contentType, async (authorization, b, ct) => {
        await probe(
          front(1),
          {
            method: 'POST',
            path: '/internal/invalidate',
            headers: headersOf([
              ['Authorization', authorization],
              ['Content-Type', ct],
            ]),
            body: b,
          },
          async () => ({ db: await snapshot(t.db), invalidations: (await cacheStats(1)).invalidations }),
        );
      }),
      opts,
    );
  });

  it(`fuzz: the catalog and order pods' own routes, including X-Min-Version (${RUNS} runs each)`, async () => {
    const catalogs = [service('catalog-origin-0'), service('catalog-replica-0')];
    const orders = [service('order-origin-0'), service('order-replica-0')];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...catalogs),
        fc.constantFrom('GET /books/', 'GET /search/', 'PATCH /books/', 'POST /restock'),
        segment,
        headerValue,
        auth('admin'),
        body,
        contentType,
        async (port, route, seg, minVersion, authorization, b, ct) => {
          const [method, prefix] = route.split(' ') as [string, string];
          const p = prefix === '/restock' ? `/books/${seg}/restock` : prefix + seg;
          await probe(port, {
            method,
            path: p,
            headers: headersOf([
              ['X-Min-Version', minVersion],
              ['Authorization', authorization],
              ['Content-Type', ct],
            ]),
            body: method === 'GET' ? undefined : b,
          });
        },
      ),
      opts,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...orders),
        fc.constantFrom('POST /purchase/', 'PUT /purchase/', 'GET /orders/'),
        segment,
        fc.option(headerValue),
        body,
        contentType,
        async (port, route, seg, key, b, ct) => {
          const [method, prefix] = route.split(' ') as [string, string];
          await probe(port, {
            method,
            path: prefix + seg,
            headers: headersOf([
              ['Idempotency-Key', key ?? undefined],
              ['Content-Type', ct],
            ]),
            body: method === 'GET' ? undefined : b,
          });
        },
      ),
      opts,
    );
  });

  it(`fuzz: a non-empty body not sent as application/json is 415 on every body route and changes nothing; as JSON, never 415 (${RUNS} runs)`, async () => {
    const admin = `Bearer ${t.stack.adminToken}`;
    const internal = `Bearer ${t.stack.internalToken}`;
    // Routes whose auth and path are right, so that the body is what decides; [port, method, path, auth].
    const routes = (id: number): [number, string, string, string | undefined][] => [
      [front(), 'PATCH', `/books/${id}`, admin],
      [front(), 'POST', `/books/${id}/restock`, admin],
      [front(), 'POST', `/purchase/${id}`, undefined],
      [front(), 'PUT', `/purchase/${id}`, undefined],
      // front-1: an authorised, valid invalidation legitimately raises its fences.
      [front(1), 'POST', '/internal/invalidate', internal],
      [service('catalog-origin-0'), 'PATCH', `/books/${id}`, admin],
      [service('catalog-replica-0'), 'POST', `/books/${id}/restock`, admin],
      [service('catalog-replica-0'), 'POST', '/internal/versions', internal],
      [service('order-origin-0'), 'POST', `/purchase/${id}`, undefined],
    ];
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 8 }),
        fc.integer({ min: 1, max: 7 }),
        body.filter((b): b is string => typeof b === 'string' && b.length > 0),
        fc.boolean(),
        fc.oneof(
          notJsonType.map((type) => ({ json: false, type })),
          jsonType.map((type) => ({ json: true, type })),
        ),
        async (route, id, b, chunked, { json, type }) => {
          const [port, method, p, authorization] = routes(id)[route]!;
          const res = await probe(
            port,
            {
              method,
              path: p,
              headers: headersOf([
                ['Authorization', authorization],
                ['Content-Type', type],
              ]),
              body: b,
              chunked,
            },
            p === '/internal/invalidate'
              ? async () => ({ db: await snapshot(t.db), invalidations: (await cacheStats(1)).invalidations })
              : undefined,
          );
          const what = `${method} ${p} Content-Type: ${String(type)} → ${res.status} ${res.body.slice(0, 200)}`;
          if (json) {
            assert.notEqual(res.status, 415, what);
            return;
          }
          assert.equal(res.status, 415, what);
          assert.equal((res.json as { error: { code: string } }).error.code, 'unsupported_media_type', what);
          refused++;
        },
      ),
      opts,
    );
    console.log(
      `hostile: ${refused} bodies not sent as application/json → 415 unsupported_media_type, state unchanged`,
    );
  });

  it('methods a route does not serve: 405 with Allow (404 off any route); never a 5xx, never a change', async () => {
    const routes: [string, number, string[]][] = [
      ['/info/1', front(), ['GET', 'HEAD']],
      ['/search/x', front(), ['GET', 'HEAD']],
      ['/purchase/1', front(), ['POST', 'PUT']],
      ['/orders/00000000-0000-0000-0000-000000000000', front(), ['GET', 'HEAD']],
      ['/books/1', front(), ['PATCH']],
      ['/books/1/restock', front(), ['POST']],
      ['/internal/invalidate', front(), ['POST']],
      ['/internal/cache', front(), ['GET', 'HEAD']],
      ['/livez', front(), ['GET', 'HEAD']],
      ['/metrics', front(), ['GET', 'HEAD']],
      ['/books/1', service('catalog-origin-0'), ['GET', 'HEAD', 'PATCH']],
      ['/books/1/restock', service('catalog-replica-0'), ['POST']],
      ['/purchase/1', service('order-origin-0'), ['POST', 'PUT']],
    ];
    const methods = [
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'PATCH',
      'DELETE',
      'TRACE',
      'PROPFIND',
      'SEARCH',
      'PURGE',
      'LOCK',
      'MKCOL',
      'COPY',
      'MOVE',
      'LINK',
    ];
    let checked = 0;
    for (const [p, port, allowed] of routes) {
      for (const method of methods) {
        if (allowed.includes(method)) continue;
        const res = await probe(port, { method, path: p });
        assert.equal(res.status, 405, `${method} ${p}: ${res.status} ${res.body}`);
        // A HEAD answer never has a body.
        if (method !== 'HEAD')
          assert.equal((res.json as { error: { code: string } }).error.code, 'method_not_allowed');
        const allow = (res.headers['allow'] ?? '').split(/,\s*/);
        for (const m of allowed.filter((m) => m !== 'HEAD'))
          assert.ok(allow.includes(m), `${method} ${p}: Allow: ${res.headers['allow']}`);
        checked++;
      }
      const options = await probe(port, { method: 'OPTIONS', path: p });
      assert.ok(options.status < 300 && options.headers['allow'], `OPTIONS ${p}: ${options.status}`);
    }
    for (const method of ['DELETE', 'PROPFIND', 'TRACE']) {
      const res = await probe(front(), { method, path: '/no/such/route' });
      assert.equal(res.status, 404, `${method} /no/such/route: ${res.status}`);
    }
    // Not a method at all: the HTTP parser refuses it.
    const junk = await probe(front(), { method: 'FOO', path: '/info/1' });
    assert.equal(junk.status, 400);
    console.log(
      `hostile: ${checked} (route, method) pairs answered 405 with Allow; unknown routes 404; a non-method 400`,
    );
  });

  it('protocol abuse (smuggling headers, bad chunks, huge headers and URLs) is refused with a 4xx, never a 5xx', async () => {
    const before = await snapshot(t.db);
    const cases: [string, string][] = [
      [
        'CL+TE',
        'POST /purchase/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ],
      ['two CL', 'POST /purchase/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'],
      [
        'bad chunk',
        'POST /purchase/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      ],
      ['no colon', 'GET /info/1 HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n'],
      ['huge header', `GET /info/1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
      ['huge URL', `GET /info/${'1'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
      ['asterisk', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['absolute form', 'GET http://evil.example/books/1 HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['double slash', 'POST //purchase/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
      ['dot segments', 'POST /info/../purchase/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
      ['bad version', 'GET /info/1 HTTP/9.9\r\nHost: x\r\n\r\n'],
      ['NUL in path', 'GET /info/1\u0000 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ];
    const seen: string[] = [];
    for (const [name, bytes] of cases) {
      const status = await new Promise<number>((resolve, reject) => {
        const socket = net.connect(front(), '127.0.0.1');
        let data = '';
        socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => {
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
          if (m) resolve(Number(m[1]));
          else reject(new Error(`${name}: no answer (${JSON.stringify(data.slice(0, 80))})`));
        });
        socket.end(Buffer.from(bytes, 'latin1'));
        setTimeout(() => socket.destroy(), 5000);
      });
      stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1);
      assert.ok(status < 500, `${name}: ${status}`);
      seen.push(`${name} ${status}`);
    }
    assert.deepEqual(await snapshot(t.db), before, 'nothing was bought or changed');
    console.log(`hostile: protocol abuse: ${seen.join(', ')}`);
  });

  it('oversized bodies get 413 (declared, chunked, or a lying Content-Length) and change nothing', async () => {
    const big = Buffer.alloc(17 * 1024, 'a');
    const bigJson = JSON.stringify({ price: 1, pad: 'x'.repeat(20 * 1024) });
    const targets: [number, string, string, [string, string][]][] = [
      [front(), 'POST', '/purchase/1', [['Idempotency-Key', `big-${Date.now()}`]]],
      [front(), 'PATCH', '/books/1', [['Authorization', `Bearer ${t.stack.adminToken}`]]],
      [front(), 'POST', '/books/1/restock', [['Authorization', `Bearer ${t.stack.adminToken}`]]],
      [front(), 'POST', '/internal/invalidate', [['Authorization', `Bearer ${t.stack.internalToken}`]]],
      [service('catalog-origin-0'), 'PATCH', '/books/1', [['Authorization', `Bearer ${t.stack.adminToken}`]]],
      [service('order-origin-0'), 'POST', '/purchase/1', [['Idempotency-Key', `big2-${Date.now()}`]]],
    ];
    let n = 0;
    const times: number[] = [];
    for (const [port, method, p, headers] of targets) {
      for (const variant of [
        { body: big },
        { body: bigJson, headers: [['Content-Type', 'application/json']] as [string, string][] },
        // Chunked, so its size is known only as it arrives (as JSON: any other type is 415 at its first byte).
        {
          body: Buffer.alloc(64 * 1024, '{'),
          chunked: true,
          headers: [['Content-Type', 'application/json']] as [string, string][],
        },
        // Declares 50 MB and sends 10 bytes: refused on the header, without waiting for the rest.
        { body: '{"price":1', contentLength: 50 * 1024 * 1024 },
      ]) {
        const res = await probe(port, {
          method,
          path: p,
          headers: [...headers, ...(variant.headers ?? [])],
          body: variant.body,
          chunked: variant.chunked,
          contentLength: variant.contentLength,
        });
        assert.equal(
          res.status,
          413,
          `${method} ${p} (${variant.chunked ? 'chunked' : 'length'}): ${res.status} ${res.body}`,
        );
        assert.equal((res.json as { error: { code: string } }).error.code, 'payload_too_large');
        times.push(res.ms);
        n++;
      }
    }
    console.log(
      `hostile: ${n} oversized requests → 413 payload_too_large (max ${ms(Math.max(...times))}), state unchanged`,
    );
  });

  /** Opens a connection and dribbles bytes; resolves when the server closes it. */
  function dribble(
    port: number,
    mode: 'headers' | 'body',
    bodyRoute = 'POST /purchase/1',
    maxMs = 8000,
  ): Promise<{ ms: number; status: number | undefined; sent: number }> {
    return new Promise((resolve) => {
      const start = now();
      const socket = net.connect(port, '127.0.0.1');
      let data = '';
      let sent = 0;
      const head =
        mode === 'headers'
          ? 'GET /livez HTTP/1.1\r\nHost: x\r\n'
          : `${bodyRoute} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.stack.adminToken}\r\n` +
            `Idempotency-Key: slowloris-${Date.now()}-${Math.random()}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`;
      socket.write(head);
      const timer = setInterval(() => {
        if (now() - start > maxMs) return socket.destroy();
        sent++;
        socket.write(mode === 'headers' ? `X-Slow-${sent}: ${sent}\r\n` : ' ');
      }, 100);
      socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
        resolve({ ms: now() - start, status: m ? Number(m[1]) : undefined, sent });
      });
    });
  }

  it('slow clients (slowloris) are cut off by the server timeouts, and do not slow anyone else', async () => {
    const before = await snapshot(t.db);
    const ports = [front(), service('catalog-origin-0'), service('order-origin-0')];
    const checkEvery = Math.max(50, Math.min(1000, Math.floor(HEADERS_TIMEOUT_MS / 4)));
    // 30 slow-header clients on the front, plus one of each kind on every service.
    const slow = [
      ...Array.from({ length: 30 }, () => dribble(front(), 'headers')),
      ...ports.map((p) => dribble(p, 'headers')),
      ...ports.map((p, i) => dribble(p, 'body', i === 1 ? 'PATCH /books/1' : 'POST /purchase/1')),
    ];
    const latencies: number[] = [];
    const start = now();
    while (now() - start < 1500) {
      const s = now();
      const res = await call(t.front(0), 'GET', '/info/2');
      assert.equal(res.status, 200);
      latencies.push(now() - s);
      await sleep(25);
    }
    const results = await Promise.all(slow);
    const headerCuts = results.slice(0, 30 + ports.length);
    const bodyCuts = results.slice(30 + ports.length);
    for (const r of headerCuts) {
      assert.ok(r.ms < HEADERS_TIMEOUT_MS + checkEvery + 500, `slow headers held ${ms(r.ms)}`);
      assert.ok(r.ms >= HEADERS_TIMEOUT_MS * 0.9, `cut off at ${ms(r.ms)}, before the headers timeout`);
      assert.equal(r.status, 408);
    }
    for (const r of bodyCuts) {
      assert.ok(r.ms < REQUEST_TIMEOUT_MS + checkEvery + 500, `slow body held ${ms(r.ms)}`);
      assert.equal(r.status, 408);
    }
    assert.deepEqual(await snapshot(t.db), before, 'the dribbled purchases bought nothing');
    console.log(
      `hostile: slowloris (HTTP_HEADERS_TIMEOUT_MS=${HEADERS_TIMEOUT_MS}, HTTP_REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS}): ` +
        `${headerCuts.length} slow-header connections cut with 408 after ${ms(Math.min(...headerCuts.map((r) => r.ms)))}–${ms(Math.max(...headerCuts.map((r) => r.ms)))}, ` +
        `${bodyCuts.length} slow-body writes cut after ${ms(Math.max(...bodyCuts.map((r) => r.ms)))} (nothing bought); ` +
        `${latencies.length} concurrent normal reads p50 ${ms(percentile(latencies, 50))}, max ${ms(Math.max(...latencies))}`,
    );
  });

  it('an unauthenticated or wrongly authenticated call to an admin or internal route changes nothing', async () => {
    // Warm front-0's cache: an accepted invalidation would drop this entry.
    await call(t.front(0), 'GET', '/info/3');
    assert.equal((await call(t.front(0), 'GET', '/info/3')).headers.get('x-cache'), 'hit');
    const dbBefore = await snapshot(t.db);
    const cacheBefore = await cacheStats(0);
    const variants: [string, Record<string, string>][] = [
      ['none', {}],
      ['wrong', bearer(wrong.admin)],
      ['internal-for-admin', bearer(t.stack.internalToken)],
      ['basic', { authorization: `Basic ${Buffer.from(t.stack.adminToken).toString('base64')}` }],
      ['token-only', { authorization: t.stack.adminToken }],
      ['prefix', bearer(t.stack.adminToken.slice(0, -1))],
    ];
    let n = 0;
    const adminTargets = [t.front(0), ...t.stack.catalogs.map((c) => c.url)];
    for (const base of adminTargets) {
      for (const [name, headers] of variants) {
        for (const [method, p, b] of [
          ['PATCH', '/books/3', { price: 1 }],
          ['POST', '/books/3/restock', { quantity: 1000 }],
        ] as const) {
          const res = await call<{ error: { code: string } }>(base, method, p, { headers, body: b });
          assert.equal(res.status, 401, `${name} ${method} ${base}${p}: ${res.status}`);
          assert.equal(res.body.error.code, 'unauthorized');
          assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="bazar-admin"/);
          n++;
        }
      }
    }
    const internalVariants: [string, Record<string, string>][] = [
      ['none', {}],
      ['wrong', bearer(wrong.internal)],
      ['admin-for-internal', bearer(t.stack.adminToken)],
      ['prefix', bearer(t.stack.internalToken.slice(0, -1))],
    ];
    for (const [name, headers] of internalVariants) {
      for (const [method, p, b] of [
        ['POST', '/internal/invalidate', { items: [{ bookId: 3, version: 1e12 }] }],
        ['GET', '/internal/cache', undefined],
        ['POST', '/internal/test-hooks', { fencing: false }],
      ] as const) {
        const res = await call(t.front(0), method, p, { headers, body: b });
        assert.equal(res.status, 401, `${name} ${method} ${p}: ${res.status}`);
        n++;
      }
    }
    assert.deepEqual(await snapshot(t.db), dbBefore, 'no book or order changed');
    assert.deepEqual(await cacheStats(0), cacheBefore, "the front's cache saw no invalidation");
    const still = await call(t.front(0), 'GET', '/info/3');
    assert.equal(still.headers.get('x-cache'), 'hit', 'the cached entry is still served');
    console.log(
      `hostile: ${n} unauthenticated/wrong-token calls to admin and internal routes → 401, database and cache unchanged`,
    );
  });

  it('tokens never appear in any log line, even on failure paths; a bad token config is refused without echoing it', async () => {
    // Right and wrong tokens on every protected route, and authenticated writes through a failing path.
    for (const token of [t.stack.adminToken, wrong.admin]) {
      await call(t.front(0), 'PATCH', '/books/5', { headers: bearer(token), body: { price: 130 } });
      await call(t.stack.catalogs[1]!.url, 'POST', '/books/5/restock', {
        headers: bearer(token),
        body: { quantity: 1 },
      });
    }
    for (const token of [t.stack.internalToken, wrong.internal]) {
      await call(t.front(0), 'POST', '/internal/invalidate', {
        headers: bearer(token),
        body: { items: [{ bookId: 5, version: 1 }] },
      });
      await call(t.front(0), 'GET', '/internal/cache', { headers: bearer(token) });
    }
    // Freeze the catalog replica: admin writes through it time out and are retried (warnings logged).
    const replica = t.stack.catalogs.find((c) => c.role === 'replica')!;
    const mark = now();
    await replica.kill('SIGSTOP');
    try {
      for (let i = 0; i < 3; i++) {
        const res = await call(t.front(0), 'PATCH', '/books/5', {
          headers: bearer(t.stack.adminToken),
          body: { price: 130 },
        });
        assert.equal(res.status, 200);
        await call(t.front(0), 'PATCH', '/books/5', { headers: bearer(wrong.admin), body: { price: 130 } });
      }
    } finally {
      await replica.kill('SIGCONT');
    }
    await sleep(200);
    const failures = logs.records(mark).filter((r) => r.rec.msg === 'upstream call failed');
    assert.ok(failures.length > 0, 'the failure path was exercised and logged');
    const secrets = [t.stack.adminToken, t.stack.internalToken, wrong.admin, wrong.internal];
    const leaks = logs.lines.filter((l) => secrets.some((s) => l.line.includes(s)));
    assert.equal(
      leaks.length,
      0,
      `tokens in logs: ${leaks
        .slice(0, 3)
        .map((l) => `${l.proc}: ${l.line.slice(0, 200)}`)
        .join('\n')}`,
    );
    // A misconfigured token stops the service with a message that names the variable, not the value.
    const bad = 'short-secret-1';
    const res = spawnSync(process.execPath, [path.join(root, 'dist/services/front/src/main.js')], {
      env: {
        ...process.env,
        NODE_TEST_CONTEXT: '',
        ADMIN_TOKEN: bad,
        INTERNAL_TOKEN: 'x'.repeat(32),
        PORT: '0',
      },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(res.status, 78, res.stderr);
    assert.match(res.stderr, /ADMIN_TOKEN/);
    assert.ok(!res.stderr.includes(bad) && !res.stdout.includes(bad), 'the bad token is not echoed');
    console.log(
      `hostile: ${logs.lines.length} log lines (debug level) from ${new Set(logs.lines.map((l) => l.proc)).size} processes, ` +
        `${failures.length} upstream-failure warnings on authenticated writes, 0 containing a token (right or wrong)`,
    );
  });

  it('summary of the fuzzing', () => {
    const byStatus = [...stats.byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`);
    assert.ok(stats.runs > RUNS * 8, `${stats.runs} requests`);
    assert.ok(![...stats.byStatus.keys()].some((s) => s >= 500));
    console.log(
      `hostile: fast-check ${RUNS} runs per property, ${stats.runs} requests in all; statuses ${byStatus.join(' ')}; no 5xx`,
    );
  });
});

describe('production dependencies have no high or critical advisory', () => {
  it('npm audit --omit=dev --audit-level=high', (ctx) => {
    const res = spawnSync('npm', ['audit', '--omit=dev', '--audit-level=high', '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    let report: { metadata?: { vulnerabilities?: Record<string, number> }; error?: { summary?: string } } =
      {};
    try {
      report = JSON.parse(res.stdout) as typeof report;
    } catch {
      // not JSON: the registry could not be asked
    }
    const v = report.metadata?.vulnerabilities;
    if (!v) {
      const why =
        (report as { message?: string }).message ??
        report.error?.summary ??
        (res.stderr.trim() || 'no answer');
      ctx.skip(`the registry's audit endpoint did not answer (${why})`);
      return;
    }
    console.log(`npm audit (production): ${JSON.stringify(v)}`);
    assert.equal((v.high ?? 0) + (v.critical ?? 0), 0, JSON.stringify(v));
  });
});
