/**
 * One request followed through the store (README "Logs"): the id a client sends, or one the first
 * service makes up, comes back in X-Request-Id; at LOG_LEVEL=debug every service it reached logs it, and
 * so does every front the write's invalidation reached.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, startTestStack, type TestStack } from './harness.js';

interface LogLine {
  msg: string;
  reqId?: string;
  [key: string]: unknown;
}

describe('request ids across the hops, and debug logs of each access and invalidation', () => {
  let t: TestStack;

  before(async () => {
    t = await startTestStack({ logLevel: 'debug' });
  });
  after(async () => t?.stop());

  async function lines(name: string): Promise<LogLine[]> {
    const text = await readFile(path.join(t.logDir, `${name}.log`), 'utf8');
    return text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  }

  it('the id comes back on every answer but a cache hit; a malformed one is replaced', async () => {
    const given = await call(t.front(0), 'GET', '/info/2', { headers: { 'x-request-id': 'lab-1.a:b_c' } });
    assert.equal(given.headers.get('x-request-id'), 'lab-1.a:b_c');
    const made = await call(t.front(0), 'GET', '/info/3', { headers: { 'x-request-id': 'two words' } });
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const error = await call(t.front(0), 'GET', '/info/999999', { headers: { 'x-request-id': 'lab-404' } });
    assert.equal(error.status, 404);
    assert.equal(error.headers.get('x-request-id'), 'lab-404', 'errors carry it too');
    const hit = await call(t.front(0), 'GET', '/info/2');
    assert.equal(hit.headers.get('x-cache'), 'hit');
    assert.equal(hit.headers.get('x-request-id'), null, 'a hit touched nothing else: no id to follow');
  });

  it('a purchase is found by its id in the logs of the front, the order pod, the catalog and the other front', async () => {
    const bought = await call(t.front(0), 'POST', '/purchase/4', {
      headers: { 'x-request-id': 'lab-buy-4' },
    });
    assert.equal(bought.status, 200);
    assert.equal(bought.headers.get('x-request-id'), 'lab-buy-4');
    const orderPod = bought.headers.get('x-served-by')!;
    // Logs are files the services write; give the last lines a moment to land.
    await new Promise((r) => setTimeout(r, 300));
    const mine = async (name: string) => (await lines(name)).filter((l) => l.reqId === 'lab-buy-4');
    const front0 = await mine('front-0');
    assert.ok(
      front0.some((l) => l.msg === 'access' && l['path'] === '/purchase/4' && l['status'] === 200),
      'front-0 logged the access',
    );
    const order = await mine(orderPod);
    assert.ok(
      order.some((l) => l.msg === 'access' && l['path'] === '/purchase/4'),
      `${orderPod} logged the purchase under the same id`,
    );
    assert.ok(
      order.some((l) => l.msg === 'pushed to the fronts'),
      `${orderPod} logged its push to the fronts under the same id`,
    );
    const front1 = await mine('front-1');
    assert.ok(
      front1.some((l) => l.msg === 'invalidation received' && l['from'] === orderPod),
      'front-1 logged the invalidation it received, from the order pod, under the same id',
    );
  });

  it('each cache hit is logged at debug, with an id of its own', async () => {
    await call(t.front(0), 'GET', '/info/5');
    await call(t.front(0), 'GET', '/info/5', { headers: { 'x-request-id': 'lab-hit-5' } });
    await new Promise((r) => setTimeout(r, 300));
    const hit = (await lines('front-0')).find((l) => l.reqId === 'lab-hit-5');
    assert.equal(hit?.msg, 'access');
    assert.equal(hit?.['cache'], 'hit');
  });
});
