import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, int, oneOf, readConfig, secret, urlList } from './config.js';

describe('config schema', () => {
  const schema = {
    PORT: int({ default: 8080, min: 0, max: 65_535 }),
    MODE: oneOf(['a', 'b'] as const, { default: 'a' }),
    TOKEN: secret(),
    URLS: urlList(),
  };

  it('reads typed values and defaults', () => {
    const config = readConfig(schema, { TOKEN: 'x'.repeat(16), URLS: 'one=http://127.0.0.1:1/, http://h:2' });
    assert.equal(config.PORT, 8080);
    assert.equal(config.MODE, 'a');
    assert.deepEqual(config.URLS, [
      { name: 'one', url: 'http://127.0.0.1:1' },
      { name: 'h:2', url: 'http://h:2' },
    ]);
  });

  for (const [name, env, variable] of [
    ['a non-integer', { PORT: 'eighty', TOKEN: 'x'.repeat(16) }, 'PORT'],
    ['an out-of-range integer', { PORT: '70000', TOKEN: 'x'.repeat(16) }, 'PORT'],
    ['a value outside an enum', { MODE: 'c', TOKEN: 'x'.repeat(16) }, 'MODE'],
    ['a short secret', { TOKEN: 'short' }, 'TOKEN'],
    ['a missing secret', {}, 'TOKEN'],
    ['a bad URL', { TOKEN: 'x'.repeat(16), URLS: 'ftp://x' }, 'URLS'],
  ] as const) {
    it(`rejects ${name}, naming ${variable}`, () => {
      assert.throws(
        () => readConfig(schema, env),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && err.message.startsWith(variable),
      );
    });
  }

  it('a service given an invalid value exits 78 with a message naming the variable', () => {
    const main = fileURLToPath(new URL('../../front/src/main.js', import.meta.url));
    const res = spawnSync(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: 'not-a-port',
        ADMIN_TOKEN: 'a'.repeat(16),
        INTERNAL_TOKEN: 'b'.repeat(16),
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(res.status, 78);
    assert.match(res.stderr, /configuration error: PORT: "not-a-port" is not an integer/);
  });
});
