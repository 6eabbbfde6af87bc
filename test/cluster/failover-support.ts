/**
 * The failover scenarios' Patroni plumbing (test/cluster/failover.test.ts): the members as
 * `patronictl list` and their pods' `role` labels show them, when the cluster is at full strength,
 * psql inside a member, the faults (a forced or graceful delete, a switchover, the postmaster or
 * Patroni itself SIGKILLed), the rows the audit compares, and the write gap.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Interval } from '../../tools/checker/src/check.js';
import type { Op } from '../../tools/checker/src/history.js';
import type { DbRows } from './failover-audit.js';
import { NS, RELEASE, type TierCluster, type WorkloadResult } from './chaos-support.js';
import {
  podReady,
  releasePods,
  releasePodsBy,
  repoRoot,
  seconds,
  sleep,
  type Kube,
  type Pod,
} from './support.js';

export const PATRONI_SELECTOR = 'app.kubernetes.io/component=postgresql';
/** Patroni's scope (the StatefulSet and its ConfigMaps) for release `bazar`. */
export const SCOPE = `${RELEASE}-patroni`;
const CONTAINER = 'patroni';

/** The chart's Patroni settings (charts/bazar/values.yaml), from which the bounds are derived. */
export interface PatroniValues {
  instances: number;
  ttl: number;
  loopWait: number;
  retryTimeout: number;
  primaryStartTimeout: number;
  synchronousNodeCount: number;
}

export function patroniValues(): PatroniValues {
  const v = parseYaml(readFileSync(path.join(repoRoot, 'charts', 'bazar', 'values.yaml'), 'utf8')) as {
    postgresql: {
      patroni: Omit<PatroniValues, 'synchronousNodeCount'> & { synchronousNodeCount: number | null };
    };
    storePolicy: { consistencyMode: string };
  };
  const p = v.postgresql.patroni;
  // null: as the chart's bazar.patroni.synchronousNodeCount resolves it.
  const strict = v.storePolicy.consistencyMode === 'strict';
  return {
    instances: p.instances,
    ttl: p.ttl,
    loopWait: p.loopWait,
    retryTimeout: p.retryTimeout,
    primaryStartTimeout: p.primaryStartTimeout,
    synchronousNodeCount: p.synchronousNodeCount ?? (strict ? Math.max(1, p.instances - 1) : 1),
  };
}

/** A pod with what the scenarios read of its containers. */
export interface PatroniContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  image: string;
  containerID?: string;
  lastState?: { terminated?: { exitCode: number; reason?: string; finishedAt?: string } };
}
export interface PatroniPod extends Pod {
  status: Omit<Pod['status'], 'containerStatuses'> & { containerStatuses?: PatroniContainerStatus[] };
}

export async function patroniPods(kube: Kube): Promise<PatroniPod[]> {
  return (await releasePodsBy(kube, NS, RELEASE, PATRONI_SELECTOR)) as PatroniPod[];
}

export const roleOf = (p: Pod): string | undefined => p.metadata.labels?.role;

export function containerOf(p: PatroniPod, name = CONTAINER): PatroniContainerStatus | undefined {
  return p.status.containerStatuses?.find((c) => c.name === name);
}

/** One row of `patronictl list -f json`. */
export interface Member {
  name: string;
  role: string;
  state: string;
  timeline: number | undefined;
  raw: Record<string, unknown>;
}

export function parseMembers(json: string): Member[] {
  const rows = JSON.parse(json) as Array<Record<string, unknown>>;
  return rows.map((r) => ({
    name: String(r.Member),
    role: String(r.Role),
    state: String(r.State),
    timeline: r.TL === undefined || r.TL === '' ? undefined : Number(r.TL),
    raw: r,
  }));
}

export function describeMembers(ms: Member[]): string {
  return ms
    .map((m) => {
      const lag = Object.entries(m.raw)
        .filter(([k]) => /lag/i.test(k))
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ');
      return `${m.name} ${m.role} ${m.state} TL ${m.timeline ?? '?'}${lag ? ` (${lag})` : ''}`;
    })
    .join(' | ');
}

