// Shared helpers of the chart tests: where the repository and the tools are, running helm and kubectl,
// rendering the chart and parsing what it renders.
//
// helm, kubectl, kube-apiserver and etcd come from scripts/k8s-tools.sh (its bin directory, passed in
// BAZAR_TOOLS_BIN by scripts/run-tests.mjs), else from $PATH. A test that needs a missing tool FAILS
// when CI is set (CI builds the tools) and is SKIPPED LOUDLY otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { parseAllDocuments } from 'yaml';

function findRoot(): string {
  // Compiled: dist/test/chart/tools.js; from source: test/chart/tools.ts.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'charts', 'bazar', 'Chart.yaml'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

export const ROOT = findRoot();
export const CHART = path.join(ROOT, 'charts', 'bazar');
export const CI = Boolean(process.env.CI) && process.env.CI !== 'false';

export function toolsBinDir(): string {
  if (process.env.BAZAR_TOOLS_BIN) return process.env.BAZAR_TOOLS_BIN;
  const base = process.env.BAZAR_TOOLS_DIR || path.join(os.homedir(), '.cache', 'bazar-tools');
  return path.join(base, 'bin');
}

export function findTool(name: string): string | undefined {
  const cached = path.join(toolsBinDir(), name);
  if (existsSync(cached)) return cached;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/**
 * The tools a test needs, or undefined after skipping it. Without CI a missing tool skips the test
 * with a loud warning; in CI it is an error.
 */
export function requireTools<const N extends string>(
  t: TestContext,
  ...names: N[]
): Record<N, string> | undefined {
  const found = {} as Record<N, string>;
  const missing: string[] = [];
  for (const n of names) {
    const p = findTool(n);
    if (p) found[n] = p;
    else missing.push(n);
  }
  if (missing.length === 0) return found;
  const message =
    `${missing.join(', ')} not found in ${toolsBinDir()} or $PATH: ` +
    'scripts/k8s-tools.sh builds the Kubernetes tools, bash scripts/test-tools.sh installs promtool';
  if (CI) throw new Error(`${message} (CI is set, so this is a failure, not a skip)`);
  console.warn(`\n*** SKIPPED ${t.name}: ${message}\n`);
  t.skip(message);
  return undefined;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(
  bin: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  const res = spawnSync(bin, args, {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    input: opts.input,
    env: opts.env ?? process.env,
  });
  if (res.error) throw res.error;
  return { status: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}

/** Runs and throws with the output when the command fails. */
export function runOk(
  bin: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const res = run(bin, args, opts);
  if (res.status !== 0) {
    throw new Error(
      `${path.basename(bin)} ${args.join(' ')} exited ${res.status}:\n${res.stderr}\n${res.stdout}`,
    );
  }
  return res.stdout;
}

/** The CI values matrix: charts/bazar/ci/*-values.yaml. */
export function ciValuesFiles(): string[] {
  const dir = path.join(CHART, 'ci');
  return readdirSync(dir)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => path.join(dir, f));
}

// ---------------------------------------------------------------- rendered objects

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // The rest is checked field by field by the tests.
  [key: string]: unknown;
}

export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export interface Render {
  valuesFile: string | undefined;
  name: string;
  text: string;
  objects: K8sObject[];
}

export function renderChart(
  helm: string,
  opts: { valuesFile?: string; release?: string; namespace?: string; set?: string[] } = {},
): Render {
  const args = ['template', opts.release ?? 'bazar', CHART, '--namespace', opts.namespace ?? 'bazar-test'];
  if (opts.valuesFile) args.push('--values', opts.valuesFile);
  for (const s of opts.set ?? []) args.push('--set', s);
  const text = runOk(helm, args);
  return {
    valuesFile: opts.valuesFile,
    name: opts.valuesFile ? path.basename(opts.valuesFile) : 'defaults',
    text,
    objects: parseManifests(text),
  };
}

export interface RuleGroup {
  name: string;
  rules: Array<{ alert?: string; record?: string; expr: string; for?: string }>;
}

/**
 * The chart's alert rule groups (the PrometheusRule's spec.groups) as it renders them for a release
 * with `prometheusRule.enabled=true`: what promtool and a Prometheus load as a rule file.
 */
export function renderedRuleGroups(
  helm: string,
  opts: { release: string; namespace: string; set?: string[] },
): RuleGroup[] {
  const render = renderChart(helm, { ...opts, set: ['prometheusRule.enabled=true', ...(opts.set ?? [])] });
  const rules = byKind(render.objects, 'PrometheusRule');
  if (rules.length !== 1) throw new Error(`the chart rendered ${rules.length} PrometheusRules, not 1`);
  return (rules[0] as unknown as { spec: { groups: RuleGroup[] } }).spec.groups;
}

export function readYamlFile<T>(file: string): T {
  const docs = parseManifests(readFileSync(file, 'utf8'));
  return (docs[0] ?? {}) as unknown as T;
}

// ---------------------------------------------------------------- typed views of pod specs

export interface Probe {
  httpGet?: { path: string; port: string | number };
  exec?: { command: string[] };
  periodSeconds?: number;
  failureThreshold?: number;
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}
export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: EnvVar[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  lifecycle?: Record<string, unknown>;
}
export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: SecurityContext & { fsGroup?: number };
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; emptyDir?: Record<string, unknown>; configMap?: { name: string } }>;
}
export interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

export function podTemplate(o: K8sObject): PodTemplate | undefined {
  const spec = o.spec as { template?: PodTemplate } | undefined;
  if (o.kind === 'Pod') return { metadata: { labels: o.metadata.labels ?? {} }, spec: o.spec as PodSpec };
  return spec?.template;
}

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function named(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(
      `no ${kind} ${name} among ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`,
    );
  return o;
}

/** True when every key/value of `selector` is in `labels`. */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}
