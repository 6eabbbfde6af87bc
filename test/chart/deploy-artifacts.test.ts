// The other deployment artifacts: k8s/ is what the chart renders (and not stale), the Dockerfile builds
// non-root images that start the way the tests start the services, and every environment variable the
// chart sets is one the services actually read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, byKind, parseManifests, podTemplate, renderChart, requireTools, run, runOk } from './tools.js';
import { SERVICE_NODE_FLAGS } from '../../services/shared/src/node-flags.js';

test('k8s/ is up to date with the chart (scripts/render-k8s.mjs --check)', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const res = run(process.execPath, [path.join(ROOT, 'scripts', 'render-k8s.mjs'), '--check'], {
    env: { ...process.env, BAZAR_HELM: tools.helm },
  });
  assert.equal(res.status, 0, `${res.stderr}${res.stdout}`);
});

test('kubectl kustomize k8s/ yields the chart defaults, with a generated Secret and without the test pod', (t) => {
  const tools = requireTools(t, 'helm', 'kubectl');
  if (!tools) return;
  const built = parseManifests(runOk(tools.kubectl, ['kustomize', path.join(ROOT, 'k8s')]));
  const chart = renderChart(tools.helm, { namespace: 'default' }).objects;
  const id = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;
  const expected = chart
    .filter((o) => o.kind !== 'Pod')
    .map(id)
    .concat('CustomResourceDefinition/storepolicies.bazar.dev')
    .sort();
  assert.deepEqual(built.map(id).sort(), expected);
  const secret = byKind(built, 'Secret')[0]!;
  // The keys the chart's own Secret has (with the default engine, Patroni's REST API password too).
  const chartSecret = byKind(chart, 'Secret')[0]!;
  assert.deepEqual(Object.keys(secret.data as object).sort(), Object.keys(chartSecret.data as object).sort());
  assert.ok('patroni-api-password' in (secret.data as object), 'the default engine is Patroni');
  for (const o of built) {
    if (o.kind !== 'CustomResourceDefinition') assert.equal(o.metadata.namespace, 'default', id(o));
    assert.notEqual(
      o.metadata.labels?.['app.kubernetes.io/managed-by'],
      'Helm',
      `${id(o)}: not managed by Helm`,
    );
  }
  // Same pod specs as the chart's (only the managed-by label differs).
  for (const d of byKind(built, 'Deployment')) {
    const fromChart = chart.find((o) => id(o) === id(d))!;
    assert.deepEqual(podTemplate(d)!.spec, podTemplate(fromChart)!.spec, id(d));
  }
});

test('Dockerfile: multi-stage, npm ci + tsc, prod deps only, numeric non-root USER, the tested start command', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Array<{ name: string; lines: string[] }> = [];
  for (const l of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (from) stages.push({ name: from[2] ?? `stage${stages.length}`, lines: [] });
    else stages.at(-1)?.lines.push(l);
  }
  assert.ok(stages.length >= 3, 'deps, build and runtime stages');
  const runtime = stages.at(-1)!;
  const all = (s: { lines: string[] }) => s.lines.join('\n');
  assert.ok(
    stages.some((s) => /npm ci --omit=dev/.test(all(s))),
    'production dependencies with npm ci --omit=dev',
  );
  assert.ok(
    stages.some((s) => /\btsc\b|npm run build/.test(all(s))),
    'compiled with tsc',
  );
  assert.doesNotMatch(
    all(runtime),
    /npm (ci|install)|tsc/,
    'nothing is installed or compiled in the runtime stage',
  );
  assert.match(all(runtime), /COPY --from=deps \/app\/node_modules/);
  assert.match(all(runtime), /COPY --from=build \/app\/dist\/services/);
  const user = /^USER\s+(\d+)(?::(\d+))?$/m.exec(all(runtime));
  assert.ok(user, 'numeric USER (runAsNonRoot can only verify a numeric user)');
  assert.notEqual(user[1], '0');
  const values = readFileSync(path.join(ROOT, 'charts', 'bazar', 'values.yaml'), 'utf8');
  assert.match(values, new RegExp(`runAsUser: ${user[1]}\\b`), 'the chart runs the pods as the image user');
  // The devstack's and the chart's command: node's flags (SERVICE_NODE_FLAGS), then main.js.
  const start = ['node', ...SERVICE_NODE_FLAGS, 'dist/services/${SERVICE}/src/main.js'].join(' ');
  assert.ok(
    all(runtime).includes(`CMD ["/bin/sh", "-c", "exec ${start}"]`),
    `the runtime stage's CMD runs ${start}`,
  );
  assert.doesNotMatch(dockerfile, /:latest\b/, 'no floating latest tags');
});

test('.dockerignore is an allow-list that admits what the Dockerfile copies and nothing secret', () => {
  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.equal(ignore[0], '*', 'start by excluding everything');
  for (const needed of [
    '!package.json',
    '!package-lock.json',
    '!tsconfig.json',
    '!services/shared/',
    '!services/front/',
    '!services/catalog/',
    '!services/order/',
  ]) {
    assert.ok(ignore.includes(needed), `.dockerignore must admit ${needed.slice(1)}`);
  }
  assert.ok(ignore.includes('services/**/*.test.ts'), 'tests stay out of the images');
  assert.ok(
    !ignore.some((l) => /^!(k8s|charts|\.git|node_modules|dist)/.test(l)),
    'nothing else is admitted',
  );
});

