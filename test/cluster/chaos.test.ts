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
 *   4. the standby pod deleted: strict writes degrade visibly (guarantees.md G6) and recover once it streams again;
 *   5. kube-apiserver restarted: the store keeps serving, the watches recover.
 * A real Prometheus runs in the node throughout (node-prometheus.ts: Kubernetes service discovery, the
 * chart's alert rules): the standby held away fires BazarStandbyNotStreaming and
 * BazarStrictWritesDegraded while it lasts, and both resolve once it streams again.
 * Values given to the chart: tools/images' image values, small CPU requests, and
 * `postgresql.engine=pair`: these scenarios are the pair's (no failover: the primary's own pod comes
 * back on its volume); Patroni's, the chart's default engine, are failover.test.ts's.
 * Needs root, the toolchain and the host packages (prerequisites.ts); without them NOT RUN, and under
 * CI that is a failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  bringUp,
  tearDown,
  DEPLOYMENTS,
  describeRun,
  failed,
  failureLines,
  figures,
  installStore,
  NS,
  inPodNetwork,
  RecordedWorkload,
  RELEASE,
  releaseReady,
  skipReason,
  type Store,
  type TierCluster,
  type WorkloadResult,
} from './chaos-support.js';
import { percentile } from '../../tools/bench/src/stats.js';
import type { Op } from '../../tools/checker/src/history.js';
import {
  chartDefaults,
  chartPodCount,
  log,
  podReady,
  releasePods,
  releasePodsBy,
  restarts,
  seconds,
  sleep,
  until,
  type Pod,
} from './support.js';
import { NodePrometheus, nodePrometheusBlocker } from './node-prometheus.js';
import { describeAlerts } from '../prometheus/alerts.js';
import {
  longestCommitWait,
  longestSyncGap,
  parseWalSamples,
  walSamplingSql,
  type WalSample,
} from './commit-wait.js';

const CLUSTER_NAME = 'chaos';
const skip = await skipReason('the chaos scenarios (test/cluster/chaos.test.ts)', nodePrometheusBlocker);

/** One line per scenario for docs/reliability.md, printed again at the end. */
const summary: string[] = [];

/** What sampleWriters saw: the reason per writer seen degraded, answers per writer, last error per writer. */
interface WriterSamples {
  seen: Map<string, string>;
  samples: Map<string, number>;
  errors: Map<string, string>;
}

