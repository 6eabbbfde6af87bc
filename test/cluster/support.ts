/**
 * The cluster tier's plumbing: commands on the host (kubectl, helm, sh) against the tier's cluster,
 * pods and their readiness, psql inside the PostgreSQL pods, and step timings.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { Cluster } from '../../tools/cluster/src/index.js';

/** The repository root, from dist/test/cluster/ (or test/cluster/). */
export const repoRoot = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);

export function log(line: string): void {
  process.stderr.write(`[cluster-tier] ${line}\n`);
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandFailed extends Error {
  constructor(
    readonly command: string,
    readonly output: Output,
  ) {
    super(`${command} exited with ${output.code}:\n${(output.stderr || output.stdout).trim().slice(-2000)}`);
  }
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Resolve with the output instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export function command(file: string, args: string[], opts: CommandOptions = {}): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? repoRoot,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const output = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      const shown = [path.basename(file), ...args].join(' ').slice(0, 300);
      if (output.code !== 0 && !opts.allowFailure) reject(new CommandFailed(shown, output));
      else resolve(output);
    });
    if (child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}

/** kubectl, helm and a shell on the host, as a user with the cluster's KUBECONFIG would run them. */
export class Kube {
  constructor(readonly cluster: Cluster) {}

  env(): NodeJS.ProcessEnv {
    return this.cluster.env();
  }

  kubectl(args: string[], opts: CommandOptions = {}): Promise<Output> {
    return command(this.cluster.toolchain.bin.kubectl, args, { env: this.env(), ...opts });
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse((await this.kubectl([...args, '-o', 'json'])).stdout) as T;
  }

  helm(args: string[], opts: CommandOptions = {}): Promise<Output> {
    const helm = this.cluster.toolchain.helm;
    if (!helm) throw new Error('helm is not in the toolchain (scripts/k8s-tools.sh)');
    return command(helm, args, { env: this.env(), timeoutMs: 600_000, ...opts });
  }

  /** A command line exactly as a user types it (kubectl and helm on PATH, KUBECONFIG set). */
  sh(script: string, opts: CommandOptions = {}): Promise<Output> {
    return command('/bin/sh', ['-c', script], { env: this.env(), ...opts });
  }

  /** GET through the API server's pod proxy: the pod's own answer, whatever Service it is behind. */
  async podGet(ns: string, pod: string, port: number, urlPath: string): Promise<string> {
    const raw = `/api/v1/namespaces/${ns}/pods/${pod}:${port}/proxy${urlPath}`;
    return (await this.kubectl(['get', '--raw', raw], { timeoutMs: 20_000 })).stdout;
  }

  /** psql as the postgres superuser over the pod's Unix socket; rows as arrays of columns. */
  async psql(
    ns: string,
    pod: string,
    sql: string,
    db = 'postgres',
    container = 'postgresql',
  ): Promise<string[][]> {
    const out = await this.kubectl(
      [
        'exec',
        '-i',
        '-n',
        ns,
        pod,
        '-c',
        container,
        '--',
        'psql',
        '-U',
        'postgres',
        '-d',
        db,
        '-XAt',
        '-F',
        '|',
      ],
      { input: sql, timeoutMs: 30_000 },
    );
    return out.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('|'));
  }
}

export interface Pod {
  metadata: {
    name: string;
    uid: string;
    namespace: string;
    creationTimestamp: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: { containers: Array<{ name: string; image: string }> };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
    containerStatuses?: Array<{ name: string; ready: boolean; restartCount: number; image: string }>;
  };
}

