import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from './errors.js';
import {
  checkQuery,
  normalizeTopic,
  parseBookId,
  parseIdempotencyKey,
  parsePrice,
  parseQuantity,
  strictQueryFor,
} from './validate.js';

const rejects = (fn: () => unknown, status: number, code: string) =>
  assert.throws(fn, (err: unknown) => err instanceof HttpError && err.status === status && err.code === code);

describe('input validation', () => {
  it('book ids', () => {
    assert.equal(parseBookId('7'), 7);
    assert.equal(parseBookId('2147483647'), 2147483647);
    for (const bad of ['', 'a', '-1', '0', '00', '1.0', '1e3', ' 1', '0x10'])
      rejects(() => parseBookId(bad), 400, 'invalid_id');
    rejects(() => parseBookId('2147483648'), 404, 'book_not_found');
    rejects(() => parseBookId('9'.repeat(40)), 404, 'book_not_found');
  });

  it('topics', () => {
    assert.equal(normalizeTopic('Distributed-Systems'), 'distributed systems');
    assert.equal(normalizeTopic('  undergraduate   school '), 'undergraduate school');
    rejects(() => normalizeTopic('a\u0000b'), 400, 'invalid_topic');
    rejects(() => normalizeTopic(' - '), 400, 'invalid_topic');
    rejects(() => normalizeTopic('x'.repeat(101)), 400, 'invalid_topic');
    // Lengths are counted in characters (code points), as JSON Schema's maxLength counts them.
    const emoji = '\u{1F4DA}';
    assert.equal(normalizeTopic(emoji.repeat(100)), emoji.repeat(100));
    rejects(() => normalizeTopic(emoji.repeat(101)), 400, 'invalid_topic');
    // Lowercasing never lengthens a topic, so a normalised topic is a valid topic again.
    assert.equal(normalizeTopic('\u0130'.repeat(100)).length, 100);
    assert.equal(normalizeTopic('ABC\u00a0d\u3000e'), 'abc d e');
    rejects(() => normalizeTopic('\u00a0\u3000\ufeff'), 400, 'invalid_topic');
    for (const t of ['distributed systems', 'Ünïcødé', '\u{1F4DA} books']) {
      assert.equal(normalizeTopic(normalizeTopic(t)), normalizeTopic(t), t);
    }
  });

  it('query strings: no route defines a parameter', () => {
    checkQuery('');
    for (const bad of ['qty=-5', 'x', '=1', '&', 'a=1&b=2', '%00=1']) {
      rejects(() => checkQuery(bad), 400, 'unknown_parameter');
    }
    checkQuery('fields=price', ['fields']);
    rejects(() => checkQuery('fields=price&x=1', ['fields']), 400, 'unknown_parameter');
  });

  it('query strings: strictQueryFor lets a route take the parameters declared for its path, no others', async () => {
    const middleware = strictQueryFor({ '/search/:topic': ['limit', 'cursor'] });
    const search = [
      { path: '', methods: [] },
      { path: '/search/:topic', methods: ['HEAD', 'GET'] },
    ];
    const info = [{ path: '/info/:id', methods: ['HEAD', 'GET'] }];
    const run = async (querystring: string, method: string, matched: typeof search) => {
      let reached = false;
      await middleware({ querystring, method, matched }, async () => (reached = true));
      return reached;
    };
    assert.equal(await run('limit=2&cursor=x', 'GET', search), true);
    assert.equal(await run('', 'GET', info), true);
    await assert.rejects(run('limit=2&page=3', 'GET', search), (err: unknown) => {
      return err instanceof HttpError && err.code === 'unknown_parameter';
    });
    // Another route, or another method on the same path, declares nothing.
    await assert.rejects(run('limit=2', 'GET', info), HttpError);
    await assert.rejects(run('limit=2', 'POST', search), HttpError);
  });

  it('prices, quantities and idempotency keys', () => {
    assert.equal(parsePrice(12.5), 12.5);
    for (const good of [0, 0.29, 1.15, 130, 999_999.99, 1_000_000]) assert.equal(parsePrice(good), good);
    // Not two decimals, however close: float noise, and a tiny number that rounds to 0 cents.
    for (const bad of [-1, 1.234, Infinity, NaN, '5', null, 2e6, 0.1 + 0.2, 2.58e-301, 5.0000000001])
      rejects(() => parsePrice(bad), 400, 'invalid_price');
    assert.equal(parseQuantity(3), 3);
    for (const bad of [0, -1, 1.5, '3', 2e6]) rejects(() => parseQuantity(bad), 400, 'invalid_quantity');
    assert.equal(parseIdempotencyKey(undefined), undefined);
    assert.equal(parseIdempotencyKey('abc-123'), 'abc-123');
    for (const bad of ['', 'with space', 'k'.repeat(201), 'é', ['a', 'b']]) {
      rejects(() => parseIdempotencyKey(bad), 400, 'invalid_idempotency_key');
    }
  });
});
