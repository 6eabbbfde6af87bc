// The strongest offline validation there is: a real kube-apiserver + etcd (scripts/local-apiserver.mjs)
// judges every rendered object.
//  - Every CI render, and the plain manifests of k8s/, pass `kubectl apply --dry-run=server
//    --validate=strict` (schemas, unknown fields, defaulting, admission) in namespaces that enforce the
//    Pod Security "restricted" standard, with no warning at all.
//  - A real `helm install` / `upgrade` / `uninstall` / reinstall keeps the generated Secret (lookup and
//    helm.sh/resource-policy: keep, exercised for real).
//  - The ServiceAccount can do exactly what discovery, the policy watch and the status writer need, as
//    the API server's RBAC authorizer decides (kubectl auth can-i).
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHART, ROOT, ciValuesFiles, findTool, requireTools, run, runOk, toolsBinDir } from './tools.js';

interface LocalApiServer {
  url: string;
  kubeconfigPath: string;
  stop(): Promise<void>;
}

let api: LocalApiServer | undefined;
let startError: Error | undefined;
let dataDir: string | undefined;

const haveTools = ['helm', 'kubectl', 'kube-apiserver', 'etcd'].every((n) => findTool(n));

before(async () => {
  if (!haveTools) return;
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'bazar-chart-apiserver-'));
  try {
    const mod = (await import(pathToFileURL(path.join(ROOT, 'scripts', 'local-apiserver.mjs')).href)) as {
      startLocalApiServer(opts: { binDir: string; dataDir: string }): Promise<LocalApiServer>;
    };
    api = await mod.startLocalApiServer({ binDir: toolsBinDir(), dataDir });
  } catch (err) {
    startError = err as Error;
  }
});