/** `patronictl <args>` in a member's patroni container (kubectl exec, as docs/kubernetes.md says). */
export async function patronictl(
  kube: Kube,
  pod: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<string> {
  return (
    await kube.kubectl(['exec', '-n', NS, pod, '-c', CONTAINER, '--', 'patronictl', ...args], { timeoutMs })
  ).stdout;
}

/**
 * `patronictl list` from the first member that answers (the primary first): Patroni reads the
 * cluster's state from the Kubernetes API, so any running member shows the same.
 */
export async function members(kube: Kube): Promise<Member[]> {
  const pods = (await patroniPods(kube))
    .filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp)
    .sort((a, b) => Number(roleOf(b) === 'primary') - Number(roleOf(a) === 'primary'));
  let last: unknown;
  for (const p of pods) {
    try {
      return parseMembers(await patronictl(kube, p.metadata.name, ['list', '-f', 'json'], 15_000));
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no member answered patronictl list: ${String((last as Error | undefined)?.message)}`);
}

/** psql as the postgres superuser over a member's Unix socket; rows as arrays of columns. */
export async function psqlIn(kube: Kube, pod: string, sql: string, db = 'bazar'): Promise<string[][]> {
  return kube.psql(NS, pod, `\\set ON_ERROR_STOP on\n${sql}`, db, CONTAINER);
}

export interface Strength {
  leader: string;
  /** The other members (`Sync Standby` or `Replica`). */
  standbys: string[];
  timeline: number;
  members: Member[];
  pods: PatroniPod[];
}

/**
 * The cluster at full strength, or undefined: `instances` members, one Leader running, every other
 * one streaming on the leader's timeline, `syncStandbys` of them as Sync Standby (synchronous mode:
 * synchronous_node_count; 0 when asynchronous) and the rest as Replica, every pod
 * Ready, and the role labels the Services select on where Patroni says (primary on the leader only).
 */
export async function fullStrength(
  kube: Kube,
  instances: number,
  syncStandbys: number,
): Promise<Strength | undefined> {
  const ms = await members(kube);
  const leaders = ms.filter((m) => m.role === 'Leader' && m.state === 'running');
  if (ms.length !== instances || leaders.length !== 1) return undefined;
  const leader = leaders[0]!;
  const others = ms.filter((m) => m !== leader);
  // Synchronous mode: synchronous_node_count members are `Sync Standby`, the rest `Replica`.
  const sync = others.filter((m) => m.role === 'Sync Standby').length;
  if (sync !== syncStandbys) return undefined;
  const roles = new Set(['Sync Standby', 'Replica']);
  if (!others.every((m) => roles.has(m.role) && m.state === 'streaming' && m.timeline === leader.timeline)) {
    return undefined;
  }
  const pods = await patroniPods(kube);
  if (pods.length !== instances || !pods.every(podReady)) return undefined;
  for (const p of pods) {
    const want = p.metadata.name === leader.name ? 'primary' : 'replica';
    if (roleOf(p) !== want) return undefined;
  }
  if (leader.timeline === undefined) return undefined;
  // And PostgreSQL agrees: the leader's server is out of recovery and streams to every other member
  // (synchronous_node_count of them synchronously in synchronous mode; with synchronous_standby_names
  // '*' an asynchronous cluster's standby may show `sync` too, so only streaming is asked of it then).
  const [row] = await psqlIn(
    kube,
    leader.name,
    "SELECT pg_is_in_recovery(), count(*) FILTER (WHERE state = 'streaming'), count(*) FILTER (WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')) FROM pg_stat_replication;",
    'postgres',
  );
  if (row?.[0] !== 'f' || Number(row[1]) !== instances - 1 || Number(row[2]) < syncStandbys) return undefined;
  return {
    leader: leader.name,
    standbys: others.map((m) => m.name),
    timeline: leader.timeline,
    members: ms,
    pods,
  };
}

/** A label transition seen by the RoleSampler: epoch ms, and `pod=role` for every pod then. */
export interface RoleSample {
  at: number;
  roles: string;
  /** The Ready pod labelled role=primary, if exactly one. */
  primary: string | undefined;
}

/** Samples the members' role labels (and readiness) until stop(); keeps each change. */
export class RoleSampler {
  readonly changes: RoleSample[] = [];
  #running = true;
  readonly #loop: Promise<void>;

  constructor(kube: Kube, everyMs = 300) {
    this.#loop = (async () => {
      while (this.#running) {
        try {
          const pods = await patroniPods(kube);
          const roles = pods
            .map((p) => `${p.metadata.name}=${roleOf(p) ?? '-'}${podReady(p) ? '' : '(unready)'}`)
            .sort()
            .join(',');
          const primaries = pods.filter((p) => roleOf(p) === 'primary' && podReady(p));
          const last = this.changes[this.changes.length - 1];
          if (last?.roles !== roles) {
            this.changes.push({
              at: Date.now(),
              roles,
              primary: primaries.length === 1 ? primaries[0]!.metadata.name : undefined,
            });
          }
        } catch {
          // the API server busy: next sample
        }
        await sleep(everyMs);
      }
    })();
  }

  /** The first change at or after `from` where a Ready primary other than `not` is labelled. */
  primaryAfter(from: number, not?: string): RoleSample | undefined {
    return this.changes.find((c) => c.at >= from && c.primary !== undefined && c.primary !== not);
  }

  /** Each change relative to `from` (the one in force at `from` first). */
  describe(from: number): string {
    const first = Math.max(0, this.changes.filter((c) => c.at < from).length - 1);
    return this.changes
      .slice(first)
      .map((c) => `${c.at >= from ? '+' : '-'}${seconds(Math.abs(c.at - from))} ${c.roles}`)
      .join('\n  ');
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** The run's rows in one member (psql), by the run's key prefix. */
export async function readRows(kube: Kube, pod: string, books: number[], keyPrefix: string): Promise<DbRows> {
  if (!/^[A-Za-z0-9-]+$/.test(keyPrefix)) throw new Error(`unexpected key prefix ${keyPrefix}`);
  const ids = books.map((b) => String(Math.trunc(b))).join(',');
  const rows = await psqlIn(
    kube,
    pod,
    [
      `SELECT 'o', id::text, book_id, idempotency_key, book_version::text, remaining_stock, price::text FROM orders WHERE idempotency_key LIKE '${keyPrefix}-%';`,
      `SELECT 'r', idempotency_key, book_id, quantity, book_version::text, stock, price::text FROM restocks WHERE idempotency_key LIKE '${keyPrefix}-%';`,
      `SELECT 'b', id, version::text, stock, price::text FROM books WHERE id IN (${ids});`,
    ].join('\n'),
  );
  const out: DbRows = { orders: [], restocks: [], books: new Map() };
  for (const r of rows) {
    if (r[0] === 'o') {
      out.orders.push({
        id: r[1]!,
        bookId: Number(r[2]),
        key: r[3]!,
        version: Number(r[4]),
        remainingStock: Number(r[5]),
        price: Number(r[6]),
      });
    } else if (r[0] === 'r') {
      out.restocks.push({
        key: r[1]!,
        bookId: Number(r[2]),
        quantity: Number(r[3]),
        version: Number(r[4]),
        stock: Number(r[5]),
        price: Number(r[6]),
      });
    } else if (r[0] === 'b') {
      out.books.set(Number(r[1]), { version: Number(r[2]), stock: Number(r[3]), price: Number(r[4]) });
    }
  }
  return out;
}

/** The Idempotency-Key prefix the workload gave every keyed write (`<prefix>-c<client>-[r]<seq>`). */
export function keyPrefixOf(history: readonly Op[]): string {
  const prefixes = new Set(
    history.filter((o) => o.key !== undefined).map((o) => (o.key as string).replace(/-c\d+-r?\d+$/, '')),
  );
  if (prefixes.size !== 1)
    throw new Error(`expected one key prefix in the history, found ${[...prefixes].join(', ')}`);
  return [...prefixes][0]!;
}

export const isWrite = (o: Op): boolean => o.kind !== 'read';

export interface WriteGap {
  /** The longest stretch without an acknowledged write that ends after the fault (ms). */
  gapMs: number;
  /** Its start (the last acknowledgement before it) and end (the first after), ms relative to the fault. */
  lastAckMs: number;
  firstAckMs: number;
  /** Writes invoked inside the stretch, and how they were answered (`status error`). */
  refused: Record<string, number>;
}

/**
 * The write gap as CloudNativePG's e2e suite measures a failover: from the last write acknowledged
 * before the fault took effect to the first acknowledged after it. Writes are continuous here (six
 * clients, ~45% writes: tens of ms between acknowledgements), so that is the longest stretch with no
 * acknowledgement among those ending after the fault and starting before `until` (when the cluster
 * was at full strength again): a graceful stop acknowledges writes for a moment after the fault.
 */
export function writeGap(r: WorkloadResult, faultAt: number, until: number): WriteGap {
  const ops = r.history.slice(0, r.recorded);
  const acks = ops
    .filter((o) => isWrite(o) && o.status === 200)
    .map((o) => o.complete + r.timeOrigin)
    .sort((a, b) => a - b);
  let best = { gapMs: 0, from: faultAt, to: faultAt };
  for (let i = 0; i + 1 < acks.length; i++) {
    const a = acks[i]!;
    const b = acks[i + 1]!;
    if (b < faultAt || a > until) continue;
    if (b - a > best.gapMs) best = { gapMs: b - a, from: a, to: b };
  }
  const refused: Record<string, number> = {};
  for (const o of ops) {
    const at = o.invoke + r.timeOrigin;
    if (!isWrite(o) || at < best.from || at > best.to || o.status === 200) continue;
    const k = `${o.status} ${o.error ?? ''}`.trim();
    refused[k] = (refused[k] ?? 0) + 1;
  }
  return { gapMs: best.gapMs, lastAckMs: best.from - faultAt, firstAckMs: best.to - faultAt, refused };
}

/** SIGKILLs the postmaster of a member (Patroni, its parent and the container's PID 1, lives on). */
export async function killPostmaster(kube: Kube, pod: string): Promise<number> {
  const out = await kube.kubectl(
    [
      'exec',
      '-n',
      NS,
      pod,
      '-c',
      CONTAINER,
      '--',
      'sh',
      '-c',
      'pid=$(head -n 1 "$(psql -U postgres -XAtc "SHOW data_directory")/postmaster.pid") && kill -9 "$pid" && echo "$pid"',
    ],
    { timeoutMs: 30_000 },
  );
  const pid = Number(out.stdout.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no postmaster pid: ${out.stdout} ${out.stderr}`);
  return pid;
}

/**
 * SIGKILLs Patroni, the patroni container's PID 1, from the node (containerd's `ctr tasks kill`): as
 * the OOM killer or a crash would. Inside the container PID 1 cannot be sent SIGKILL (the kernel
 * protects a namespace's init from its own namespace), and SIGTERM is Patroni's clean shutdown. With
 * PID 1 gone, the kernel kills the rest of the container's PID namespace (PostgreSQL too) and the
 * kubelet restarts the container (restartPolicy Always).
 */
export async function killPatroni(t: TierCluster, pod: PatroniPod): Promise<string> {
  const id = containerOf(pod)?.containerID?.replace(/^containerd:\/\//, '');
  if (!id) throw new Error(`${pod.metadata.name}: no patroni container id`);
  await t.cluster.exec(
    [
      'ctr',
      '--address',
      t.cluster.layout.containerdSocket,
      '--namespace',
      'k8s.io',
      'tasks',
      'kill',
      '--signal',
      'SIGKILL',
      id,
    ],
    { timeoutMs: 30_000 },
  );
  return id;
}

/** The last lines of Patroni's log in each member since `sinceMs` (epoch), the previous container's too. */
export async function patroniLogs(kube: Kube, sinceMs: number, lines = 40): Promise<string> {
  const since = `${Math.ceil((Date.now() - sinceMs) / 1000) + 5}s`;
  const out: string[] = [];
  for (const p of await patroniPods(kube)) {
    for (const previous of [true, false]) {
      if (previous && (containerOf(p)?.restartCount ?? 0) === 0) continue;
      const res = await kube.kubectl(
        [
          'logs',
          '-n',
          NS,
          p.metadata.name,
          '-c',
          CONTAINER,
          `--since=${since}`,
          ...(previous ? ['--previous'] : []),
        ],
        { allowFailure: true, timeoutMs: 20_000 },
      );
      const text = (res.stdout || res.stderr).trim().split('\n').slice(-lines).join('\n    ');
      out.push(`${p.metadata.name}${previous ? ' (previous container)' : ''}:\n    ${text}`);
    }
  }
  return out.join('\n  ');
}

/**
 * The writers' waits as the chart resolves its defaults for the bundled Patroni
 * (charts/bazar/templates/_helpers.tpl; test/chart/chart-render.test.ts checks the rendering): for a
 * standby's confirmation loop_wait + 5 s, for a primary loop_wait, and the fronts' write timeout both,
 * the two announcements (2 x invalidationTimeoutMs 1000), a refusal's connect timeout and 2 s to spare.
 */
const LOOP_WAIT_MS = patroniValues().loopWait * 1000;
export const SYNC_COMMIT_TIMEOUT_MS = LOOP_WAIT_MS + 5000;
export const PRIMARY_WAIT_MS = LOOP_WAIT_MS;
export const UPSTREAM_WRITE_TIMEOUT_MS = PRIMARY_WAIT_MS + SYNC_COMMIT_TIMEOUT_MS + 2 * 1000 + 1000 + 2000;

/** The writers: order pods and catalog origins (they commit, and degrade strict commits). */
export async function writerPods(kube: Kube): Promise<string[]> {
  return (await releasePods(kube, NS, RELEASE))
    .filter((p) => {
      const c = p.metadata.labels?.['app.kubernetes.io/component'];
      return c === 'order' || (c === 'catalog' && p.metadata.labels?.role === 'origin');
    })
    .map((p) => p.metadata.name);
}

/** What the fronts logged of the calls they could not complete since `since` (epoch ms). */
export async function frontUpstreamFailures(kube: Kube, since: number): Promise<string> {
  const lines: string[] = [];
  for (const pod of await releasePodsBy(kube, NS, RELEASE, 'app.kubernetes.io/component=front')) {
    const text = (
      await kube.kubectl(
        ['logs', '-n', NS, pod.metadata.name, `--since=${Math.ceil((Date.now() - since) / 1000) + 5}s`],
        { timeoutMs: 20_000, allowFailure: true },
      )
    ).stdout;
    lines.push(
      ...text
        .split('\n')
        .filter((l) => l.includes('upstream call failed'))
        .map((l) => `  ${pod.metadata.name}: ${l}`),
    );
  }
  return lines.join('\n') || '  (none)';
}

/**
 * When strict writes were degraded or unreplicated, from the writers' own log lines (`consistency
 * degraded` / `consistency restored`, pino's ISO time), on the history's clock: a new primary has no
 * synchronous standby until the old one rejoins, so strict commits wait up to SYNC_COMMIT_TIMEOUT_MS
 * until Patroni names none (or, with STRICT_STANDBY_LOSS=degrade, time out) (docs/guarantees.md G2,
 * G6). Each interval starts that long (and 250 ms more) before the line, when the first commit let go
 * may have begun to wait. With
 * `unreachableOk`, a writer whose log cannot be read (its node is down) is left out and named in
 * `unread` instead of failing the call.
 */
export async function degradedIntervals(
  kube: Kube,
  r: WorkloadResult,
  since: number,
  opts: { unreachableOk?: boolean; unread?: string[] } = {},
): Promise<Interval[]> {
  const out: Interval[] = [];
  const end = Date.now();
  for (const pod of await writerPods(kube)) {
    const res = await kube.kubectl(
      ['logs', '-n', NS, pod, `--since=${Math.ceil((end - since) / 1000) + 5}s`],
      { timeoutMs: 20_000, allowFailure: opts.unreachableOk === true },
    );
    if (res.code !== 0) {
      opts.unread?.push(pod);
      continue;
    }
    let open: number | undefined;
    for (const line of res.stdout.split('\n')) {
      if (!line.includes('consistency degraded') && !line.includes('consistency restored')) continue;
      let at: number;
      try {
        at = Date.parse((JSON.parse(line) as { time: string }).time);
      } catch {
        throw new Error(`${pod}: a degradation line that is not pino JSON: ${line}`);
      }
      if (line.includes('consistency degraded')) open ??= at - SYNC_COMMIT_TIMEOUT_MS - 250;
      else if (open !== undefined) {
        out.push({ from: open - r.timeOrigin, to: at - r.timeOrigin });
        open = undefined;
      }
    }
    if (open !== undefined) out.push({ from: open - r.timeOrigin, to: end - r.timeOrigin });
  }
  return out;
}
