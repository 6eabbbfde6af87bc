/**
 * The chaos scenarios' plumbing (test/cluster/chaos.test.ts): a cluster of their own with the chart
 * installed, the recorded workload running inside the node's network namespace against the front
 * Service's ClusterIP (chaos-workload.ts), and the figures each scenario reports.
 */
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { formatOp, formatReport, measureStaleness, type CheckReport } from '../../tools/checker/src/check.js';
import type { DbFacts, Op, RestockRow, OrderRow, BookState } from '../../tools/checker/src/history.js';
import {
  ClusterAlreadyUpError,
  down,
  leftovers,
  up,
  type Cluster,
  type ImageRecord,
  type UpOptions,
} from '../../tools/cluster/src/index.js';
import {
  buildImages,
  BUILD_ONLY_IMAGES,
  chartImageValues,
  chartValuesYaml,
} from '../../tools/images/src/index.js';
import type { ChaosProgress, ChaosWorkloadConfig } from './chaos-workload.js';
import { clusterTierBlocker } from './prerequisites.js';
import {
  command,
  Kube,
  log,
  podReady,
  releasePods,
  repoRoot,
  seconds,
  sleep,
  smallResources,
  until,
  type Output,
  type Pod,
} from './support.js';

export const NS = 'default';
export const RELEASE = 'bazar';

/**
 * NOT RUN (with the reason) where the tier cannot run; under CI that is a failure. `extra` adds a
 * blocker of the file's own (e.g. the NetworkPolicy enforcer's binary).
 */
export async function skipReason(what: string, extra?: () => string | undefined): Promise<string | false> {
  const why = (await clusterTierBlocker()) ?? extra?.();
  if (!why) return false;
  const message = `NOT RUN: ${what}: ${why}`;
  if (process.env.CI) throw new Error(`${message} (CI is set: every tier must run)`);
  process.stderr.write(`\n*** ${message}\n\n`);
  return message;
}

/** The chart's service Deployments, each with the selector of its pods. */
export const DEPLOYMENTS: ReadonlyArray<{ name: string; selector: string }> = [
  { name: 'bazar-front', selector: 'app.kubernetes.io/component=front' },
  { name: 'bazar-catalog-origin', selector: 'app.kubernetes.io/component=catalog,role=origin' },
  { name: 'bazar-catalog-replica', selector: 'app.kubernetes.io/component=catalog,role=replica' },
  { name: 'bazar-order-origin', selector: 'app.kubernetes.io/component=order,role=origin' },
  { name: 'bazar-order-replica', selector: 'app.kubernetes.io/component=order,role=replica' },
];

/** A cluster of the tier's own (name), the images loaded, and the values files for helm. */
export interface TierCluster {
  cluster: Cluster;
  kube: Kube;
  records: ImageRecord[];
  work: string;
  /** -f files for `helm install`: the images of tools/images, then the small resources. */
  valuesFiles: string[];
  /** Until called, SIGINT/SIGTERM takes the cluster down and removes `work` before the process ends. */
  releaseSignals: () => void;
}

/**
 * The tier's cluster, up, with the images in its node, and a work directory of the tier's own. Nothing
 * of it is left when a step fails (`after` gets no cluster to tear down then): the cluster goes down and
 * the work directory is removed before the error is thrown. Nor when the run is interrupted (SIGINT,
 * SIGTERM: no `after` hook runs then): the cluster goes down before the process ends.
 */