/** Variables the services read: the keys of their config schemas, from the sources. */
function serviceVariables(): Set<string> {
  const files = [
    'services/shared/src/service-config.ts',
    'services/shared/src/discovery-factory.ts',
    'services/shared/src/search-page.ts',
    // writerSchema (FRONT_URLS, SYNC_COMMIT_TIMEOUT_MS, PRIMARY_WAIT_MS), spread by order and catalog.
    'services/shared/src/writer.ts',
    'services/front/src/main.ts',
    'services/catalog/src/main.ts',
    'services/order/src/main.ts',
  ];
  const names = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\b([A-Z][A-Z0-9_]{2,}):\s/g))
      names.add(m[1]!);
  }
  return names;
}

test('every environment variable the chart gives a service is one the services read', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const known = serviceVariables();
  // Read by libraries, not by the config schemas: node (NODE_OPTIONS), node-postgres (PGPASSWORD).
  for (const lib of ['NODE_OPTIONS', 'PGPASSWORD']) known.add(lib);
  for (const required of [
    'ROLE',
    'INTERNAL_TOKEN',
    'ADMIN_TOKEN',
    'DATABASE_URL',
    'POLICY_NAME',
    'FRONT_SERVICE',
  ]) {
    assert.ok(known.has(required), `the services' schemas no longer read ${required}: update the chart`);
  }
  for (const d of byKind(renderChart(tools.helm).objects, 'Deployment')) {
    for (const e of podTemplate(d)!.spec.containers[0]!.env ?? []) {
      assert.ok(known.has(e.name), `${d.metadata.name}: ${e.name} is read by no service`);
    }
  }
});

test('postgresql.engine=patroni runs the image of images/postgres-patroni the way its entrypoint expects', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const dir = path.join(ROOT, 'images', 'postgres-patroni');
  const entrypoint = readFileSync(path.join(dir, 'entrypoint.py'), 'utf8');
  const dockerfile = readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
  // The typed bootstrap.dcs knobs the entrypoint accepts (an unknown PATRONI_DCS_* is an error there).
  const block = /DCS_KNOBS = \{([\s\S]*?)\n\}/.exec(entrypoint)?.[1] ?? '';
  const knobs = new Set([...block.matchAll(/'([A-Z_]+)': \(/g)].map((m) => `PATRONI_DCS_${m[1]}`));
  assert.ok(knobs.has('PATRONI_DCS_TTL') && knobs.size >= 10, `DCS_KNOBS of entrypoint.py: ${[...knobs]}`);
  const parametersVar = /PARAMETERS_VAR = '([A-Z_]+)'/.exec(entrypoint)?.[1];
  assert.equal(parametersVar, 'PATRONI_DCS_POSTGRESQL_PARAMETERS');
  knobs.add(parametersVar);
  const required = /REQUIRED = \(([^)]*)\)/.exec(entrypoint)?.[1] ?? '';
  const requiredVars = [...required.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
  assert.ok(requiredVars.includes('PATRONI_SCOPE'), `REQUIRED of entrypoint.py: ${requiredVars}`);

  const r = renderChart(tools.helm, {
    valuesFile: path.join(ROOT, 'charts', 'bazar', 'ci', 'patroni-values.yaml'),
  });
  const sts = byKind(r.objects, 'StatefulSet').find((s) =>
    podTemplate(s)!.spec.containers.some((c) => c.name === 'patroni'),
  );
  assert.ok(sts, 'the Patroni StatefulSet');
  const tpl = podTemplate(sts)!;
  const c = tpl.spec.containers.find((x) => x.name === 'patroni')!;
  const names = (c.env ?? []).map((e) => e.name);
  for (const name of names.filter((n) => n.startsWith('PATRONI_DCS_'))) {
    assert.ok(knobs.has(name), `${name} is not a setting of the image's entrypoint`);
  }
  for (const name of requiredVars) assert.ok(names.includes(name), `the entrypoint requires ${name}`);
  // The entrypoint and CMD of the image start Patroni: the chart overrides neither.
  assert.match(dockerfile, /^ENTRYPOINT \["patroni-entrypoint"\]$/m);
  assert.equal(c.command, undefined);
  assert.equal(c.args, undefined);
  // Patroni's clean stop (PostgreSQL stopped, leader lock released) is SIGTERM, what the kubelet sends.
  assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m);
  // The image's numeric user is the pod's.
  const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
  assert.ok(user, 'numeric USER in images/postgres-patroni/Dockerfile');
  assert.equal(tpl.spec.securityContext?.runAsUser, Number(user[1]));
  // Its writable paths (the Dockerfile's header): the data volume, /tmp, /var/run/postgresql.
  for (const p of ['/var/lib/postgresql', '/tmp', '/var/run/postgresql']) {
    assert.match(dockerfile, new RegExp(p.replace(/\//g, '\\/')), `the Dockerfile names ${p}`);
    assert.ok(
      c.volumeMounts?.some((m) => m.mountPath === p),
      `${p} is a volume under the read-only root`,
    );
  }
  assert.match(dockerfile, /PATRONI_RESTAPI_LISTEN=0\.0\.0\.0:8008/);
  // The chart's default image is the skaffold artifact built from that folder.
  const skaffold = readFileSync(path.join(ROOT, 'skaffold.yaml'), 'utf8');
  assert.match(skaffold, /- image: bazar-postgres-patroni\n\s+context: images\/postgres-patroni/);
  assert.match(c.image, /^bazar-postgres-patroni:/);
});
