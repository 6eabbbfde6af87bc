import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { contextFiles } from './context.js';
import { cacheKey, canonicalJson } from './key.js';

test('keys do not depend on key order, and change with any input', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 0 }], c: null } }),
    '{"a":{"c":null,"d":[2,{"x":0,"y":1}]},"b":1}',
  );
  const k = cacheKey({ suite: 'trixie', packages: ['nodejs'], recipe: 1 });
  assert.equal(k, cacheKey({ recipe: 1, packages: ['nodejs'], suite: 'trixie' }));
  assert.notEqual(k, cacheKey({ recipe: 2, packages: ['nodejs'], suite: 'trixie' }));
  assert.notEqual(k, cacheKey({ recipe: 1, packages: ['nodejs', 'npm'], suite: 'trixie' }));
  assert.match(k, /^[0-9a-f]{64}$/);
});

test('the build context lists what .dockerignore lets in, with content and executable bit', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bazar-images-ctx-'));
  try {
    await writeFile(path.join(dir, '.dockerignore'), '*\n!package.json\n!src/\nsrc/**/*.test.ts\n');
    await mkdir(path.join(dir, 'src', 'a'), { recursive: true });
    await mkdir(path.join(dir, 'node_modules', 'x'), { recursive: true });
    await writeFile(path.join(dir, 'package.json'), '{}');
    await writeFile(path.join(dir, 'README.md'), 'docs');
    await writeFile(path.join(dir, 'src', 'a', 'm.ts'), 'export {}');
    await writeFile(path.join(dir, 'src', 'a', 'm.test.ts'), 'test');
    await writeFile(path.join(dir, 'src', 'run.sh'), 'echo');
    await chmod(path.join(dir, 'src', 'run.sh'), 0o755);
    await writeFile(path.join(dir, 'node_modules', 'x', 'i.js'), '');
    const files = await contextFiles(dir);
    assert.deepEqual(
      files.map((f) => [f.path, f.executable]),
      [
        ['package.json', false],
        ['src/a/m.ts', false],
        ['src/run.sh', true],
      ],
    );
    const before = cacheKey({ files: files.map((f) => [f.path, f.sha256]) });
    // An ignored file changes nothing; a file in the context changes the key.
    await writeFile(path.join(dir, 'src', 'a', 'm.test.ts'), 'changed');
    await writeFile(path.join(dir, 'README.md'), 'changed');
    const same = await contextFiles(dir);
    assert.equal(cacheKey({ files: same.map((f) => [f.path, f.sha256]) }), before);
    await writeFile(path.join(dir, 'src', 'a', 'm.ts'), 'export const x = 1;');
    const changed = await contextFiles(dir);
    assert.notEqual(cacheKey({ files: changed.map((f) => [f.path, f.sha256]) }), before);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
