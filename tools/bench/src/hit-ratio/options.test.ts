import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../options.js';
import { parseOptions } from './options.js';

test('defaults: a million books, two skews, seven sizes, 20 x the largest cache', () => {
  const o = parseOptions([]);
  assert.equal(o.books, 1_000_000);
  assert.deepEqual(o.skews, [0.99, 0.8]);
  assert.deepEqual(o.sizesPct, [0.1, 0.2, 0.5, 1, 2, 5, 10]);
  assert.equal(o.requests, 2_000_000);
  assert.deepEqual(o.frontSizesPct, o.sizesPct);
  assert.deepEqual(o.frontSkews, [0.99, 0.8]);
  assert.equal(o.front, true);
});

test('--quick measures fewer points; flags and values parse in both spellings', () => {
  const q = parseOptions(['--quick', '--books=20000', '--skew', '0.99,1.2', '--seed', '3']);
  assert.deepEqual(q.frontSizesPct, [0.1, 1]);
  assert.deepEqual(q.frontSkews, [0.99]);
  assert.equal(q.frontRequests, 5000);
  assert.equal(q.books, 20_000);
  assert.equal(q.requests, 100_000);
  assert.equal(q.seed, 3);
  assert.equal(parseOptions(['--no-front', '--docs']).front, false);
});

test('bad options are refused', () => {
  assert.throws(() => parseOptions(['--books', 'x']), UsageError);
  assert.throws(() => parseOptions(['--sizes', '0']), UsageError);
  assert.throws(() => parseOptions(['--front-sizes', '3']), UsageError); // not among --sizes
  assert.throws(() => parseOptions(['--bogus']), UsageError);
  assert.throws(() => parseOptions(['--requests', '1000', '--front-requests', '900']), UsageError);
});
