// Key properties of what the chart renders, for the defaults and every CI values file: hardened pods,
// probes, the services' environment (discovery names, roles, database URLs, secrets), RBAC exactly as
// the API-server tests expect, NetworkPolicy rules, labels and selectors that match, PDBs, the Secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHART,
  byKind,
  ciValuesFiles,
  named,
  podTemplate,
  renderChart,
  requireTools,
  run,
  selects,
  type Container,
  type EnvVar,
  type K8sObject,
  type PodTemplate,
  type Render,
} from './tools.js';
import { SERVICE_NODE_FLAGS } from '../../services/shared/src/node-flags.js';

const SERVICE_COMPONENTS = ['front', 'catalog', 'order'];
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'Pod'];

function renders(helm: string): Render[] {
  return [renderChart(helm), ...ciValuesFiles().map((valuesFile) => renderChart(helm, { valuesFile }))];
}

/** Renders once per test file (helm is fast, but there are many assertions). */
let cached: Render[] | undefined;
function all(helm: string): Render[] {
  cached ??= renders(helm);
  return cached;
}

function workloads(objects: K8sObject[]): Array<{ o: K8sObject; tpl: PodTemplate }> {
  return objects
    .filter((o) => WORKLOAD_KINDS.includes(o.kind))
    .map((o) => ({ o, tpl: podTemplate(o)! }))
    .filter((w) => w.tpl);
}

function env(c: Container, name: string): EnvVar | undefined {
  return c.env?.find((e) => e.name === name);
}

function envValue(c: Container, name: string): string | undefined {
  return env(c, name)?.value;
}

const labelsOf = (o: K8sObject) => o.metadata.labels ?? {};
const componentOf = (o: K8sObject) => labelsOf(o)['app.kubernetes.io/component'];

/** The Patroni-managed StatefulSet of a render (postgresql.engine=patroni), if any. */
function patroniSet(objects: K8sObject[]): K8sObject | undefined {
  return byKind(objects, 'StatefulSet').find((s) =>
    podTemplate(s)?.spec.containers.some((c) => c.name === 'patroni'),
  );
}

/**
 * The label sets a workload's pods carry at run time: their template's, and for Patroni's members also
 * the role label Patroni itself puts on them (primary on the leader, replica on the others).
 */
function runtimeLabels(w: { o: K8sObject; tpl: PodTemplate }): Array<Record<string, string>> {
  const l = w.tpl.metadata.labels;
  if (!w.tpl.spec.containers.some((c) => c.name === 'patroni')) return [l];
  return [
    { ...l, role: 'primary' },
    { ...l, role: 'replica' },
  ];
}

test('every pod is hardened: non-root, read-only root, no capabilities, seccomp, no escalation, resources', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    for (const { o, tpl } of workloads(r.objects)) {
      const where = `${r.name}: ${o.kind}/${o.metadata.name}`;
      const pod = tpl.spec.securityContext ?? {};
      assert.equal(pod.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
      assert.equal(pod.seccompProfile?.type, 'RuntimeDefault', `${where}: pod seccompProfile`);
      assert.ok(
        typeof pod.runAsUser === 'number' && pod.runAsUser > 0,
        `${where}: numeric non-root runAsUser`,
      );
      for (const c of [...tpl.spec.containers, ...(tpl.spec.initContainers ?? [])]) {
        const sc = c.securityContext ?? {};
        const cw = `${where} container ${c.name}`;
        assert.equal(sc.allowPrivilegeEscalation, false, `${cw}: allowPrivilegeEscalation`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${cw}: readOnlyRootFilesystem`);
        assert.notEqual(sc.privileged, true, `${cw}: privileged`);
        assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${cw}: capabilities.drop`);
        assert.equal(sc.capabilities?.add, undefined, `${cw}: capabilities.add`);
        assert.equal(sc.runAsNonRoot, true, `${cw}: runAsNonRoot`);
        for (const key of ['cpu', 'memory']) {
          assert.ok(c.resources?.requests?.[key], `${cw}: requests.${key}`);
        }
        assert.ok(c.resources?.limits?.memory, `${cw}: limits.memory`);
        // A read-only root needs somewhere to write temporary files.
        assert.ok(
          c.volumeMounts?.some((m) => m.mountPath === '/tmp'),
          `${cw}: /tmp must be a writable volume`,
        );
      }
    }
  }
});

test('service pods: the tested start command, port http, httpGet probes, graceful shutdown budget', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    for (const d of byKind(r.objects, 'Deployment')) {
      const tpl = podTemplate(d)!;
      const component = componentOf(d)!;
      assert.ok(SERVICE_COMPONENTS.includes(component), `${d.metadata.name}: component ${component}`);
      const c = tpl.spec.containers[0]!;
      const where = `${r.name}: ${d.metadata.name}`;
      assert.equal(tpl.spec.containers.length, 1, where);
      // The devstack's command: node's flags (SERVICE_NODE_FLAGS) before the service's main.js.
      assert.deepEqual(
        c.command,
        ['node', ...SERVICE_NODE_FLAGS, `dist/services/${component}/src/main.js`],
        `${where}: command`,
      );
      assert.deepEqual(
        c.ports,
        [
          { name: 'http', containerPort: 8080, protocol: 'TCP' },
          // The front serves /internal/* (invalidations) on a port of its own.
          ...(component === 'front' ? [{ name: 'internal', containerPort: 8081, protocol: 'TCP' }] : []),
        ],
        `${where}: ports`,
      );
      assert.equal(
        envValue(c, 'INTERNAL_PORT'),
        component === 'front' ? '8081' : undefined,
        `${where}: INTERNAL_PORT`,
      );
      assert.equal(envValue(c, 'PORT'), '8080', `${where}: PORT`);
      assert.equal(envValue(c, 'HOST'), '0.0.0.0', `${where}: HOST`);
      assert.deepEqual(c.livenessProbe?.httpGet, { path: '/livez', port: 'http' }, `${where}: liveness`);
      assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'http' }, `${where}: readiness`);
      if (c.startupProbe) assert.deepEqual(c.startupProbe.httpGet, { path: '/livez', port: 'http' }, where);
      const delay = Number(envValue(c, 'SHUTDOWN_DELAY_MS'));
      const drain = Number(envValue(c, 'DRAIN_TIMEOUT_MS'));
      const grace = tpl.spec.terminationGracePeriodSeconds!;
      assert.ok(
        grace * 1000 > delay + drain,
        `${where}: grace ${grace}s <= delay ${delay} + drain ${drain} ms`,
      );
      const spec = d.spec as { strategy?: { rollingUpdate?: { maxUnavailable?: unknown } } };
      assert.equal(
        spec.strategy?.rollingUpdate?.maxUnavailable,
        0,
        `${where}: rolling updates keep capacity`,
      );
    }
  }
});

