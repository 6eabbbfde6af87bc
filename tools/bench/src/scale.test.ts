/** The bench at scale and the NOTIFY prototype's pure parts (scale-paths.ts, scale-report.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCursor } from '../../../services/shared/src/search-page.js';
import { TOPICS } from '../../../services/catalog/src/seed.js';
import type { Comparison } from './compare.js';
import {
  bazarSearchPath,
  chainSearchPath,
  deliveryDelays,
  lastBookId,
  randomBook,
  randomSearch,
} from './scale-paths.js';
import { seededRandom } from './random.js';
import { cpuPerThousandTable } from './scale-report.js';

describe('bench at scale: requests', () => {
  it('a seeded generator: the same seed, the same floats in [0, 1); another seed, others', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(
      xs.slice(0, 5),
      Array.from({ length: 5 }, () => b()),
    );
    assert.notEqual(xs[0], c());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  });

  it('books: the lab seven and ids 8 to N + 7, every one reachable, none outside', () => {
    assert.equal(lastBookId(1_000_000), 1_000_007);
    const rand = seededRandom(1);
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) seen.add(randomBook(rand, 1, lastBookId(10)));
    assert.deepEqual(
      [...seen].sort((x, y) => x - y),
      Array.from({ length: 17 }, (_, i) => i + 1),
    );
    assert.equal(
      randomBook(() => 0.999999999, 8, 1_000_007),
      1_000_007,
    );
    assert.equal(
      randomBook(() => 0, 8, 1_000_007),
      8,
    );
  });

  it('a search page: a seeded topic, a position over every id; Bazar with its cursor, the chain with the id', () => {
    const rand = seededRandom(3);
    for (let i = 0; i < 200; i++) {
      const pick = randomSearch(rand, TOPICS, 1000);
      assert.ok(TOPICS.includes(pick.topic));
      assert.ok(pick.after >= 0 && pick.after <= lastBookId(1000));
    }
    const pick = { topic: 'distributed systems', after: 4242 };
    const bazar = new URL(bazarSearchPath(pick, 20), 'http://x');
    assert.equal(bazar.pathname, '/search/distributed%20systems');
    assert.equal(bazar.searchParams.get('limit'), '20');
    assert.equal(decodeCursor(bazar.searchParams.get('cursor')!, pick.topic), 4242);
    assert.equal(bazarSearchPath({ topic: 'logic', after: 0 }, 20), '/search/logic?limit=20');
    assert.equal(chainSearchPath(pick, 20), '/search/distributed%20systems?after=4242&limit=20');
  });
});

describe('NOTIFY prototype: delivery delays', () => {
  const ms = 1e6;
  it('after the ack until the last listener, each listener, after the send; the writer own', () => {
    const probes = [
      { w: 1, sentNs: 0, ackNs: 2 * ms },
      { w: 2, sentNs: 10 * ms, ackNs: 13 * ms },
    ];
    const d = deliveryDelays(probes, [
      [
        [1, 1.5 * ms],
        [2, 13.5 * ms],
      ],
      [
        [2, 14 * ms],
        [1, 2.5 * ms],
      ],
    ]);
    assert.equal(d.probes, 2);
    assert.equal(d.listeners, 2);
    assert.equal(d.missing, 0);
    assert.deepEqual(d.writer, [2, 3]);
    assert.deepEqual(d.allAfterAck, [0.5, 1]);
    assert.deepEqual(d.eachAfterAck, [-0.5, 0.5, 0.5, 1]);
    assert.deepEqual(d.allAfterSend, [2.5, 4]);
  });

  it('a notification a listener never reported is missing, and its probe has no "all had it"', () => {
    const d = deliveryDelays(
      [
        { w: 5, sentNs: 0, ackNs: ms },
        { w: 6, sentNs: 0, ackNs: ms },
      ],
      [
        [[5, 2 * ms]],
        [
          [5, 3 * ms],
          [6, 2 * ms],
        ],
      ],
    );
    assert.equal(d.missing, 1);
    assert.deepEqual(d.allAfterAck, [2]);
    assert.deepEqual(d.eachAfterAck, [1, 2, 1]);
  });

  it('no listeners: nothing to join', () => {
    const d = deliveryDelays([{ w: 1, sentNs: 0, ackNs: ms }], []);
    assert.deepEqual([d.missing, d.allAfterAck.length, d.writer.length], [0, 0, 1]);
  });
});

describe('bench at scale: CPU-seconds per 1,000 requests by tier', () => {
  it('µs per request / 1000, processes summed into their tiers, floor then Bazar', () => {
    const side = (cpu: Record<string, number>) =>
      ({ cpu: new Map(Object.entries(cpu)) }) as unknown as Comparison['floor'];
    const c = {
      path: 'uncached read',
      connections: 10,
      floorName: 'read chain',
      floor: side({ 'chain-front-0': 300, 'chain-catalog': 250, 'pg standby': 150 }),
      bazar: side({ 'front-1': 700, 'front-2': 100, 'catalog-origin': 400, 'pg primary': 20 }),
    } as unknown as Comparison;
    const t = cpuPerThousandTable([c]);
    assert.deepEqual(t.head, [
      'path',
      'conns',
      'system',
      'front',
      'catalog',
      'order',
      'pg primary',
      'pg standby',
      'total',
    ]);
    assert.deepEqual(t.rows, [
      ['uncached read', '10', 'read chain', '0.300', '0.250', '0.000', '0.000', '0.150', '0.700'],
      ['uncached read', '10', 'Bazar', '0.800', '0.400', '0.000', '0.020', '0.000', '1.220'],
    ]);
  });
});
