/**
 * A front with an INTERNAL_PORT serves its public API on one listener and /internal/* on the other
 * (so that a NetworkPolicy can open the internal one to the store's own pods only): every /internal/*
 * path is a 404 on the public side, every public route a 404 on the internal side, and a front with
 * one port serves both, as before.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../shared/src/logger.js';
import { createMetrics } from '../../shared/src/metrics.js';
import { policyFromConfig } from '../../shared/src/service-config.js';
import { Lifecycle } from '../../shared/src/server.js';
import type { Upstream } from '../../shared/src/http-client.js';
import { createApp, type FrontDeps, type FrontSurface } from './app.js';
import { FrontCache } from './cache.js';

const INTERNAL_TOKEN = 'internal-token-for-the-surface-test';

function deps(): FrontDeps {
  const unused = {
    request: () => Promise.reject(new Error('no upstream in this test')),
  } as unknown as Upstream;
  return {
    podName: 'front-test',
    logger: createLogger({ name: 'front-test', level: 'silent' }),
    metrics: createMetrics({ service: 'front', podName: 'front-test', defaultMetrics: false }),
    lifecycle: new Lifecycle(),
    policy: policyFromConfig({
      LOAD_BALANCING: 'round-robin',
      CONSISTENCY_MODE: 'strict',
      INVALIDATION_TIMEOUT_MS: 1000,
    }),
    cache: new FrontCache({ maxEntries: 10, ttlMs: 60_000 }),
    catalog: unused,
    order: unused,
    adminToken: () => 'admin-token-for-the-surface-test',
    internalToken: () => INTERNAL_TOKEN,
    testHooks: false,
    readiness: async () => ({}),
  };
}

async function call(
  port: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: {
          authorization: `Bearer ${INTERNAL_TOKEN}`,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('front surfaces: public and internal listeners', () => {
  const servers: http.Server[] = [];
  const ports: Partial<Record<FrontSurface, number>> = {};
  const shared = deps();

  before(async () => {
    for (const surface of ['all', 'public', 'internal'] as const) {
      const server = http.createServer(createApp(surface === 'all' ? deps() : shared, surface).callback());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      ports[surface] = (server.address() as AddressInfo).port;
    }
  });
  after(() => {
    for (const s of servers) s.close();
  });

  const invalidation = { items: [{ bookId: 1, version: 7 }] };

  it('the public listener answers 404 for every /internal/* path, whatever the method', async () => {
    for (const [method, path, body] of [
      ['POST', '/internal/invalidate', invalidation],
      ['GET', '/internal/cache', undefined],
      ['POST', '/internal/test-hooks', {}],
      ['GET', '/internal/anything', undefined],
    ] as const) {
      const r = await call(ports.public!, method, path, body);
      assert.equal(r.status, 404, `${method} ${path} on the public listener: ${r.status} ${r.body}`);
    }
    assert.equal(shared.cache.fence(1), 0, 'no invalidation was applied through the public listener');
    assert.equal((await call(ports.public!, 'GET', '/livez')).status, 200);
    assert.equal((await call(ports.public!, 'GET', '/openapi.json')).status, 200);
  });

  it('the internal listener takes invalidations (into the same cache) and serves no public route', async () => {
    const r = await call(ports.internal!, 'POST', '/internal/invalidate', invalidation);
    assert.equal(r.status, 200, r.body);
    assert.equal(shared.cache.fence(1), 7, 'the invalidation fenced the cache the public side serves');
    assert.equal((await call(ports.internal!, 'GET', '/internal/cache')).status, 200);
    for (const [method, path] of [
      ['GET', '/info/1'],
      ['GET', '/search/x'],
      ['POST', '/purchase/1'],
      ['GET', '/openapi.json'],
    ] as const) {
      assert.equal(
        (await call(ports.internal!, method, path)).status,
        404,
        `${method} ${path} on the internal listener`,
      );
    }
  });

  it('a front with one port serves both (the default)', async () => {
    assert.equal((await call(ports.all!, 'POST', '/internal/invalidate', invalidation)).status, 200);
    assert.equal((await call(ports.all!, 'GET', '/openapi.json')).status, 200);
  });
});