test('service pods: discovery env names the rendered Services, roles match labels, secrets by reference', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const services = byKind(r.objects, 'Service');
    // The services' ServiceAccount (Patroni's pods have one of their own).
    const sa = byKind(r.objects, 'ServiceAccount').find((s) => componentOf(s) !== 'postgresql');
    const policy = byKind(r.objects, 'StorePolicy')[0];
    for (const d of byKind(r.objects, 'Deployment')) {
      const tpl = podTemplate(d)!;
      const c = tpl.spec.containers[0]!;
      const where = `${r.name}: ${d.metadata.name}`;
      const component = componentOf(d)!;
      const role = labelsOf(d)['role'];
      assert.equal(envValue(c, 'DISCOVERY'), 'kubernetes', where);
      assert.equal(envValue(c, 'DISCOVERY_PORT_NAME'), 'http', where);
      assert.equal(env(c, 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', where);
      assert.equal(env(c, 'SERVICE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', where);
      // Each discovery variable names a Service of this release whose port is named http (internal
      // for the fronts: writers push invalidations there) and whose selector picks exactly the pods
      // that variable stands for.
      const expect: Record<string, (l: Record<string, string>) => boolean> = {
        FRONT_SERVICE: (l) => l['app.kubernetes.io/component'] === 'front',
        CATALOG_SERVICE: (l) => l['app.kubernetes.io/component'] === 'catalog',
        CATALOG_ORIGIN_SERVICE: (l) =>
          l['app.kubernetes.io/component'] === 'catalog' && l['role'] === 'origin',
        ORDER_SERVICE: (l) => l['app.kubernetes.io/component'] === 'order',
      };
      for (const [variable, wanted] of Object.entries(expect)) {
        const name = envValue(c, variable);
        const svc = services.find((s) => s.metadata.name === name);
        assert.ok(svc, `${where}: ${variable}=${name} is not a rendered Service`);
        const spec = svc.spec as {
          selector: Record<string, string>;
          ports: Array<{ name: string }>;
          clusterIP?: string;
        };
        const port = variable === 'FRONT_SERVICE' ? 'internal' : 'http';
        assert.ok(
          spec.ports.some((p) => p.name === port),
          `${where}: Service ${name} has no port ${port}`,
        );
        if (variable === 'FRONT_SERVICE') {
          assert.equal(envValue(c, 'FRONT_INTERNAL_PORT_NAME'), 'internal', where);
          // Only the internal port, headless: never exposed by the public front Service's type.
          assert.deepEqual(
            spec.ports.map((p) => p.name),
            ['internal'],
            `${where}: ${name} ports`,
          );
          assert.equal(spec.clusterIP, 'None', `${where}: ${name} is headless`);
          const portsOf = (o: K8sObject) => (o.spec as { ports: Array<{ name: string }> }).ports;
          const publicFronts = services.filter(
            (o) => componentOf(o) === 'front' && portsOf(o).some((p) => p.name === 'http'),
          );
          assert.equal(publicFronts.length, 1, `${where}: one public front Service`);
          assert.ok(
            !portsOf(publicFronts[0]!).some((p) => p.name === 'internal'),
            `${where}: the public front Service does not carry the internal port`,
          );
        }
        for (const w of workloads(r.objects)) {
          const l = w.tpl.metadata.labels;
          assert.equal(selects(spec.selector, l), wanted(l), `${where}: ${name} vs ${w.o.metadata.name}`);
        }
      }
      if (component === 'front') assert.equal(role, undefined, where);
      else {
        assert.ok(role === 'origin' || role === 'replica', `${where}: role label`);
        assert.equal(envValue(c, 'ROLE'), role, `${where}: ROLE env matches the role label`);
      }
      assert.equal(env(c, 'INTERNAL_TOKEN')?.valueFrom?.secretKeyRef?.key, 'internal-token', where);
      if (component !== 'order') {
        assert.equal(env(c, 'ADMIN_TOKEN')?.valueFrom?.secretKeyRef?.key, 'admin-token', where);
      }
      for (const e of c.env ?? []) {
        assert.ok(
          !/TOKEN|PASSWORD/.test(e.name) || e.valueFrom?.secretKeyRef,
          `${where}: ${e.name} by value`,
        );
      }
      if (sa) assert.equal(tpl.spec.serviceAccountName, sa.metadata.name, where);
      assert.equal(tpl.spec.automountServiceAccountToken, true, `${where}: needs the API token`);
      if (policy) assert.equal(envValue(c, 'POLICY_NAME'), policy.metadata.name, where);
      if (component === 'front') {
        const spec = (policy?.spec ?? {}) as { cache?: { ttlMs: number; maxBytes: number } };
        if (policy) assert.equal(envValue(c, 'CACHE_TTL_MS'), String(spec.cache?.ttlMs), where);
        if (policy) assert.equal(envValue(c, 'CACHE_MAX_BYTES'), String(spec.cache?.maxBytes), where);
      }
    }
  }
});

test('database URLs: origins and orders on the primary, catalog replicas (and order lookups) on a standby, password from the Secret', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const external = r.name.startsWith('external-db');
    // The client (not headless) Service of a PostgreSQL role.
    const pgService = (role: string) =>
      byKind(r.objects, 'Service').find((s) => {
        const spec = s.spec as { selector: Record<string, string>; clusterIP?: string };
        return (
          spec.clusterIP !== 'None' &&
          spec.selector['app.kubernetes.io/component'] === 'postgresql' &&
          spec.selector['role'] === role
        );
      })?.metadata.name;
    const primaryHost = external ? 'pg-primary.databases.svc' : pgService('primary');
    for (const d of byKind(r.objects, 'Deployment').filter((x) => componentOf(x) !== 'front')) {
      const c = podTemplate(d)!.spec.containers[0]!;
      const where = `${r.name}: ${d.metadata.name}`;
      const replica = componentOf(d) === 'catalog' && labelsOf(d)['role'] === 'replica';
      const variable = replica ? 'DATABASE_REPLICA_URL' : 'DATABASE_URL';
      const url = new URL(envValue(c, variable) ?? 'missing://');
      assert.equal(url.protocol, 'postgres:', `${where}: ${variable}`);
      assert.equal(url.password, '', `${where}: ${variable} must not carry the password`);
      assert.equal(env(c, 'PGPASSWORD')?.valueFrom?.secretKeyRef?.key, 'database-password', where);
      // The pair's standbys (role=standby), or Patroni's replicas (role=replica, set by Patroni).
      const standbyHost = external
        ? 'pg-standby.databases.svc'
        : (pgService('standby') ?? pgService('replica'));
      if (componentOf(d) === 'order') {
        // Order lookups read the standby first, when there is one (they survive the primary).
        const lookups = envValue(c, 'DATABASE_REPLICA_URL');
        if (standbyHost) assert.equal(new URL(lookups ?? 'missing://').hostname, standbyHost, where);
        else assert.equal(lookups, undefined, `${where}: no standby, no DATABASE_REPLICA_URL`);
      } else if (!replica) {
        assert.equal(env(c, 'DATABASE_REPLICA_URL'), undefined, where);
      }
      if (replica) assert.equal(env(c, 'DATABASE_URL'), undefined, where);
      let expectedHost = primaryHost;
      if (replica && standbyHost) expectedHost = standbyHost;
      assert.equal(url.hostname, expectedHost, `${where}: ${variable} host`);
      if (!external) {
        assert.ok(
          byKind(r.objects, 'Service').some((s) => s.metadata.name === url.hostname),
          `${where}: ${url.hostname} is a Service of the release`,
        );
      }
    }
  }
});

test('PostgreSQL: primary + pg_basebackup standby, pg_isready probes, volumes, synchronous standby', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const sts = byKind(r.objects, 'StatefulSet');
    if (r.name.startsWith('external-db')) {
      assert.equal(sts.length, 0, `${r.name}: no bundled PostgreSQL with an external database`);
      continue;
    }
    if (patroniSet(r.objects)) {
      // postgresql.engine=patroni: one StatefulSet, none of the pair (the Patroni tests below).
      assert.equal(sts.length, 1, `${r.name}: only the Patroni StatefulSet`);
      assert.ok(
        !byKind(r.objects, 'ConfigMap').some((cm) => 'bootstrap-standby.sh' in ((cm.data as object) ?? {})),
        `${r.name}: no pg_basebackup script`,
      );
      continue;
    }
    const primary = sts.find((s) => labelsOf(s)['role'] === 'primary');
    const standby = sts.find((s) => labelsOf(s)['role'] === 'standby');
    assert.ok(primary, `${r.name}: primary StatefulSet`);
    assert.equal((primary.spec as { replicas: number }).replicas, 1, `${r.name}: one primary`);
    for (const s of [primary, standby].filter((x): x is K8sObject => Boolean(x))) {
      const tpl = podTemplate(s)!;
      const c = tpl.spec.containers[0]!;
      const where = `${r.name}: ${s.metadata.name}`;
      assert.match(c.image, /(^|\/)(library\/)?postgres:/, `${where}: the official postgres image`);
      assert.equal(tpl.spec.automountServiceAccountToken, false, `${where}: no API token`);
      for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
        assert.equal(p?.exec?.command[0], 'pg_isready', `${where}: pg_isready probes`);
      }
      assert.ok(
        c.volumeMounts?.some((m) => m.mountPath === '/var/lib/postgresql'),
        `${where}: data volume`,
      );
      assert.ok(
        c.volumeMounts?.some((m) => m.mountPath === '/var/run/postgresql'),
        `${where}: socket dir`,
      );
      const spec = s.spec as { volumeClaimTemplates?: unknown[]; serviceName: string };
      const hasPvc = Boolean(spec.volumeClaimTemplates?.length);
      const emptyData = tpl.spec.volumes?.some((v) => v.name === 'data' && v.emptyDir);
      assert.ok(hasPvc !== Boolean(emptyData), `${where}: data is a PVC or (persistence off) an emptyDir`);
      assert.ok(named(r.objects, 'Service', spec.serviceName), `${where}: headless Service`);
    }
    const args = podTemplate(primary)!.spec.containers[0]!.args ?? [];
    const syncArg = args.find((a) => a.startsWith('synchronous_standby_names='));
    if (standby && !r.name.startsWith('existing-secret')) {
      assert.equal(syncArg, 'synchronous_standby_names=*', `${r.name}: strict commits wait for the standby`);
    } else {
      assert.equal(syncArg, undefined, `${r.name}: no synchronous standby without one (or when disabled)`);
    }
    if (standby) {
      const init = podTemplate(standby)!.spec.initContainers ?? [];
      assert.equal(init.length, 1, `${r.name}: standby bootstrap init container`);
      const script = byKind(r.objects, 'ConfigMap').find((cm) => componentOf(cm) === 'postgresql');
      const data = (script?.data ?? {}) as Record<string, string>;
      assert.match(data['bootstrap-standby.sh'] ?? '', /pg_basebackup .*--write-recovery-conf/s);
      assert.match(data['bootstrap-standby.sh'] ?? '', /--slot=/);
      assert.match(data['10-bazar-roles.sh'] ?? '', /GRANT pg_monitor TO/);
      assert.match(data['10-bazar-roles.sh'] ?? '', /REPLICATION LOGIN/);
      assert.match(data['10-bazar-roles.sh'] ?? '', /SET synchronous_commit = local/);
      assert.match(data['pg_hba.conf'] ?? '', /host\s+replication\s+replicator\s+all\s+scram-sha-256/);
    }
  }
});

