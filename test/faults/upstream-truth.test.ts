/**
 * A retried write reports the truthful outcome (docs/guarantees.md G6): when one attempt may have taken effect
 * (its answer was lost, or the order pod said commit_outcome_unknown) and a later attempt only says
 * "unavailable", the caller must hear "unknown", never the later "nothing was done": 503
 * commit_outcome_unknown (its connection failed after it was sent, or the order pod said so), 504
 * upstream_timeout (its answer timed out).
 * Found by fault (b2): a purchase that had committed was reported as 503 primary_unavailable.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpClient, Upstream } from '../../services/shared/src/http-client.js';
import { StaticDiscovery } from '../../services/shared/src/discovery.js';
import { createLogger } from '../../services/shared/src/logger.js';
import { createMetrics } from '../../services/shared/src/metrics.js';
import { HttpError } from '../../services/shared/src/errors.js';

type Handler = (res: http.ServerResponse) => void;

const servers: http.Server[] = [];
async function endpoint(name: string, handler: Handler) {
  const srv = http.createServer((_req, res) => handler(res));
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { name, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` };
}
const answer = (status: number, code: string) => (res: http.ServerResponse) => {
  res.statusCode = status;
  res.end(JSON.stringify({ error: { code, message: code } }));
};

function upstream(endpoints: { name: string; url: string }[], timeoutMs = 200) {
  return new Upstream({
    service: 'order',
    discovery: new StaticDiscovery('order', endpoints),
    http: createHttpClient({ timeoutMs }),
    metrics: createMetrics({ service: 'test', podName: 'test', defaultMetrics: false }),
    logger: createLogger({ name: 'test', level: 'silent' }),
    loadBalancing: () => 'round-robin',
    maxAttempts: 3,
  });
}

describe('Upstream reports the outcome of a retried write truthfully', () => {
  after(() => servers.forEach((s) => s.close()));

  it('commit_outcome_unknown on one pod, primary_unavailable on the next → commit_outcome_unknown', async () => {
    const u = upstream([
      await endpoint('a', answer(503, 'commit_outcome_unknown')),
      await endpoint('b', answer(503, 'primary_unavailable')),
    ]);
    const res = await u.request({ method: 'POST', path: '/purchase/1', retry: 'idempotent' });
    assert.equal(res.status, 503);
    assert.equal((res.body as { error: { code: string } }).error.code, 'commit_outcome_unknown');
  });

  it('a write whose answer timed out, then primary_unavailable → 504 upstream_timeout (may have been applied)', async () => {
    const u = upstream([
      await endpoint('slow', (res) => setTimeout(() => answer(200, 'late')(res), 1000)),
      await endpoint('b', answer(503, 'primary_unavailable')),
    ]);
    await assert.rejects(
      u.request({ method: 'POST', path: '/purchase/1', retry: 'idempotent' }),
      (err: unknown) =>
        err instanceof HttpError && err.status === 504 && /may have been applied/.test(err.message),
    );
  });

  it('a write whose connection failed after it was sent, then primary_unavailable → commit_outcome_unknown; a read → service_unavailable', async () => {
    const reset = await endpoint('reset', (res) => res.socket?.destroy());
    const down = await endpoint('b', answer(503, 'primary_unavailable'));
    await assert.rejects(
      upstream([reset, down]).request({ method: 'POST', path: '/purchase/1', retry: 'idempotent' }),
      (err: unknown) =>
        err instanceof HttpError &&
        err.status === 503 &&
        err.code === 'commit_outcome_unknown' &&
        /may have been applied: retry it under the same key/.test(err.message),
    );
    const r = await upstream([reset, down]).request({ method: 'GET', path: '/books/1', retry: 'idempotent' });
    assert.equal(
      (r.body as { error: { code: string } }).error.code,
      'primary_unavailable',
      'a read changes nothing',
    );
    await assert.rejects(
      upstream([reset]).request({ method: 'GET', path: '/books/1', retry: 'idempotent' }),
      (err: unknown) => err instanceof HttpError && err.status === 503 && err.code === 'service_unavailable',
    );
  });

  it('a later success still wins; reads and definite failures are unchanged', async () => {
    const ok = await endpoint('ok', (res) => res.end('{"ok":true}'));
    const unknown = await endpoint('u', answer(503, 'commit_outcome_unknown'));
    const down = await endpoint('d', answer(503, 'primary_unavailable'));
    const write = upstream([unknown, ok]);
    assert.equal((await write.request({ method: 'POST', path: '/p', retry: 'idempotent' })).status, 200);
    const allDown = upstream([down, down]);
    const res = await allDown.request({ method: 'POST', path: '/p', retry: 'idempotent' });
    assert.equal((res.body as { error: { code: string } }).error.code, 'primary_unavailable');
    const read = upstream([unknown, down]);
    const r = await read.request({ method: 'GET', path: '/books/1', retry: 'idempotent' });
    assert.equal(
      (r.body as { error: { code: string } }).error.code,
      'primary_unavailable',
      'a read changes nothing',
    );
  });
});
