/**
 * The store on several nodes (issue 22): the chart installed with its defaults (two Patroni members,
 * strict mode: Patroni's synchronous_mode, STRICT_STANDBY_LOSS=refuse, the writers waiting a
 * loop_wait for a primary and a loop_wait + 5 s for a standby) on a cluster of the tier's own with a
 * control plane and two workers (tools/cluster `up({ nodes: 3 })`), and under the recorded workload of
 * the chaos scenarios (reads, keyed purchases, price changes, keyed restocks through the front Service,
 * from the control-plane node; the history checker afterwards), the faults a datacenter's nodes have:
 *   1. the chart spreads itself: each service's pods and the Patroni members over the workers;
 *   2. `kubectl drain` of each worker in turn (then uncordon): no failed request, the PodDisruptionBudgets
 *      never broken, every Deployment Ready on the other worker, the drained member back. With one
 *      member away Patroni names no standby (after taking it off its sync key: it cannot be promoted),
 *      and the writers fence each strict write instead of waiting for one (docs/guarantees.md G6);
 *   3. the worker holding the PostgreSQL primary (and a front and the catalog origin: the primary is
 *      switched over there first) killed: power lost, every process of it at once (Cluster.killNode).
 *      Requests may fail until the control plane marks the node lost and the Services stop routing
 *      there (its node-monitor-grace-period); from then on, with a primary again, none may. No
 *      acknowledged write lost; every Deployment Ready elsewhere; powered on, the node rejoins and its
 *      member comes back as a standby;
 *   4. the worker holding the primary cut off (Cluster.cutNode: its processes run on): no split brain.
 *      The old primary's own server is sampled inside its node (it cannot be reached otherwise) beside
 *      the other's: the old one stops being writable by itself (Patroni demotes a leader that cannot
 *      renew its lock), and never is at any sample after another one is promoted. No acknowledged write
 *      lost (the old primary, unable to take the standby off its sync key, keeps its commits waiting);
 *      healed, the cluster is at full strength with no person acting.
 * Before the kill and the cut, the Deployments are spread again with `kubectl rollout restart` (what a
 * descheduler would do): Kubernetes does not move pods back to a node that returns.
 *
 * Runs by name, `npm test -- node-faults` (scripts/run-tests.mjs BY_NAME_ONLY). Needs root, the
 * toolchain and the host packages (prerequisites.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { check, formatReport } from '../../tools/checker/src/check.js';
import type { Op } from '../../tools/checker/src/history.js';
import {
  bringUp,
  DEPLOYMENTS,
  describeRun,
  failed,
  failureLines,
  figures,
  installStore,
  NS,
  RecordedWorkload,
  RELEASE,
  skipReason,
  tearDown,
  type Store,
  type TierCluster,
  type WorkloadResult,
} from './chaos-support.js';
import { audit, auditFindings, describeAudit, type Audit } from './failover-audit.js';
import {
  containerOf,
  degradedIntervals,
  describeMembers,
  frontUpstreamFailures,
  fullStrength,
  isWrite,
  keyPrefixOf,
  patroniLogs,
  patroniPods,
  patroniValues,
  patronictl,
  psqlIn,
  readRows,
  type PatroniPod,
  type Strength,
  UPSTREAM_WRITE_TIMEOUT_MS,
} from './failover-support.js';
import {
  chartDefaults,
  chartPodCount,
  log,
  podReady,
  releasePods,
  seconds,
  sleep,
  until,
  type Pod,
} from './support.js';

const CLUSTER_NAME = 'nodes';
const skip = await skipReason('the node faults (test/cluster/node-faults.test.ts)');
/** The chart's Patroni members (two: one per worker) and synchronous standbys (one). */
const P = patroniValues();
/** A control plane and a worker per member. */
const NODES = 1 + P.instances;
/**
 * Per attempt: every request is answered within it, or it counts as a hang: the fronts' write timeout
 * (a write may wait a loop_wait for a primary, then a loop_wait + 5 s for a standby) and a second.
 */
const CLIENT_TIMEOUT_MS = UPSTREAM_WRITE_TIMEOUT_MS + 1000;
/**
 * After the Service stops routing to a lost node and a primary is labelled again: kube-proxy's rules
 * and the fronts' discovery follow the API within a second or two on this machine.
 */