// ---------------------------------------------------------------- postgresql.engine=patroni

const PATRONI_VALUES = () => ciValuesFiles().find((f) => f.endsWith('patroni-values.yaml'));

/** The CI render of charts/bazar/ci/patroni-values.yaml (three members, strict). */
function patroniRender(helm: string): Render {
  const r = all(helm).find((x) => x.name === 'patroni-values.yaml');
  assert.ok(r, 'charts/bazar/ci/patroni-values.yaml is rendered');
  return r;
}

function patroniContainer(objects: K8sObject[]): { sts: K8sObject; tpl: PodTemplate; c: Container } {
  const sts = patroniSet(objects);
  assert.ok(sts, 'the Patroni StatefulSet');
  const tpl = podTemplate(sts)!;
  return { sts, tpl, c: tpl.spec.containers.find((x) => x.name === 'patroni')! };
}

/** bootstrap.dcs as the chart passes it to the image's entrypoint (PATRONI_DCS_*). */
function dcsEnv(c: Container): Record<string, string> {
  return Object.fromEntries(
    (c.env ?? [])
      .filter((e) => e.name.startsWith('PATRONI_DCS_'))
      .map((e) => [e.name.slice('PATRONI_DCS_'.length), e.value ?? '']),
  );
}

test('patroni is the default engine (a render cannot look up a release, so it is patroni); it replaces the pair, keeps the Service names and the services untouched', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const pair = renderChart(tools.helm, { set: ['postgresql.engine=pair'] });
  assert.equal(patroniSet(pair.objects), undefined, 'the pair renders no Patroni StatefulSet');
  const patroni = renderChart(tools.helm);
  const names = (objects: K8sObject[], kind: string) =>
    byKind(objects, kind)
      .map((o) => o.metadata.name)
      .sort();
  assert.deepEqual(names(patroni.objects, 'StatefulSet'), ['bazar-patroni']);
  // The services' database hosts are the same Services under both engines.
  for (const name of ['bazar-postgresql', 'bazar-postgresql-standby']) {
    assert.ok(named(pair.objects, 'Service', name));
    assert.ok(named(patroni.objects, 'Service', name));
  }
  // The writers' waits follow the engine (Patroni acts once per loop_wait; the pair never fails over).
  const WAITS = ['SYNC_COMMIT_TIMEOUT_MS', 'PRIMARY_WAIT_MS', 'UPSTREAM_WRITE_TIMEOUT_MS'];
  const env = (objects: K8sObject[], waits: boolean) =>
    byKind(objects, 'Deployment').map((d) => ({
      name: d.metadata.name,
      env: (podTemplate(d)!.spec.containers[0]!.env ?? []).filter(
        (e: { name: string }) => WAITS.includes(e.name) === waits,
      ),
    }));
  assert.deepEqual(env(patroni.objects, false), env(pair.objects, false), 'the service pods are the same');
  const waits = (objects: K8sObject[], name: string) =>
    Object.fromEntries(
      env(objects, true)
        .find((d) => d.name === name)!
        .env.map((e: { name: string; value?: string }) => [e.name, e.value]),
    );
  // loop_wait 10 s: the wait for a primary one loop, for the standby a loop and 5 s, the fronts' write
  // timeout both with the announcements (2 x 1000), a refusal (1000) and 2000 to spare.
  assert.deepEqual(waits(patroni.objects, 'bazar-order-origin'), {
    SYNC_COMMIT_TIMEOUT_MS: '15000',
    PRIMARY_WAIT_MS: '10000',
    UPSTREAM_WRITE_TIMEOUT_MS: '30000',
  });
  assert.deepEqual(waits(patroni.objects, 'bazar-front'), { UPSTREAM_WRITE_TIMEOUT_MS: '30000' });
  assert.deepEqual(waits(pair.objects, 'bazar-order-origin'), {
    SYNC_COMMIT_TIMEOUT_MS: '2000',
    PRIMARY_WAIT_MS: '0',
    UPSTREAM_WRITE_TIMEOUT_MS: '5000',
  });
  assert.deepEqual(waits(pair.objects, 'bazar-front'), { UPSTREAM_WRITE_TIMEOUT_MS: '5000' });
  const tuned = renderChart(tools.helm, { set: ['postgresql.patroni.loopWait=5'] });
  assert.deepEqual(waits(tuned.objects, 'bazar-catalog-origin'), {
    SYNC_COMMIT_TIMEOUT_MS: '10000',
    PRIMARY_WAIT_MS: '5000',
    UPSTREAM_WRITE_TIMEOUT_MS: '20000',
  });
  // An external database wins over either engine.
  const external = renderChart(tools.helm, {
    set: [
      'postgresql.engine=patroni',
      'postgresql.external.enabled=true',
      'postgresql.external.primaryHost=db',
      'auth.databasePassword=x',
    ],
  });
  assert.equal(byKind(external.objects, 'StatefulSet').length, 0);
  assert.equal(byKind(external.objects, 'Role').length, 1, 'no Patroni Role with an external database');
});

