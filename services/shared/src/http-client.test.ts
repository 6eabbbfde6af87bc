import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { RequestError } from 'got';
import {
  COMMIT_UNCONFIRMED_HEADER,
  createHttpClient,
  errorFromResponse,
  PRIMARY_WAITED_HEADER,
  send,
  Upstream,
} from './http-client.js';
import { StaticDiscovery } from './discovery.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { HttpError } from './errors.js';

/** A real HTTP server on loopback whose behaviour each test sets. */
async function server(name: string, handler: (res: http.ServerResponse) => void) {
  const hits: string[] = [];
  const srv = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.setHeader('x-served-by', name);
    handler(res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    name,
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    hits,
    close: () => srv.close(),
  };
}

async function refusedUrl(): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

const ok = (res: http.ServerResponse) => res.end('{"ok":true}');

function upstream(endpoints: Array<{ name: string; url: string }>, maxAttempts = 3, timeoutMs = 500) {
  const metrics = createMetrics({ service: 'test', podName: 'test', defaultMetrics: false });
  return {
    metrics,
    upstream: new Upstream({
      service: 'catalog',
      discovery: new StaticDiscovery('catalog', endpoints),
      http: createHttpClient({ timeoutMs }),
      metrics,
      logger: createLogger({ name: 'test', level: 'silent' }),
      loadBalancing: () => 'round-robin',
      maxAttempts,
    }),
  };
}

