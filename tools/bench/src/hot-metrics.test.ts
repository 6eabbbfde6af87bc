/**
 * The hot-path metric observer (boundObserver in services/shared/src/metrics.ts, used by the front's
 * cache-hit fast path and the request-metrics middleware) must produce exactly what prom-client's own
 * observe() would, in the /metrics text.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { boundObserver } from '../../../services/shared/src/metrics.js';

function pair() {
  const make = () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: 'bazar_http_request_duration_seconds',
      help: 'h',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01],
      registers: [registry],
    });
    return { registry, histogram };
  };
  return { plain: make(), bound: make() };
}

/** The /metrics text with each _sum rounded (the sums are added in a different order: float noise). */
async function text(registry: Registry): Promise<string> {
  return (await registry.metrics()).replace(
    /(_sum\{[^}]*\}) (\S+)/g,
    (_m, k: string, v: string) => `${k} ${Number(v).toFixed(9)}`,
  );
}

const VALUES = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.009, 0.01, 0.5, 2];
const HIT = { method: 'GET', route: '/info/:id', status: '200' } as const;

describe('bench: hot-path metrics', () => {
  it('boundObserver yields the same /metrics text as observe(), across scrapes and mixed use', async () => {
    const { plain, bound } = pair();
    const observe = boundObserver(bound.histogram, HIT);
    for (const v of VALUES) {
      plain.histogram.observe(HIT, v);
      observe(v);
    }
    assert.equal(await text(bound.registry), await text(plain.registry));
    // More after a scrape, and the same series also fed by plain observe() (the Koa path).
    for (const v of VALUES) {
      plain.histogram.observe({ ...HIT }, v);
      bound.histogram.observe({ ...HIT }, v);
      plain.histogram.observe(HIT, v / 3);
      observe(v / 3);
    }
    plain.histogram.observe({ method: 'GET', route: '/search/:topic', status: '200' }, 0.002);
    bound.histogram.observe({ method: 'GET', route: '/search/:topic', status: '200' }, 0.002);
    assert.equal(await text(bound.registry), await text(plain.registry));
  });

  it('boundObserver shows nothing before the first observation, and survives reset()', async () => {
    const { plain, bound } = pair();
    const observe = boundObserver(bound.histogram, HIT);
    assert.equal(await text(bound.registry), await text(plain.registry));
    observe(0.002);
    bound.histogram.reset();
    plain.histogram.reset();
    observe(0.004);
    plain.histogram.observe(HIT, 0.004);
    assert.equal(await text(bound.registry), await text(plain.registry));
  });
});
