// Key properties of what the chart renders, for the defaults and every CI values file: hardened pods,
// probes, the services' environment (discovery names, roles, database URLs, secrets), RBAC exactly as
// the API-server tests expect, NetworkPolicy rules, labels and selectors that match, PDBs, the Secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  byKind,
  ciValuesFiles,
  named,
  podTemplate,
  renderChart,
  requireTools,
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
    const sa = byKind(r.objects, 'ServiceAccount')[0];
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
        const spec = (policy?.spec ?? {}) as { cache?: { ttlMs: number } };
        if (policy) assert.equal(envValue(c, 'CACHE_TTL_MS'), String(spec.cache?.ttlMs), where);
      }
    }
  }
});

test('database URLs: origins and orders on the primary, catalog replicas (and order lookups) on a standby, password from the Secret', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const external = r.name.startsWith('external-db');
    const statefulSets = byKind(r.objects, 'StatefulSet');
    const hasStandby = statefulSets.some((s) => labelsOf(s)['role'] === 'standby');
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
      const standbyHost = external
        ? 'pg-standby.databases.svc'
        : hasStandby
          ? pgService('standby')
          : undefined;
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

test("RBAC: one namespaced Role with exactly the three rules, bound to the pods' ServiceAccount", (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    assert.equal(byKind(r.objects, 'ClusterRole').length, 0, `${r.name}: nothing cluster-wide`);
    assert.equal(byKind(r.objects, 'ClusterRoleBinding').length, 0, `${r.name}: nothing cluster-wide`);
    const roles = byKind(r.objects, 'Role');
    assert.equal(roles.length, 1, r.name);
    const role = roles[0]!;
    assert.deepEqual(role.rules, [
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['bazar.dev'], resources: ['storepolicies'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['bazar.dev'], resources: ['storepolicies/status'], verbs: ['get', 'update', 'patch'] },
    ]);
    const binding = byKind(r.objects, 'RoleBinding')[0]!;
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
      assert.ok(
        ws.some((w) => w.o.kind !== 'Pod' && selects(sel, w.tpl.metadata.labels)),
        `${r.name}: Service ${s.metadata.name} selects nothing`,
      );
    }
    for (const pdb of byKind(r.objects, 'PodDisruptionBudget')) {
      const sel = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      const hits = ws.filter((w) => w.o.kind !== 'Pod' && selects(sel, w.tpl.metadata.labels));
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

test('PDBs exist exactly for workloads that can have more than one pod', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const r of all(tools.helm)) {
    const hpas = byKind(r.objects, 'HorizontalPodAutoscaler');
    for (const d of byKind(r.objects, 'Deployment')) {
      const hpa = hpas.find(
        (h) => (h.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === d.metadata.name,
      );
      const min = hpa
        ? (hpa.spec as { minReplicas: number }).minReplicas
        : (d.spec as { replicas: number }).replicas;
      const pdb = byKind(r.objects, 'PodDisruptionBudget').find((p) => p.metadata.name === d.metadata.name);
      assert.equal(Boolean(pdb), min > 1, `${r.name}: ${d.metadata.name} (min ${min} pods) PDB`);
    }
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
    if (!r.name.startsWith('external-db')) {
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
    cache: { maxEntries: 10000, ttlMs: 5000 },
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