const ROUTING_SLACK_MS = 3000;
/**
 * The chart's nodeLossTolerationSeconds (30) after the controller-manager marks the node lost (its
 * node-monitor-grace-period, 40 s by default), then a replacement pod's start: the bound for every
 * Deployment to be Ready on the other worker.
 */
const READY_ELSEWHERE_MS = 180_000;

const nodeOf = (p: Pod): string | undefined => (p as Pod & { spec: { nodeName?: string } }).spec.nodeName;
const component = (p: Pod): string => p.metadata.labels?.['app.kubernetes.io/component'] ?? '?';
const group = (p: Pod): string => {
  const role = p.metadata.labels?.role;
  return component(p) === 'postgresql' || !role ? component(p) : `${component(p)}/${role}`;
};

/** One row of docs/reliability.md's node table. */
interface Row {
  scenario: string;
  requests: number;
  failed: number;
  failedAfterRouted: number;
  lost: number;
  figures: string;
}

describe(
  'the store on a control plane and two workers, with the chart’s defaults: the chart spread over the workers, each worker drained, the primary node killed, the primary node cut off, under a recorded workload',
  { skip, timeout: 3_600_000 },
  () => {
    let t: TierCluster | undefined;
    let store: Store;
    let podCount = 0;
    let workers: string[] = [];
    const rows: Row[] = [];

    const tier = (): TierCluster => {
      assert.ok(t, 'the cluster did not come up');
      return t;
    };
    const kube = () => tier().kube;
    const atFullStrength = (): Promise<Strength | undefined> =>
      fullStrength(kube(), P.instances, P.synchronousNodeCount);

    before(async () => {
      t = await bringUp(CLUSTER_NAME, { nodes: NODES });
      workers = t.cluster.nodeNames().slice(1);
      const defaults = chartDefaults('patroni');
      assert.ok(
        defaults.fronts >= workers.length,
        'a front on every worker, so that each one lost holds one',
      );
      podCount = chartPodCount(defaults);
      // The chart's defaults: what a user installs.
      store = await installStore(t, podCount, ['--set', 'postgresql.engine=patroni']);
      const strength = await until('the Patroni cluster at full strength', atFullStrength, 300_000, 1000);
      log(`front Service ${store.frontUrl}; Patroni: ${describeMembers(strength.members)}`);
    });

    after(async () => {
      try {
        await tearDown(t);
      } finally {
        log(
          `node faults table:\n| scenario | requests | failed | failed once routed around | acknowledged writes lost | figures |\n` +
            rows
              .map(
                (r) =>
                  `| ${r.scenario} | ${r.requests} | ${r.failed} | ${r.failedAfterRouted} | ${r.lost} | ${r.figures} |`,
              )
              .join('\n'),
        );
      }
    });

    /** Each group of the release's pods (a Deployment's, the Patroni members) and the nodes they run on. */
    async function placement(): Promise<Map<string, string[]>> {
      const out = new Map<string, string[]>();
      for (const p of await releasePods(kube(), NS, RELEASE)) {
        if (p.metadata.deletionTimestamp) continue;
        const list = out.get(group(p)) ?? [];
        list.push(nodeOf(p) ?? '(unscheduled)');
        out.set(group(p), list);
      }
      return out;
    }

    const describePlacement = (m: Map<string, string[]>): string =>
      [...m]
        .sort()
        .map(([g, nodes]) => `${g}: ${nodes.join(', ')}`)
        .join('; ');

    /**
     * What is not spread: a group of two or more pods (a Deployment's, the Patroni members) all on one
     * node, a service whose pods (every role: an order origin and an order replica both take purchases)
     * share one node, or a pod on the control plane.
     */
    function unspread(m: Map<string, string[]>): string[] {
      const out: string[] = [];
      const byService = new Map<string, string[]>();
      for (const [g, nodes] of m) {
        if (nodes.some((n) => !workers.includes(n))) out.push(`${g} on ${nodes.join(', ')}`);
        if (nodes.length >= 2 && new Set(nodes).size < 2) out.push(`${g}: every pod on ${nodes[0]}`);
        const service = g.split('/')[0]!;
        byService.set(service, [...(byService.get(service) ?? []), ...nodes]);
      }
      for (const [service, nodes] of byService) {
        if (nodes.length >= 2 && new Set(nodes).size < 2) out.push(`${service}: every pod on ${nodes[0]}`);
      }
      return out;
    }

    /**
     * Every Deployment with all its replicas running off `node`, Ready, but for the catalog replicas:
     * those read the standby and say they are not ready while it is away (services/catalog/src/main.ts
     * readiness), which it is while one member is down; they are asked to be Ready at full strength
     * (releaseAllReady).
     */
    async function deploymentsReadyOff(node?: string): Promise<true | undefined> {
      const deployments = await kube().json<{
        items: Array<{ metadata: { name: string }; spec: { replicas: number } }>;
      }>(['get', 'deployments', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`]);
      const pods = (await releasePods(kube(), NS, RELEASE)).filter(
        (p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running' && nodeOf(p) !== node,
      );
      for (const d of DEPLOYMENTS) {
        const want = deployments.items.find((x) => x.metadata.name === d.name)?.spec.replicas;
        assert.ok(want !== undefined, `no Deployment ${d.name}`);
        const labels = Object.fromEntries(
          d.selector.split(',').map((kv) => kv.split('=') as [string, string]),
        );
        const have = pods.filter(
          (p) =>
            Object.entries(labels).every(([k, v]) => p.metadata.labels?.[k] === v) &&
            (podReady(p) || d.name === 'bazar-catalog-replica'),
        );
        if (have.length < want) return undefined;
      }
      return true;
    }

    /** Every pod of the release Ready (the catalog replicas too: a standby streams again). */
    async function releaseAllReady(): Promise<void> {
      await until(
        `the release's ${podCount} pods Ready`,
        async () => {
          const pods = await releasePods(kube(), NS, RELEASE);
          return pods.length === podCount && pods.every(podReady) ? true : undefined;
        },
        240_000,
        1000,
      );
    }

    /**
     * The Deployments spread over both workers again, as a descheduler would: `kubectl rollout restart`
     * of each Deployment whose pods share one node (the chart's topology spread counts the new
     * ReplicaSet's pods only, so they land on both), and of one Deployment of a service whose pods share
     * one node (order: its origin's new pod goes where the replica is not). One at a time: two order
     * Deployments restarted together would both leave the node of the old pods for the same other one.
     */
    async function rebalance(): Promise<void> {
      for (let attempt = 1; ; attempt++) {
        const m = await placement();
        const bad = unspread(m);
        if (bad.length === 0) return;
        assert.ok(
          attempt <= 3,
          `still not spread after ${attempt - 1} rounds of rollout restarts: ${bad.join('; ')}`,
        );
        const together = (nodes: string[] | undefined) =>
          !!nodes && nodes.length >= 2 && new Set(nodes).size < 2;
        const groupOf = (d: { selector: string }) => {
          const labels = Object.fromEntries(
            d.selector.split(',').map((kv) => kv.split('=') as [string, string]),
          );
          return `${labels['app.kubernetes.io/component']}/${labels.role}`;
        };
        const restart = DEPLOYMENTS.filter((d) => together(m.get(groupOf(d))));
        for (const service of new Set(DEPLOYMENTS.map((d) => groupOf(d).split('/')[0]!))) {
          const nodes = [...m].filter(([g]) => g.split('/')[0] === service).flatMap(([, n]) => n);
          const first = DEPLOYMENTS.find((d) => groupOf(d).startsWith(`${service}/`))!;
          if (together(nodes) && !restart.some((d) => groupOf(d).startsWith(`${service}/`)))
            restart.push(first);
        }
        log(
          `rebalance (round ${attempt}): ${bad.join('; ')}: kubectl rollout restart of ${restart.map((d) => d.name).join(', ')}, one at a time`,
        );
        for (const d of restart) {
          await kube().kubectl(['rollout', 'restart', 'deployment', '-n', NS, d.name]);
          await kube().kubectl(['rollout', 'status', 'deployment', '-n', NS, d.name, '--timeout=300s'], {
            timeoutMs: 320_000,
          });
        }
        await releaseAllReady();
      }
    }

    /**
     * The worker to lose: the catalog origin's (one pod), which also holds a front (one per worker).
     * The primary is moved there with `patronictl switchover` if it leads elsewhere, so that the node
     * lost holds the primary, a front and a catalog pod. At full strength, as returned.
     */
    async function primaryOntoCatalogOrigin(what: string): Promise<{ node: string; before: Strength }> {
      const node = (await placement()).get('catalog/origin')?.[0];
      assert.ok(node && workers.includes(node), `the catalog origin runs on a worker (${node})`);
      const st = await until(`full strength before the ${what}`, atFullStrength, 300_000, 1000);
      if (nodeOf(st.pods.find((p) => p.metadata.name === st.leader)!) === node) return { node, before: st };
      const candidate = st.pods.find((p) => nodeOf(p) === node)?.metadata.name;
      assert.ok(candidate, `a member on ${node}`);
      const out = await patronictl(
        kube(),
        st.leader,
        ['switchover', '--leader', st.leader, '--candidate', candidate, '--force'],
        120_000,
      );
      log(`${what}: the primary moved to ${node}: ${out.trim().split('\n').slice(-2).join(' / ')}`);
      const before = await until(
        `full strength with ${candidate} leading`,
        async () => {
          const now = await atFullStrength();
          return now?.leader === candidate ? now : undefined;
        },
        300_000,
        1000,
      );
      await releaseAllReady();
      return { node, before };
    }

    /** Whether an EndpointSlice of `service` still has a ready endpoint on `node`. */
    async function routesTo(service: string, node: string): Promise<boolean> {
      const slices = await kube().json<{
        items: Array<{ endpoints?: Array<{ nodeName?: string; conditions?: { ready?: boolean } }> }>;
      }>(['get', 'endpointslices', '-n', NS, '-l', `kubernetes.io/service-name=${service}`]);
      return slices.items.some((s) =>
        (s.endpoints ?? []).some((e) => e.nodeName === node && e.conditions?.ready !== false),
      );
    }

    /**
     * A member's PostgreSQL asked from inside its node (containerd's `ctr tasks exec` in the patroni
     * container, psql over its Unix socket): no network on the way, so it answers while the node is
     * cut off. `primary` (writable), `standby` (in recovery: read-only), or `down`.
     */
    async function serverRole(
      node: string,
      pod: PatroniPod,
      probe: number,
    ): Promise<'primary' | 'standby' | 'down'> {
      const id = containerOf(pod)?.containerID?.replace(/^containerd:\/\//, '');
      if (!id) return 'down';
      const res = await tier().cluster.execOn(
        node,
        [
          'ctr',
          '--address',
          tier().cluster.node(node).containerdSocket,
          '--namespace',
          'k8s.io',
          'tasks',
          'exec',
          '--exec-id',
          `role-probe-${probe}`,
          id,
          'psql',
          '-U',
          'postgres',
          '-XAtc',
          'SELECT pg_is_in_recovery()',
        ],
        { timeoutMs: 10_000, allowFailure: true },
      );
      const out = res.stdout.trim();
      return res.code === 0 && out === 'f' ? 'primary' : res.code === 0 && out === 't' ? 'standby' : 'down';
    }

    /** Samples two members' servers every ~500 ms until stopped; keeps each sample. */
    function sampleRoles(members: Array<{ node: string; pod: PatroniPod }>) {
      const samples: Array<{ at: number; roles: string[] }> = [];
      let running = true;
      let n = 0;
      const loop = (async () => {
        while (running) {
          const at = Date.now();
          const roles = await Promise.all(members.map((m) => serverRole(m.node, m.pod, n++)));
          samples.push({ at, roles });
          await sleep(Math.max(0, 500 - (Date.now() - at)));
        }
      })();
      return {
        samples,
        stop: async () => {
          running = false;
          await loop;
        },
      };
    }

    /**
     * Full strength again with another member leading on a newer timeline than `before` (the old
     * primary back as a standby, no one acting), and every pod of the release Ready.
     */
    async function backToFullStrength(name: string, before: Strength, since: number): Promise<Strength> {
      const st = await until(
        `full strength after the ${name}, ${before.leader} back as a standby`,
        async () => {
          const now = await atFullStrength();
          return now && now.leader !== before.leader && now.timeline > before.timeline ? now : undefined;
        },
        300_000,
        1000,
      );
      log(`${name}: full strength ${seconds(Date.now() - since)} later: ${describeMembers(st.members)}`);
      await releaseAllReady();
      return st;
    }

    /** The audit of every member (once each has replayed what the leader has) and the checker. */
    async function judge(
      name: string,
      r: WorkloadResult,
      st: Strength,
      startedAt: number,
    ): Promise<Map<string, Audit>> {
      const books = [...r.facts.initial.keys()];
      const prefix = keyPrefixOf(r.history);
      const initialStock = new Map([...r.facts.initial].map(([b, v]) => [b, v.stock]));
      const [[lsn]] = (await psqlIn(kube(), st.leader, 'SELECT pg_current_wal_lsn();')) as [[string]];
      const audits = new Map<string, Audit>();
      for (const pod of [st.leader, ...st.standbys]) {
        if (pod !== st.leader) {
          await until(
            `${pod} has replayed up to ${lsn}`,
            async () =>
              (await psqlIn(kube(), pod, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn;`))[0]?.[0] ===
              't'
                ? true
                : undefined,
            30_000,
          );
        }
        audits.set(pod, audit(r.history, initialStock, await readRows(kube(), pod, books, prefix)));
      }
      const unread: string[] = [];
      const degraded = await degradedIntervals(kube(), r, startedAt, { unreachableOk: true, unread });
      const report = check(r.history, r.facts, { mode: 'strict', degraded });
      log(
        `${name}: checker (strict, ${degraded.length} degraded intervals, ms from the workload's start: ${degraded.map((d) => `${d.from.toFixed(0)}-${d.to.toFixed(0)}`).join(', ')}${unread.length ? `; logs unreadable: ${unread.join(', ')}` : ''}):\n` +
          formatReport(report, r.t0).split('\n').slice(0, 30).join('\n'),
      );
      for (const [pod, a] of audits) {
        log(`${name}: audit on ${pod}: ${describeAudit(a)}`);
        assert.equal(a.lost, 0, `strict: no acknowledged write lost on ${pod}:\n${auditFindings(a)}`);
        assert.deepEqual([a.conflicts.length, a.stock.length], [0, 0], `${pod}: ${auditFindings(a)}`);
        assert.ok(a.acknowledged.purchases > 20 && a.acknowledged.setPrices > 3, describeAudit(a));
      }
      assert.ok(report.ok, `${name}: the checker found violations:\n${formatReport(report, r.t0)}`);
      return audits;
    }

    const startWorkload = (name: string) =>
      RecordedWorkload.start(tier().cluster, store, name, {
        stock: { '3': 40 },
        timeoutMs: CLIENT_TIMEOUT_MS,
      });

    const ops = (r: WorkloadResult): Op[] => r.history.slice(0, r.recorded);
    const at = (r: WorkloadResult, o: Op): number => o.invoke + r.timeOrigin;

    it('the chart spreads itself over the workers: each Deployment, each service and the Patroni members over them, nothing on the control plane', async () => {
      const m = await placement();
      log(`placement after helm install: ${describePlacement(m)}`);
      assert.deepEqual(unspread(m), [], describePlacement(m));
      assert.equal(new Set(m.get('postgresql')).size, P.instances, 'each member on a node of its own');
    });

    it('kubectl drain of each worker in turn, then uncordon: no failed request, the PodDisruptionBudgets never broken, every Deployment Ready on the other workers, the drained member back as a standby', async () => {
      for (const node of workers) {
        const name = `drain-${node}`;
        const before = await until(`full strength before ${name}`, atFullStrength, 300_000, 1000);
        const heldPrimary = nodeOf(before.pods.find((p) => p.metadata.name === before.leader)!) === node;
        const startedAt = Date.now();
        const w = startWorkload(name);
        // The voluntary disruptions in flight, sampled through the drain: the pods of each
        // PodDisruptionBudget being evicted (terminating) never outnumber what it allows (its expected
        // pods less its desired healthy). Its health alone would not do: a catalog replica is unready
        // whenever its standby is away, which no eviction of its own caused.
        const broken: string[] = [];
        let sampling = true;
        const pdbSamples = (async () => {
          while (sampling) {
            try {
              const [pdbs, pods] = await Promise.all([
                kube().json<{
                  items: Array<{
                    metadata: { name: string };
                    spec: { selector: { matchLabels: Record<string, string> } };
                    status: { expectedPods: number; desiredHealthy: number };
                  }>;
                }>(['get', 'pdb', '-n', NS]),
                releasePods(kube(), NS, RELEASE),
              ]);
              for (const p of pdbs.items) {
                const terminating = pods.filter(
                  (x) =>
                    x.metadata.deletionTimestamp &&
                    Object.entries(p.spec.selector.matchLabels).every(
                      ([k, v]) => x.metadata.labels?.[k] === v,
                    ),
                );
                const allowed = p.status.expectedPods - p.status.desiredHealthy;
                if (terminating.length > allowed)
                  broken.push(
                    `${p.metadata.name}: ${terminating.map((x) => x.metadata.name).join(', ')} terminating at once (allowed ${allowed}) at +${seconds(Date.now() - startedAt)}`,
                  );
              }
            } catch {
              // the API busy: next sample
            }
            await sleep(500);
          }
        })();
        let r: WorkloadResult;
        let drainOut: string;
        let drainedAt = 0;
        let faultAt = 0;
        let full: Strength;
        try {
          await w.advance(100);
          faultAt = Date.now();
          const out = await kube().kubectl(
            ['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=300s'],
            { timeoutMs: 330_000 },
          );
          drainOut = out.stdout + out.stderr;
          drainedAt = Date.now();
          log(
            `${name}: drained in ${seconds(drainedAt - faultAt)}:\n  ${drainOut.trim().split('\n').join('\n  ')}`,
          );
          await until(`every Deployment Ready off ${node}`, () => deploymentsReadyOff(node), 120_000, 1000);
          await w.advance(150, 120_000);
          await kube().kubectl(['uncordon', node]);
          full = await until(`full strength after ${name} and uncordon`, atFullStrength, 300_000, 1000);
          log(
            `${name}: full strength ${seconds(Date.now() - faultAt)} after the drain began: ${describeMembers(full.members)}`,
          );
          await releaseAllReady();
          await w.advance(100, 120_000);
        } finally {
          sampling = false;
          await pdbSamples;
          await kube().kubectl(['uncordon', node], { allowFailure: true });
          r = await w.stop();
          log(
            `${describeRun(name, r)}\n  failures:\n${failureLines(r, { drain: faultAt, drained: drainedAt }, 40)}`,
          );
        }
        const f = figures(r);
        if (f.failed > 0)
          log(`${name}: the fronts' upstream failures:\n${await frontUpstreamFailures(kube(), faultAt)}`);
        const audits = await judge(name, r, full, startedAt);
        const writes = ops(r).filter((o) => isWrite(o) && at(r, o) >= faultAt && at(r, o) <= drainedAt);
        const evictions = (drainOut.match(/evicting pod/g) ?? []).length;
        const pdbRefusals = (drainOut.match(/disruption budget/g) ?? []).length;
        rows.push({
          scenario: `kubectl drain ${node}${heldPrimary ? ' (held the primary)' : ''}`,
          requests: f.requests,
          failed: f.failed,
          failedAfterRouted: f.failed,
          lost: audits.get(full.leader)!.lost,
          figures: `drain ${seconds(drainedAt - faultAt)}, ${evictions} evictions, ${pdbRefusals} refused by a PDB and retried, ${writes.length} writes during it; leader ${before.leader} -> ${full.leader}`,
        });
        assert.deepEqual(broken, [], 'no PodDisruptionBudget below its floor during the drain');
        assert.deepEqual(f.failures, {}, `${name}: no failed request during a drain`);
        assert.ok(writes.length > 20, `${writes.length} writes while the drain ran`);
        if (heldPrimary)
          assert.notEqual(full.leader, before.leader, 'the primary moved off the drained node');
      }
    });

    /**
     * Requests after the Service stopped routing to the lost node and a primary was labelled again
     * (each plus ROUTING_SLACK_MS) must all succeed, answered within the client's timeout (a hang is a
     * failure too). Before that, requests sent to the lost node's pods may fail or hang: the issue's
     * allowance, until the Service routes around it.
     */
    function assertServedOnceRouted(name: string, r: WorkloadResult, from: number): number {
      const late = ops(r).filter((o) => at(r, o) >= from && failed(o));
      assert.deepEqual(
        figures(r, late).failures,
        {},
        `${name}: no failed request once the Service stopped routing to the node and a primary led (from +${seconds(from)})`,
      );
      return late.length;
    }

    it('the worker holding the primary, a front and a catalog pod killed (power lost): no failed request once the Service routes around it and the other member leads, no acknowledged write lost, every Deployment Ready elsewhere; powered on, its member rejoins as a standby', async () => {
      await rebalance();
      const { node, before } = await primaryOntoCatalogOrigin('kill');
      const m = await placement();
      log(`kill: ${node} holds the primary ${before.leader}; placement ${describePlacement(m)}`);
      for (const g of ['front', 'catalog/origin']) {
        assert.ok(m.get(g)?.includes(node), `${node} holds a ${g} pod too (${describePlacement(m)})`);
      }
      const startedAt = Date.now();
      const w = startWorkload('node-kill');
      let r: WorkloadResult;
      let faultAt = 0;
      let unroutedAt: number;
      let promotedAt: number;
      let elsewhereAt: number;
      let readyMs: number;
      let full: Strength;
      try {
        await w.advance(100);
        faultAt = Date.now();
        const { killed } = await tier().cluster.killNode(node);
        log(`kill: ${node} powered off: ${killed} processes SIGKILLed`);
        [unroutedAt, promotedAt] = await Promise.all([
          until(
            `bazar-front no longer routing to ${node}`,
            async () => ((await routesTo('bazar-front', node)) ? undefined : Date.now()),
            180_000,
            500,
          ),
          until(
            'another member leading',
            async () => {
              const ms = await patroniPods(kube());
              const leader = ms.find(
                (p) =>
                  p.metadata.name !== before.leader && p.metadata.labels?.role === 'primary' && podReady(p),
              );
              return leader ? Date.now() : undefined;
            },
            180_000,
            500,
          ),
        ]);
        log(
          `kill: the front Service stopped routing to ${node} ${seconds(unroutedAt - faultAt)} after the kill; another member labelled primary after ${seconds(promotedAt - faultAt)}`,
        );
        elsewhereAt = await until(
          `every Deployment Ready off ${node}`,
          async () => ((await deploymentsReadyOff(node)) ? Date.now() : undefined),
          READY_ELSEWHERE_MS,
          1000,
        );
        log(`kill: every Deployment Ready elsewhere ${seconds(elsewhereAt - faultAt)} after the kill`);
        await w.advance(150, 120_000);
        readyMs = (await tier().cluster.startNode(node)).readyMs;
        log(`kill: ${node} powered on, Ready in ${seconds(readyMs)}`);
        full = await backToFullStrength('kill', before, faultAt);
        await w.advance(100, 120_000);
      } catch (err) {
        log(
          `kill failed; Patroni logs:\n  ${await patroniLogs(kube(), faultAt || Date.now() - 120_000).catch((e: Error) => e.message)}`,
        );
        throw err;
      } finally {
        r = await w.stop();
        log(describeRun('node-kill', r));
      }
      const servedFrom = Math.max(unroutedAt, promotedAt) + ROUTING_SLACK_MS;
      const f = figures(r);
      log(
        `node-kill failures:\n${failureLines(r, { kill: faultAt, unrouted: unroutedAt, promoted: promotedAt }, 40)}`,
      );
      const audits = await judge('node-kill', r, full, startedAt);
      const lateFailed = assertServedOnceRouted('node-kill', r, servedFrom);
      rows.push({
        scenario: `${node} killed (held the primary ${before.leader})`,
        requests: f.requests,
        failed: f.failed,
        failedAfterRouted: lateFailed,
        lost: audits.get(full.leader)!.lost,
        figures: `routed around ${seconds(unroutedAt - faultAt)}, other member primary ${seconds(promotedAt - faultAt)}, Deployments Ready elsewhere ${seconds(elsewhereAt - faultAt)}, node Ready ${seconds(readyMs)} after power-on`,
      });
      assert.ok(full.standbys.includes(before.leader), `${before.leader} rejoined as a standby`);
      assert.ok(elsewhereAt - faultAt <= READY_ELSEWHERE_MS);
    });

    it('the worker holding the primary cut off (its processes alive): the old primary demotes itself and is never writable once the other member is promoted (no split brain), no failed request once routed around, no acknowledged write lost; healed, full strength by itself', async () => {
      await rebalance();
      const { node, before } = await primaryOntoCatalogOrigin('cut');
      const oldPod = before.pods.find((p) => p.metadata.name === before.leader)!;
      const otherPods = before.pods.filter((p) => p.metadata.name !== before.leader);
      const m = await placement();
      log(`cut: ${node} holds the primary ${before.leader}; placement ${describePlacement(m)}`);
      for (const g of ['front', 'catalog/origin']) {
        assert.ok(m.get(g)?.includes(node), `${node} holds a ${g} pod too (${describePlacement(m)})`);
      }
      // The old primary first, then the others.
      const roles = sampleRoles([
        { node, pod: oldPod },
        ...otherPods.map((pod) => ({ node: nodeOf(pod)!, pod })),
      ]);
      const anotherPrimary = (s: { roles: string[] }) => s.roles.slice(1).includes('primary');
      const startedAt = Date.now();
      const w = startWorkload('node-cut');
      let r: WorkloadResult;
      let faultAt = 0;
      let unroutedAt: number;
      let healedAt = 0;
      let full: Strength;
      try {
        await w.advance(100);
        faultAt = Date.now();
        await tier().cluster.cutNode(node);
        log(`cut: ${node}'s port on the switch is down`);
        await until(
          'another member promoted (its server writable)',
          async () => (roles.samples.some((s) => s.at > faultAt && anotherPrimary(s)) ? true : undefined),
          180_000,
          500,
        );
        unroutedAt = await until(
          `bazar-front no longer routing to ${node}`,
          async () => ((await routesTo('bazar-front', node)) ? undefined : Date.now()),
          180_000,
          500,
        );
        await until(
          `every Deployment Ready off ${node}`,
          () => deploymentsReadyOff(node),
          READY_ELSEWHERE_MS,
          1000,
        );
        await w.advance(150, 120_000);
        // A few seconds more of the old primary's samples while still cut off.
        await sleep(5000);
        await tier().cluster.healNode(node);
        healedAt = Date.now();
        log(`cut: healed ${seconds(healedAt - faultAt)} after the cut`);
        full = await backToFullStrength('cut', before, healedAt);
        await w.advance(100, 120_000);
      } catch (err) {
        log(
          `cut failed; Patroni logs:\n  ${await patroniLogs(kube(), faultAt || Date.now() - 120_000).catch((e: Error) => e.message)}`,
        );
        throw err;
      } finally {
        await roles.stop();
        r = await w.stop();
        log(describeRun('node-cut', r));
      }
      // The servers' own view, sampled inside each node.
      const cutSamples = roles.samples.filter((s) => s.at >= faultAt && s.at < healedAt);
      const promoted = cutSamples.find(anotherPrimary)!;
      const promotedPod = otherPods[promoted.roles.indexOf('primary', 1) - 1]!.metadata.name;
      const demoted = cutSamples.find((s) => s.roles[0] !== 'primary');
      const writableAfter = cutSamples.filter((s) => s.at >= promoted.at && s.roles[0] === 'primary');
      const timeline = roles.samples
        .filter((s, i, all) => i === 0 || s.roles.join() !== all[i - 1]!.roles.join())
        .map(
          (s) =>
            `${s.at >= faultAt ? '+' : '-'}${seconds(Math.abs(s.at - faultAt))} ${[oldPod, ...otherPods].map((p, i) => `${p.metadata.name}=${s.roles[i]}`).join(' ')}`,
        )
        .join('\n  ');
      log(
        `cut: the servers' roles sampled inside their nodes (${roles.samples.length} samples):\n  ${timeline}`,
      );
      const servedFrom = Math.max(unroutedAt, promoted.at) + ROUTING_SLACK_MS;
      const f = figures(r);
      log(
        `node-cut failures:\n${failureLines(r, { cut: faultAt, promoted: promoted.at, unrouted: unroutedAt }, 40)}`,
      );
      assert.ok(demoted, `${before.leader} stopped being writable by itself while cut off`);
      assert.ok(
        demoted.at < promoted.at,
        `demoted (+${seconds(demoted.at - faultAt)}) before ${promotedPod} was promoted (+${seconds(promoted.at - faultAt)})`,
      );
      assert.deepEqual(
        writableAfter.map((s) => `+${seconds(s.at - faultAt)}`),
        [],
        `no split brain: ${before.leader} never writable once ${promotedPod} was promoted`,
      );
      const audits = await judge('node-cut', r, full, startedAt);
      const lateFailed = assertServedOnceRouted('node-cut', r, servedFrom);
      rows.push({
        scenario: `${node} cut off (held the primary ${before.leader})`,
        requests: f.requests,
        failed: f.failed,
        failedAfterRouted: lateFailed,
        lost: audits.get(full.leader)!.lost,
        figures: `old primary read-only ${seconds(demoted.at - faultAt)}, ${promotedPod} writable ${seconds(promoted.at - faultAt)} after the cut (${writableAfter.length} samples with two writable servers), routed around ${seconds(unroutedAt - faultAt)}, full strength ${seconds(Date.now() - healedAt)} after the heal`,
      });
      assert.ok(full.standbys.includes(before.leader), `${before.leader} rejoined as a standby`);
    });
  },
);