export async function bringUp(name: string, extra: Partial<UpOptions> = {}): Promise<TierCluster> {
  const records = await buildImages({ log: (l) => log(`images: ${l}`) });
  const byName = (n: string): ImageRecord => {
    const r = records.find((x) => x.name === n);
    if (!r) throw new Error(`tools/images built no ${n}`);
    return r;
  };
  const upOpts: UpOptions = {
    name,
    images: {
      pause: byName('pause'),
      coredns: byName('coredns'),
      localPathProvisioner: byName('local-path-provisioner'),
      busybox: byName('busybox-standin'),
    },
    ensurePackages: false,
    log: (l: string) => log(`cluster ${name}: ${l}`),
    ...extra,
  };
  let cluster: Cluster;
  try {
    cluster = await up(upOpts);
  } catch (err) {
    if (!(err instanceof ClusterAlreadyUpError)) throw err;
    log(`cluster ${name} was left up by an earlier run: down, then up again`);
    await down(name);
    cluster = await up(upOpts);
  }
  let work: string | undefined;
  const removeWork = (): void => {
    if (work) rmSync(work, { recursive: true, force: true });
  };
  const releaseSignals = cluster.downOnSignal({ log: (l) => log(`cluster ${name}: ${l}`), also: removeWork });
  try {
    const imported = await cluster.loadImages(records.filter((r) => !BUILD_ONLY_IMAGES.includes(r.name)));
    log(`imported ${imported.length ? imported.join(', ') : 'nothing (the node had them all)'}`);
    work = mkdtempSync(path.join(os.tmpdir(), `bazar-${name}-tier-`));
    const images = path.join(work, 'images-values.yaml');
    writeFileSync(images, chartValuesYaml(chartImageValues(records)));
    const small = path.join(work, 'small-resources-values.yaml');
    writeFileSync(small, stringifyYaml(smallResources()));
    return { cluster, kube: new Kube(cluster), records, work, valuesFiles: [images, small], releaseSignals };
  } catch (err) {
    await cluster.down({ log: (l) => log(`cluster: ${l}`) }).catch(() => undefined);
    removeWork();
    releaseSignals();
    throw err;
  }
}

/**
 * The tier's teardown (in `after`, so also when a scenario failed): the cluster down, nothing of it left
 * behind (asserted), then `afterDown` (a tier's own checks), and its work directory removed.
 */
export async function tearDown(t: TierCluster | undefined, afterDown?: () => Promise<void>): Promise<void> {
  if (!t) return;
  try {
    const report = await t.cluster.down({ log: (l) => log(`cluster: ${l}`) });
    assert.deepEqual(report.leftovers, [], 'down left something behind');
    assert.deepEqual(await leftovers(t.cluster.layout), [], 'leftovers() after down');
    await afterDown?.();
  } finally {
    rmSync(t.work, { recursive: true, force: true });
    t.releaseSignals();
  }
}

/** What the scenarios need to know about the installed release. */
export interface Store {
  frontIp: string;
  frontUrl: string;
  primaryIp: string;
  databaseUrl: string;
  adminToken: string;
  internalToken: string;
  /** Pods of the release when it was Ready. */
  pods: Pod[];
}

const decode = (b64: string | undefined): string => Buffer.from(b64 ?? '', 'base64').toString('utf8');

export async function clusterIp(kube: Kube, service: string): Promise<string> {
  return (await kube.json<{ spec: { clusterIP: string } }>(['get', 'svc', '-n', NS, service])).spec.clusterIP;
}

/** Every pod of the release Ready (expected count), none terminating. */
export async function releaseReady(kube: Kube, expected: number, timeoutMs = 240_000): Promise<Pod[]> {
  return until(
    `${expected} pods of release ${RELEASE} Ready`,
    async () => {
      const pods = await releasePods(kube, NS, RELEASE);
      return pods.length === expected && pods.every(podReady) ? pods : undefined;
    },
    timeoutMs,
    1000,
  );
}

export async function installStore(
  t: TierCluster,
  expectedPods: number,
  extraArgs: string[] = [],
): Promise<Store> {
  const t0 = Date.now();
  await t.kube.helm([
    'install',
    RELEASE,
    'charts/bazar',
    '-n',
    NS,
    ...t.valuesFiles.flatMap((f) => ['-f', f]),
    ...extraArgs,
  ]);
  const pods = await releaseReady(t.kube, expectedPods);
  log(`helm install ${RELEASE}: ${pods.length} pods Ready after ${seconds(Date.now() - t0)}`);
  const secret = (await t.kube.json<{ data: Record<string, string> }>(['get', 'secret', '-n', NS, RELEASE]))
    .data;
  const frontIp = await clusterIp(t.kube, 'bazar-front');
  const primaryIp = await clusterIp(t.kube, 'bazar-postgresql');
  const password = encodeURIComponent(decode(secret['database-password']));
  return {
    frontIp,
    frontUrl: `http://${frontIp}:80`,
    primaryIp,
    databaseUrl: `postgres://bazar:${password}@${primaryIp}:5432/bazar`,
    adminToken: decode(secret['admin-token']),
    internalToken: decode(secret['internal-token']),
    pods,
  };
}