describe(
  'chaos on a real node: rollouts, pod kills, PostgreSQL and API-server loss under a recorded workload',
  { skip, timeout: 3_600_000 },
  () => {
    let t: TierCluster | undefined;
    let store: Store;
    let podCount = 0;
    let prometheus: NodePrometheus | undefined;

    const tier = (): TierCluster => {
      assert.ok(t, 'the cluster did not come up');
      return t;
    };
    const podsOf = (selector: string): Promise<Pod[]> => releasePodsBy(tier().kube, NS, RELEASE, selector);

    before(async () => {
      t = await bringUp(CLUSTER_NAME);
      podCount = chartPodCount(chartDefaults('pair'));
      // Scenario 4 shows writes degrading while the standby is away (config.strictStandbyLoss=degrade).
      store = await installStore(t, podCount, [
        '--set',
        'postgresql.engine=pair',
        '--set',
        'config.strictStandbyLoss=degrade',
      ]);
      log(`front Service ${store.frontUrl}, primary ${store.primaryIp}`);
      prometheus = await NodePrometheus.start({
        cluster: t.cluster,
        work: t.work,
        namespace: NS,
        release: RELEASE,
        // The chart's default timings. BazarInvalidationsFailing over 30 s for 1 min (chart values) fired
        // in 111 s in two CI runs and not within 360 s in the third (2026-12-07): over so short a window
        // the failed share of one front's pushes dips, and each dip restarts the `for`.
      });
    });

    after(async () => {
      try {
        await prometheus?.stop();
        await tearDown(t);
      } finally {
        log(`summary:\n${summary.join('\n')}`);
      }
    });

    /** Alerts expected while a scenario's fault lasted: the final test holds every firing to them. */
    const expectedAlerts: Array<{ name: string; labels: Record<string, string>; from: number; to: number }> =
      [];
    const nodePrometheus = (): NodePrometheus => {
      assert.ok(prometheus, 'the Prometheus in the node did not start');
      return prometheus;
    };

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

    /** Requests a service pod has answered so far (its own request histogram, every route but probes). */
    async function requestsServed(pod: string): Promise<number> {
      const text = await tier()
        .kube.podGet(NS, pod, 8080, '/metrics')
        .catch(() => '');
      return text
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('bazar_http_request_duration_seconds_count{') &&
            !/route="\/(livez|readyz|metrics)"/.test(l),
        )
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    }

    it('a forced delete of one pod of each Deployment: 0 failed idempotent requests, the history consistent', async () => {
      const w = RecordedWorkload.start(tier().cluster, store, 'force-delete', { stock: { '3': 40 } });
      const kills: Array<{ deployment: string; pod: string; at: number; recoveredMs: number }> = [];
      let r: WorkloadResult;
      try {
        await w.advance(100);
        for (const d of DEPLOYMENTS) {
          const before = (await podsOf(d.selector)).filter(podReady);
          // The victim is a pod that is serving the workload now: every catalog and order pod gets the
          // fronts' round-robin, but the clients' few keep-alive connections to the front Service may
          // all have landed on one front (kube-proxy picks per connection).
          const served = await Promise.all(before.map((p) => requestsServed(p.metadata.name)));
          await sleep(1000);
          const after = await Promise.all(before.map((p) => requestsServed(p.metadata.name)));
          const busiest = before
            .map((p, i) => ({ p, n: after[i]! - served[i]! }))
            .sort((a, b) => b.n - a.n)[0]!;
          const victim = busiest.p;
          const at = Date.now();
          await tier().kube.kubectl([
            'delete',
            'pod',
            '-n',
            NS,
            victim.metadata.name,
            '--grace-period=0',
            '--force',
          ]);
          await until(
            `${d.name}: a replacement for ${victim.metadata.name} Ready`,
            async () => {
              const now = await podsOf(d.selector);
              const ready = now.filter(podReady);
              return !now.some((p) => p.metadata.uid === victim.metadata.uid) &&
                ready.length === before.length
                ? true
                : undefined;
            },
            180_000,
          );
          const recoveredMs = Date.now() - at;
          kills.push({ deployment: d.name, pod: victim.metadata.name, at, recoveredMs });
          log(
            `${d.name}: ${victim.metadata.name} force-deleted, replacement Ready after ${seconds(recoveredMs)}`,
          );
          await w.advance(30);
        }
        await sleep(2000);
      } finally {
        r = await w.stop();
      }
      const ops = r.history.slice(0, r.recorded);
      // Each victim was serving before it was killed (the kill took something away).
      for (const k of kills) {
        // A front serves every request it answers (X-Front), a catalog or order pod what it produced
        // (X-Served-By): a front's own name is in X-Served-By only on a cache hit.
        const served = ops.filter(
          (o) => (o.servedBy === k.pod || o.front === k.pod) && o.complete + r.timeOrigin < k.at,
        ).length;
        assert.ok(served > 0, `${k.pod} served requests before it was killed`);
      }
      const f = figures(r);
      const idempotent = ops.filter((o) => o.kind !== 'set-price');
      const nonIdempotent = ops.filter((o) => o.kind === 'set-price');
      const fi = figures(r, idempotent);
      const fn = figures(r, nonIdempotent);
      summary.push(
        `forced delete: ${describeRun('forced deletes', r).split('\n')[0]}; idempotent failures ${fi.failed}, ` +
          `price changes (not keyed) failed ${fn.failed}; ${kills.map((k) => `${k.deployment} back in ${seconds(k.recoveredMs)}`).join('; ')}`,
      );
      assertConsistent('forced deletes', r);
      assert.deepEqual(fi.failures, {}, 'no idempotent request (read, keyed purchase or restock) failed');
      log(
        `price changes failed: ${fn.failed} ${JSON.stringify(fn.failures)}; connection failures resent: ${f.connFailures}`,
      );
    });

    /** The service pods (not PostgreSQL) by name: uid and restarts, to prove nothing restarted. */
    async function servicePodIdentities(): Promise<Map<string, string>> {
      const pods = (await releasePods(tier().kube, NS, RELEASE)).filter(
        (p) => p.metadata.labels?.['app.kubernetes.io/component'] !== 'postgresql',
      );
      return new Map(pods.map((p) => [p.metadata.name, `${p.metadata.uid} restarts=${restarts(p)}`]));
    }

    const isWrite = (o: Op): boolean => o.kind !== 'read';
    /** A write's answer while no primary is up: refused, or caught at COMMIT (outcome unknown). */
    const refusedForNoPrimary = (o: Op): boolean =>
      o.status === 503 && ['primary_unavailable', 'commit_outcome_unknown'].includes(o.error ?? '');

    it('the PostgreSQL primary pod deleted: writes 503 primary_unavailable fast, reads go on, writes resume on its volume, nothing restarts, no row lost', async () => {
      const primary = 'bazar-postgresql-0';
      const identities = await servicePodIdentities();
      const old = (await podsOf('app.kubernetes.io/component=postgresql,role=primary'))[0]!;
      const w = RecordedWorkload.start(tier().cluster, store, 'primary', { stock: { '3': 40 } });
      let r: WorkloadResult;
      let deletedAt = 0;
      let readyAt = 0;
      try {
        await w.advance(100);
        deletedAt = Date.now();
        await tier().kube.kubectl(['delete', 'pod', '-n', NS, primary, '--wait=false']);
        await until(
          `${primary} back (a new pod, Ready)`,
          async () => {
            const p = (await podsOf('app.kubernetes.io/component=postgresql,role=primary'))[0];
            return p && p.metadata.uid !== old.metadata.uid && podReady(p) ? p : undefined;
          },
          240_000,
        );
        readyAt = Date.now();
        log(`${primary}: deleted, a new pod Ready ${seconds(readyAt - deletedAt)} later`);
        await w.advance(150, 120_000);
        await sleep(2000);
      } finally {
        r = await w.stop();
      }
      const ops = r.history.slice(0, r.recorded);
      const at = (o: Op) => o.invoke + r.timeOrigin;
      const outage = ops.filter((o) => at(o) >= deletedAt && at(o) < readyAt);
      const writesDuring = outage.filter(isWrite);
      const refused = writesDuring.filter((o) => o.status === 503 && o.error === 'primary_unavailable');
      const latency = refused.map((o) => o.complete - o.invoke);
      const readsDuring = outage.filter((o) => o.kind === 'read');
      // Writes have resumed at the first write acknowledged that was sent after a refusal had been
      // answered. Not merely sent after a refusal was sent: a write already running on a pooled
      // session can still commit while the shutting-down primary refuses another writer (seen once in
      // CI: a write sent about 40 ms after the first refused one, before that 503 came back, was
      // acknowledged; the test then took it for the resumption and every later 503 for a failure).
      const firstOk = ops.find(
        (o) =>
          isWrite(o) && at(o) >= deletedAt && o.status === 200 && refused.some((x) => x.complete < o.invoke),
      );
      const resumedMs = firstOk ? at(firstOk) - readyAt : NaN;
      const after = ops.filter((o) => firstOk && o.invoke > firstOk.complete);
      const fig = figures(r);
      const line =
        `primary deleted: ${describeRun('primary', r).split('\n')[0]}; during the outage (${seconds(readyAt - deletedAt)} until the new pod was Ready) ` +
        `${writesDuring.length} writes, ${refused.length} × 503 primary_unavailable (p50 ${percentile(latency, 50).toFixed(0)} ms, max ${Math.max(...latency).toFixed(0)} ms), ` +
        `other write answers ${JSON.stringify(
          figures(
            r,
            writesDuring.filter((o) => !refused.includes(o)),
          ).failures,
        )}; ${readsDuring.length} reads, ` +
        `${readsDuring.filter(failed).length} failed; first write ok ${(resumedMs / 1000).toFixed(1)} s after the pod was Ready`;
      summary.push(line);
      log(`${line}\n${failureLines(r, { deleted: deletedAt, ready: readyAt }, 60)}`);
      // For the record: what a Prometheus saw of it (an outage this short is below every alert's window).
      log(`primary deleted: alerts now ${describeAlerts((await prometheus?.alerts()) ?? [])}`);
      assert.ok(refused.length > 0, 'writes were refused while the primary was away (the fault took effect)');
      assert.ok(
        Math.max(...latency) < 2500,
        `503 primary_unavailable answered fast (max ${Math.max(...latency)} ms)`,
      );
      assert.deepEqual(
        figures(
          r,
          writesDuring.filter((o) => !refusedForNoPrimary(o)),
        ).failures,
        {},
        'a write during the outage is answered 200 or 503 primary_unavailable (commit_outcome_unknown for one caught at COMMIT), nothing else',
      );
      assert.ok(readsDuring.length > 50, `${readsDuring.length} reads during the outage`);
      assert.deepEqual(figures(r, readsDuring).failures, {}, 'reads keep working from the standby');
      assert.ok(firstOk, 'writes resumed');
      assert.deepEqual(
        figures(r, after).failures,
        {},
        'every request after the first successful write is answered',
      );
      assert.deepEqual(await servicePodIdentities(), identities, 'no service pod restarted or was replaced');
      // The pod came back on its volume: every order acknowledged before the deletion is still there
      // (the checker's lost-order rule covers every acknowledged order, before and after).
      assertConsistent('primary', r);
      assert.equal(fig.failed, ops.filter(failed).length);
    });

    const STANDBY = 'bazar-postgresql-standby-0';
    const standbySelector = 'app.kubernetes.io/component=postgresql,role=standby';

    /** The writers (order pods and catalog origins): they degrade strict commits when the standby goes. */
    async function writerPods(): Promise<string[]> {
      return (await releasePods(tier().kube, NS, RELEASE))
        .filter((p) => {
          const c = p.metadata.labels?.['app.kubernetes.io/component'];
          return c === 'order' || (c === 'catalog' && p.metadata.labels?.role === 'origin');
        })
        .map((p) => p.metadata.name);
    }

    /** A writer's `bazar_consistency_degraded` gauge and the degradation its /readyz shows. */
    async function degradation(pod: string): Promise<{ gauge: number; reason: string | undefined }> {
      const [metrics, readyzText] = await Promise.all([
        tier().kube.podGet(NS, pod, 8080, '/metrics'),
        tier().kube.podGet(NS, pod, 8080, '/readyz'),
      ]);
      const gauge = /^bazar_consistency_degraded(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1];
      const readyz = JSON.parse(readyzText) as { consistency?: { mode: string; degraded?: string } };
      return { gauge: Number(gauge), reason: readyz.consistency?.degraded };
    }

    /**
     * Samples every writer, each in a loop of its own (a slow answer from one does not hold up the
     * others), until it is seen degraded (gauge 1 with a reason in /readyz) or the sampler stops.
     * `samples` and the last error per writer say what the sampler managed to see.
     */
    function sampleWriters(writers: string[]): { stop: () => Promise<WriterSamples> } {
      const result: WriterSamples = { seen: new Map(), samples: new Map(), errors: new Map() };
      let running = true;
      const loops = writers.map(async (pod) => {
        while (running && !result.seen.has(pod)) {
          try {
            const d = await degradation(pod);
            result.samples.set(pod, (result.samples.get(pod) ?? 0) + 1);
            if (d.gauge === 1 && d.reason) result.seen.set(pod, d.reason);
          } catch (err) {
            result.errors.set(pod, String((err as Error).message).split('\n')[0] ?? '');
          }
          await sleep(200);
        }
      });
      return {
        stop: async () => {
          running = false;
          await Promise.all(loops);
          return result;
        },
      };
    }

    async function replicationState(): Promise<string[][]> {
      return tier().kube.psql(
        NS,
        'bazar-postgresql-0',
        'SELECT application_name, state, sync_state FROM pg_stat_replication;',
      );
    }
    const streamingInSync = async () =>
      (await replicationState()).some(
        (row) => row[0] === STANDBY && row[1] === 'streaming' && ['sync', 'quorum'].includes(row[2] ?? ''),
      )
        ? true
        : undefined;

    /**
     * Samples the primary until stop() (commit-wait.ts): its clock, its WAL end and its synchronous
     * standby's replay, every 50 ms, in runs of one psql each (a run's samples come back when it ends).
     */
    function samplePrimaryWal(): { stop: () => Promise<WalSample[]> } {
      let running = true;
      const samples: WalSample[] = [];
      const loop = (async () => {
        while (running) {
          const out = await tier()
            .kube.kubectl(
              [
                'exec',
                '-i',
                '-n',
                NS,
                'bazar-postgresql-0',
                '-c',
                'postgresql',
                '--',
                'psql',
                '-U',
                'postgres',
                '-X',
              ],
              { input: walSamplingSql(40, 50), timeoutMs: 30_000, allowFailure: true },
            )
            .catch(() => undefined);
          if (out) samples.push(...parseWalSamples(out.stderr));
        }
      })();
      return {
        stop: async () => {
          running = false;
          await loop;
          return samples.sort((a, b) => a.at - b.at);
        },
      };
    }

    /** Waits until every writer commits strictly again: gauge 0 and no degradation in /readyz. */
    const untilWritersRestored = (writers: string[]) =>
      until(
        'every writer restored (gauge 0, no degradation in /readyz)',
        async () =>
          (await Promise.all(writers.map(degradation))).every((d) => d.gauge === 0 && !d.reason)
            ? true
            : undefined,
        60_000,
        250,
      );

    /** What each writer logged: [degraded, restored] line counts. */
    async function degradationLogs(writers: string[], since: number): Promise<Map<string, [number, number]>> {
      const out = new Map<string, [number, number]>();
      for (const pod of writers) {
        const text = (
          await tier().kube.kubectl([
            'logs',
            '-n',
            NS,
            pod,
            `--since=${Math.ceil((Date.now() - since) / 1000) + 5}s`,
          ])
        ).stdout;
        const count = (what: string) => text.split('\n').filter((l) => l.includes(what)).length;
        out.set(pod, [count('consistency degraded'), count('consistency restored')]);
      }
      return out;
    }

    it('the standby pod deleted: strict writes degrade visibly (readyz, metric, logs), never hang, nothing fails; it returns from its volume, streams again, the degradation clears', async () => {
      const identities = await servicePodIdentities();
      const old = (await podsOf(standbySelector))[0]!;
      const writers = await writerPods();
      for (const pod of writers)
        assert.deepEqual(await degradation(pod), { gauge: 0, reason: undefined }, `${pod} starts strict`);
      const w = RecordedWorkload.start(tier().cluster, store, 'standby', {
        stock: { '3': 40 },
        // Strict writes degrade while the standby is away: the session rules (docs/guarantees.md G2).
        mode: 'session',
      });
      let r: WorkloadResult;
      const times = { deletedAt: 0, readyAt: 0, streamingAt: 0, restoredAt: 0 };
      let sampled: WriterSamples | undefined;
      let walSamples: WalSample[];
      try {
        await w.advance(100);
        const sampler = sampleWriters(writers);
        const walSampler = samplePrimaryWal();
        times.deletedAt = Date.now();
        try {
          await tier().kube.kubectl(['delete', 'pod', '-n', NS, STANDBY, '--wait=false']);
          await until(
            `${STANDBY} back (a new pod, Ready)`,
            async () => {
              const p = (await podsOf(standbySelector))[0];
              return p && p.metadata.uid !== old.metadata.uid && podReady(p) ? p : undefined;
            },
            240_000,
          );
          times.readyAt = Date.now();
          await until(
            'the standby streaming in sync again (pg_stat_replication)',
            streamingInSync,
            120_000,
            250,
          );
          times.streamingAt = Date.now();
          await untilWritersRestored(writers);
          times.restoredAt = Date.now();
        } finally {
          sampled = await sampler.stop();
          walSamples = await walSampler.stop();
        }
        await w.advance(100);
      } finally {
        r = await w.stop();
      }
      const bootstrap = (await tier().kube.kubectl(['logs', '-n', NS, STANDBY, '-c', 'bootstrap'])).stdout;
      const logs = await degradationLogs(writers, times.deletedAt);
      const degradedWriters = [...logs].filter(([, [d]]) => d > 0).map(([pod]) => pod);
      const ops = r.history.slice(0, r.recorded);
      const at = (o: Op) => o.invoke + r.timeOrigin;
      const during = ops.filter((o) => isWrite(o) && at(o) >= times.deletedAt && at(o) < times.restoredAt);
      const latency = during.map((o) => o.complete - o.invoke);
      const seen = sampled?.seen ?? new Map<string, string>();
      const syncGapMs = longestSyncGap(walSamples);
      const wait = longestCommitWait(walSamples);
      const line =
        `standby pod deleted: ${describeRun('standby', r).split('\n')[0]}; new standby Ready ${seconds(times.readyAt - times.deletedAt)} after the delete ` +
        `(${/already holds a database/.test(bootstrap) ? 'from its volume' : 're-bootstrapped'}), streaming in sync ${seconds(times.streamingAt - times.readyAt)} later, ` +
        `every writer strict again ${seconds(times.restoredAt - times.streamingAt)} after that; no synchronous standby for ${seconds(syncGapMs)}, the longest commit wait ${seconds(wait.lower)}..${seconds(wait.upper)} (${walSamples.length} samples of the primary); ${degradedWriters.length}/${writers.length} writers degraded ` +
        `(seen in /readyz + metric: ${seen.size}); ${during.length} writes meanwhile, ${during.filter(failed).length} failed, ` +
        `p50 ${percentile(latency, 50).toFixed(0)} ms, max ${Math.max(...latency).toFixed(0)} ms`;
      summary.push(line);
      log(
        `${line}\n  seen: ${[...seen].map(([p, why]) => `${p}: ${why}`).join('\n  ')}\n  logs (degraded, restored): ${JSON.stringify([...logs])}`,
      );
      // The old pod shuts down cleanly and the StatefulSet starts the new one on the same volume: how
      // long strict commits waited depends on how fast that was and on how fast the new standby replayed
      // what it missed (commit-wait.ts: the primary's measure, not the list of sync standbys). A writer
      // degrades when a commit waits SYNC_COMMIT_TIMEOUT_MS (2000 ms in the chart): if none can have
      // waited that long, none may have degraded; if one certainly did, one must have. The writer's
      // clock starts before the primary's flush: 250 ms of room for that on the "none" side.
      assert.ok(
        syncGapMs > 0,
        'the standby loss took effect: the primary had no synchronous standby for a while',
      );
      if (wait.upper < 2000 - 250) {
        assert.equal(
          degradedWriters.length,
          0,
          `no commit waited ${2000 - 250} ms (at most ${wait.upper} ms): no writer degraded`,
        );
      } else if (wait.lower > 2000) {
        assert.ok(degradedWriters.length > 0, `a commit waited at least ${wait.lower} ms: a writer degraded`);
        assert.ok(
          seen.size > 0,
          `a degradation was seen in /readyz and bazar_consistency_degraded while it lasted (samples per writer ${JSON.stringify([...(sampled?.samples ?? [])])}, last errors ${JSON.stringify([...(sampled?.errors ?? [])])})`,
        );
      } // else too close to the timeout to call either way (reported in the line above)
      for (const [pod, [degraded, restored]] of logs) {
        assert.equal(
          restored,
          degraded,
          `${pod} logged a recovery for each degradation (${degraded}/${restored})`,
        );
      }
      assert.match(bootstrap, /already holds a database|bootstrap-standby: done/, 'the standby came back');
      assert.ok(during.length > 20, `${during.length} writes while the standby was away`);
      // guarantees.md G6: never blocks (the commit wait is cut at SYNC_COMMIT_TIMEOUT_MS, 2000 ms in the chart).
      assert.ok(
        Math.max(...latency) < 2 * 2000 + 1000,
        `no write waited long (max ${Math.max(...latency)} ms)`,
      );
      assert.deepEqual(figures(r).failures, {}, 'no request failed: degraded writes are reported committed');
      assert.deepEqual(await servicePodIdentities(), identities, 'no service pod restarted or was replaced');
      assertConsistent('standby', r);
    });

    it('the standby held away (its StatefulSet scaled to 0, then back): every writer degrades visibly, nothing fails, then strict again once it streams from its volume', async () => {
      const identities = await servicePodIdentities();
      const writers = await writerPods();
      const w = RecordedWorkload.start(tier().cluster, store, 'standby-away', {
        stock: { '3': 40 },
        // Strict writes degrade while the standby is away: the session rules (docs/guarantees.md G2).
        mode: 'session',
      });
      let r: WorkloadResult;
      const times = { awayAt: 0, degradedAt: 0, backAt: 0, streamingAt: 0, restoredAt: 0, resolvedAt: 0 };
      const reasons: string[] = [];
      const ALERTS = ['BazarStandbyNotStreaming', 'BazarStrictWritesDegraded'];
      let firingAt = new Map<string, number>();
      try {
        // Healthy first: neither alert active (a previous scenario's have resolved).
        await nodePrometheus().untilResolved(ALERTS, 120_000);
        await w.advance(100);
        times.awayAt = Date.now();
        await tier().kube.kubectl([
          'scale',
          '-n',
          NS,
          'statefulset/bazar-postgresql-standby',
          '--replicas=0',
        ]);
        await until(
          'every writer degraded (gauge 1, /readyz says why)',
          async () => {
            const states = await Promise.all(writers.map(degradation));
            if (!states.every((s) => s.gauge === 1 && s.reason)) return undefined;
            reasons.push(...states.map((s, i) => `${writers[i]}: ${s.reason}`));
            return true;
          },
          60_000,
          250,
        );
        times.degradedAt = Date.now();
        await w.advance(100);
        // The chart's alerts fire while it lasts (each has `for: 1m`), seen by a real Prometheus.
        firingAt = await nodePrometheus().untilFiring(ALERTS, 180_000);
        log(`standby held away: firing ${describeAlerts(await nodePrometheus().alerts())}`);
        await tier().kube.kubectl([
          'scale',
          '-n',
          NS,
          'statefulset/bazar-postgresql-standby',
          '--replicas=1',
        ]);
        times.backAt = Date.now();
        await until(
          'the standby streaming in sync again (pg_stat_replication)',
          streamingInSync,
          240_000,
          250,
        );
        times.streamingAt = Date.now();
        await untilWritersRestored(writers);
        times.restoredAt = Date.now();
        await w.advance(100);
        // ... and resolve once the standby streams and the writers are strict again.
        await nodePrometheus().untilResolved(ALERTS, 120_000);
        times.resolvedAt = Date.now();
      } finally {
        r = await w.stop();
      }
      const bootstrap = (await tier().kube.kubectl(['logs', '-n', NS, STANDBY, '-c', 'bootstrap'])).stdout;
      const logs = await degradationLogs(writers, times.awayAt);
      const ops = r.history.slice(0, r.recorded);
      const at = (o: Op) => o.invoke + r.timeOrigin;
      const during = ops.filter((o) => isWrite(o) && at(o) >= times.awayAt && at(o) < times.restoredAt);
      const latency = during.map((o) => o.complete - o.invoke);
      const line =
        `standby held away: ${describeRun('standby-away', r).split('\n')[0]}; every writer degraded ${seconds(times.degradedAt - times.awayAt)} after the scale-down; ` +
        `back from its volume and streaming in sync ${seconds(times.streamingAt - times.backAt)} after the scale-up, every writer strict again ` +
        `${seconds(times.restoredAt - times.streamingAt)} later; ` +
        `${ALERTS.map((a) => `${a} firing ${seconds((firingAt.get(a) ?? NaN) - times.awayAt)} after the scale-down`).join(', ')}, ` +
        `both resolved ${seconds(times.resolvedAt - times.restoredAt)} after the writers were strict again; ` +
        `${during.length} writes meanwhile, ${during.filter(failed).length} failed, ` +
        `p50 ${percentile(latency, 50).toFixed(0)} ms, max ${Math.max(...latency).toFixed(0)} ms`;
      summary.push(line);
      log(`${line}\n  ${reasons.join('\n  ')}\n  logs (degraded, restored): ${JSON.stringify([...logs])}`);
      for (const [pod, [degraded, restored]] of logs) {
        assert.ok(
          degraded >= 1 && restored === degraded,
          `${pod} logged its degradation and its recovery (${degraded}/${restored})`,
        );
      }
      assert.match(
        bootstrap,
        /already holds a database; streaming resumes from its slot/,
        'the standby came back on its volume',
      );
      assert.ok(
        Math.max(...latency) < 2 * 2000 + 1000,
        `no write waited long (max ${Math.max(...latency)} ms)`,
      );
      assert.deepEqual(figures(r).failures, {}, 'no request failed while the standby was away');
      assert.deepEqual(await servicePodIdentities(), identities, 'no service pod restarted or was replaced');
      assertConsistent('standby-away', r);
    });

    it('the primary held away (its StatefulSet scaled to 0, then back): writes 503 primary_unavailable, reads go on; BazarPrimaryUnreachable fires while it lasts and resolves once it is back', async () => {
      const PRIMARY_STS = 'statefulset/bazar-postgresql';
      const ALERT = 'BazarPrimaryUnreachable';
      const identities = await servicePodIdentities();
      const writers = await writerPods();
      const w = RecordedWorkload.start(tier().cluster, store, 'primary-away', {
        stock: { '3': 40 },
        clients: 4,
        thinkMs: 100,
      });
      let r: WorkloadResult;
      const times = { awayAt: 0, firingAt: 0, backAt: 0, readyAt: 0, resolvedAt: 0 };
      // Expected from the scale-down until this scenario ends (its own assertions judge the rest).
      const expected = { name: ALERT, labels: {}, from: 0, to: Infinity };
      try {
        await nodePrometheus().untilResolved([ALERT], 60_000);
        await w.advance(50);
        times.awayAt = Date.now();
        expected.from = times.awayAt;
        expectedAlerts.push(expected);
        await tier().kube.kubectl(['scale', '-n', NS, PRIMARY_STS, '--replicas=0']);
        // Every writer's bazar_db_primary_up is 0 for its `for: 1m`, then it fires (once per writer).
        const firing = await nodePrometheus().untilFiring([ALERT], 180_000);
        times.firingAt = firing.get(ALERT)!;
        // One alert per writer, each when its own gauge has been 0 for the minute: seconds apart.
        const now = await nodePrometheus().untilFiringFor(ALERT, 'pod', writers, 60_000);
        const firingPods = now
          .filter((a) => a.name === ALERT && a.state === 'firing')
          .map((a) => a.labels.pod);
        log(`primary held away: firing ${describeAlerts(now)}`);
        await tier().kube.kubectl(['scale', '-n', NS, PRIMARY_STS, '--replicas=1']);
        times.backAt = Date.now();
        await until(
          'bazar-postgresql-0 back (Ready)',
          async () => {
            const p = (await podsOf('app.kubernetes.io/component=postgresql,role=primary'))[0];
            return p && podReady(p) ? p : undefined;
          },
          240_000,
        );
        times.readyAt = Date.now();
        await w.advance(150, 120_000);
        await nodePrometheus().untilResolved([ALERT], 120_000);
        await w.advance(100, 120_000);
        times.resolvedAt = Date.now();
        assert.deepEqual(
          [...new Set(firingPods)].sort(),
          [...writers].sort(),
          `${ALERT} fired for every writer (catalog origins, order pods), nothing else`,
        );
      } finally {
        r = await w.stop();
        expected.to = Date.now();
      }
      const ops = r.history.slice(0, r.recorded);
      const at = (o: Op) => o.invoke + r.timeOrigin;
      const away = ops.filter((o) => at(o) >= times.awayAt && at(o) < times.backAt);
      const writesAway = away.filter(isWrite);
      const readsAway = away.filter((o) => o.kind === 'read');
      const refused = writesAway.filter((o) => o.status === 503 && o.error === 'primary_unavailable');
      const line =
        `primary held away: ${describeRun('primary-away', r).split('\n')[0]}; ${ALERT} firing ${seconds(times.firingAt - times.awayAt)} after the scale-down, ` +
        `back and Ready ${seconds(times.readyAt - times.backAt)} after the scale-up, resolved ${seconds(times.resolvedAt - times.readyAt)} after that; ` +
        `while away ${writesAway.length} writes (${refused.length} × 503 primary_unavailable), ${readsAway.length} reads (${readsAway.filter(failed).length} failed ${JSON.stringify(figures(r, readsAway).failures)})`;
      summary.push(line);
      log(line);
      assert.ok(
        refused.length > 20,
        'writes were refused while the primary was away (the fault took effect)',
      );
      assert.deepEqual(
        figures(
          r,
          writesAway.filter((o) => !refusedForNoPrimary(o)),
        ).failures,
        {},
        'a write while the primary is away is answered 503 primary_unavailable (commit_outcome_unknown for one caught at COMMIT)',
      );
      assert.ok(readsAway.filter((o) => !failed(o)).length > 50, 'reads went on while the primary was away');
      // Writes have resumed, for each writer, at its first acknowledged write sent after one of its
      // refusals was answered (as in the primary-deleted scenario): from then on every request it
      // serves must be answered. Each writer is a process of its own that finds the primary back on its
      // own probe (every 200 ms; one begun while the server was still away re-arms the fail-fast), so
      // purchases (order pods) and price changes and restocks (catalog origins) resume each at their
      // own moment: CI saw a purchase refused just after a catalog write was acknowledged, once. Not a
      // fixed time after Ready: CI saw the workload stop 5 s after Ready with too few writes past such
      // a mark.
      const resumed = (kinds: Op['kind'][]): Op | undefined =>
        ops.find(
          (o) =>
            kinds.includes(o.kind) &&
            at(o) >= times.awayAt &&
            o.status === 200 &&
            refused.some((x) => kinds.includes(x.kind) && x.complete < o.invoke),
        );
      const orderBack = resumed(['purchase']);
      const catalogBack = resumed(['set-price', 'restock']);
      assert.ok(orderBack && catalogBack, 'purchases and catalog writes both resumed');
      const backFor = (o: Op): number =>
        o.kind === 'purchase'
          ? orderBack.complete
          : o.kind === 'read'
            ? Math.min(orderBack.complete, catalogBack.complete)
            : catalogBack.complete;
      const after = ops.filter((o) => o.invoke > backFor(o));
      assert.ok(
        after.filter(isWrite).length > 10,
        `${after.filter(isWrite).length} writes after they resumed`,
      );
      const lateFailures = failureLines(
        { ...r, history: after.filter(failed), recorded: after.filter(failed).length },
        { back: times.backAt, ready: times.readyAt },
      );
      assert.deepEqual(
        figures(r, after).failures,
        {},
        `every request is answered once its writer has the primary back:\n${lateFailures}`,
      );
      assert.deepEqual(await servicePodIdentities(), identities, 'no service pod restarted or was replaced');
      assertConsistent('primary-away', r);
    });

    it('a front cut off from the writers (its /internal port dropped in its network namespace, the pod Ready): writes go on, BazarInvalidationsFailing fires for that front alone, and resolves once it is reachable again', async () => {
      const ALERT = 'BazarInvalidationsFailing';
      const identities = await servicePodIdentities();
      const front = (await podsOf('app.kubernetes.io/component=front')).sort((a, b) =>
        a.metadata.name.localeCompare(b.metadata.name),
      )[0]!;
      const name = front.metadata.name;
      const rule = ['INPUT', '-p', 'tcp', '--dport', '8081', '-j', 'DROP'];
      // Where strict does not hold (docs/guarantees.md): a front a writer cannot reach may serve its
      // cached copy until its reconciliation notices. The workload is held to the eventual rules.
      const w = RecordedWorkload.start(tier().cluster, store, 'front-cut-off', {
        stock: { '3': 40 },
        clients: 3,
        thinkMs: 150,
        mode: 'eventual',
      });
      let r: WorkloadResult;
      const times = { cutAt: 0, firingAt: 0, healedAt: 0, resolvedAt: 0 };
      let cut = false;
      // Expected from the cut until this scenario ends (its own assertions judge when it resolved).
      const expected = { name: ALERT, labels: { front: name }, from: 0, to: Infinity };
      try {
        await nodePrometheus().untilResolved([ALERT], 60_000);
        await w.advance(50);
        times.cutAt = Date.now();
        expected.from = times.cutAt;
        expectedAlerts.push(expected);
        await inPodNetwork(front.metadata.uid, ['iptables', '-w', '-I', ...rule]);
        cut = true;
        const firing = await nodePrometheus().untilFiring([ALERT], 360_000);
        times.firingAt = firing.get(ALERT)!;
        const now = await nodePrometheus().alerts();
        log(`front cut off: firing ${describeAlerts(now)}`);
        assert.deepEqual(
          [...new Set(now.filter((a) => a.name === ALERT).map((a) => a.labels.front))],
          [name],
          `${ALERT} is active for ${name} alone`,
        );
        const fronts = await podsOf('app.kubernetes.io/component=front');
        assert.ok(
          fronts.some((p) => p.metadata.name === name) && fronts.every(podReady),
          `every front Ready, ${name} too (its probes use the public port): ${fronts.map((p) => `${p.metadata.name} ${podReady(p)}`).join(', ')}`,
        );
        await inPodNetwork(front.metadata.uid, ['iptables', '-w', '-D', ...rule]);
        cut = false;
        times.healedAt = Date.now();
        await nodePrometheus().untilResolved([ALERT], 240_000);
        times.resolvedAt = Date.now();
      } finally {
        if (cut) await inPodNetwork(front.metadata.uid, ['iptables', '-w', '-D', ...rule]);
        r = await w.stop();
        expected.to = Date.now();
      }
      const ops = r.history.slice(0, r.recorded);
      const at = (o: Op) => o.invoke + r.timeOrigin;
      const during = ops.filter((o) => at(o) >= times.cutAt && at(o) < times.healedAt);
      const writeLatency = during.filter(isWrite).map((o) => o.complete - o.invoke);
      const line =
        `front cut off: ${describeRun('front-cut-off', r).split('\n')[0]}; ${ALERT} firing for ${name} ${seconds(times.firingAt - times.cutAt)} after the cut, ` +
        `resolved ${seconds(times.resolvedAt - times.healedAt)} after it was healed; ${during.filter(isWrite).length} writes meanwhile, ` +
        `p50 ${percentile(writeLatency, 50).toFixed(0)} ms, max ${Math.max(...writeLatency).toFixed(0)} ms (each waits out the push to the cut-off front)`;
      summary.push(line);
      log(line);
      assert.ok(during.filter(isWrite).length > 20, 'writes while the front was cut off');
      assert.deepEqual(
        figures(r).failures,
        {},
        'no request failed: a front cut off from the writers fails nothing',
      );
      assert.deepEqual(await servicePodIdentities(), identities, 'no service pod restarted or was replaced');
      assertConsistent('front-cut-off', r);
    });

    it('kube-apiserver restarted: the store keeps serving, the watches recover (a StorePolicy patch reaches every pod, discovery follows a scale-out)', async () => {
      const identities = await servicePodIdentities();
      const pods = (await releasePods(tier().kube, NS, RELEASE)).filter(
        (p) => p.metadata.labels?.['app.kubernetes.io/component'] !== 'postgresql',
      );
      const fronts = pods.filter((p) => p.metadata.labels?.['app.kubernetes.io/component'] === 'front');
      const watchRestarts = async (pod: string) => {
        const metrics = await tier().kube.podGet(NS, pod, 8080, '/metrics');
        return [...metrics.matchAll(/^bazar_kubernetes_watch_restarts_total\{[^}]*\} (\d+)/gm)].reduce(
          (n, m) => n + Number(m[1]),
          0,
        );
      };
      const restartsBefore = new Map(
        await Promise.all(
          pods.map(async (p) => [p.metadata.name, await watchRestarts(p.metadata.name)] as const),
        ),
      );
      const w = RecordedWorkload.start(tier().cluster, store, 'apiserver', { stock: { '3': 40 } });
      let r: WorkloadResult;
      const times = {
        restart: { stoppedMs: 0, readyMs: 0 },
        policyMs: 0,
        scaleMs: 0,
        restartedAt: 0,
        patchedAt: 0,
      };
      try {
        await w.advance(100);
        times.restartedAt = Date.now();
        times.restart = await tier().cluster.restartApiServer({ downMs: 5000 });
        log(
          `kube-apiserver stopped in ${times.restart.stoppedMs} ms, down 5 s, /readyz again ${seconds(times.restart.readyMs)} after the restart began`,
        );
        await w.advance(50);
        // A policy change made after the restart reaches every service pod (its watch recovered).
        const t0 = Date.now();
        times.patchedAt = t0;
        await tier().kube.kubectl([
          'patch',
          'storepolicy',
          RELEASE,
          '-n',
          NS,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { cache: { ttlMs: 45_000 } } }),
        ]);
        await until(
          'every front applying cache.ttlMs 45000',
          async () => {
            const ttl = await Promise.all(
              fronts.map(
                async (p) =>
                  (
                    JSON.parse(await tier().kube.podGet(NS, p.metadata.name, 8080, '/readyz')) as {
                      policy: { cacheTtlMs: number };
                    }
                  ).policy.cacheTtlMs,
              ),
            );
            return ttl.every((v) => v === 45_000) ? true : undefined;
          },
          60_000,
          250,
        );
        times.policyMs = Date.now() - t0;
        // Discovery follows: one more catalog replica appears in every front's endpoints and serves.
        const t1 = Date.now();
        const endpointsOf = async () =>
          Promise.all(
            fronts.map(
              async (p) =>
                (
                  JSON.parse(await tier().kube.podGet(NS, p.metadata.name, 8080, '/readyz')) as {
                    endpoints: { catalog: number };
                  }
                ).endpoints.catalog,
            ),
          );
        /** What each front and the API server say, for a wait that timed out: whose view is stale. */
        const discoveryState = async (): Promise<string> => {
          const lines: string[] = [];
          const slices = await tier()
            .kube.kubectl([
              'get',
              'endpointslices',
              '-n',
              NS,
              '-l',
              'kubernetes.io/service-name=bazar-catalog',
              '-o',
              'jsonpath={range .items[*]}{.metadata.name} gen {.metadata.generation}: {range .endpoints[*]}{.targetRef.name}(ready={.conditions.ready},terminating={.conditions.terminating}) {end}{"\\n"}{end}',
            ])
            .catch((err: Error) => ({ stdout: `(kubectl failed: ${err.message})` }));
          lines.push(`catalog EndpointSlices: ${slices.stdout.trim()}`);
          const pods = await podsOf('app.kubernetes.io/component=catalog').catch(() => []);
          lines.push(
            `catalog pods: ${pods.map((p) => `${p.metadata.name}${podReady(p) ? '' : ' (not ready)'}${p.metadata.deletionTimestamp ? ' (terminating)' : ''}`).join(', ')}`,
          );
          for (const p of fronts) {
            const ready = await tier()
              .kube.podGet(NS, p.metadata.name, 8080, '/readyz')
              .catch((err: Error) => `(${err.message})`);
            const metrics = await tier()
              .kube.podGet(NS, p.metadata.name, 8080, '/metrics')
              .catch(() => '');
            const watch = metrics
              .split('\n')
              .filter((l) => /^bazar_kubernetes_watch_(silence_seconds|restarts_total)\{[^}]*catalog/.test(l))
              .join('; ');
            let view = ready.slice(0, 200);
            try {
              const body = JSON.parse(ready) as { status?: string; endpoints?: unknown; checks?: unknown };
              view = JSON.stringify({ status: body.status, endpoints: body.endpoints, checks: body.checks });
            } catch {
              // not JSON: shown as it came
            }
            lines.push(`${p.metadata.name}: ${view} | ${watch}`);
          }
          return lines.join('\n  ');
        };
        const untilWithState = async (what: string, check: () => Promise<true | undefined>, ms: number) => {
          try {
            await until(what, check, ms, 500);
          } catch (err) {
            throw new Error(`${(err as Error).message}\n  ${await discoveryState()}`, { cause: err });
          }
        };
        // The catalog pods the fronts should see: what the two Deployments ask for (a front's count at
        // one instant is no baseline: a catalog pod may be briefly unready after the earlier scenarios).
        const desired = async (): Promise<number> => {
          let n = 0;
          for (const d of ['bazar-catalog-origin', 'bazar-catalog-replica']) {
            n += Number(
              (
                await tier().kube.kubectl([
                  'get',
                  'deployment',
                  d,
                  '-n',
                  NS,
                  '-o',
                  'jsonpath={.spec.replicas}',
                ])
              ).stdout,
            );
          }
          return n;
        };
        const catalogs = await desired();
        await untilWithState(
          'every front seeing every catalog pod before the scale-out',
          async () => ((await endpointsOf()).every((n) => n === catalogs) ? true : undefined),
          120_000,
        );
        await tier().kube.kubectl(['scale', '-n', NS, 'deployment/bazar-catalog-replica', '--replicas=3']);
        await untilWithState(
          'every front discovering the new catalog replica',
          async () => ((await endpointsOf()).every((n) => n === catalogs + 1) ? true : undefined),
          180_000,
        );
        times.scaleMs = Date.now() - t1;
        await w.advance(100);
        await tier().kube.kubectl(['scale', '-n', NS, 'deployment/bazar-catalog-replica', '--replicas=2']);
        await untilWithState(
          'every front back to the catalog pods it had',
          async () => ((await endpointsOf()).every((n) => n === catalogs) ? true : undefined),
          120_000,
        );
        await until(
          'the scaled-down catalog replica gone',
          async () => ((await servicePodIdentities()).size === identities.size ? true : undefined),
          120_000,
          500,
        );
        await tier().kube.kubectl([
          'patch',
          'storepolicy',
          RELEASE,
          '-n',
          NS,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { cache: { ttlMs: 60_000 } } }),
        ]);
        await w.advance(50);
      } finally {
        r = await w.stop();
      }
      const restartsAfter = new Map(
        await Promise.all(
          pods.map(async (p) => [p.metadata.name, await watchRestarts(p.metadata.name)] as const),
        ),
      );
      const broke = pods
        .filter((p) => (restartsAfter.get(p.metadata.name) ?? 0) > (restartsBefore.get(p.metadata.name) ?? 0))
        .map((p) => p.metadata.name);
      const line =
        `kube-apiserver restarted (down ${seconds(times.restart.readyMs)} in all): ${describeRun('apiserver', r).split('\n')[0]}; ` +
        `watch restarts on ${broke.length}/${pods.length} service pods; a StorePolicy patch after it reached every front in ${seconds(times.policyMs)}; ` +
        `a new catalog replica discovered by every front ${seconds(times.scaleMs)} after kubectl scale`;
      summary.push(line);
      log(`${line}\n${failureLines(r, { restarted: times.restartedAt, patched: times.patchedAt })}`);
      assert.deepEqual(figures(r).failures, {}, 'no request failed while the API server was away');
      assert.equal(
        broke.length,
        pods.length,
        `every service pod saw its watches break and restarted them (${broke.join(', ')})`,
      );
      assert.deepEqual(await servicePodIdentities(), identities, 'no service pod restarted or was replaced');
      assertConsistent('apiserver', r);
    });

    it("no alert fired for what is routine or not the store's fault: rollouts, pod replacements, an API-server restart", () => {
      const p = nodePrometheus();
      // The faults above that the store's users feel: writes refused while the primary was away
      // (the error budget), slow writes while a front was cut off (the latency budget), strict writes
      // degraded and a standby not streaming while it was away.
      const TRUTHFUL = new Set([
        'BazarErrorBudgetBurnFast',
        'BazarErrorBudgetBurnSlow',
        'BazarLatencyBudgetBurnFast',
        'BazarLatencyBudgetBurnSlow',
        'BazarStrictWritesDegraded',
        'BazarStandbyNotStreaming',
      ]);
      // The scenarios' own alerts, only while their fault lasted and only with their labels.
      const expected = (f: { alert: { name: string; labels: Record<string, string> }; at: number }) =>
        expectedAlerts.some(
          (e) =>
            e.name === f.alert.name &&
            Object.entries(e.labels).every(([k, v]) => f.alert.labels[k] === v) &&
            f.at >= e.from &&
            f.at <= e.to,
        );
      const fired = p.everFiring();
      const line = `alerts that fired during the tier: ${describeAlerts(fired.map((f) => f.alert))}`;
      summary.push(line);
      log(line);
      assert.deepEqual(
        fired
          .filter((f) => !TRUTHFUL.has(f.alert.name) && !expected(f))
          .map((f) => describeAlerts([f.alert])),
        [],
        "false alarms: alerts that fired with nothing wrong for the store's users",
      );
    });
  },
);