describe('Upstream (real HTTP servers on loopback)', () => {
  const servers: Array<{ close(): void }> = [];
  after(() => servers.forEach((s) => s.close()));
  let a: Awaited<ReturnType<typeof server>>;
  let b: Awaited<ReturnType<typeof server>>;
  before(async () => {
    a = await server('a', ok);
    b = await server('b', ok);
    servers.push(a, b);
  });

  it('balances round-robin over the endpoints', async () => {
    const { upstream: u } = upstream([a, b]);
    const order: unknown[] = [];
    for (let i = 0; i < 4; i++)
      order.push(
        (await u.request({ method: 'GET', path: '/x', retry: 'idempotent' })).headers['x-served-by'],
      );
    assert.deepEqual(order, ['a', 'b', 'a', 'b']);
  });

  it('skips an endpoint that refuses connections, even for a non-idempotent call', async () => {
    const dead = { name: 'dead', url: await refusedUrl() };
    const { upstream: u, metrics } = upstream([dead, a]);
    const res = await u.request({ method: 'POST', path: '/buy', retry: 'connect-only' });
    assert.equal(res.status, 200);
    assert.equal(res.endpoint.name, 'a');
    assert.match(
      await metrics.registry.metrics(),
      /bazar_upstream_errors_total\{target="catalog",reason="ECONNREFUSED"[^}]*\} 1/,
    );
  });

  it('retries a 503 on the next endpoint only when the call is idempotent', async () => {
    const sick = await server('sick', (res) => {
      res.statusCode = 503;
      res.end('{"error":{"code":"primary_unavailable","message":"down"}}');
    });
    servers.push(sick);
    const { upstream: u1 } = upstream([sick, a]);
    assert.equal((await u1.request({ method: 'GET', path: '/r', retry: 'idempotent' })).status, 200);
    const { upstream: u2 } = upstream([sick, a]);
    const res = await u2.request({ method: 'POST', path: '/w', retry: 'connect-only' });
    assert.equal(res.status, 503, 'a non-idempotent call is not resent after the server saw it');
  });

  it("keeps an endpoint's answer when the next one is never reached (a refused connection sent nothing)", async () => {
    const sick = await server('sick', (res) => {
      res.statusCode = 503;
      res.end('{"error":{"code":"primary_unavailable","message":"down"}}');
    });
    servers.push(sick);
    const dead = { name: 'dead', url: await refusedUrl() };
    for (const method of ['GET', 'POST'] as const) {
      const { upstream: u } = upstream([sick, dead]);
      const res = await u.request({ method, path: '/w', retry: 'idempotent' });
      assert.equal(res.status, 503, `${method}: the answer the store gave, not a 503 of our own`);
      assert.equal(res.endpoint.name, 'sick');
      assert.deepEqual((res.body as { error: { code: string } }).error.code, 'primary_unavailable');
    }
  });

  it("takes a write's primary_unavailable as final once its writer waited for a primary (PRIMARY_WAIT_MS)", async () => {
    const waited = await server('waited', (res) => {
      res.statusCode = 503;
      res.setHeader(PRIMARY_WAITED_HEADER, '10000');
      res.end('{"error":{"code":"primary_unavailable","message":"no primary within the wait"}}');
    });
    const next = await server('next', ok);
    servers.push(waited, next);
    const { upstream: u } = upstream([waited, next]);
    const res = await u.request({ method: 'POST', path: '/purchase/1', retry: 'idempotent' });
    assert.equal(res.status, 503);
    assert.equal(res.endpoint.name, 'waited');
    assert.deepEqual(next.hits, [], 'the next writer would only wait as long again: not asked');
    const err = errorFromResponse(res);
    assert.equal(err.code, 'primary_unavailable');
    assert.equal(err.headers[PRIMARY_WAITED_HEADER], '10000', 'relayed with the error');
    // A read is not a write: the header changes nothing for it.
    const { upstream: r } = upstream([waited, next]);
    assert.equal((await r.request({ method: 'GET', path: '/x', retry: 'idempotent' })).status, 200);
  });

  it("takes a write's commit_outcome_unknown as final when its commit waits for a standby (STRICT_STANDBY_LOSS=refuse)", async () => {
    const pending = await server('pending', (res) => {
      res.statusCode = 503;
      res.setHeader(COMMIT_UNCONFIRMED_HEADER, '2000');
      res.end('{"error":{"code":"commit_outcome_unknown","message":"no standby confirmed it"}}');
    });
    const lost = await server('lost', (res) => {
      res.statusCode = 503;
      res.end('{"error":{"code":"commit_outcome_unknown","message":"connection lost during COMMIT"}}');
    });
    const next = await server('next', ok);
    servers.push(pending, lost, next);
    const { upstream: u } = upstream([pending, next]);
    const res = await u.request({ method: 'POST', path: '/purchase/1', retry: 'idempotent' });
    assert.equal(res.status, 503);
    assert.equal(res.endpoint.name, 'pending');
    assert.deepEqual(next.hits, [], 'a second attempt would queue behind the first: not asked');
    assert.equal(errorFromResponse(res).headers[COMMIT_UNCONFIRMED_HEADER], '2000', 'relayed with the error');
    // Without the header (the connection died during COMMIT) the next writer is asked, under the key.
    const { upstream: v } = upstream([lost, next]);
    assert.equal((await v.request({ method: 'POST', path: '/purchase/1', retry: 'idempotent' })).status, 200);
  });

  it('times out a slow endpoint and moves on; all slow → 504 upstream_timeout', async () => {
    const slow = await server('slow', (res) => setTimeout(() => ok(res), 1000));
    servers.push(slow);
    const { upstream: u1 } = upstream([slow, a], 3, 150);
    const started = Date.now();
    const res = await u1.request({ method: 'GET', path: '/s', retry: 'idempotent' });
    assert.equal(res.endpoint.name, 'a');
    assert.ok(Date.now() - started < 900);
    const { upstream: u2 } = upstream([slow], 3, 150);
    await assert.rejects(
      u2.request({ method: 'GET', path: '/s', retry: 'idempotent' }),
      (err: unknown) => err instanceof HttpError && err.status === 504 && err.code === 'upstream_timeout',
    );
  });

  it('bounds attempts and answers 503 when no endpoint is known', async () => {
    const dead1 = { name: 'd1', url: await refusedUrl() };
    const dead2 = { name: 'd2', url: await refusedUrl() };
    const { upstream: u } = upstream([dead1, dead2, a], 2);
    await assert.rejects(
      u.request({ method: 'GET', path: '/x', retry: 'idempotent' }),
      (err: unknown) => err instanceof HttpError && err.status === 503,
    );
    const { upstream: none } = upstream([]);
    await assert.rejects(
      none.request({ method: 'GET', path: '/x', retry: 'idempotent' }),
      (err: unknown) => err instanceof HttpError && err.code === 'service_unavailable',
    );
  });
});

