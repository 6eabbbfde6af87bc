// The Postgres + Patroni image (images/postgres-patroni): how tools/images builds it from skaffold.yaml
// (on the postgres stand-in, with pip's CA bundle and apt's setting for the build only), what its key
// covers, the image's contract as its Dockerfile states it, and what its entrypoint writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { Buildah } from './buildah.js';
import { contextFiles } from './context.js';
import { parseDockerfile } from './dockerfile.js';
import { recipeKey } from './index.js';
import { cacheLayout, REPO_ROOT } from './paths.js';
import {
  allRecipes,
  artifactFiles,
  artifactRecipe,
  BUILD_FILES_DIR,
  standinBases,
  type Recipe,
} from './recipes.js';
import type { Artifact } from './skaffold.js';
import type { ImageRecord } from './types.js';

const IMAGE_DIR = path.join(REPO_ROOT, 'images', 'postgres-patroni');
const HOST_CA_BUNDLE = process.env.BAZAR_CA_BUNDLE || '/etc/ssl/certs/ca-certificates.crt';

function postgresStandin(): Recipe {
  return {
    name: 'postgres-standin',
    deps: [],
    standinFor: 'docker.io/library/postgres:18',
    inputs: async () => ({}),
    ref: () => 'localhost/bazar-standin/postgres:18',
    build: async () => undefined,
  };
}

function record(name: string, ref: string): ImageRecord {
  return { name, ref, archive: `/nowhere/${name}.tar`, key: 'k'.repeat(64) };
}

/** A copy of the image's folder, as the context of an artifact of the same name. */
function copyOfContext(): { dir: string; artifact: Artifact } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-patroni-ctx-'));
  cpSync(IMAGE_DIR, dir, { recursive: true });
  return {
    dir,
    artifact: { image: 'bazar-postgres-patroni', context: dir, dockerfile: 'Dockerfile', buildArgs: {} },
  };
}

test('skaffold.yaml → recipe postgres-patroni, built on the postgres stand-in without the layer cache', async () => {
  const recipes = await allRecipes(cacheLayout({ BAZAR_CACHE_DIR: os.tmpdir() }));
  const byName = new Map(recipes.map((r) => [r.name, r]));
  const patroni = byName.get('postgres-patroni');
  assert.ok(patroni, 'a recipe for the artifact bazar-postgres-patroni');
  assert.deepEqual(patroni.deps, ['postgres-standin']);
  assert.equal(
    patroni.layerCache,
    false,
    'a Dockerfile of its own: no --layers, nothing for the prune to track',
  );
  assert.equal(patroni.ref('abc'), 'docker.io/library/bazar-postgres-patroni:abc');
  assert.equal(byName.get('postgres-standin')?.standinFor, 'docker.io/library/postgres:18');
  for (const svc of ['front', 'catalog', 'order']) {
    assert.deepEqual(byName.get(svc)?.deps, ['node-standin'], svc);
    assert.equal(byName.get(svc)?.layerCache, true, `${svc} shares the Dockerfile's stages`);
  }
  // Build order: every image after what it is built on.
  const order = recipes.map((r) => r.name);
  for (const r of recipes)
    for (const d of r.deps) assert.ok(order.indexOf(d) < order.indexOf(r.name), `${d} before ${r.name}`);
});

