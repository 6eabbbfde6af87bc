/**
 * A read whose catalog answers are 503 primary_unavailable / standby_unavailable for a moment (a
 * failover: the replicas' Service empty and the old primary gone; seen in the failover tier, 8 reads of
 * 40,983 within 2 s of a fault) asks again within its budget too; other errors are relayed at once.
 *
 * A strict read whose every catalog answer is 503 write_in_flight (a write of the book waits for a
 * standby that is going away, and every catalog pod asked had to go through the origin) waits the
 * write out within the read's budget instead of failing (seen once in the cluster chaos tier's
 * "standby held away" scenario: one read of 992 answered 503 write_in_flight). Past the budget the
 * 503 is relayed, not hidden.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../shared/src/logger.js';
import { createMetrics } from '../../shared/src/metrics.js';
import { policyFromConfig } from '../../shared/src/service-config.js';
import { Lifecycle } from '../../shared/src/server.js';
import { HttpError } from '../../shared/src/errors.js';
import type { Upstream, UpstreamResponse } from '../../shared/src/http-client.js';
import type { FrontDeps } from './app.js';
import { FrontCache } from './cache.js';
import { BookReader } from './reads.js';

function answer(status: number, body: object): UpstreamResponse {
  const raw = Buffer.from(JSON.stringify(body));
  return {
    status,
    headers: {},
    raw,
    body,
    endpoint: { name: 'catalog-origin-0', url: 'http://x' },
  } as unknown as UpstreamResponse;
}

const inFlight = () =>
  answer(503, {
    error: { code: 'write_in_flight', message: 'a write of book 1 is waiting for the standby' },
  });

function reader(
  answers: Array<() => UpstreamResponse>,
  readTimeoutMs: number,
): { read: BookReader; calls: () => number } {
  let calls = 0;
  const catalog = {
    request: async () => {
      const next = answers[Math.min(calls, answers.length - 1)]!;
      calls++;
      return next();
    },
  } as unknown as Upstream;
  const deps = {
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
    catalog,
    order: catalog,
    adminToken: () => 'a',
    internalToken: () => 'i',
    testHooks: false,
    readiness: async () => ({}),
    readTimeoutMs,
  } as FrontDeps;
  return { read: new BookReader({ deps, hooks: { fillDelays: new Map() } }), calls: () => calls };
}

describe('BookReader and 503 write_in_flight', () => {
  it('asks again until the write is done, within the read budget', async () => {
    const book = () => answer(200, { id: 1, title: 't', topic: 'x', price: 1, stock: 1, version: 4 });
    const { read, calls } = reader([inFlight, inFlight, inFlight, book], 2000);
    const { entry, hit } = await read.read(1, false);
    assert.equal(entry.version, 4);
    assert.equal(hit, false);
    assert.equal(calls(), 4);
  });

  it('relays the 503 once the budget is spent', async () => {
    const { read, calls } = reader([inFlight], 100);
    await assert.rejects(
      read.read(1, false),
      (err: unknown) => err instanceof HttpError && err.code === 'write_in_flight',
    );
    assert.ok(calls() >= 2 && calls() <= 10, `${calls()} attempts in 100 ms`);
  });
});

describe('BookReader and a failover (503 primary_unavailable, standby_unavailable)', () => {
  const noDatabase = (code: string) => () =>
    answer(503, { error: { code, message: `the ${code.split('_')[0]} database is unavailable` } });
  const book = () => answer(200, { id: 1, title: 't', topic: 'x', price: 1, stock: 1, version: 7 });

  it('asks again until a database answers, within the read budget', async () => {
    const { read, calls } = reader(
      [noDatabase('standby_unavailable'), noDatabase('primary_unavailable'), book],
      2000,
    );
    const { entry } = await read.read(1, false);
    assert.equal(entry.version, 7);
    assert.equal(calls(), 3);
  });

  it('relays the last 503 once the budget is spent, not a stale_read_refused', async () => {
    const { read, calls } = reader([noDatabase('primary_unavailable')], 350);
    await assert.rejects(
      read.read(1, false),
      (err: unknown) => err instanceof HttpError && err.code === 'primary_unavailable',
    );
    assert.ok(calls() >= 2 && calls() <= 4, `${calls()} attempts in 350 ms at 100 ms pauses`);
  });

  it('relays any other error at once', async () => {
    const { read, calls } = reader(
      [() => answer(503, { error: { code: 'service_unavailable', message: 'no ready catalog endpoint' } })],
      2000,
    );
    await assert.rejects(
      read.read(1, false),
      (err: unknown) => err instanceof HttpError && err.code === 'service_unavailable',
    );
    assert.equal(calls(), 1);
  });
});