test('Patroni StatefulSet: image, members, hardened pod, REST API probes, Secret and downward-API env, volumes', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  assert.ok(PATRONI_VALUES(), 'charts/bazar/ci/patroni-values.yaml exists');
  const r = patroniRender(tools.helm);
  const { sts, tpl, c } = patroniContainer(r.objects);
  const spec = sts.spec as {
    replicas: number;
    serviceName: string;
    podManagementPolicy: string;
    selector: { matchLabels: Record<string, string> };
    persistentVolumeClaimRetentionPolicy: Record<string, string>;
    volumeClaimTemplates: Array<{
      metadata: { name: string; labels: Record<string, string> };
      spec: { accessModes: string[]; resources: { requests: { storage: string } } };
    }>;
  };
  assert.equal(sts.metadata.name, 'bazar-patroni');
  assert.equal(spec.replicas, 3, 'postgresql.patroni.instances');
  assert.equal(spec.podManagementPolicy, 'Parallel');
  assert.match(c.image, /(^|\/)bazar-postgres-patroni:/, 'the image of images/postgres-patroni');
  assert.deepEqual(
    tpl.spec.containers.map((x) => x.name),
    ['patroni', 'roles'],
  );
  assert.equal(tpl.spec.initContainers, undefined, 'no init container: Patroni bootstraps the members');
  assert.equal(c.command, undefined, "the image's entrypoint (it writes bootstrap.dcs, then execs patroni)");
  assert.equal(c.args, undefined);
  assert.equal(c.lifecycle, undefined, "no preStop: SIGTERM is Patroni's clean stop");
  assert.equal(tpl.metadata.annotations?.['kubectl.kubernetes.io/default-container'], 'patroni');

  // Labels: Patroni's label selector (PATRONI_KUBERNETES_LABELS + the scope label) is the StatefulSet's;
  // the role label is Patroni's to set, never the template's or the selector's.
  const labels = tpl.metadata.labels;
  assert.ok(selects(spec.selector.matchLabels, labels), 'selector/template');
  assert.equal(labels['role'], undefined, 'no role label in the template');
  assert.equal(spec.selector.matchLabels['role'], undefined, 'no role label in the selector');
  const env = (name: string) => c.env?.find((e) => e.name === name);
  const patroniLabels = JSON.parse(env('PATRONI_KUBERNETES_LABELS')?.value ?? '{}') as Record<string, string>;
  assert.deepEqual(
    { ...patroniLabels, [env('PATRONI_KUBERNETES_SCOPE_LABEL')!.value!]: env('PATRONI_SCOPE')!.value },
    spec.selector.matchLabels,
    'Patroni finds its members by exactly the selector labels',
  );
  assert.equal(labels['cluster-name'], 'bazar-patroni');

  // Patroni's settings.
  const want: Record<string, string> = {
    PATRONI_SCOPE: 'bazar-patroni',
    PATRONI_KUBERNETES_USE_ENDPOINTS: 'false',
    PATRONI_KUBERNETES_ROLE_LABEL: 'role',
    PATRONI_KUBERNETES_LEADER_LABEL_VALUE: 'primary',
    PATRONI_KUBERNETES_FOLLOWER_LABEL_VALUE: 'replica',
    PATRONI_KUBERNETES_STANDBY_LEADER_LABEL_VALUE: 'primary',
    PATRONI_POSTGRESQL_LISTEN: '0.0.0.0:5432',
    PATRONI_RESTAPI_LISTEN: '0.0.0.0:8008',
    PATRONI_SUPERUSER_USERNAME: 'postgres',
    PATRONI_REPLICATION_USERNAME: 'replicator',
    PATRONI_RESTAPI_USERNAME: 'patroni',
  };
  for (const [name, value] of Object.entries(want)) assert.equal(env(name)?.value, value, name);
  const downward: Record<string, string> = {
    PATRONI_NAME: 'metadata.name',
    PATRONI_KUBERNETES_NAMESPACE: 'metadata.namespace',
    PATRONI_KUBERNETES_POD_IP: 'status.podIP',
  };
  for (const [name, path] of Object.entries(downward)) {
    assert.equal(env(name)?.valueFrom?.fieldRef?.fieldPath, path, `${name} from the downward API`);
  }
  const secrets: Record<string, string> = {
    PATRONI_SUPERUSER_PASSWORD: 'postgres-password',
    PATRONI_REPLICATION_PASSWORD: 'replication-password',
    PATRONI_RESTAPI_PASSWORD: 'patroni-api-password',
  };
  for (const [name, key] of Object.entries(secrets)) {
    assert.deepEqual(env(name)?.valueFrom?.secretKeyRef, { name: 'bazar', key }, `${name} from the Secret`);
  }
  for (const e of [...(c.env ?? []), ...tpl.spec.containers[1]!.env!]) {
    assert.ok(!/PASSWORD/.test(e.name) || e.valueFrom?.secretKeyRef, `${e.name} by value`);
  }

  // Hardened: the official image's postgres user, nothing writable but the volumes.
  assert.equal(tpl.spec.securityContext?.runAsUser, 999);
  assert.equal(tpl.spec.securityContext?.fsGroup, 999);
  for (const x of tpl.spec.containers) {
    assert.equal(x.securityContext?.readOnlyRootFilesystem, true, x.name);
    assert.deepEqual(x.securityContext?.capabilities?.drop, ['ALL'], x.name);
    assert.equal(x.securityContext?.allowPrivilegeEscalation, false, x.name);
    assert.ok(x.resources?.requests?.cpu && x.resources.limits?.memory, `${x.name}: requests and limits`);
  }
  const mounts = Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
  assert.equal(mounts['/var/lib/postgresql'], 'data');
  const volume = (name: string) => tpl.spec.volumes?.find((v) => v.name === name);
  for (const path of ['/tmp', '/var/run/postgresql']) {
    assert.ok(volume(mounts[path]!)?.emptyDir, `${path} is an emptyDir`);
  }

  // Patroni's ServiceAccount token (its store is the API server); the services' is another.
  assert.equal(tpl.spec.automountServiceAccountToken, true);
  assert.equal(tpl.spec.serviceAccountName, 'bazar-patroni');
  const servicesSa = podTemplate(byKind(r.objects, 'Deployment')[0]!)!.spec.serviceAccountName;
  assert.notEqual(tpl.spec.serviceAccountName, servicesSa);
  assert.ok(named(r.objects, 'ServiceAccount', 'bazar-patroni'));

  // Probes on the REST API.
  const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  assert.deepEqual(ports, { postgresql: 5432, patroni: 8008 });
  assert.deepEqual(c.livenessProbe?.httpGet, { path: '/liveness', port: 'patroni' });
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readiness', port: 'patroni' });
  assert.deepEqual(c.startupProbe?.httpGet, { path: '/liveness', port: 'patroni' });
  assert.ok(tpl.spec.terminationGracePeriodSeconds! >= 30, 'time for a clean stop and the lock hand-over');

  // The data: one claim per member.
  assert.equal(spec.volumeClaimTemplates.length, 1);
  const claim = spec.volumeClaimTemplates[0]!;
  assert.equal(claim.metadata.name, 'data');
  assert.deepEqual(claim.spec.accessModes, ['ReadWriteOnce']);
  assert.equal(claim.spec.resources.requests.storage, '5Gi');
  assert.ok(selects(spec.selector.matchLabels, claim.metadata.labels), 'claims carry the member labels');
  assert.deepEqual(spec.persistentVolumeClaimRetentionPolicy, {
    whenDeleted: 'Retain',
    whenScaled: 'Retain',
  });
  assert.equal(volume('data'), undefined, 'data is not an emptyDir');
  const ephemeral = renderChart(tools.helm, {
    set: ['postgresql.engine=patroni', 'postgresql.patroni.persistence.enabled=false'],
  });
  const e = patroniContainer(ephemeral.objects);
  assert.equal((e.sts.spec as { volumeClaimTemplates?: unknown }).volumeClaimTemplates, undefined);
  assert.ok(e.tpl.spec.volumes?.find((v) => v.name === 'data')?.emptyDir);

  // The PDB: one member at a time.
  const pdb = named(r.objects, 'PodDisruptionBudget', 'bazar-patroni');
  assert.equal((pdb.spec as { maxUnavailable: number }).maxUnavailable, 1);
  const single = renderChart(tools.helm, {
    set: ['postgresql.engine=patroni', 'postgresql.patroni.instances=1'],
  });
  assert.equal(
    byKind(single.objects, 'PodDisruptionBudget').filter((p) => componentOf(p) === 'postgresql').length,
    0,
  );
});

test('Patroni Services: primary by role=primary, replicas by role=replica (same names as the pair), and the headless one', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const r = patroniRender(tools.helm);
  const { sts, tpl } = patroniContainer(r.objects);
  type SvcSpec = {
    selector: Record<string, string>;
    clusterIP?: string;
    ports: Array<{ name: string; port: number; targetPort: string }>;
  };
  const svc = (name: string) => named(r.objects, 'Service', name).spec as SvcSpec;
  const members = tpl.metadata.labels;
  const primary = svc('bazar-postgresql');
  assert.deepEqual(primary.selector, {
    ...(sts.spec as { selector: { matchLabels: object } }).selector.matchLabels,
    role: 'primary',
  });
  assert.ok(selects(primary.selector, { ...members, role: 'primary' }), 'the leader');
  assert.ok(!selects(primary.selector, { ...members, role: 'replica' }), 'never a replica');
  assert.ok(!selects(primary.selector, members), 'never an unlabelled member (starting, or demoted)');
  const replicas = svc('bazar-postgresql-standby');
  assert.equal(replicas.selector['role'], 'replica');
  assert.ok(selects(replicas.selector, { ...members, role: 'replica' }));
  assert.ok(!selects(replicas.selector, { ...members, role: 'primary' }));
  for (const s of [primary, replicas]) {
    assert.deepEqual(s.ports, [
      { name: 'postgresql', port: 5432, targetPort: 'postgresql', protocol: 'TCP' },
    ]);
    assert.notEqual(s.clusterIP, 'None');
    // No service pod (they carry role=origin|replica too) is ever selected.
    for (const d of byKind(r.objects, 'Deployment')) {
      assert.ok(!selects(s.selector, podTemplate(d)!.metadata.labels), d.metadata.name);
    }
  }
  const headless = svc((sts.spec as { serviceName: string }).serviceName);
  assert.equal(headless.clusterIP, 'None');
  assert.ok(selects(headless.selector, members));
  // ConfigMap mode needs no <scope>-config Service (only Endpoints mode does).
  assert.ok(!byKind(r.objects, 'Service').some((s) => s.metadata.name === 'bazar-patroni-config'));
  // One instance: no replicas, so no replicas Service; catalog replicas then read the primary.
  const single = renderChart(tools.helm, {
    set: ['postgresql.engine=patroni', 'postgresql.patroni.instances=1'],
  });
  assert.ok(!byKind(single.objects, 'Service').some((s) => s.metadata.name === 'bazar-postgresql-standby'));
  const replica = named(single.objects, 'Deployment', 'bazar-catalog-replica');
  const url = podTemplate(replica)!.spec.containers[0]!.env?.find((e) => e.name === 'DATABASE_REPLICA_URL');
  assert.equal(new URL(url?.value ?? 'missing://').hostname, 'bazar-postgresql');
});

test('Patroni RBAC: its own ServiceAccount and a namespaced Role on configmaps and pods, nothing cluster-wide', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const r = patroniRender(tools.helm);
  assert.equal(byKind(r.objects, 'ClusterRole').length, 0);
  assert.equal(byKind(r.objects, 'ClusterRoleBinding').length, 0);
  const role = named(r.objects, 'Role', 'bazar-patroni');
  assert.equal(role.metadata.namespace, 'bazar-test');
  assert.deepEqual(role.rules, [
    {
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
    },
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  ]);
  const binding = named(r.objects, 'RoleBinding', 'bazar-patroni');
  assert.deepEqual(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: 'bazar-patroni',
  });
  assert.deepEqual(binding.subjects, [
    { kind: 'ServiceAccount', name: 'bazar-patroni', namespace: 'bazar-test' },
  ]);
  const sa = named(r.objects, 'ServiceAccount', 'bazar-patroni');
  assert.equal(sa.automountServiceAccountToken, false, 'only the pods that need it mount the token');
  // rbac.create=false and an existing ServiceAccount: neither is rendered.
  const own = renderChart(tools.helm, {
    set: [
      'postgresql.engine=patroni',
      'rbac.create=false',
      'postgresql.patroni.serviceAccount.create=false',
      'postgresql.patroni.serviceAccount.name=my-patroni',
    ],
  });
  assert.equal(byKind(own.objects, 'Role').length, 0);
  assert.ok(!byKind(own.objects, 'ServiceAccount').some((s) => componentOf(s) === 'postgresql'));
  assert.equal(patroniContainer(own.objects).tpl.spec.serviceAccountName, 'my-patroni');
});

