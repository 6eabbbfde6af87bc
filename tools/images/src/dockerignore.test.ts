import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { compilePattern, isIgnored, mayReinclude, parseDockerignore } from './dockerignore.js';
import { REPO_ROOT } from './paths.js';

test('the repository .dockerignore lets in exactly the npm manifests, tsconfig and service sources', () => {
  const patterns = parseDockerignore(readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8'));
  const inContext = (f: string): boolean => !isIgnored(patterns, f);
  for (const f of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'services/front/src/main.ts',
    'services/shared/src/db/pool.ts',
    'services/order/package.json',
  ]) {
    assert.ok(inContext(f), `${f} is in the context`);
  }
  for (const f of [
    'README.md',
    'Dockerfile',
    'tools/images/src/index.ts',
    'node_modules/yaml/package.json',
    'dist/services/front/src/main.js',
    'services/front/src/app.test.ts',
    'services/shared/src/db/deep/x.test.ts',
    'services/front/node_modules/x/index.js',
    'services/devstack/src/cli.ts',
    'charts/bazar/values.yaml',
  ]) {
    assert.ok(!inContext(f), `${f} is not in the context`);
  }
  // The walk may skip node_modules/ and dist/ whole, but must enter services/.
  assert.ok(!mayReinclude(patterns, 'node_modules'));
  assert.ok(!mayReinclude(patterns, 'dist'));
  assert.ok(mayReinclude(patterns, 'services'));
});

test('patterns: * and ? stay inside a directory, ** crosses any number of them', () => {
  assert.ok(compilePattern('*.md').test('README.md'));
  assert.ok(!compilePattern('*.md').test('docs/README.md'));
  assert.ok(compilePattern('doc?/x').test('docs/x'));
  assert.ok(!compilePattern('doc?/x').test('doc/x'));
  assert.ok(compilePattern('**/*.test.ts').test('a.test.ts'));
  assert.ok(compilePattern('**/*.test.ts').test('a/b/c.test.ts'));
  assert.ok(compilePattern('a/**').test('a/b/c'));
  assert.ok(compilePattern('a.b').test('a.b') && !compilePattern('a.b').test('axb'), 'a dot is literal');
  assert.ok(compilePattern('[ab]c').test('bc') && !compilePattern('[ab]c').test('cc'));
  assert.ok(
    compilePattern('\\*x').test('*x') && !compilePattern('\\*x').test('ax'),
    'an escaped star is literal',
  );
});

test('the last matching line decides; a matching parent directory excludes what is below it', () => {
  const p = parseDockerignore('# comment\n\n  docs  \n!docs/keep.md\ndocs/keep.md.bak\n/build/\n');
  assert.deepEqual(
    p.map((x) => [x.pattern, x.exclusion]),
    [
      ['docs', false],
      ['docs/keep.md', true],
      ['docs/keep.md.bak', false],
      ['build', false],
    ],
  );
  assert.ok(isIgnored(p, 'docs/a.md'));
  assert.ok(!isIgnored(p, 'docs/keep.md'));
  assert.ok(isIgnored(p, 'docs/keep.md.bak'));
  assert.ok(isIgnored(p, 'build/out/x.js'));
  assert.ok(!isIgnored(p, 'src/build.ts'));
  assert.throws(() => parseDockerignore('!\n'), /illegal exclusion/);
});