describe('createHttpClient + send (a real server on loopback)', () => {
  it('sends method, headers and body as given, over one kept-alive connection', async () => {
    const seen: Array<{ method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }> =
      [];
    const sockets = new Set<net.Socket>();
    const srv = http.createServer((req, res) => {
      sockets.add(req.socket);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        res.setHeader('content-type', 'application/json');
        res.end('{"answer":42}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const client = createHttpClient({ timeoutMs: 1000 });
    try {
      const got1 = await send(client, `${base}/books/7`, {
        method: 'GET',
        headers: { 'x-min-version': '3' },
      });
      const got2 = await send(client, `${base}/internal/invalidate`, {
        method: 'POST',
        headers: { authorization: 'Bearer t' },
        body: '{"items":[]}',
      });
      assert.equal(got1.status, 200);
      assert.equal(got1.raw.toString(), '{"answer":42}');
      assert.equal(got2.status, 200);
      assert.deepEqual(
        seen.map((s) => [s.method, s.url, s.body]),
        [
          ['GET', '/books/7', ''],
          ['POST', '/internal/invalidate', '{"items":[]}'],
        ],
      );
      assert.equal(seen[0]!.headers['x-min-version'], '3');
      assert.equal(seen[0]!.headers.host, base.slice('http://'.length));
      assert.equal(seen[1]!.headers.authorization, 'Bearer t');
      assert.equal(seen[1]!.headers['content-type'], 'application/json');
      assert.equal(seen[1]!.headers['content-length'], '12');
      assert.equal(sockets.size, 1, 'the second call reused the first one’s connection');
    } finally {
      (client.defaults.options.agent as { http?: http.Agent }).http?.destroy();
      srv.close();
    }
  });

  it('sends a body as application/json unless the caller names a Content-Type (any case)', async () => {
    const types: Array<string | undefined> = [];
    const srv = http.createServer((req, res) => {
      types.push(req.headers['content-type']);
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/internal/invalidate`;
    const client = createHttpClient({ timeoutMs: 1000 });
    try {
      const body = '{"items":[]}';
      // The invalidation push: a body and only the authorization header.
      await send(client, url, { method: 'POST', headers: { authorization: 'Bearer t' }, body });
      await send(client, url, { method: 'PATCH', body });
      await send(client, url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        body,
      });
      await send(client, url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
      // No body, no Content-Type.
      await send(client, url, { method: 'POST' });
      assert.deepEqual(types, [
        'application/json',
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        undefined,
      ]);
    } finally {
      (client.defaults.options.agent as { http?: http.Agent }).http?.destroy();
      srv.close();
    }
  });

  it('times a call out after timeoutMs with got’s ETIMEDOUT', async () => {
    const srv = http.createServer(() => undefined);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const client = createHttpClient({ timeoutMs: 100 });
    try {
      await assert.rejects(
        send(client, `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`, { method: 'GET' }),
        (err: RequestError) => err.code === 'ETIMEDOUT',
      );
    } finally {
      (client.defaults.options.agent as { http?: http.Agent }).http?.destroy();
      srv.closeAllConnections();
      srv.close();
    }
  });

  it('keeps its defaults frozen, with no cache options for got to spread into every request', () => {
    const client = createHttpClient({ timeoutMs: 1000 });
    assert.deepEqual(client.defaults.options.cacheOptions, {});
    assert.throws(() => {
      client.defaults.options.timeout = { request: 1 };
    }, TypeError);
  });
});