test('the key covers the Dockerfile, the entrypoint (and its mode), the pinned requirements and the base', async () => {
  const { dir, artifact } = copyOfContext();
  try {
    const sources = artifactFiles();
    const info = parseDockerfile(readFileSync(path.join(dir, 'Dockerfile'), 'utf8'));
    const recipe = artifactRecipe(sources, artifact, info, [postgresStandin()], false);
    const key = (base = 'base-1'): Promise<string> => recipeKey(recipe, () => base);
    const first = await key();
    assert.equal(await key(), first, 'same inputs, same key');
    assert.notEqual(await key('base-2'), first, 'a rebuilt base');

    const changes: Array<[string, string, (s: string) => string]> = [
      [
        'requirements.txt',
        'the pin',
        (s) => s.replace('patroni[psycopg3]==4.1.5', 'patroni[psycopg3]==4.1.4'),
      ],
      ['requirements.txt', 'a dependency', (s) => s.replace(/^psycopg==.*$/m, 'psycopg==3.3.8')],
      ['entrypoint.py', 'the entrypoint', (s) => s.replace("'ttl': 30", "'ttl': 31")],
      ['Dockerfile', 'the Dockerfile', (s) => s.replace('USER 999:999', 'USER 999:998')],
    ];
    for (const [file, what, change] of changes) {
      const full = path.join(dir, file);
      const before = readFileSync(full, 'utf8');
      const after = change(before);
      assert.notEqual(after, before, `${what}: the test changes ${file}`);
      writeFileSync(full, after);
      assert.notEqual(await key(), first, what);
      writeFileSync(full, before);
      assert.equal(await key(), first, `${what} restored`);
    }
    chmodSync(path.join(dir, 'entrypoint.py'), 0o644);
    assert.notEqual(await key(), first, 'the entrypoint no longer executable');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bud: the stand-in as POSTGRES_IMAGE, --pull-never, pip CA bundle and apt setting mounted for the build only', async (t) => {
  if (!existsSync(HOST_CA_BUNDLE)) return t.skip(`no host CA bundle at ${HOST_CA_BUNDLE}`);
  const cacheRoot = mkdtempSync(path.join(os.tmpdir(), 'bazar-patroni-cache-'));
  try {
    const cache = cacheLayout({ BAZAR_CACHE_DIR: cacheRoot });
    const artifact: Artifact = {
      image: 'bazar-postgres-patroni',
      context: 'images/postgres-patroni',
      dockerfile: 'Dockerfile',
      buildArgs: {},
    };
    const info = parseDockerfile(readFileSync(path.join(IMAGE_DIR, 'Dockerfile'), 'utf8'));
    const recipe = artifactRecipe(artifactFiles(), artifact, info, [postgresStandin()], false);
    let seen: string[] = [];
    const mounted: Record<string, string> = {};
    const buildah = {
      run: async (args: string[]) => {
        seen = args;
        const volume = args[args.indexOf('--volume') + 1]!;
        const [src, dest, mode] = volume.split(':');
        assert.equal(dest, BUILD_FILES_DIR);
        assert.equal(mode, 'ro');
        for (const f of ['ca-certificates.crt', 'apt.conf'])
          mounted[f] = readFileSync(path.join(src!, f), 'utf8');
        mounted.src = src!;
        return '';
      },
    } as unknown as Buildah;
    await recipe.build({
      cache,
      buildah,
      log: () => undefined,
      logFile: path.join(cacheRoot, 'log'),
      key: 'k',
      ref: 'docker.io/library/bazar-postgres-patroni:k',
      deps: new Map([
        ['postgres-standin', record('postgres-standin', 'localhost/bazar-standin/postgres:18')],
      ]),
      force: false,
    });
    const buildArgs = seen.flatMap((a, i) => (seen[i - 1] === '--build-arg' ? [a] : []));
    assert.deepEqual(buildArgs, [
      'POSTGRES_IMAGE=localhost/bazar-standin/postgres:18',
      `PIP_CERT=${BUILD_FILES_DIR}/ca-certificates.crt`,
      `APT_CONFIG=${BUILD_FILES_DIR}/apt.conf`,
    ]);
    assert.deepEqual(
      seen.slice(0, 2),
      ['bud', '--pull-never'],
      'no --layers (nor --force-rm, which needs it)',
    );
    assert.deepEqual(seen.slice(-3), ['--tag', 'docker.io/library/bazar-postgres-patroni:k', IMAGE_DIR]);
    // Not a stand-in itself, though built on one.
    assert.deepEqual(
      seen.flatMap((a, i) => (seen[i - 1] === '--label' ? [a] : [])),
      ['dev.bazar.standin-for=', 'dev.bazar.built-on=localhost/bazar-standin/postgres:18'],
    );
    assert.equal(mounted['ca-certificates.crt'], readFileSync(HOST_CA_BUNDLE, 'utf8'));
    assert.match(mounted['apt.conf']!, /^Acquire::Check-Valid-Until "false";$/m);
    assert.ok(!existsSync(mounted.src!), 'the build files are removed after the build');
  } finally {
    rmSync(cacheRoot, { recursive: true, force: true });
  }
});

test('the services build as before: NODE_IMAGE, --layers, no build files', async () => {
  const artifact: Artifact = {
    image: 'bazar-front',
    context: '.',
    dockerfile: 'Dockerfile',
    buildArgs: { SERVICE: 'front' },
  };
  const info = parseDockerfile(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  const node: Recipe = {
    ...postgresStandin(),
    name: 'node-standin',
    standinFor: 'docker.io/library/node:20-bookworm-slim',
  };
  const recipe = artifactRecipe(artifactFiles(), artifact, info, [node], true);
  let seen: string[] = [];
  const buildah = { run: async (args: string[]) => ((seen = args), '') } as unknown as Buildah;
  await recipe.build({
    cache: cacheLayout({ BAZAR_CACHE_DIR: os.tmpdir() }),
    buildah,
    log: () => undefined,
    logFile: '/dev/null',
    key: 'k',
    ref: 'docker.io/library/bazar-front:k',
    deps: new Map([
      ['node-standin', record('node-standin', 'localhost/bazar-standin/node:20-bookworm-slim')],
    ]),
    force: false,
  });
  assert.deepEqual(seen.slice(0, 4), ['bud', '--layers', '--pull-never', '--force-rm']);
  assert.deepEqual(
    seen.flatMap((a, i) => (seen[i - 1] === '--build-arg' ? [a] : [])),
    ['SERVICE=front', 'NODE_IMAGE=localhost/bazar-standin/node:20-bookworm-slim'],
  );
  assert.ok(!seen.includes('--volume'));
});

test('a Dockerfile on an image without a stand-in, or pulling one by name, is refused', () => {
  const a: Artifact = { image: 'bazar-x', context: 'x', dockerfile: 'Dockerfile', buildArgs: {} };
  const on = (text: string): unknown => standinBases(a, parseDockerfile(text), [postgresStandin()]);
  assert.deepEqual(on('ARG PG=postgres:18\nFROM ${PG}\n'), [{ arg: 'PG', recipe: 'postgres-standin' }]);
  assert.throws(() => on('ARG PG=postgres:17\nFROM ${PG}\n'), /postgres:17, which has no stand-in/);
  assert.throws(() => on('FROM postgres:18\n'), /names postgres:18 in FROM, which cannot be pulled here/);
  assert.throws(() => on('ARG PG\nFROM ${PG}\n'), /ARG PG without a default/);
});

test("the image's contract: non-root 999:999, patroni-entrypoint, SIGTERM, every Python package pinned", async () => {
  const dockerfile = readFileSync(path.join(IMAGE_DIR, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^USER 999:999$/m, 'numeric, so runAsNonRoot can check it');
  assert.match(dockerfile, /^ENTRYPOINT \["patroni-entrypoint"\]$/m);
  assert.match(dockerfile, /^CMD \["patroni"\]$/m);
  assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m, "Patroni's graceful stop; the base says SIGINT");
  assert.match(dockerfile, /^COPY entrypoint\.py \/usr\/local\/bin\/patroni-entrypoint$/m);
  assert.ok(
    (statSync(path.join(IMAGE_DIR, 'entrypoint.py')).mode & 0o111) !== 0,
    'entrypoint.py is executable',
  );
  // Its .dockerignore lets in what the Dockerfile copies and nothing else (a __pycache__ would change the key).
  assert.deepEqual(
    (await contextFiles(IMAGE_DIR)).map((f) => f.path),
    ['entrypoint.py', 'requirements.txt'],
  );
  const pins = readFileSync(path.join(IMAGE_DIR, 'requirements.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.ok(pins.includes('patroni[psycopg3]==4.1.5'));
  for (const p of pins) assert.match(p, /^[A-Za-z0-9._-]+(\[[a-z0-9,]+\])?==[0-9][0-9A-Za-z.+-]*$/, p);
  assert.ok(
    pins.some((p) => p.startsWith('psycopg-binary==')),
    'the extra resolved to psycopg[binary]',
  );
});

// ---------------------------------------------------------------- the entrypoint, with a fake patroni

const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
const noPython = python.status === 0 ? false : 'needs python3 with PyYAML (the image has both)';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  config?: Record<string, unknown>;
}

function runEntrypoint(args: string[], env: Record<string, string>): Run {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-patroni-ep-'));
  try {
    const bin = path.join(dir, 'bin');
    // The fake patroni prints its arguments and the environment variables left for it.
    mkdirSync(bin);
    writeFileSync(
      path.join(bin, 'patroni'),
      '#!/bin/sh\necho "argv: $*"\nenv | sort | grep "^PATRONI_" || true\n',
      {
        mode: 0o755,
      },
    );
    const file = path.join(dir, 'patroni.yml');
    const r = spawnSync('python3', [path.join(IMAGE_DIR, 'entrypoint.py'), ...args], {
      encoding: 'utf8',
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        PATRONICTL_CONFIG_FILE: file,
        HOSTNAME: 'bazar-postgresql-0',
        ...env,
      },
    });
    const out: Run = { status: r.status, stdout: r.stdout, stderr: r.stderr };
    if (existsSync(file)) out.config = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const REQUIRED = {
  PATRONI_SCOPE: 'bazar',
  PATRONI_SUPERUSER_PASSWORD: 'su',
  PATRONI_REPLICATION_PASSWORD: 'repl',
  PATRONI_KUBERNETES_POD_IP: '10.213.64.7',
};

test(
  'entrypoint: the settings Patroni has no variable for, from the pod and PATRONI_DCS_*',
  { skip: noPython },
  () => {
    const r = runEntrypoint(['--validate-config'], {
      ...REQUIRED,
      PATRONI_DCS_TTL: '40',
      PATRONI_DCS_SYNCHRONOUS_MODE: 'on',
      PATRONI_DCS_SYNCHRONOUS_MODE_STRICT: 'false',
      PATRONI_DCS_MAXIMUM_LAG_ON_FAILOVER: '0',
      PATRONI_DCS_POSTGRESQL_PARAMETERS: '{"max_connections": 200, "wal_keep_size": "1GB"}',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^argv: --validate-config \S+patroni\.yml$/m);
    // Consumed: patroni sees only its own variables.
    assert.doesNotMatch(r.stdout, /PATRONI_DCS_/);
    assert.match(r.stdout, /^PATRONI_SCOPE=bazar$/m);
    assert.deepEqual(r.config, {
      name: 'bazar-postgresql-0',
      restapi: { connect_address: '10.213.64.7:8008' },
      kubernetes: {},
      postgresql: {
        pg_hba: [
          'local all all trust',
          'host replication all all scram-sha-256',
          'host all all all scram-sha-256',
        ],
        // The member's name as a server setting: the writers report the primary by it.
        parameters: { 'bazar.member': 'bazar-postgresql-0' },
        connect_address: '10.213.64.7:5432',
      },
      bootstrap: {
        dcs: {
          ttl: 40,
          loop_wait: 10,
          retry_timeout: 10,
          maximum_lag_on_failover: 0,
          synchronous_mode: true,
          synchronous_mode_strict: false,
          postgresql: {
            use_pg_rewind: true,
            use_slots: true,
            parameters: { max_connections: 200, wal_keep_size: '1GB' },
          },
        },
        initdb: [{ encoding: 'UTF8' }, 'data-checksums'],
      },
    });
  },
);

test(
  'entrypoint: what the environment sets is left to Patroni; other commands run as they are',
  { skip: noPython },
  () => {
    const r = runEntrypoint([], {
      ...REQUIRED,
      PATRONI_NAME: 'pg-a',
      PATRONI_RESTAPI_CONNECT_ADDRESS: 'pg-a.pg:8008',
      PATRONI_POSTGRESQL_CONNECT_ADDRESS: 'pg-a.pg:5432',
      PATRONI_POSTGRESQL_PG_HBA: 'local all all peer\n\nhost all all 10.0.0.0/8 scram-sha-256\n',
      PATRONI_DCS_SYNCHRONOUS_MODE: 'quorum',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^argv: \S+patroni\.yml$/m);
    assert.equal(r.config?.name, undefined);
    assert.equal(r.config?.restapi, undefined);
    assert.deepEqual(r.config?.postgresql, {
      pg_hba: ['local all all peer', 'host all all 10.0.0.0/8 scram-sha-256'],
      parameters: { 'bazar.member': 'pg-a' },
    });
    assert.equal(
      (r.config?.bootstrap as { dcs: { synchronous_mode: unknown } }).dcs.synchronous_mode,
      'quorum',
    );
    const other = runEntrypoint(['sh', '-c', 'echo other $0'], {});
    assert.equal(other.status, 0, other.stderr);
    assert.equal(other.stdout, 'other sh\n');
    assert.equal(other.config, undefined, 'no config file for another command');
  },
);

test(
  'entrypoint: a missing setting, a bad or unknown knob, and a ttl too short for its retries fail',
  { skip: noPython },
  () => {
    const fails = (env: Record<string, string>, re: RegExp): void => {
      const r = runEntrypoint([], env);
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, re);
      assert.equal(r.config, undefined);
    };
    fails({ PATRONI_SCOPE: 'bazar' }, /PATRONI_SUPERUSER_PASSWORD, PATRONI_REPLICATION_PASSWORD not set/);
    fails({ ...REQUIRED, PATRONI_DCS_TTL: 'thirty' }, /PATRONI_DCS_TTL='thirty': expected a whole number/);
    fails({ ...REQUIRED, PATRONI_DCS_SYNCHRONOUS_MODE: 'strict' }, /expected off, on or quorum/);
    fails({ ...REQUIRED, PATRONI_DCS_TLL: '30' }, /PATRONI_DCS_TLL is not a setting of this image/);
    fails(
      { ...REQUIRED, PATRONI_DCS_TTL: '20' },
      /loop_wait \+ 2 \* retry_timeout \(10 \+ 2 \* 10\) must not exceed ttl \(20\)/,
    );
    fails({ ...REQUIRED, PATRONI_DCS_POSTGRESQL_PARAMETERS: '[1, 2]' }, /expected a mapping/);
    fails({ ...REQUIRED, PATRONI_KUBERNETES_POD_IP: '127.0.0.1' }, /other members cannot reach/);
  },
);
