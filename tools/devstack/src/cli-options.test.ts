/** `npm start`'s command line and environment, read without starting anything. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import {
  logDirOf,
  parseInvocation,
  stackOptions,
  USAGE,
  UsageError,
  type Invocation,
} from './cli-options.js';

const RUN = { signal: new AbortController().signal, log: () => undefined };
const parseCliHelp = (): string => USAGE;
const parse = (argv: string[], env: NodeJS.ProcessEnv = {}): Invocation | 'help' =>
  parseInvocation(argv, env);
const run = (argv: string[], env: NodeJS.ProcessEnv = {}): Invocation => {
  const inv = parse(argv, env);
  assert.notEqual(inv, 'help');
  return inv as Invocation;
};
const refused = (argv: string[], message: string, env: NodeJS.ProcessEnv = {}): void => {
  assert.throws(
    () => parse(argv, env),
    (err: unknown) => err instanceof UsageError && err.message === message,
  );
};

describe('npm start: command line', () => {
  test('defaults: one front on 8080, one replica each, strict, .bazar here', () => {
    assert.deepEqual(run([]), {
      options: {
        fronts: 1,
        catalogReplicas: 1,
        orderReplicas: 1,
        port: 8080,
        mode: 'strict',
        dataDir: path.resolve('.bazar'),
        reset: false,
        traces: false,
        books: 0,
      },
      adminToken: undefined,
      internalToken: undefined,
      databaseUrl: undefined,
      replicaDatabaseUrl: undefined,
      logLevel: undefined,
    });
  });

  test('every option', () => {
    const inv = run(
      ['--fronts', '3', '--catalog-replicas', '0', '--order-replicas=2', '--port', '9000'].concat([
        '--mode',
        'session',
        '--data-dir',
        '/tmp/x',
        '--reset',
        '--traces',
        '--books',
        '1000000',
      ]),
    );
    assert.deepEqual(inv.options, {
      fronts: 3,
      catalogReplicas: 0,
      orderReplicas: 2,
      port: 9000,
      mode: 'session',
      dataDir: '/tmp/x',
      reset: true,
      traces: true,
      books: 1_000_000,
    });
  });

  test('--help and -h, even with an otherwise bad command line', () => {
    assert.equal(parse(['--help']), 'help');
    assert.equal(parse(['-h']), 'help');
    assert.equal(parse(['--mode', 'x', '--help']), 'help');
  });

  test('bad values are refused with the flag and the value', () => {
    refused(['--bogus'], "Unknown option '--bogus'");
    refused(['--mode', 'x'], '--mode must be one of strict, session, eventual, got "x"');
    refused(['--fronts', '0'], '--fronts must be from 1 to 32, got 0');
    refused(['--fronts', 'abc'], '--fronts must be a whole number, got "abc"');
    refused(['--catalog-replicas', '33'], '--catalog-replicas must be from 0 to 32, got 33');
    refused(['--port', '70000'], '--port must be from 1 to 65535, got 70000');
    refused(['--port', '65535', '--fronts', '2'], '--port 65535 leaves no room for 2 fronts');
    refused(['--data-dir', ' '], '--data-dir must not be empty');
    refused(['--books=-1'], '--books must be a whole number, got "-1"');
    refused(['--books', '1e6'], '--books must be a whole number, got "1e6"');
    refused(['--books', '10000001'], '--books must be from 0 to 10000000, got 10000001');
  });

  test('--books: the launcher seeds that many; 0 (the default) seeds nothing', () => {
    assert.equal(stackOptions(run(['--books', '20000']), RUN).books, 20_000);
    assert.equal('books' in stackOptions(run(['--books', '0']), RUN), false);
    assert.equal('books' in stackOptions(run([]), RUN), false);
    assert.match(parseCliHelp(), /--books N {14}seed N generated books/);
  });
});

describe('npm start: environment', () => {
  test('an external database, tokens and the log level', () => {
    const inv = run([], {
      DATABASE_URL: ' postgres://p ',
      DATABASE_REPLICA_URL: 'postgres://s',
      ADMIN_TOKEN: ' a'.padEnd(20, 'a'),
      INTERNAL_TOKEN: 'i'.repeat(16),
      LOG_LEVEL: 'debug',
    });
    assert.equal(inv.databaseUrl, 'postgres://p');
    assert.equal(inv.replicaDatabaseUrl, 'postgres://s');
    assert.equal(inv.adminToken, 'a'.repeat(19));
    assert.equal(inv.internalToken, 'i'.repeat(16));
    assert.equal(inv.logLevel, 'debug');
  });

  test('empty values count as unset', () => {
    const inv = run([], { DATABASE_URL: ' ', ADMIN_TOKEN: '', LOG_LEVEL: '' });
    assert.equal(inv.databaseUrl, undefined);
    assert.equal(inv.adminToken, undefined);
    assert.equal(inv.logLevel, undefined);
  });

  test('short tokens and a standby without a primary are refused, even with --help', () => {
    refused([], 'ADMIN_TOKEN must be at least 16 characters', { ADMIN_TOKEN: 'short' });
    refused(['--help'], 'ADMIN_TOKEN must be at least 16 characters', { ADMIN_TOKEN: 'short' });
    refused([], 'INTERNAL_TOKEN must be at least 16 characters', { INTERNAL_TOKEN: 'short' });
    refused(['--help'], 'DATABASE_REPLICA_URL is set but DATABASE_URL is not', {
      DATABASE_REPLICA_URL: 'postgres://s',
    });
  });
});

describe('npm start: launcher options', () => {
  const signal = new AbortController().signal;
  const log = (): void => {};

  test('what the command line fixed, logs under the data directory', () => {
    const inv = run(['--fronts', '2', '--port', '18080', '--data-dir', '/tmp/d', '--mode', 'eventual']);
    assert.equal(logDirOf(inv.options), '/tmp/d/logs');
    assert.deepEqual(stackOptions(inv, { signal, log }), {
      fronts: 2,
      catalogReplicas: 1,
      orderReplicas: 1,
      consistencyMode: 'eventual',
      frontPort: 18080,
      dataDir: '/tmp/d',
      logDir: '/tmp/d/logs',
      policyFile: '/tmp/d/policy.json',
      signal,
      log,
    });
  });

  test('the environment adds only what is set', () => {
    const inv = run([], { DATABASE_URL: 'postgres://p', ADMIN_TOKEN: 'a'.repeat(16), LOG_LEVEL: 'warn' });
    const o = stackOptions(inv, { signal, log });
    assert.equal(o.databaseUrl, 'postgres://p');
    assert.equal(o.adminToken, 'a'.repeat(16));
    assert.equal(o.logLevel, 'warn');
    assert.equal('replicaDatabaseUrl' in o, false);
    assert.equal('internalToken' in o, false);
    assert.equal('env' in o, false, 'no tracing unless --traces started a collector');
  });

  test('--traces: every service exports its spans to the local collector', () => {
    const inv = run(['--traces']);
    const o = stackOptions(inv, { signal, log, otlpEndpoint: 'http://127.0.0.1:4318' });
    assert.deepEqual(o.env, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
  });
});