export const podReady = (p: Pod): boolean =>
  !p.metadata.deletionTimestamp &&
  p.status.phase === 'Running' &&
  (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

export const restarts = (p: Pod): number =>
  (p.status.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0);

/** Seconds from the pod's creation to its Ready condition (second resolution, as the API keeps them). */
export function secondsToReady(p: Pod): number | undefined {
  const ready = (p.status.conditions ?? []).find((c) => c.type === 'Ready' && c.status === 'True');
  if (!ready?.lastTransitionTime) return undefined;
  return (Date.parse(ready.lastTransitionTime) - Date.parse(p.metadata.creationTimestamp)) / 1000;
}

export const label = (p: Pod, key: string): string | undefined => p.metadata.labels?.[key];

/** The chart's pods of a release, the `helm test` pod left out. */
export type Engine = 'pair' | 'patroni';

/** The chart's default replica counts, read from charts/bazar/values.yaml. */
export interface ChartDefaults {
  /** postgresql.engine. */
  engine: Engine;
  fronts: number;
  catalogOrigins: number;
  catalogReplicas: number;
  orderOrigins: number;
  orderReplicas: number;
  /** PostgreSQL pods beside the primary: the pair's standbys, or Patroni's members but one. */
  standbys: number;
}

/** The defaults, with `engine` (default: the chart's) deciding how many PostgreSQL pods there are. */
export function chartDefaults(engine?: Engine): ChartDefaults {
  const v = parseYaml(readFileSync(path.join(repoRoot, 'charts', 'bazar', 'values.yaml'), 'utf8')) as {
    front: { replicas: number };
    catalog: { origin: { replicas: number }; replica: { replicas: number } };
    order: { origin: { replicas: number }; replica: { replicas: number } };
    postgresql: {
      engine: Engine | '';
      standby: { enabled: boolean; replicas: number };
      patroni: { instances: number };
    };
  };
  // Unset in values.yaml: patroni on a new install (the chart's bazar.db.engine).
  const e = engine ?? (v.postgresql.engine || 'patroni');
  return {
    engine: e,
    fronts: v.front.replicas,
    catalogOrigins: v.catalog.origin.replicas,
    catalogReplicas: v.catalog.replica.replicas,
    orderOrigins: v.order.origin.replicas,
    orderReplicas: v.order.replica.replicas,
    standbys:
      e === 'patroni'
        ? v.postgresql.patroni.instances - 1
        : v.postgresql.standby.enabled
          ? v.postgresql.standby.replicas
          : 0,
  };
}

/** How many pods a release with these replica counts runs (service pods, the primary, the standbys). */
export function chartPodCount(d: ChartDefaults = chartDefaults()): number {
  return d.fronts + d.catalogOrigins + d.catalogReplicas + d.orderOrigins + d.orderReplicas + 1 + d.standbys;
}

/** Smaller CPU requests for every pod of the chart, limits untouched (stores share the node's 1.9 CPUs). */
export function smallResources(): Record<string, unknown> {
  const requests = { requests: { cpu: '10m' } };
  return {
    front: { resources: requests },
    catalog: { origin: { resources: requests }, replica: { resources: requests } },
    order: { origin: { resources: requests }, replica: { resources: requests } },
    postgresql: {
      primary: { resources: requests },
      standby: { resources: requests },
      patroni: { resources: requests },
    },
    tests: { resources: requests },
  };
}

/** Every kind a release's namespace can hold of it (`kubectl get` takes them joined by commas). */
export const NAMESPACED_KINDS: readonly string[] = [
  'all',
  'secret',
  'pvc',
  'configmap',
  'serviceaccount',
  'role',
  'rolebinding',
  'networkpolicy',
  'poddisruptionbudget',
  'storepolicy',
  'endpointslice',
];
/** What a namespace holds before any release: the cluster's own objects. */
export const CLUSTER_DEFAULTS: ReadonlySet<string> = new Set([
  'Service/kubernetes',
  'EndpointSlice/kubernetes',
  'ConfigMap/kube-root-ca.crt',
  'ServiceAccount/default',
]);

export async function releasePods(kube: Kube, ns: string, release: string): Promise<Pod[]> {
  const list = await kube.json<{ items: Pod[] }>([
    'get',
    'pods',
    '-n',
    ns,
    '-l',
    `app.kubernetes.io/instance=${release},app.kubernetes.io/component!=test`,
  ]);
  return list.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

/** The pods of a release that match `selector` (e.g. `app.kubernetes.io/component=front`), terminating ones too. */
export async function releasePodsBy(
  kube: Kube,
  ns: string,
  release: string,
  selector: string,
): Promise<Pod[]> {
  return (
    await kube.json<{ items: Pod[] }>([
      'get',
      'pods',
      '-n',
      ns,
      '-l',
      `app.kubernetes.io/instance=${release},${selector}`,
    ])
  ).items;
}

/** `kubectl get pods` as a table, with how long each pod took from creation to Ready. */
export function podTable(pods: Pod[]): string {
  const rows = pods.map((p) => {
    const cs = p.status.containerStatuses ?? [];
    const ready = `${cs.filter((c) => c.ready).length}/${p.spec.containers.length}`;
    const toReady = secondsToReady(p);
    return [
      p.metadata.name,
      ready,
      p.metadata.deletionTimestamp ? 'Terminating' : (p.status.phase ?? '?'),
      String(restarts(p)),
      toReady === undefined ? '-' : `${toReady} s`,
    ];
  });
  const header = ['NAME', 'READY', 'STATUS', 'RESTARTS', 'CREATED→READY'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

/** Polls until `check` returns a value (not undefined); the error names what was awaited. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${seconds(timeoutMs)} waiting for ${what}${last ? ` (last: ${last.slice(0, 600)})` : ''}`,
      );
    }
    await sleep(everyMs);
  }
}

/** One timing line per step, printed as it finishes and again as a table at the end. */
export class Timings {
  readonly rows: Array<[string, number]> = [];
  readonly #t0 = Date.now();

  record(label: string, ms: number): void {
    this.rows.push([label, ms]);
    log(`${label.padEnd(72)} ${seconds(ms).padStart(8)}`);
  }

  async time<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.record(label, Date.now() - t0);
    }
  }

  /** Every row, then the wall time since this object was made (rows may nest). */
  table(): string {
    return [...this.rows, ['wall time', Date.now() - this.#t0] as [string, number]]
      .map(([l, ms]) => `  ${l.padEnd(72)} ${seconds(ms).padStart(8)}`)
      .join('\n');
  }
}