test('Patroni bootstrap knobs: ttl, loop_wait, retry_timeout, lag, synchronous mode from the consistency mode, parameters', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const strict = dcsEnv(patroniContainer(patroniRender(tools.helm).objects).c);
  const params = (dcs: Record<string, string>) =>
    JSON.parse(dcs['POSTGRESQL_PARAMETERS'] ?? '{}') as Record<string, string>;
  assert.deepEqual(
    { ...strict, POSTGRESQL_PARAMETERS: undefined },
    {
      TTL: '30',
      LOOP_WAIT: '10',
      RETRY_TIMEOUT: '10',
      MAXIMUM_LAG_ON_FAILOVER: '1048576',
      // strict: only a synchronous replica is promoted; with none left Patroni names none (after taking
      // them off its sync key) and the writers fence their writes instead of waiting (G6).
      SYNCHRONOUS_MODE: 'on',
      SYNCHRONOUS_MODE_STRICT: 'false',
      // Three members, strict: both replicas confirm every commit (the catalog replicas read either).
      SYNCHRONOUS_NODE_COUNT: '2',
      PRIMARY_START_TIMEOUT: '300',
      PRIMARY_STOP_TIMEOUT: '0',
      FAILSAFE_MODE: 'false',
      CHECK_TIMELINE: 'false',
      POSTGRESQL_PARAMETERS: undefined,
    },
  );
  const p = params(strict);
  assert.equal(p['wal_level'], 'replica');
  assert.equal(p['hot_standby'], 'on');
  assert.equal(p['wal_log_hints'], 'on', 'pg_rewind');
  assert.equal(p['max_wal_senders'], '10');
  assert.equal(p['max_replication_slots'], '10');
  assert.equal(p['max_slot_wal_keep_size'], '2GB', 'postgresql.parameters apply');
  assert.equal(p['synchronous_standby_names'], undefined, 'Patroni manages it in synchronous mode');

  // session / eventual: asynchronous; synchronous_standby_names stays, so a StorePolicy switched to
  // strict live still waits for a replica.
  for (const mode of ['session', 'eventual']) {
    const r = renderChart(tools.helm, {
      valuesFile: PATRONI_VALUES(),
      set: [`storePolicy.consistencyMode=${mode}`],
    });
    const dcs = dcsEnv(patroniContainer(r.objects).c);
    assert.equal(dcs['SYNCHRONOUS_MODE'], 'off', mode);
    assert.equal(dcs['SYNCHRONOUS_MODE_STRICT'], 'false', mode);
    assert.equal(params(dcs)['synchronous_standby_names'], '*', mode);
    assert.equal(dcs['SYNCHRONOUS_NODE_COUNT'], '1', mode);
  }
  // The chart's defaults: two members, strict: the one replica.
  const pair = dcsEnv(patroniContainer(renderChart(tools.helm, {}).objects).c);
  assert.equal(pair['SYNCHRONOUS_NODE_COUNT'], '1');
  // Every knob is a value.
  const r = renderChart(tools.helm, {
    valuesFile: PATRONI_VALUES(),
    set: [
      'postgresql.patroni.ttl=60',
      'postgresql.patroni.loopWait=5',
      'postgresql.patroni.retryTimeout=20',
      'postgresql.patroni.maximumLagOnFailover=0',
      'postgresql.patroni.maximumLagOnSyncnode=33554432',
      'postgresql.patroni.synchronousMode=quorum',
      'postgresql.patroni.synchronousModeStrict=false',
      'postgresql.patroni.synchronousNodeCount=2',
      'postgresql.patroni.primaryStartTimeout=60',
      'postgresql.patroni.primaryStopTimeout=30',
      'postgresql.patroni.failsafeMode=true',
      'postgresql.patroni.checkTimeline=true',
      'postgresql.parameters.max_connections=300',
    ],
  });
  const dcs = dcsEnv(patroniContainer(r.objects).c);
  assert.deepEqual(
    { ...dcs, POSTGRESQL_PARAMETERS: undefined },
    {
      TTL: '60',
      LOOP_WAIT: '5',
      RETRY_TIMEOUT: '20',
      MAXIMUM_LAG_ON_FAILOVER: '0',
      MAXIMUM_LAG_ON_SYNCNODE: '33554432',
      SYNCHRONOUS_MODE: 'quorum',
      SYNCHRONOUS_MODE_STRICT: 'false',
      SYNCHRONOUS_NODE_COUNT: '2',
      PRIMARY_START_TIMEOUT: '60',
      PRIMARY_STOP_TIMEOUT: '30',
      FAILSAFE_MODE: 'true',
      CHECK_TIMELINE: 'true',
      POSTGRESQL_PARAMETERS: undefined,
    },
  );
  assert.equal(params(dcs)['max_connections'], '300');
});

test('Patroni: bad settings are refused with a clear message (ttl, synchronous replicas, parameters)', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const cases: Array<[string[], RegExp]> = [
    // loop_wait + 2 * retry_timeout must not exceed ttl.
    [
      ['postgresql.patroni.ttl=25'],
      /loopWait \+ 2 \* retryTimeout \(10 \+ 2 \* 10 = 30 s\) must not exceed ttl \(25 s\)/,
    ],
    [['postgresql.patroni.ttl=40', 'postgresql.patroni.retryTimeout=16'], /must not exceed ttl \(40 s\)/],
    [['postgresql.patroni.ttl=10'], /ttl.*minimum|minimum.*ttl|want 20/],
    [
      ['postgresql.patroni.synchronousNodeCount=3'],
      /synchronousNodeCount \(3\) must be smaller than postgresql.patroni.instances \(3\)/,
    ],
    // Strict reads from a replica that does not confirm commits could go back in time.
    [
      ['postgresql.patroni.synchronousNodeCount=1'],
      /synchronousNodeCount \(1\) must be instances - 1 \(2\) in strict consistency mode/,
    ],
    [
      ['storePolicy.consistencyMode=session', 'postgresql.patroni.synchronousModeStrict=true'],
      /needs synchronous mode/,
    ],
    [['postgresql.parameters.wal_log_hints=off'], /wal_log_hints must stay on/],
    [['postgresql.parameters.synchronous_standby_names=x'], /postgresql.synchronousStandbyNames/],
    [['postgresql.patroni.primaryStopTimeout=90'], /must exceed primaryStopTimeout/],
    [['postgresql.patroni.instances=6'], /instances/],
    [['postgresql.patroni.synchronousMode=always'], /synchronousMode/],
  ];
  for (const [sets, message] of cases) {
    const res = run(tools.helm, [
      'template',
      'bazar',
      CHART,
      '--values',
      PATRONI_VALUES()!,
      ...sets.flatMap((s) => ['--set', s]),
    ]);
    assert.notEqual(res.status, 0, `${sets.join(' ')} should be refused`);
    assert.match(res.stderr, message, `${sets.join(' ')}: ${res.stderr}`);
  }
  // At the limit it renders: 10 + 2 * 10 = 30 = ttl.
  const ok = run(tools.helm, [
    'template',
    'bazar',
    CHART,
    '--values',
    PATRONI_VALUES()!,
    '--set',
    'postgresql.patroni.ttl=30',
  ]);
  assert.equal(ok.status, 0, ok.stderr);
});

test("Patroni: the roles container creates the services' role and database on the primary, only if missing", (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const r = patroniRender(tools.helm);
  const { tpl } = patroniContainer(r.objects);
  const roles = tpl.spec.containers.find((c) => c.name === 'roles')!;
  assert.deepEqual(roles.command, ['/bin/sh', '/opt/bazar/ensure-roles.sh']);
  const env = Object.fromEntries((roles.env ?? []).map((e) => [e.name, e]));
  assert.equal(env['BAZAR_DB_USER']?.value, 'bazar');
  assert.equal(env['BAZAR_DB_NAME']?.value, 'bazar');
  assert.deepEqual(env['BAZAR_DB_PASSWORD']?.valueFrom?.secretKeyRef, {
    name: 'bazar',
    key: 'database-password',
  });
  assert.ok(
    roles.volumeMounts?.some((m) => m.mountPath === '/var/run/postgresql'),
    'the Unix socket',
  );
  const cm = named(r.objects, 'ConfigMap', 'bazar-patroni-scripts');
  const data = cm.data as Record<string, string>;
  assert.match(data['ensure-roles.sh'] ?? '', /pg_is_in_recovery\(\)/, 'acts on the primary only');
  assert.match(data['ensure-roles.sh'] ?? '', /synchronous_commit=local/, 'never waits for a standby');
  assert.match(data['ensure-roles.sh'] ?? '', /trap .* TERM/, 'stops at once on SIGTERM');
  const sql = data['ensure-roles.sql'] ?? '';
  for (const re of [
    /NOT EXISTS \(SELECT FROM pg_roles WHERE rolname = :'app_user'\)/,
    /CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password'/,
    /GRANT pg_monitor TO :"app_user"/,
    /CREATE DATABASE :"app_db" OWNER :"app_user"/,
    /\\getenv app_password BAZAR_DB_PASSWORD/,
  ]) {
    assert.match(sql, re);
  }
  assert.equal(
    tpl.metadata.annotations?.['checksum/scripts']?.length,
    64,
    'the pods roll when the scripts change',
  );
});

