/** The bench's command line (options.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FANOUT_SCALE_WIDTHS, FULL, parseOptions, parseWidths, QUICK, UsageError } from './options.js';

describe('bench: options', () => {
  it('defaults: a full run, fsync both; --quick: short runs, fsync on', () => {
    const full = parseOptions([]);
    assert.equal(full.fsync, 'both');
    assert.equal(full.durations, FULL);
    assert.equal(full.profile, undefined);
    const quick = parseOptions(['--quick', '--out', '/tmp/x']);
    assert.equal(quick.fsync, 'on');
    assert.equal(quick.durations, QUICK);
    assert.equal(quick.out, '/tmp/x');
    assert.equal(parseOptions(['--fsync', 'off']).fsync, 'off');
  });

  it('the profiler: a path, with defaults for the rest', () => {
    assert.deepEqual(parseOptions(['--profile', 'uncached']).profile, {
      path: 'uncached',
      seconds: 20,
      connections: undefined,
      mode: 'strict',
      system: 'bazar',
      top: 12,
    });
    const p = parseOptions([
      '--profile',
      'purchase',
      '--seconds',
      '5',
      '--connections',
      '1',
      '--system',
      'chain',
    ]);
    assert.equal(p.profile?.seconds, 5);
    assert.equal(p.profile?.connections, 1);
    assert.equal(p.profile?.system, 'chain');
  });

  it('the ladder: 8 rounds of 3 s unless told', () => {
    assert.equal(parseOptions([]).ladder, undefined);
    assert.deepEqual(parseOptions(['--ladder']).ladder, { rounds: 8, seconds: 3 });
    assert.deepEqual(parseOptions(['--ladder', '--rounds', '4', '--seconds', '2']).ladder, {
      rounds: 4,
      seconds: 2,
    });
  });

  it("the live page's cost: the same rounds, on its own", () => {
    assert.equal(parseOptions([]).liveCost, undefined);
    assert.deepEqual(parseOptions(['--live-cost', '--rounds', '6']).liveCost, { rounds: 6, seconds: 3 });
    assert.equal(parseOptions(['--live-cost']).ladder, undefined);
  });

  it("tracing's cost: the same rounds, on its own", () => {
    assert.equal(parseOptions([]).tracingCost, undefined);
    assert.deepEqual(parseOptions(['--tracing-cost', '--seconds', '2']).tracingCost, {
      rounds: 8,
      seconds: 2,
    });
    assert.equal(parseOptions(['--tracing-cost']).liveCost, undefined);
  });

  it('refuses what it cannot do', () => {
    for (const argv of [
      ['--fsync', 'maybe'],
      ['--profile', 'everything'],
      ['--profile', 'cached', '--seconds', '0'],
      ['--profile', 'cached', '--quick'],
      ['--seconds', '5'],
      ['--rounds', '5'],
      ['--ladder', '--rounds', '0'],
      ['--ladder', '--profile', 'cached'],
      ['--ladder', '--quick'],
      ['--ladder', '--top', '3'],
      ['--ladder', '--live-cost'],
      ['--live-cost', '--docs'],
      ['--tracing-cost', '--live-cost'],
      ['--tracing-cost', '--quick'],
      ['--no-such-option'],
      ['stray'],
      ['--books', '0'],
      ['--books', '10000001'],
      ['--books', '1000', '--fanout'],
      ['--books', '1000', '--docs'],
      ['--books', '1000', '--ladder'],
      ['--books', '1000', '--profile', 'cached'],
      ['--fanout', '--docs'],
      ['--fanout', '--live-cost'],
      ['--fanout', '--rounds', '3'],
      ['--widths', '1,2'],
      ['--fanout', '--widths', '0,2'],
      ['--fanout', '--widths', '1,33'],
      ['--fanout', '--widths', '1,,2'],
      ['--fanout', '--widths', '1.5'],
    ]) {
      assert.throws(() => parseOptions(argv), UsageError, argv.join(' '));
    }
  });

  it('--profile --fronts N: the fan-out shape, on the store only', () => {
    assert.equal(parseOptions(['--profile', 'purchase', '--fronts', '16']).profile?.fronts, 16);
    assert.throws(() => parseOptions(['--profile', 'purchase', '--fronts', '0']), UsageError);
    assert.throws(
      () => parseOptions(['--profile', 'purchase', '--fronts', '2', '--system', 'chain']),
      UsageError,
    );
    assert.throws(() => parseOptions(['--fronts', '2']), UsageError);
  });

  it('absent --books and --fanout: the seven-book bench, as before', () => {
    const o = parseOptions(['--quick']);
    assert.equal(o.books, undefined);
    assert.equal(o.fanout, undefined);
  });

  it('--books N: the bench at scale, with the chosen durations', () => {
    const o = parseOptions(['--books', '1000000']);
    assert.equal(o.books, 1_000_000);
    assert.equal(o.durations, FULL);
    assert.equal(parseOptions(['--books', '20000', '--quick']).durations, QUICK);
    assert.equal(parseOptions(['--books', '10000000']).books, 10_000_000);
  });

  it('--fanout: widths 1 to 16 by default, or --widths, sorted and distinct', () => {
    assert.deepEqual(parseOptions(['--fanout']).fanout, { widths: [1, 2, 4, 8, 16] });
    assert.deepEqual(FANOUT_SCALE_WIDTHS, [1, 2, 4, 8, 16]);
    assert.deepEqual(parseOptions(['--fanout', '--quick', '--widths', '4,1,2,2']).fanout, {
      widths: [1, 2, 4],
    });
    assert.deepEqual(parseWidths(' 32 , 3'), [3, 32]);
    assert.throws(() => parseWidths(''), UsageError);
  });
});
