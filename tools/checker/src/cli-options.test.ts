/** The checker CLI's command line and what follows from it, without starting anything. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kindsFor, VIOLATION_KINDS } from './check.js';
import {
  duration,
  kindsToCheck,
  parseCheckerArgs,
  startingStock,
  USAGE,
  UsageError,
  type CheckerOptions,
} from './cli-options.js';

const parse = (argv: string[]): CheckerOptions => {
  const o = parseCheckerArgs(argv);
  assert.notEqual(o, 'help');
  return o as CheckerOptions;
};
const refused = (argv: string[], text: string): void => {
  assert.throws(
    () => parseCheckerArgs(argv),
    (err: unknown) => err instanceof UsageError && err.message === text,
  );
};
const external = ['--front', 'http://127.0.0.1:8080/', '--database-url', 'postgres://p'];

describe('checker CLI: command line', () => {
  test('durations: ms, s (the default unit), m, h', () => {
    assert.equal(duration('500ms'), 500);
    assert.equal(duration('15'), 15_000);
    assert.equal(duration(' 1.5s '), 1500);
    assert.equal(duration('5m'), 300_000);
    assert.equal(duration('1h'), 3_600_000);
    assert.throws(() => duration('5 min'), /^Error: not a duration: 5 min$/);
  });

  test('defaults: 60 s of 8 clients on books 1-3 against a strict store started here', () => {
    assert.deepEqual(parse([]), {
      duration: '60s',
      durationMs: 60_000,
      clients: 8,
      books: [1, 2, 3],
      selloutStock: 40,
      mode: 'strict',
      noCacheRatio: 0.3,
      minVersionHeader: undefined,
      chaos: undefined,
      externalFronts: [],
      databaseUrl: undefined,
      adminToken: undefined,
      setStock: false,
      json: undefined,
      keepData: false,
    });
  });

  test('a running store: fronts named in order, trailing slashes dropped', () => {
    const o = parse([...external, '--front', 'http://127.0.0.1:8081//', '--admin-token', 't', '--set-stock']);
    assert.deepEqual(o.externalFronts, [
      { name: 'front-0', url: 'http://127.0.0.1:8080' },
      { name: 'front-1', url: 'http://127.0.0.1:8081' },
    ]);
    assert.equal(o.databaseUrl, 'postgres://p');
    assert.equal(o.adminToken, 't');
    assert.equal(o.setStock, true);
  });

  test('--chaos is kept as written: it is read when the first fault is due', () => {
    assert.equal(parse(['--chaos', '5s']).chaos, '5s');
    assert.equal(parse(['--chaos', 'soon']).chaos, 'soon');
  });

  test('--help', () => {
    assert.equal(parseCheckerArgs(['--help']), 'help');
    assert.equal(parseCheckerArgs(['--duration', 'bad', '--help']), 'help');
  });

  test('refusals, in the order they are checked, with the text to print', () => {
    refused(['--bogus'], `Unknown option '--bogus'\n${USAGE}`);
    refused(['--duration', 'bad', '--mode', 'x'], 'not a duration: bad');
    refused(['--mode', 'x', '--clients', '0'], '--mode: x');
    refused(['--min-version', 'yes'], '--min-version: yes');
    refused(['--clients', '0'], USAGE);
    refused(['--clients', '1.5'], USAGE);
    refused(['--books', '1,a'], USAGE);
    refused(['--books', '0'], USAGE);
    refused(
      ['--front', 'http://x'],
      '--front needs --database-url (the checker compares the history with the database)',
    );
    refused([...external, '--chaos', '1s'], '--chaos works only on a store this command starts');
  });
});

describe('checker CLI: what follows from the options', () => {
  test("the rules are the mode's (kindsFor), for a store started here or given by --front", () => {
    assert.deepEqual(kindsToCheck(parse([])), VIOLATION_KINDS);
    assert.deepEqual(kindsToCheck(parse([...external])), VIOLATION_KINDS);
    const session = kindsToCheck(parse(['--mode', 'session']));
    assert.deepEqual(
      VIOLATION_KINDS.filter((k) => !session.includes(k)),
      ['real-time-read'],
    );
    for (const argv of [
      ['--mode', 'eventual'],
      [...external, '--mode', 'eventual'],
    ]) {
      const eventual = kindsToCheck(parse(argv));
      assert.deepEqual(
        VIOLATION_KINDS.filter((k) => !eventual.includes(k)),
        ['read-your-writes', 'monotonic-reads', 'stale-read', 'real-time-read'],
      );
    }
    assert.deepEqual(kindsToCheck(parse(['--mode', 'session'])), kindsFor('session'));
  });

  test('--min-version: auto (the workload decides by mode), on, off', () => {
    assert.equal(parse(['--mode', 'session']).minVersionHeader, undefined);
    assert.equal(parse(['--min-version', 'on']).minVersionHeader, true);
    assert.equal(parse(['--mode', 'session', '--min-version', 'off']).minVersionHeader, false);
  });

  test('the last book sells out; a store not started here only with --set-stock', () => {
    assert.deepEqual(
      startingStock(parse(['--books', '4,5', '--sellout-stock', '7'])),
      new Map([
        [4, 1_000_000],
        [5, 7],
      ]),
    );
    assert.equal(startingStock(parse(['--sellout-stock', '0'])), undefined);
    assert.equal(startingStock(parse(external)), undefined);
    assert.deepEqual(startingStock(parse([...external, '--set-stock', '--books', '2'])), new Map([[2, 40]]));
  });
});