test("RBAC: one namespaced Role with exactly the three rules, bound to the pods' ServiceAccount", (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    assert.equal(byKind(r.objects, 'ClusterRole').length, 0, `${r.name}: nothing cluster-wide`);
    assert.equal(byKind(r.objects, 'ClusterRoleBinding').length, 0, `${r.name}: nothing cluster-wide`);
    // The services' Role; Patroni's (postgresql.engine=patroni) is checked in a test of its own.
    const roles = byKind(r.objects, 'Role').filter((x) => componentOf(x) !== 'postgresql');
    assert.equal(roles.length, 1, r.name);
    assert.equal(
      byKind(r.objects, 'Role').length,
      patroniSet(r.objects) ? 2 : 1,
      `${r.name}: Roles (the services', and Patroni's with that engine)`,
    );
    const role = roles[0]!;
    assert.deepEqual(role.rules, [
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['bazar.dev'], resources: ['storepolicies'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['bazar.dev'], resources: ['storepolicies/status'], verbs: ['get', 'update', 'patch'] },
    ]);
    const binding = named(r.objects, 'RoleBinding', role.metadata.name);
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: role.metadata.name,
    });
    const sa = podTemplate(byKind(r.objects, 'Deployment')[0]!)!.spec.serviceAccountName;
    assert.deepEqual(
      binding.subjects,
      [{ kind: 'ServiceAccount', name: sa, namespace: 'bazar-test' }],
      r.name,
    );
  }
});

test('labels and selectors: recommended labels everywhere, selectors match their pods exactly', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const ws = workloads(r.objects);
    for (const o of r.objects) {
      const l = labelsOf(o);
      for (const k of [
        'app.kubernetes.io/name',
        'app.kubernetes.io/instance',
        'app.kubernetes.io/managed-by',
      ]) {
        assert.ok(l[k], `${r.name}: ${o.kind}/${o.metadata.name} lacks label ${k}`);
      }
      assert.equal(o.metadata.namespace, 'bazar-test', `${r.name}: ${o.kind}/${o.metadata.name} namespace`);
    }
    for (const { o, tpl } of ws) {
      if (o.kind === 'Pod') continue;
      const sel = (o.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      assert.ok(
        sel['app.kubernetes.io/name'] && sel['app.kubernetes.io/instance'],
        `${o.metadata.name}: name+instance`,
      );
      assert.ok(selects(sel, tpl.metadata.labels), `${r.name}: ${o.metadata.name} selector/template`);
      // No workload's selector may capture another workload's pods.
      for (const other of ws) {
        if (other.o === o) continue;
        assert.ok(
          !selects(sel, other.tpl.metadata.labels),
          `${o.metadata.name} selects ${other.o.metadata.name}'s pods`,
        );
      }
    }
    for (const s of byKind(r.objects, 'Service')) {
      const sel = (s.spec as { selector: Record<string, string> }).selector;
      // Patroni's members are selected by the role label Patroni puts on them at run time.
      assert.ok(
        ws.some((w) => w.o.kind !== 'Pod' && runtimeLabels(w).some((l) => selects(sel, l))),
        `${r.name}: Service ${s.metadata.name} selects nothing`,
      );
    }
    for (const pdb of byKind(r.objects, 'PodDisruptionBudget')) {
      const sel = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      const hits = ws.filter((w) => w.o.kind !== 'Pod' && selects(sel, w.tpl.metadata.labels));
      if (sel.role === undefined && sel['app.kubernetes.io/component'] === 'order') {
        // Order's one budget for its two one-pod Deployments (both take purchases).
        assert.deepEqual(
          hits.map((h) => h.o.metadata.name).sort(),
          [`${pdb.metadata.name}-origin`, `${pdb.metadata.name}-replica`],
          `${r.name}: PDB ${pdb.metadata.name} covers both order Deployments`,
        );
        continue;
      }
      assert.equal(hits.length, 1, `${r.name}: PDB ${pdb.metadata.name} must cover exactly one workload`);
      assert.equal(hits[0]!.o.metadata.name, pdb.metadata.name, r.name);
    }
    for (const hpa of byKind(r.objects, 'HorizontalPodAutoscaler')) {
      const ref = (hpa.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
      const target = named(r.objects, ref.kind, ref.name);
      assert.equal(
        (target.spec as { replicas?: number }).replicas,
        undefined,
        `${r.name}: ${ref.name} leaves replicas to the HPA`,
      );
    }
  }
});

test('several nodes: every workload spread softly over nodes, the pair apart, off a lost node in nodeLossTolerationSeconds', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  type Spread = { topologyKey: string; whenUnsatisfiable: string };
  type Toleration = { key?: string; operator?: string; effect?: string; tolerationSeconds?: number };
  const specOf = (tpl: PodTemplate) =>
    tpl.spec as unknown as {
      topologySpreadConstraints?: Spread[];
      tolerations?: Toleration[];
      affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: unknown[] } };
    };
  const nodeLoss = (tpl: PodTemplate) =>
    (specOf(tpl).tolerations ?? [])
      .filter((x) => x.key?.startsWith('node.kubernetes.io/') && x.effect === 'NoExecute')
      .map((x) => `${x.key}=${x.tolerationSeconds}`)
      .sort();
  const lost = (s: number) => [`node.kubernetes.io/not-ready=${s}`, `node.kubernetes.io/unreachable=${s}`];
  for (const set of [[], ['postgresql.engine=pair']]) {
    const r = renderChart(tools.helm, { set });
    for (const { o, tpl } of workloads(r.objects).filter((w) => w.o.kind !== 'Pod')) {
      const name = `${set.join(',') || 'defaults'}: ${o.kind} ${o.metadata.name}`;
      assert.deepEqual(nodeLoss(tpl), lost(30), `${name}: off a not-ready or unreachable node after 30 s`);
      const pair = componentOf(o) === 'postgresql' && !patroniSet([o]);
      if (pair) {
        assert.equal(
          specOf(tpl).affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.length,
          1,
          `${name}: kept apart from the other PostgreSQL pod, softly`,
        );
      } else {
        assert.deepEqual(
          specOf(tpl).topologySpreadConstraints?.map((c) => [c.topologyKey, c.whenUnsatisfiable]),
          [['kubernetes.io/hostname', 'ScheduleAnyway']],
          `${name}: spread over nodes, softly`,
        );
        // Order's origin and replica both take purchases: kept apart across the two Deployments too.
        const apart = specOf(tpl).affinity?.podAntiAffinity
          ?.preferredDuringSchedulingIgnoredDuringExecution as
          | Array<{
              podAffinityTerm: {
                topologyKey: string;
                labelSelector: { matchLabels: Record<string, string> };
              };
            }>
          | undefined;
        if (componentOf(o) === 'order') {
          assert.deepEqual(
            apart?.map((a) => [
              a.podAffinityTerm.topologyKey,
              a.podAffinityTerm.labelSelector.matchLabels.role,
            ]),
            [['kubernetes.io/hostname', undefined]],
            `${name}: apart from the other order pods of either role, softly`,
          );
          assert.equal(
            apart?.[0]?.podAffinityTerm.labelSelector.matchLabels['app.kubernetes.io/component'],
            'order',
          );
        } else {
          assert.equal(apart, undefined, `${name}: no anti-affinity of the chart's own`);
        }
      }
    }
  }
  // null keeps Kubernetes' 300 s (no toleration of ours); a workload's own toleration of a taint wins.
  const none = renderChart(tools.helm, { set: ['nodeLossTolerationSeconds=null'] });
  for (const { tpl } of workloads(none.objects)) assert.deepEqual(nodeLoss(tpl), []);
  const own = renderChart(tools.helm, {
    set: [
      'front.tolerations[0].key=node.kubernetes.io/unreachable',
      'front.tolerations[0].operator=Exists',
      'front.tolerations[0].effect=NoExecute',
      'front.tolerations[0].tolerationSeconds=5',
    ],
  });
  const front = workloads(own.objects).find((w) => componentOf(w.o) === 'front')!;
  assert.deepEqual(nodeLoss(front.tpl), [
    'node.kubernetes.io/not-ready=30',
    'node.kubernetes.io/unreachable=5',
  ]);
});

