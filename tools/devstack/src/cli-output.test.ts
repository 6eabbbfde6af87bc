/** What `npm start` prints, line for line. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseInvocation, type Invocation } from './cli-options.js';
import { childLine, display, readyMessage, startingMessage, type StackSummary } from './cli-output.js';

const invocation = (argv: string[], env: NodeJS.ProcessEnv = {}): Invocation =>
  parseInvocation(argv, env) as Invocation;
const proc = (name: string, port: number, pid: number | undefined) => ({
  name,
  url: `http://127.0.0.1:${port}`,
  pid: () => pid,
});
const stack: StackSummary = {
  all: [proc('front-0', 18080, 11), proc('catalog-origin-0', 40001, undefined)],
  fronts: [proc('front-0', 18080, 11)],
  pg: {},
  primaryUrl: 'postgres://bazar:pw@127.0.0.1:5501/bazar',
  standbyUrl: 'postgres://bazar:pw@127.0.0.1:5502/bazar',
  adminToken: 'tok',
  internalToken: 'itok',
};

describe('npm start: output', () => {
  test('paths inside the cwd are shown relative to it', () => {
    assert.equal(display('/w/.bazar/logs', '/w'), '.bazar/logs');
    assert.equal(display('/tmp/d', '/w'), '/tmp/d');
    assert.equal(display('/w', '/w'), '/w');
  });

  test('the starting line names the mode, the processes and where the data is', () => {
    const inv = invocation(['--fronts', '2', '--data-dir', '/w/.bazar', '--catalog-replicas', '0']);
    assert.equal(
      startingMessage(inv, '/w'),
      'Starting Bazar (strict mode, 2 front(s), catalog 1+0, order 1+1) with data in .bazar…\n',
    );
    const external = invocation([], { DATABASE_URL: 'postgres://p' });
    assert.equal(
      startingMessage(external),
      'Starting Bazar (strict mode, 1 front(s), catalog 1+1, order 1+1) against DATABASE_URL…\n',
    );
  });

  test('the ready banner', () => {
    const inv = invocation(['--data-dir', '/w/.bazar']);
    assert.equal(
      readyMessage(stack, inv, '/w/.bazar/logs', 6349, '/w'),
      [
        '',
        'Bazar is running — ready in 6.3 s',
        '',
        '  front-0              http://127.0.0.1:18080   pid 11',
        '  catalog-origin-0     http://127.0.0.1:40001   pid ?',
        '  postgres             primary 5501, standby 5502 (.bazar/pg)',
        '',
        '  Front:          http://127.0.0.1:18080',
        '  Admin token:    tok   (also in .bazar/admin-token)',
        '  Internal token: itok',
        '  Primary:        postgres://bazar:pw@127.0.0.1:5501/bazar',
        '  Standby:        postgres://bazar:pw@127.0.0.1:5502/bazar',
        '  Logs:           .bazar/logs/<name>.log',
        '',
        'Try:',
        '  curl -i http://127.0.0.1:18080/search/distributed%20systems',
        `  curl -s 'http://127.0.0.1:18080/search/distributed%20systems?limit=2'   # a page; the next: ?limit=2&cursor=<its "next">`,
        '  curl -i http://127.0.0.1:18080/info/1',
        '  curl -i -X POST http://127.0.0.1:18080/purchase/1',
        "  curl -i -X PATCH http://127.0.0.1:18080/books/1 -H 'Authorization: Bearer tok' \\",
        `       -H 'Content-Type: application/json' -d '{"price":42}'`,
        '',
        'Turn the knobs from another terminal (npm run ctl -- --help):',
        '  npm run ctl -- status',
        '  npm run ctl -- policy --mode eventual --cache-max 3',
        '  npm run ctl -- lag 2000',
        '  npm run ctl -- stop primary',
        '  npm run ctl -- kill front-0',
        '',
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  });

  test('--books: the banner says how many books the store holds and how long seeding took', () => {
    const inv = invocation(['--data-dir', '/w/.bazar', '--books', '1000000']);
    const banner = (seeded: StackSummary['seeded']): string =>
      readyMessage({ ...stack, seeded }, inv, '/w/.bazar/logs', 0, '/w');
    assert.match(
      banner({ books: 1_000_000, inserted: 1_000_000, ms: 18_240 }),
      /\n {2}Logs: {11}\.bazar\/logs\/<name>\.log\n {2}Books: {10}1,000,007: the lab's 7 and 1,000,000 seeded, in 18\.2 s\n/,
    );
    assert.match(
      banner({ books: 1_000_000, inserted: 250_000, ms: 4_000 }),
      /Books: {10}1,000,007: the lab's 7 and 1,000,000 seeded \(250,000 of them now\), in 4\.0 s\n/,
    );
    assert.match(
      banner({ books: 1_000_000, inserted: 0, ms: 12 }),
      /Books: {10}1,000,007: the lab's 7 and 1,000,000 seeded earlier\n/,
    );
    assert.doesNotMatch(readyMessage(stack, inv, '/l', 0), /Books:/, 'no line without a seed');
    assert.deepEqual(childLine('seed', 'seeded 20,000 books in 0.4 s', { up: false, logDir: '/l' }), {
      stream: 'stdout',
      text: '  seeded 20,000 books in 0.4 s\n',
    });
  });

  test('an external Postgres is named by its variables', () => {
    const ext = { ...stack, pg: undefined };
    const one = readyMessage(ext, invocation([], { DATABASE_URL: 'postgres://p' }), '/l', 0);
    assert.match(one, /\n {2}postgres {13}external \(DATABASE_URL\)\n/);
    assert.doesNotMatch(one, /Primary:|Standby:/, "an external server's URL is not repeated");
    const both = invocation([], { DATABASE_URL: 'postgres://p', DATABASE_REPLICA_URL: 'postgres://s' });
    assert.match(readyMessage(ext, both, '/l', 0), /external \(DATABASE_URL, DATABASE_REPLICA_URL\)/);
  });

  test("children's lines: Postgres progress, and a service that dies while the store is up", () => {
    const up = { up: true, logDir: '/w/.bazar/logs', cwd: '/w' };
    assert.deepEqual(childLine('postgres', 'postgres: streaming', { ...up, up: false }), {
      stream: 'stdout',
      text: '  postgres: streaming\n',
    });
    assert.deepEqual(childLine('order-origin-0', '--- exited (code 1) ---', up), {
      stream: 'stderr',
      text: 'bazar: order-origin-0 exited (code 1); see .bazar/logs/order-origin-0.log\n',
    });
    assert.equal(childLine('order-origin-0', '--- exited (code 1) ---', { ...up, up: false }), undefined);
    assert.equal(childLine('front-0', '{"level":30}', up), undefined);
  });
});