after(async () => {
  await api?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** kubectl/helm against the local API server; skips (or, in CI, fails) without the tools. */
function cluster(t: TestContext) {
  const tools = requireTools(t, 'helm', 'kubectl', 'kube-apiserver', 'etcd');
  if (!tools) return undefined;
  if (startError) throw startError;
  assert.ok(api, 'the local API server did not start');
  // helm keeps its own state under the test's directory, never in the user's home.
  const env = {
    ...process.env,
    KUBECONFIG: api.kubeconfigPath,
    HELM_CACHE_HOME: path.join(dataDir!, 'helm-cache'),
    HELM_CONFIG_HOME: path.join(dataDir!, 'helm-config'),
    HELM_DATA_HOME: path.join(dataDir!, 'helm-data'),
  };
  const kubectl = (args: string[], input?: string) => run(tools.kubectl, args, { env, input });
  const kubectlOk = (args: string[], input?: string) => runOk(tools.kubectl, args, { env, input });
  const helm = (args: string[]) => run(tools.helm, args, { env });
  const helmOk = (args: string[]) => runOk(tools.helm, args, { env });
  return { tools, kubectl, kubectlOk, helm, helmOk };
}

let crdsApplied = false;
function applyCrds(c: NonNullable<ReturnType<typeof cluster>>): void {
  if (crdsApplied) return;
  const chartCrds = path.join(CHART, 'crds');
  const files = readdirSync(chartCrds).filter((f) => /\.ya?ml$/.test(f));
  assert.ok(files.length > 0, 'charts/bazar/crds/ holds no CRD');
  c.kubectlOk(['apply', '-f', chartCrds]);
  c.kubectlOk(['apply', '-f', path.join(ROOT, 'test', 'chart', 'fixtures', 'servicemonitor-crd.yaml')]);
  c.kubectlOk([
    'wait',
    '--for',
    'condition=established',
    '--timeout=60s',
    'crd/storepolicies.bazar.dev',
    'crd/servicemonitors.monitoring.coreos.com',
  ]);
  crdsApplied = true;
}

let namespaces = 0;
/** A fresh namespace that enforces (and warns about) the Pod Security "restricted" standard. */
function restrictedNamespace(c: NonNullable<ReturnType<typeof cluster>>, prefix: string): string {
  const ns = `${prefix}-${++namespaces}`;
  c.kubectlOk(['create', 'namespace', ns]);
  c.kubectlOk([
    'label',
    'namespace',
    ns,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/warn=restricted',
    'pod-security.kubernetes.io/audit=restricted',
  ]);
  return ns;
}

function dryRun(
  c: NonNullable<ReturnType<typeof cluster>>,
  ns: string,
  manifests: string,
  what: string,
): void {
  const res = c.kubectl(
    ['apply', '--dry-run=server', '--validate=strict', '--namespace', ns, '-f', '-'],
    manifests,
  );
  assert.equal(res.status, 0, `${what}: the API server refused it:\n${res.stderr}\n${res.stdout}`);
  // Deprecations, PodSecurity "would violate" notices, unknown-field notices: all are defects.
  assert.doesNotMatch(res.stderr, /warning/i, `${what}: warnings from the API server:\n${res.stderr}`);
  const created = res.stdout.split('\n').filter((l) => l.includes('(server dry run)'));
  const kinds = manifests.match(/^kind: /gm)?.length ?? 0;
  assert.equal(
    created.length,
    kinds,
    `${what}: ${kinds} objects rendered, ${created.length} accepted:\n${res.stdout}`,
  );
}

test('every CI render passes a strict server-side dry run under Pod Security "restricted"', (t) => {
  const c = cluster(t);
  if (!c) return;
  applyCrds(c);
  for (const file of [undefined, ...ciValuesFiles()]) {
    const ns = restrictedNamespace(c, 'render');
    const args = ['template', 'bazar', CHART, '--namespace', ns];
    if (file) args.push('--values', file);
    const manifests = c.helmOk(args);
    dryRun(c, ns, manifests, file ? path.basename(file) : 'defaults');
  }
});

test('the plain manifests of k8s/ pass a strict server-side dry run', (t) => {
  const c = cluster(t);
  if (!c) return;
  applyCrds(c);
  const ns = restrictedNamespace(c, 'plain');
  // kustomize pins the namespace; move it to the restricted one, as a user would with `kustomize edit`.
  const built = c
    .kubectlOk(['kustomize', path.join(ROOT, 'k8s')])
    .replace(/^(\s+namespace:) default$/gm, `$1 ${ns}`);
  assert.match(built, /kind: Secret/, 'the kustomization generates the Secret');
  dryRun(c, ns, built, 'k8s/');
});

test('helm install, upgrade, uninstall and reinstall keep the generated Secret', (t) => {
  const c = cluster(t);
  if (!c) return;
  applyCrds(c);
  const ns = restrictedNamespace(c, 'release');
  const secret = () => c.kubectlOk(['get', 'secret', 'bazar', '--namespace', ns, '-o', 'jsonpath={.data}']);
  const notes = c.helmOk(['install', 'bazar', CHART, '--namespace', ns]);
  // NOTES.txt tells the user how to reach the store.
  assert.match(notes, new RegExp(`kubectl --namespace ${ns} port-forward svc/bazar-front 8080:80`));
  assert.match(notes, /curl -i http:\/\/localhost:8080\/search\/distributed%20systems/);
  assert.match(notes, /curl -i -X POST -H 'Idempotency-Key: [^']+' http:\/\/localhost:8080\/purchase\/1/);
  assert.match(notes, new RegExp(`helm test bazar --namespace ${ns}`));
  const first = secret();
  assert.match(first, /admin-token/);
  c.helmOk([
    'upgrade',
    'bazar',
    CHART,
    '--namespace',
    ns,
    '--set',
    'front.replicas=3',
    '--set',
    'storePolicy.cache.ttlMs=5000',
  ]);
  assert.equal(secret(), first, 'helm upgrade changed the generated Secret');
  const policy = c.kubectlOk([
    'get',
    'storepolicy',
    'bazar',
    '--namespace',
    ns,
    '-o',
    'jsonpath={.spec.cache.ttlMs}',
  ]);
  assert.equal(policy, '5000', 'helm upgrade applies StorePolicy changes');
  const uninstall = c.helmOk(['uninstall', 'bazar', '--namespace', ns]);
  assert.match(uninstall, /kept due to the resource policy/);
  assert.equal(secret(), first, 'helm uninstall deleted the Secret');
  c.helmOk(['install', 'bazar', CHART, '--namespace', ns]);
  assert.equal(
    secret(),
    first,
    'a reinstall must reuse the kept Secret (the database volumes hold those passwords)',
  );
  c.helmOk(['uninstall', 'bazar', '--namespace', ns]);
});

test('postgresql.engine unset: a new install runs Patroni, an upgrade of a release that runs the pair keeps the pair, and only an explicit engine switches', (t) => {
  const c = cluster(t);
  if (!c) return;
  applyCrds(c);
  const statefulSets = (ns: string) =>
    c
      .kubectlOk(['get', 'statefulsets', '--namespace', ns, '-o', 'jsonpath={.items[*].metadata.name}'])
      .split(/\s+/)
      .filter(Boolean)
      .sort();
  const pair = ['bazar-postgresql', 'bazar-postgresql-standby'];
  const ns = restrictedNamespace(c, 'engine');
  // A release that runs the pair, as every release installed before patroni became the default does.
  c.helmOk(['install', 'bazar', CHART, '--namespace', ns, '--set', 'postgresql.engine=pair']);
  assert.deepEqual(statefulSets(ns), pair);
  // `helm upgrade` that does not name the engine keeps it: the database stays where it is.
  c.helmOk(['upgrade', 'bazar', CHART, '--namespace', ns, '--set', 'front.replicas=3']);
  assert.deepEqual(statefulSets(ns), pair, 'an upgrade keeps the engine the release runs');
  // Named, the switch happens (docs/deploy.md says how to carry the data over first).
  c.helmOk(['upgrade', 'bazar', CHART, '--namespace', ns, '--set', 'postgresql.engine=patroni']);
  assert.deepEqual(statefulSets(ns), ['bazar-patroni']);
  // Unnamed again: Patroni stays (there is no pair to keep).
  c.helmOk(['upgrade', 'bazar', CHART, '--namespace', ns]);
  assert.deepEqual(statefulSets(ns), ['bazar-patroni']);
  c.helmOk(['uninstall', 'bazar', '--namespace', ns]);
  // A new install with the defaults: Patroni.
  const fresh = restrictedNamespace(c, 'engine-new');
  c.helmOk(['install', 'bazar', CHART, '--namespace', fresh]);
  assert.deepEqual(statefulSets(fresh), ['bazar-patroni']);
  c.helmOk(['uninstall', 'bazar', '--namespace', fresh]);
});

test('the ServiceAccount may do exactly what discovery, the policy watch and the status writer need', (t) => {
  const c = cluster(t);
  if (!c) return;
  applyCrds(c);
  const ns = restrictedNamespace(c, 'rbac');
  c.helmOk(['install', 'bazar', CHART, '--namespace', ns]);
  const as = `system:serviceaccount:${ns}:bazar`;
  const can = (verb: string, resource: string, namespace = ns) => {
    const [name, subresource] = resource.split('/');
    const args = ['auth', 'can-i', verb, name!, '--namespace', namespace, '--as', as];
    if (subresource) args.push(`--subresource=${subresource}`);
    return c.kubectl(args).stdout.trim() === 'yes';
  };
  for (const verb of ['get', 'list', 'watch']) {
    assert.ok(can(verb, 'endpointslices.discovery.k8s.io'), `${verb} endpointslices`);
    assert.ok(can(verb, 'storepolicies.bazar.dev'), `${verb} storepolicies`);
  }
  for (const verb of ['get', 'update', 'patch'])
    assert.ok(can(verb, 'storepolicies.bazar.dev/status'), `${verb} status`);
  const denied: Array<[string, string, string?]> = [
    ['update', 'storepolicies.bazar.dev'],
    ['patch', 'storepolicies.bazar.dev'],
    ['create', 'storepolicies.bazar.dev'],
    ['update', 'storepolicies.bazar.dev/scale'],
    ['delete', 'storepolicies.bazar.dev'],
    ['create', 'endpointslices.discovery.k8s.io'],
    ['get', 'secrets'],
    ['list', 'pods'],
    ['list', 'endpointslices.discovery.k8s.io', 'kube-system'],
    ['list', 'storepolicies.bazar.dev', 'default'],
    ['list', 'nodes'],
  ];
  for (const [verb, resource, namespace] of denied) {
    assert.ok(
      !can(verb, resource, namespace),
      `the ServiceAccount must not ${verb} ${resource} in ${namespace ?? ns}`,
    );
  }
  c.helmOk(['uninstall', 'bazar', '--namespace', ns]);
});

test("postgresql.engine=patroni: Patroni's ServiceAccount may do exactly what ConfigMap mode needs, in its namespace", (t) => {
  const c = cluster(t);
  if (!c) return;
  applyCrds(c);
  const ns = restrictedNamespace(c, 'patroni');
  const values = ciValuesFiles().find((f) => f.endsWith('patroni-values.yaml'));
  assert.ok(values, 'charts/bazar/ci/patroni-values.yaml');
  const notes = c.helmOk(['install', 'bazar', CHART, '--namespace', ns, '--values', values]);
  // The install notes say how to see which member is the primary.
  assert.match(notes, new RegExp(`kubectl --namespace ${ns} get pods -l cluster-name=bazar-patroni -L role`));
  assert.match(notes, new RegExp(`kubectl --namespace ${ns} exec bazar-patroni-0 -- patronictl list`));
  const can = (who: string, verb: string, resource: string, namespace = ns) =>
    c
      .kubectl([
        'auth',
        'can-i',
        verb,
        resource,
        '--namespace',
        namespace,
        '--as',
        `system:serviceaccount:${ns}:${who}`,
      ])
      .stdout.trim() === 'yes';
  for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection']) {
    assert.ok(can('bazar-patroni', verb, 'configmaps'), `Patroni may ${verb} configmaps`);
  }
  for (const verb of ['get', 'list', 'watch', 'patch', 'update']) {
    assert.ok(can('bazar-patroni', verb, 'pods'), `Patroni may ${verb} pods`);
  }
  const denied: Array<[string, string, string?]> = [
    ['create', 'pods'],
    ['delete', 'pods'],
    ['get', 'secrets'],
    ['create', 'services'],
    ['get', 'endpoints'],
    ['list', 'endpointslices.discovery.k8s.io'],
    ['list', 'storepolicies.bazar.dev'],
    ['list', 'configmaps', 'default'],
    ['list', 'pods', 'kube-system'],
    ['list', 'nodes'],
  ];
  for (const [verb, resource, namespace] of denied) {
    assert.ok(
      !can('bazar-patroni', verb, resource, namespace),
      `Patroni's ServiceAccount must not ${verb} ${resource} in ${namespace ?? ns}`,
    );
  }
  // The services' ServiceAccount gains nothing from the engine: no ConfigMaps, no pods.
  for (const [verb, resource] of [
    ['patch', 'configmaps'],
    ['list', 'pods'],
  ] as const) {
    assert.ok(!can('bazar', verb, resource), `the services' ServiceAccount must not ${verb} ${resource}`);
  }
  // What a helm install created: the Patroni Secret key, and nothing cluster-wide.
  const keys = c.kubectlOk([
    'get',
    'secret',
    'bazar',
    '--namespace',
    ns,
    '-o',
    'go-template={{range $k, $v := .data}}{{$k}} {{end}}',
  ]);
  assert.match(keys, /patroni-api-password/);
  c.helmOk(['uninstall', 'bazar', '--namespace', ns]);
});