test('PDBs exist exactly for workloads that can have more than one pod, and for order when each of its roles has one', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const hpas = byKind(r.objects, 'HorizontalPodAutoscaler');
    const pdbs = byKind(r.objects, 'PodDisruptionBudget');
    const minOf = (d: K8sObject): number => {
      const hpa = hpas.find(
        (h) => (h.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === d.metadata.name,
      );
      return hpa
        ? (hpa.spec as { minReplicas: number }).minReplicas
        : (d.spec as { replicas: number }).replicas;
    };
    const deployments = byKind(r.objects, 'Deployment');
    for (const d of deployments) {
      const min = minOf(d);
      const pdb = pdbs.find((p) => p.metadata.name === d.metadata.name);
      assert.equal(Boolean(pdb), min > 1, `${r.name}: ${d.metadata.name} (min ${min} pods) PDB`);
    }
    // The services' budgets let a drain evict a pod that is not Ready (Patroni's keeps Kubernetes' default).
    for (const p of pdbs.filter((x) => componentOf(x) !== 'postgresql')) {
      const policy = (p.spec as { unhealthyPodEvictionPolicy?: string }).unhealthyPodEvictionPolicy;
      assert.equal(policy, 'AlwaysAllow', `${r.name}: ${p.metadata.name}`);
    }
    const order = deployments.filter((d) => componentOf(d) === 'order');
    const serviceBudget = pdbs.find(
      (p) =>
        componentOf(p) === 'order' &&
        (p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels.role ===
          undefined,
    );
    assert.equal(
      Boolean(serviceBudget),
      order.length === 2 && order.every((d) => minOf(d) === 1),
      `${r.name}: order's one budget exactly when each of its roles runs one pod`,
    );
  }
});

test('NetworkPolicies keep catalog, order and PostgreSQL private; the front takes internal traffic', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  type Peer = { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: unknown };
  type Rule = { from?: Peer[]; ports?: Array<{ port: string | number }> };
  for (const r of all(tools.helm)) {
    const nps = byKind(r.objects, 'NetworkPolicy');
    if (r.name.startsWith('minimal')) {
      assert.equal(nps.length, 0, `${r.name}: networkPolicy.enabled=false renders none`);
      continue;
    }
    const ws = workloads(r.objects);
    const podsOf = (component: string, role?: string) =>
      ws.filter(
        (w) =>
          componentOf(w.o) === component && (role === undefined || w.tpl.metadata.labels['role'] === role),
      );
    const policyFor = (component: string) => {
      const np = nps.find((n) => {
        const sel = (n.spec as { podSelector: { matchLabels: Record<string, string> } }).podSelector
          .matchLabels;
        return podsOf(component).every((w) => selects(sel, w.tpl.metadata.labels));
      });
      assert.ok(np, `${r.name}: no NetworkPolicy covers the ${component} pods`);
      const spec = np.spec as { policyTypes: string[]; ingress: Rule[] };
      assert.deepEqual(spec.policyTypes, ['Ingress'], np.metadata.name);
      return spec.ingress;
    };
    const peerComponents = (rules: Rule[]) =>
      rules.flatMap((rule) =>
        (rule.from ?? []).filter((p) => p.podSelector).map((p) => p.podSelector!.matchLabels),
      );
    const allowsFrom = (rules: Rule[], component: string, role?: string) =>
      rules.some((rule) =>
        (rule.from ?? []).some(
          (p) =>
            p.podSelector &&
            podsOf(component, role).length > 0 &&
            podsOf(component, role).every((w) => selects(p.podSelector!.matchLabels, w.tpl.metadata.labels)),
        ),
      );
    const metricsPeers = r.name.startsWith('ingress-hpa-monitoring') ? 1 : 0;

    const front = policyFor('front');
    assert.ok(
      allowsFrom(front, 'catalog') && allowsFrom(front, 'order'),
      `${r.name}: invalidations reach the fronts`,
    );
    // /internal/* has a port of its own: only catalog and order pods may reach it, and every rule that
    // names it has exactly those peers (no open rule, no rule of the public side).
    const internalRules = front.filter((rule) => (rule.ports ?? []).some((p) => p.port === 'internal'));
    assert.ok(internalRules.length > 0, `${r.name}: a rule opens the fronts' internal port`);
    for (const rule of internalRules) {
      assert.ok(rule.from && rule.from.length > 0, `${r.name}: the internal port is never open to all`);
      assert.deepEqual(
        peerComponents([rule])
          .map((sel) => sel['app.kubernetes.io/component'])
          .sort(),
        ['catalog', 'order'],
        `${r.name}: the internal port's peers`,
      );
      assert.ok(
        rule.from.every((p) => p.podSelector && !p.namespaceSelector),
        `${r.name}: internal peers are pods of this release's namespace only`,
      );
    }
    for (const rule of front) {
      assert.ok(rule.ports && rule.ports.length > 0, `${r.name}: every front rule names its port`);
    }

    const catalog = policyFor('catalog');
    assert.ok(allowsFrom(catalog, 'front'), `${r.name}: fronts reach catalog`);
    assert.ok(allowsFrom(catalog, 'catalog', 'replica'), `${r.name}: replicas forward writes to the origin`);
    assert.equal(catalog.length, 1 + metricsPeers, `${r.name}: catalog ingress rules`);
    for (const sel of peerComponents(catalog)) {
      assert.ok(
        ['front', 'catalog'].includes(sel['app.kubernetes.io/component']!),
        `${r.name}: catalog peer ${JSON.stringify(sel)}`,
      );
    }
    const order = policyFor('order');
    assert.ok(allowsFrom(order, 'front'), `${r.name}: fronts reach order`);
    assert.equal(order.length, 1 + metricsPeers, `${r.name}: order ingress rules`);
    assert.deepEqual(
      peerComponents(order).map((s) => s['app.kubernetes.io/component']),
      ['front'],
      `${r.name}: only fronts reach order`,
    );
    if (patroniSet(r.objects)) {
      // Patroni: the database port from the services and the other members (replication, pg_rewind),
      // the REST API (8008, named patroni) from the members only.
      const pg = policyFor('postgresql');
      assert.equal(pg.length, 2, `${r.name}: a database rule and a REST API rule`);
      const rule = (port: string) => {
        const found = pg.filter((x) => (x.ports ?? []).some((p) => p.port === port));
        assert.equal(found.length, 1, `${r.name}: one rule opens ${port}`);
        assert.deepEqual(found[0]!.ports, [{ port, protocol: 'TCP' }], `${r.name}: ${port} alone`);
        for (const p of found[0]!.from ?? []) {
          assert.ok(
            p.podSelector && !p.namespaceSelector,
            `${r.name}: ${port} only from this release's pods`,
          );
        }
        return [found[0]!];
      };
      const db = rule('postgresql');
      assert.ok(allowsFrom(db, 'catalog') && allowsFrom(db, 'order'), `${r.name}: services reach PostgreSQL`);
      assert.ok(allowsFrom(db, 'postgresql'), `${r.name}: members replicate from each other`);
      const api = rule('patroni');
      assert.ok(api[0]!.from && api[0]!.from.length > 0, `${r.name}: the REST API is never open to all`);
      assert.deepEqual(
        peerComponents(api).map((s) => s['app.kubernetes.io/component']),
        ['postgresql'],
        `${r.name}: only the members reach Patroni's REST API`,
      );
      const members = podTemplate(patroniSet(r.objects)!)!.metadata.labels;
      assert.ok(selects(peerComponents(api)[0], members), `${r.name}: the REST API peers are the members`);
      assert.ok(
        !podsOf('catalog')
          .concat(podsOf('order'), podsOf('front'))
          .some((w) => selects(peerComponents(api)[0], w.tpl.metadata.labels)),
        `${r.name}: no service pod reaches the REST API`,
      );
    } else if (!r.name.startsWith('external-db')) {
      const pg = policyFor('postgresql');
      assert.equal(pg.length, 1, `${r.name}: one PostgreSQL rule`);
      assert.deepEqual(pg[0]!.ports, [{ port: 'postgresql', protocol: 'TCP' }]);
      assert.ok(allowsFrom(pg, 'catalog') && allowsFrom(pg, 'order'), `${r.name}: services reach PostgreSQL`);
      for (const p of pg[0]!.from ?? []) {
        assert.ok(
          p.podSelector && !p.namespaceSelector,
          `${r.name}: PostgreSQL only from this release's pods`,
        );
        assert.equal(p.podSelector.matchLabels['app.kubernetes.io/instance'], 'bazar');
      }
      if (byKind(r.objects, 'StatefulSet').some((s) => labelsOf(s)['role'] === 'standby')) {
        assert.ok(allowsFrom(pg, 'postgresql', 'standby'), `${r.name}: standbys stream from the primary`);
      }
    }
  }
});

