import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { normaliseImageRef, parseDockerfile } from './dockerfile.js';
import { REPO_ROOT } from './paths.js';

test("the repository's Dockerfiles: each official base behind a global ARG, nothing pulled by name", () => {
  const services = parseDockerfile(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  // Three stages FROM ${NODE_IMAGE}: one base.
  assert.deepEqual(services.baseArgs, [{ arg: 'NODE_IMAGE', image: 'node:20-bookworm-slim' }]);
  assert.deepEqual(services.pulledImages, []);
  assert.ok(services.args.has('SERVICE') && !services.args.has('PIP_CERT'));

  const patroni = parseDockerfile(
    readFileSync(path.join(REPO_ROOT, 'images', 'postgres-patroni', 'Dockerfile'), 'utf8'),
  );
  assert.deepEqual(patroni.baseArgs, [{ arg: 'POSTGRES_IMAGE', image: 'postgres:18' }]);
  assert.deepEqual(patroni.pulledImages, []);
  assert.ok(patroni.args.has('PIP_CERT') && patroni.args.has('APT_CONFIG'));
});

test('FROM: base ARGs (both spellings, flags, stages), scratch, earlier stages, and images that would be pulled', () => {
  const info = parseDockerfile(
    [
      '# syntax and comments are skipped',
      'ARG BASE="debian:trixie-slim"',
      'ARG TOOLS=golang:1.26 UNUSED',
      'ARG LATE',
      'FROM --platform=$BUILDPLATFORM ${TOOLS} AS build',
      'ARG IN_STAGE=1',
      'RUN echo \\',
      '  # a comment inside a continuation',
      '  done',
      'from $BASE as runtime',
      'FROM build AS again',
      'FROM scratch',
      'FROM ${LATE}',
      'FROM ${NOT_GLOBAL}',
      'FROM redis:7',
    ].join('\n'),
  );
  assert.deepEqual(info.baseArgs, [
    { arg: 'TOOLS', image: 'golang:1.26' },
    { arg: 'BASE', image: 'debian:trixie-slim' },
    { arg: 'LATE', image: '' },
  ]);
  assert.deepEqual(info.pulledImages, ['${NOT_GLOBAL}', 'redis:7']);
  assert.deepEqual([...info.args].sort(), ['BASE', 'IN_STAGE', 'LATE', 'TOOLS', 'UNUSED']);
});

test('image references normalise the way containerd names them', () => {
  assert.equal(normaliseImageRef('postgres:18'), 'docker.io/library/postgres:18');
  assert.equal(normaliseImageRef('curlimages/curl:8.11.1'), 'docker.io/curlimages/curl:8.11.1');
  assert.equal(normaliseImageRef('docker.io/library/node:20'), 'docker.io/library/node:20');
  assert.equal(
    normaliseImageRef('localhost/bazar-standin/postgres:18'),
    'localhost/bazar-standin/postgres:18',
  );
  assert.equal(normaliseImageRef('registry.local:5000/x:1'), 'registry.local:5000/x:1');
});
