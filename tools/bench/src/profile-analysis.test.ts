/** Self time per function and per package from a V8 .cpuprofile (profile-analysis.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { categoryOf, locationOf, renderProfile, summarise, type CpuProfile } from './profile-analysis.js';

const frame = (functionName: string, url = '', lineNumber = -1) => ({
  functionName,
  url,
  lineNumber,
  columnNumber: 0,
});

const PROFILE: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 5, 6] },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('_makeOptions', 'file:///w/node_modules/got/dist/source/core/options.js', 9) },
    { id: 4, callFrame: frame('writeLatin1String') },
    { id: 5, callFrame: frame('relay', 'file:///w/dist/services/front/src/relay.js', 41) },
    { id: 6, callFrame: frame('(garbage collector)') },
    { id: 7, callFrame: frame('_makeOptions', 'file:///w/node_modules/got/dist/source/core/options.js', 9) },
  ],
  startTime: 0,
  endTime: 1000,
  // sample i lasts until sample i+1 (the last until endTime)
  samples: [2, 3, 4, 7, 5, 6, 2],
  timeDeltas: [0, 400, 100, 50, 150, 100, 100],
};

describe('bench: profile analysis', () => {
  it('files frames under their package or kind', () => {
    assert.equal(
      categoryOf(frame('x', 'file:///a/node_modules/@kubernetes/client-node/dist/a.js')),
      '@kubernetes/client-node',
    );
    assert.equal(categoryOf(frame('x', 'file:///a/node_modules/koa/node_modules/debug/src/a.js')), 'debug');
    assert.equal(categoryOf(frame('x', 'node:internal/http')), 'node: internals');
    assert.equal(categoryOf(frame('writev')), 'native');
    assert.equal(categoryOf(frame('(garbage collector)')), 'GC');
    assert.equal(categoryOf(frame('(program)')), '(program)');
    assert.equal(
      categoryOf(frame('x', 'file:///w/dist/services/shared/src/http-client.js')),
      'bazar: shared',
    );
    assert.equal(categoryOf(frame('x', 'file:///w/dist/tools/bench/src/bare-chain.js')), 'tools: bench');
    assert.equal(
      locationOf(frame('x', 'file:///w/node_modules/got/dist/source/index.js', 9)),
      'got/dist/source/index.js:10',
    );
    assert.equal(
      locationOf(frame('x', 'file:///w/dist/services/front/src/relay.js', 0)),
      'services/front/src/relay.js:1',
    );
  });

  it('counts self time to the next sample and merges the same function reached by other stacks', () => {
    const s = summarise(PROFILE);
    const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);
    near(s.totalMs, 1);
    near(s.idleMs, 0.5);
    near(s.busyMs, 0.5);
    assert.deepEqual(
      s.items.map((i) => [i.functionName, Math.round(i.ms * 1000) / 1000]),
      [
        ['_makeOptions', 0.25],
        ['relay', 0.1],
        ['(garbage collector)', 0.1],
        ['writeLatin1String', 0.05],
      ],
    );
    assert.deepEqual(
      s.byCategory.map((c) => c.category),
      ['got', 'bazar: front', 'GC', 'native'],
    );
    const text = renderProfile('front-0', s, { top: 2, cpuMs: 900, seconds: 1, requests: 1000 });
    assert.match(text[0]!, /^front-0: \/proc CPU 900 ms \(90 % of a core, 900 µs\/req\); sampled 1 ms busy/);
    assert.match(text[1]!, /got 50\.0 % · bazar: front 20\.0 %/);
    assert.equal(text.length, 3 + 2);
  });
});