test('the Secret: chart-managed with generated values and keep, or not rendered with existingSecret', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const secrets = byKind(r.objects, 'Secret');
    if (r.name.startsWith('existing-secret')) {
      assert.equal(secrets.length, 0, r.name);
      continue;
    }
    assert.equal(secrets.length, 1, r.name);
    const s = secrets[0]!;
    assert.equal(s.metadata.annotations?.['helm.sh/resource-policy'], 'keep', r.name);
    const data = s.data as Record<string, string>;
    const keys = r.name.startsWith('external-db')
      ? ['admin-token', 'internal-token', 'database-password']
      : ['admin-token', 'internal-token', 'database-password', 'replication-password', 'postgres-password'];
    // Patroni's REST API password (basic authentication of its unsafe endpoints).
    if (patroniSet(r.objects)) keys.push('patroni-api-password');
    assert.deepEqual(Object.keys(data).sort(), keys.sort(), r.name);
    for (const k of ['admin-token', 'internal-token']) {
      assert.ok(Buffer.from(data[k]!, 'base64').toString().length >= 16, `${r.name}: ${k} >= 16 characters`);
    }
  }
  // Two renders without lookup (no cluster) generate different values: nothing is hard-coded.
  const a = byKind(renderChart(tools.helm).objects, 'Secret')[0]!.data as Record<string, string>;
  const b = byKind(renderChart(tools.helm).objects, 'Secret')[0]!.data as Record<string, string>;
  assert.notEqual(a['admin-token'], b['admin-token']);
  // Values given by value are used as they are.
  const given = renderChart(tools.helm, { set: ['auth.adminToken=0123456789abcdef-admin'] });
  const data = byKind(given.objects, 'Secret')[0]!.data as Record<string, string>;
  assert.equal(Buffer.from(data['admin-token']!, 'base64').toString(), '0123456789abcdef-admin');
});

test('the StorePolicy mirrors the values, and the pods start with the same policy', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const r = renderChart(tools.helm, {
    set: [
      'storePolicy.cache.ttlMs=5000',
      'storePolicy.consistencyMode=session',
      'storePolicy.loadBalancing=random',
    ],
  });
  const p = named(r.objects, 'StorePolicy', 'bazar');
  assert.equal(p.apiVersion, 'bazar.dev/v1alpha1');
  assert.deepEqual(p.spec, {
    cache: { maxEntries: 10000, maxBytes: 33554432, ttlMs: 5000 },
    loadBalancing: 'random',
    consistencyMode: 'session',
    invalidationTimeoutMs: 1000,
  });
  for (const d of byKind(r.objects, 'Deployment')) {
    const c = podTemplate(d)!.spec.containers[0]!;
    assert.equal(envValue(c, 'CONSISTENCY_MODE'), 'session', d.metadata.name);
    assert.equal(envValue(c, 'LOAD_BALANCING'), 'random', d.metadata.name);
  }
  const none = renderChart(tools.helm, { set: ['storePolicy.create=false'] });
  assert.equal(byKind(none.objects, 'StorePolicy').length, 0);
  for (const d of byKind(none.objects, 'Deployment')) {
    assert.equal(envValue(podTemplate(d)!.spec.containers[0]!, 'POLICY_NAME'), undefined, d.metadata.name);
  }
});

test('helm test hook: a hardened curl pod that searches, reads and buys through the front Service', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const r = renderChart(tools.helm);
  const pods = byKind(r.objects, 'Pod');
  assert.equal(pods.length, 1);
  const pod = pods[0]!;
  assert.equal(pod.metadata.annotations?.['helm.sh/hook'], 'test');
  const spec = podTemplate(pod)!.spec;
  assert.equal(spec.automountServiceAccountToken, false);
  const c = spec.containers[0]!;
  assert.match(c.image, /curlimages\/curl:/);
  const script = (c.command ?? []).join(' ');
  const base = c.env?.find((e) => e.name === 'BASE')?.value ?? '';
  assert.equal(base, 'http://bazar-front:80');
  for (const step of ['/search/', '/info/1', '/purchase/1', 'Idempotency-Key'])
    assert.ok(script.includes(step), step);
  const disabled = renderChart(tools.helm, { set: ['tests.enabled=false'] });
  assert.equal(byKind(disabled.objects, 'Pod').length, 0);
});

test('Ingress routes only the public API; ServiceMonitor scrapes each pod once', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const r = renderChart(tools.helm, {
    valuesFile: ciValuesFiles().find((f) => f.includes('ingress-hpa-monitoring')),
  });
  const ing = named(r.objects, 'Ingress', 'bazar');
  type IngressSpec = {
    rules: Array<{
      host?: string;
      http: {
        paths: Array<{ path: string; backend: { service: { name: string; port: { name: string } } } }>;
      };
    }>;
  };
  const paths = (ing.spec as IngressSpec).rules.flatMap((rule) => rule.http.paths);
  assert.deepEqual(
    paths.map((p) => p.path),
    ['/search', '/info', '/purchase', '/orders'],
  );
  for (const p of paths) assert.deepEqual(p.backend.service, { name: 'bazar-front', port: { name: 'http' } });
  const sm = named(r.objects, 'ServiceMonitor', 'bazar');
  const sel = (sm.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
  const scraped = byKind(r.objects, 'Service')
    .filter((s) => selects(sel, s.metadata.labels))
    .map((s) => s.metadata.name)
    .sort();
  assert.deepEqual(scraped, ['bazar-catalog', 'bazar-front', 'bazar-order']);
});

test('seed.books: a hook Job seeds with the catalog image, hardened and wired like a catalog origin; off by default', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    assert.equal(byKind(r.objects, 'Job').length, 0, `${r.name}: no seed Job unless seed.books > 0`);
    assert.doesNotMatch(r.text, /component: seed/, `${r.name}: nothing of the seeder`);
  }
  type Peer = { podSelector?: { matchLabels: Record<string, string> } };
  type Policy = { podSelector: { matchLabels: Record<string, string> }; ingress: Array<{ from?: Peer[] }> };
  for (const valuesFile of [undefined, ...ciValuesFiles()]) {
    const r = renderChart(tools.helm, { ...(valuesFile ? { valuesFile } : {}), set: ['seed.books=1000000'] });
    const [job, ...more] = byKind(r.objects, 'Job');
    assert.ok(job && more.length === 0, `${r.name}: one Job`);
    const origin = byKind(r.objects, 'Deployment').find(
      (d) => componentOf(d) === 'catalog' && labelsOf(d)['role'] === 'origin',
    )!;
    const prefix = origin.metadata.name.replace(/-catalog-origin$/, '');
    assert.equal(job.metadata.name, `${prefix}-seed`);
    assert.deepEqual(job.metadata.annotations, {
      'helm.sh/hook': 'post-install,post-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    const spec = job.spec as {
      backoffLimit: number;
      podFailurePolicy: { rules: Array<{ action: string; onExitCodes: { values: number[] } }> };
      template: PodTemplate & { spec: { restartPolicy: string } };
    };
    assert.deepEqual(spec.podFailurePolicy.rules[0]?.action, 'FailJob');
    assert.deepEqual(spec.podFailurePolicy.rules[0]?.onExitCodes.values, [65, 78]);
    const pod = spec.template;
    assert.equal(pod.spec.restartPolicy, 'Never');
    assert.equal(pod.spec.automountServiceAccountToken, false);
    const [c] = pod.spec.containers;
    assert.ok(c);
    assert.deepEqual(c.command, ['node', 'dist/services/catalog/src/seed-main.js']);
    assert.equal(envValue(c, 'SEED_BOOKS'), '1000000');
    assert.ok(c.resources?.limits?.['memory'], `${r.name}: the seeder has resources`);
    // Like a catalog origin: its image, pod and container security, primary URL and password.
    const o = podTemplate(origin)!;
    const oc = o.spec.containers[0]!;
    assert.equal(c.image, oc.image);
    assert.deepEqual(pod.spec.securityContext, o.spec.securityContext);
    assert.deepEqual(c.securityContext, oc.securityContext);
    assert.deepEqual(c.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
    for (const name of ['DATABASE_URL', 'PGPASSWORD']) {
      assert.deepEqual(env(c, name), env(oc, name), `${r.name}: ${name} as the catalog origin has it`);
    }
    // Its pods are in no Service, and the PostgreSQL NetworkPolicy lets them reach the database.
    for (const s of byKind(r.objects, 'Service')) {
      const sel = (s.spec as { selector?: Record<string, string> }).selector;
      assert.ok(
        !selects(sel, pod.metadata.labels),
        `${r.name}: Service ${s.metadata.name} selects the seeder`,
      );
    }
    const pgPolicy = byKind(r.objects, 'NetworkPolicy').find(
      (n) => n.metadata.name === `${prefix}-postgresql`,
    );
    if (pgPolicy && !r.name.startsWith('external-db')) {
      const peers = (pgPolicy.spec as Policy).ingress.flatMap((rule) => rule.from ?? []);
      assert.ok(
        peers.some((p) => selects(p.podSelector?.matchLabels, pod.metadata.labels)),
        `${r.name}: the seed pods may reach PostgreSQL`,
      );
    }
  }
  for (const bad of ['seed.books=-1', 'seed.books=10000001', 'seed.books=many']) {
    const res = run(tools.helm, ['template', 'bazar', CHART, '--set', bad]);
    assert.notEqual(res.status, 0, `${bad} should be refused`);
    assert.match(res.stderr, /seed/, `${bad}: ${res.stderr}`);
  }
});
