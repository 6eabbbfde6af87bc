/**
 * Chaos on a real node (issue 12, item 1): the chart installed on a single-node Kubernetes of the
 * tier's own (tools/cluster, cluster `chaos`), a RECORDED workload — reads (cached and
 * `Cache-Control: no-cache`), keyed purchases, price changes and keyed restocks — from inside the
 * cluster's network against the front Service's ClusterIP, checked by the history checker
 * (tools/checker) after each scenario:
 *   1. `kubectl rollout restart` of every Deployment in turn: 0 failed requests, rollout times;
 *   2. a forced delete (`--grace-period=0 --force`) of one pod of each Deployment: 0 failed
 *      idempotent requests;
 *   3. the PostgreSQL primary pod deleted: writes 503 `primary_unavailable` fast, reads go on, writes
 *      resume once it is back on its volume, no service pod restarted, no acknowledged row lost;
 *   4. the standby pod deleted: strict writes degrade visibly (§4.6) and recover once it streams again;
 *   5. kube-apiserver restarted: the store keeps serving, the watches recover.
 * Values given to the chart: tools/images' image values and small CPU requests, nothing else.
 * Needs root, the toolchain and the host packages (prerequisites.ts); without them NOT RUN, and under
 * CI that is a failure.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { leftovers } from '../../tools/cluster/src/index.js';
import {
  bringUp,
  DEPLOYMENTS,
  describeRun,
  figures,
  installStore,
  NS,
  RecordedWorkload,
  RELEASE,
  releaseReady,
  skipReason,
  type Store,
  type TierCluster,
  type WorkloadResult,
} from './chaos-support.js';
import { log, releasePods, seconds, sleep, until, type Pod } from './support.js';

const CLUSTER_NAME = 'chaos';
const skip = await skipReason('the chaos scenarios (test/cluster/chaos.test.ts)');

/** One line per scenario for docs/reliability.md, printed again at the end. */
const summary: string[] = [];

describe(
  'chaos on a real node: rollouts, pod kills, PostgreSQL and API-server loss under a recorded workload',
  { skip, timeout: 3_600_000 },
  () => {
    let t: TierCluster | undefined;
    let store: Store;
    let podCount = 0;

    const tier = (): TierCluster => {
      assert.ok(t, 'the cluster did not come up');
      return t;
    };
    const podsOf = async (selector: string): Promise<Pod[]> =>
      (
        await tier().kube.json<{ items: Pod[] }>([
          'get',
          'pods',
          '-n',
          NS,
          '-l',
          `app.kubernetes.io/instance=${RELEASE},${selector}`,
        ])
      ).items;

    before(async () => {
      t = await bringUp(CLUSTER_NAME);
      podCount = 9;
      store = await installStore(t, podCount);
      log(`front Service ${store.frontUrl}, primary ${store.primaryIp}`);
    });

    after(async () => {
      try {
        if (t) {
          const report = await t.cluster.down({ log: (l) => log(`cluster: ${l}`) });
          assert.deepEqual(report.leftovers, [], 'down left something behind');
          assert.deepEqual(await leftovers(t.cluster.layout), [], 'leftovers() after down');
        }
      } finally {
        if (t) rmSync(t.work, { recursive: true, force: true });
        log(`summary:\n${summary.join('\n')}`);
      }
    });

    function assertConsistent(label: string, r: WorkloadResult): void {
      log(describeRun(label, r));
      assert.ok(r.report.ok, `${label}: the checker found violations:\n${describeRun(label, r)}`);
      // The run did exercise the rules (a vacuous pass would prove nothing).
      const s = r.report.stats;
      assert.ok(s.purchases.ok > 20, `${label}: ${s.purchases.ok} purchases`);
      assert.ok(s.setPrices.ok > 3, `${label}: ${s.setPrices.ok} price changes`);
      assert.ok(s.restocks.ok > 3, `${label}: ${s.restocks.ok} restocks`);
      assert.ok(s.compared.staleRead > 100, `${label}: ${s.compared.staleRead} real-time comparisons`);
    }

    it('kubectl rollout restart of every Deployment in turn: 0 failed requests, the history consistent', async () => {
      const before = await releasePods(tier().kube, NS, RELEASE);
      const w = RecordedWorkload.start(tier().cluster, store, 'rollout', { stock: { '3': 40 } });
      const rollouts: string[] = [];
      let r: WorkloadResult;
      try {
        await w.advance(100);
        for (const d of DEPLOYMENTS) {
          const old = (await podsOf(d.selector)).map((p) => p.metadata.uid);
          const t0 = Date.now();
          await tier().kube.kubectl(['rollout', 'restart', '-n', NS, `deployment/${d.name}`]);
          await tier().kube.kubectl(
            ['rollout', 'status', '-n', NS, `deployment/${d.name}`, '--timeout=300s'],
            {
              timeoutMs: 310_000,
            },
          );
          const rolled = Date.now() - t0;
          // The old pods finish their shutdown (delay, drain) while the workload goes on.
          await until(
            `${d.name}: the old pods gone`,
            async () =>
              (await podsOf(d.selector)).some((p) => old.includes(p.metadata.uid)) ? undefined : true,
            120_000,
          );
          const line = `${d.name}: rollout ${seconds(rolled)} (old pods gone after ${seconds(Date.now() - t0)})`;
          rollouts.push(line);
          log(line);
          await w.advance(30);
        }
        await sleep(2000);
      } finally {
        r = await w.stop();
      }
      const f = figures(r);
      summary.push(`rollout restart: ${describeRun('rollouts', r).split('\n')[0]}; ${rollouts.join('; ')}`);
      const after = await releaseReady(tier().kube, podCount);
      const survivors = after.filter((p) => before.some((b) => b.metadata.uid === p.metadata.uid));
      assert.deepEqual(
        survivors.map((p) => p.metadata.name).filter((n) => !n.includes('postgresql')),
        [],
        'every service pod was replaced',
      );
      assertConsistent('rollouts', r);
      assert.deepEqual(f.failures, {}, 'no request failed during the rollouts');
      assert.equal(f.failed, 0);
    });
  },
);