export interface WorkloadResult {
  report: CheckReport;
  history: Op[];
  facts: DbFacts;
  /** Epoch ms of the history clock's zero. */
  timeOrigin: number;
  t0: number;
  /** The first `recorded` operations of `history` are the run's; the rest settled unknown outcomes. */
  recorded: number;
  settled: number;
  settledReplayed: number;
}

interface SerializedFacts {
  initial: Record<string, BookState>;
  final: Record<string, BookState>;
  orders: OrderRow[];
  restocks: RestockRow[];
}

export interface WorkloadOptions {
  books?: number[];
  stock?: Record<string, number>;
  clients?: number;
  mix?: ChaosWorkloadConfig['mix'];
  noCacheRatio?: number;
  /** The rules the checker holds the run to (default strict, the chart's mode). */
  mode?: ChaosWorkloadConfig['mode'];
  thinkMs?: number;
  timeoutMs?: number;
}

interface ExecOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The recorded workload, running inside the node's network namespace (the host's node binary and
 * this repository's dist/ are visible there) until stop().
 */
export class RecordedWorkload {
  readonly #dir: string;
  readonly #done: Promise<ExecOutput>;
  readonly #config: ChaosWorkloadConfig;
  #exited: ExecOutput | undefined;

  private constructor(dir: string, config: ChaosWorkloadConfig, done: Promise<ExecOutput>) {
    this.#dir = dir;
    this.#config = config;
    this.#done = done;
    void done.then((out) => {
      this.#exited = out;
    });
  }

