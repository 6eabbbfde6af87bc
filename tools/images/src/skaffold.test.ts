import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './paths.js';
import { artifactName, parseSkaffoldBuild } from './skaffold.js';

test("the repository's skaffold.yaml: the services from one Dockerfile by SERVICE, Postgres + Patroni from its own", () => {
  const build = parseSkaffoldBuild(readFileSync(path.join(REPO_ROOT, 'skaffold.yaml'), 'utf8'));
  assert.equal(build.tagPolicy, 'inputDigest');
  assert.deepEqual(
    build.artifacts.map((a) => [a.image, a.context, a.dockerfile, a.buildArgs]),
    [
      ['bazar-front', '.', 'Dockerfile', { SERVICE: 'front' }],
      ['bazar-catalog', '.', 'Dockerfile', { SERVICE: 'catalog' }],
      ['bazar-order', '.', 'Dockerfile', { SERVICE: 'order' }],
      ['bazar-postgres-patroni', 'images/postgres-patroni', 'Dockerfile', {}],
    ],
  );
  assert.deepEqual(
    build.artifacts.map((a) => artifactName(a.image)),
    ['front', 'catalog', 'order', 'postgres-patroni'],
  );
});

test("skaffold's defaults: context '.', Dockerfile, no build args, tag policy gitCommit", () => {
  const build = parseSkaffoldBuild('build:\n  artifacts:\n    - image: x\n');
  assert.deepEqual(build.artifacts, [{ image: 'x', context: '.', dockerfile: 'Dockerfile', buildArgs: {} }]);
  assert.equal(build.tagPolicy, 'gitCommit');
  const t = parseSkaffoldBuild(
    'build:\n  artifacts:\n    - image: y\n      docker: {target: runtime, buildArgs: {N: 3}}\n',
  );
  assert.deepEqual(t.artifacts[0], {
    image: 'y',
    context: '.',
    dockerfile: 'Dockerfile',
    buildArgs: { N: '3' },
    target: 'runtime',
  });
});

test('what cannot be reproduced with buildah is an error, not dropped', () => {
  const bad = (yaml: string, re: RegExp): void => assert.throws(() => parseSkaffoldBuild(yaml), re);
  bad('build:\n  artifacts:\n    - image: x\n      jib: {}\n', /"jib" is not supported/);
  bad(
    'build:\n  artifacts:\n    - image: x\n      docker: {secrets: []}\n',
    /docker.secrets is not supported/,
  );
  bad('build:\n  artifacts:\n    - image: x\n      docker: {buildArgs: {V: "{{.USER}}"}}\n', /template/);
  bad('build:\n  artifacts:\n    - image: x\n      docker: {buildArgs: {V: null}}\n', /no value/);
  bad('build:\n  artifacts:\n    - image: x\n    - image: x\n', /declared twice/);
  bad('deploy: {}\n', /no build.artifacts/);
});