  static start(cluster: Cluster, store: Store, name: string, opts: WorkloadOptions = {}): RecordedWorkload {
    const dir = mkdtempSync(path.join(os.tmpdir(), `bazar-chaos-${name}-`));
    const config: ChaosWorkloadConfig = {
      front: store.frontUrl,
      databaseUrl: store.databaseUrl,
      adminToken: store.adminToken,
      books: opts.books ?? [1, 2, 3],
      ...(opts.stock ? { stock: opts.stock } : {}),
      clients: opts.clients ?? 6,
      mix: opts.mix ?? { read: 6, purchase: 3, setPrice: 1, restock: 1 },
      noCacheRatio: opts.noCacheRatio ?? 0.3,
      mode: opts.mode ?? 'strict',
      thinkMs: opts.thinkMs ?? 20,
      timeoutMs: opts.timeoutMs ?? 5000,
      keyPrefix: `chaos-${name}-${Date.now().toString(36)}`,
      stopFile: path.join(dir, 'stop'),
      progressFile: path.join(dir, 'progress.json'),
      outFile: path.join(dir, 'result.json'),
    };
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(config));
    const script = path.join(repoRoot, 'dist', 'test', 'cluster', 'chaos-workload.js');
    const done = cluster.exec([process.execPath, script, configFile], {
      timeoutMs: 1_800_000,
      allowFailure: true,
    });
    log(
      `workload ${name}: ${config.clients} clients through ${config.front} (inside the node), books ${config.books.join(',')}`,
    );
    return new RecordedWorkload(dir, config, done);
  }

  progress(): ChaosProgress | undefined {
    try {
      return JSON.parse(readFileSync(this.#config.progressFile, 'utf8')) as ChaosProgress;
    } catch {
      return undefined;
    }
  }

  /** Waits until the clients have completed `n` more operations than now (the store answers). */
  async advance(n: number, timeoutMs = 60_000): Promise<void> {
    const from = this.progress()?.ops ?? 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const gone = this.#exited;
      if (gone) {
        throw new Error(
          `the workload exited with ${gone.code}: ${(gone.stderr || gone.stdout).slice(-2000)}`,
        );
      }
      const ops = this.progress()?.ops ?? 0;
      if (ops >= from + n) return;
      if (Date.now() > deadline) {
        throw new Error(`the workload completed ${ops - from} operations in ${seconds(timeoutMs)}, not ${n}`);
      }
      await sleep(200);
    }
  }

  async stop(): Promise<WorkloadResult> {
    writeFileSync(this.#config.stopFile, '');
    const out = await this.#done;
    try {
      if (out.code !== 0 || !existsSync(this.#config.outFile)) {
        throw new Error(`the workload exited with ${out.code}:\n${(out.stderr || out.stdout).slice(-3000)}`);
      }
      if (process.env.BAZAR_KEEP_TIER_DIR === '1') {
        const kept = path.join(os.tmpdir(), `${path.basename(this.#dir)}-result.json`);
        copyFileSync(this.#config.outFile, kept);
        log(`workload result and history kept in ${kept} (BAZAR_KEEP_TIER_DIR=1)`);
      }
      const raw = JSON.parse(readFileSync(this.#config.outFile, 'utf8')) as Omit<WorkloadResult, 'facts'> & {
        facts: SerializedFacts;
      };
      const toMap = (o: Record<string, BookState>) =>
        new Map(Object.entries(o).map(([k, v]) => [Number(k), v]));
      return {
        ...raw,
        facts: {
          initial: toMap(raw.facts.initial),
          final: toMap(raw.facts.final),
          orders: raw.facts.orders,
          restocks: raw.facts.restocks,
        },
      };
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }
}

/** An operation neither answered 200 nor out_of_stock (a definite, correct answer). */
export const failed = (o: Op): boolean => o.status !== 200 && o.error !== 'out_of_stock';

export interface Figures {
  requests: number;
  failed: number;
  /** Failed operations by kind and `status error`. */
  failures: Record<string, number>;
  /** Connection failures the client saw before an answer (it then resent through the Service). */
  connFailures: number;
  staleReads: number;
  byKind: Record<string, number>;
  durationMs: number;
}

export function figures(r: WorkloadResult, ops: Op[] = r.history.slice(0, r.recorded)): Figures {
  const failures: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  for (const o of ops) {
    byKind[o.kind] = (byKind[o.kind] ?? 0) + 1;
    if (failed(o)) {
      const k = `${o.kind} ${o.status} ${o.error ?? ''}`.trim();
      failures[k] = (failures[k] ?? 0) + 1;
    }
  }
  const times = ops.map((o) => o.invoke);
  return {
    requests: ops.length,
    failed: ops.filter(failed).length,
    failures,
    connFailures: ops.reduce((n, o) => n + (o.connFailures?.length ?? 0), 0),
    staleReads: measureStaleness(ops).length,
    byKind,
    durationMs: times.length ? Math.max(...ops.map((o) => o.complete)) - Math.min(...times) : 0,
  };
}

export function describeRun(label: string, r: WorkloadResult): string {
  const f = figures(r);
  return (
    `${label}: ${f.requests} requests in ${seconds(f.durationMs)} (${Object.entries(f.byKind)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ')}), ${f.failed} failed${f.failed ? ` ${JSON.stringify(f.failures)}` : ''}, ` +
    `${f.connFailures} connection failures resent, ${f.staleReads} stale reads; ` +
    `${r.settled} unknown outcomes settled by key (${r.settledReplayed} had committed)\n` +
    formatReport(r.report, r.t0).split('\n').slice(0, 30).join('\n')
  );
}

/** Every failed operation, one per line, with its time relative to the named instants (epoch ms). */
export function failureLines(r: WorkloadResult, marks: Record<string, number>, max = 20): string {
  return r.history
    .slice(0, r.recorded)
    .filter(failed)
    .slice(0, max)
    .map((o) => {
      const at = o.invoke + r.timeOrigin;
      const rel = Object.entries(marks)
        .map(([name, t]) => `${name}${at >= t ? '+' : '-'}${Math.abs(at - t).toFixed(0)}ms`)
        .join(' ');
      return `  ${rel} ${formatOp(o, r.t0)}`;
    })
    .join('\n');
}

/** The history's time of an epoch-ms instant of the test process. */
export const historyTime = (r: WorkloadResult, epochMs: number): number => epochMs - r.timeOrigin;

/**
 * Runs `argv` in one pod's network namespace, entered through one of its processes (the pause
 * container's or a container's): the kubelet puts them in a cgroup named after the pod's UID (`pod<uid>`,
 * dashes turned to underscores under the systemd driver). For faults no Kubernetes object makes, such as
 * one port of one pod dropped while the pod stays Ready.
 */
export async function inPodNetwork(uid: string, argv: string[]): Promise<Output> {
  const names = [`pod${uid}`, `pod${uid.replaceAll('-', '_')}`];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let cgroup: string;
    try {
      cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (names.some((n) => cgroup.includes(n))) return command('nsenter', ['--target', pid, '--net', ...argv]);
  }
  throw new Error(`no process of pod ${uid} in /proc`);
}
