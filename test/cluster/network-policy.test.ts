/**
 * NetworkPolicies enforced on a real node (issue 12, item 6; docs/guarantees.md G7). The chart ships
 * NetworkPolicies; the bridge CNI of tools/cluster enforces none, so this file brings up a cluster of
 * its own (`netpol`) with `up({ networkPolicy: true })`: kube-router v2.1.0's firewall as a node
 * daemon. kube-router v2.1.0 is flagged for reported security flaws: it is used here as a TEST
 * ENFORCER only, inside this throwaway cluster's own network namespace (its iptables rules and ipsets
 * live there and go with it; the host's are checked untouched at the end).
 *
 * With the chart installed (image values and small CPU requests only):
 *   - an unlabelled pod in the release's namespace, and one in another namespace, reach the front
 *     Service but not catalog, order or PostgreSQL (Services and pods alike), nor Patroni's REST API;
 *   - /internal/* of every service (the fronts' internal port, catalog, order) is unreachable from
 *     those pods, and the fronts' public port does not serve /internal/* at all (404, even with the
 *     right token);
 *   - the chart's own traffic works under enforcement: a purchase answers `X-Invalidated: n/n` (the
 *     writers reach every front's internal port), `helm test` passes, and Patroni's members reach each
 *     other's REST API and stay at full strength;
 *   - control: with the release's NetworkPolicies deleted the same pods DO reach catalog, order,
 *     PostgreSQL and the internal port (so the test proves enforcement, not an unreachable port), and
 *     once they are applied again they are blocked again.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingHostRequirements } from '../../tools/cluster/src/index.js';
import { defaultToolsBinDir } from '../../tools/cluster/src/layout.js';
import { run } from '../../tools/cluster/src/exec.js';
import {
  bringUp,
  tearDown,
  installStore,
  NS,
  RELEASE,
  skipReason,
  type Store,
  type TierCluster,
} from './chaos-support.js';
import { describeMembers, fullStrength, patroniValues } from './failover-support.js';
import { chartPodCount, log, podReady, releasePodsBy, seconds, until, type Pod } from './support.js';

const CLUSTER_NAME = 'netpol';
const OTHER_NS = 'outsider';
/** Patroni's settings in values.yaml (the chart's default engine). */
const P = patroniValues();
const PROBE = 'netpol-probe';

const skip = await skipReason(
  'the NetworkPolicy tier (test/cluster/network-policy.test.ts, kube-router as a test enforcer)',
  () => {
    const bin = path.join(defaultToolsBinDir(), 'kube-router');
    if (!existsSync(bin)) return `missing ${bin}: build it with \`bash scripts/k8s-tools.sh\``;
    const host = missingHostRequirements({ networkPolicy: true }).map((r) => `${r.file} (${r.pkg})`);
    return host.length
      ? `missing ${host.join(', ')}: \`npm run cluster -- prepare --network-policy\``
      : undefined;
  },
);

/** What the host's own network namespace holds of kube-router's kind (must not change). */
async function hostFirewall(): Promise<{ ipsets: string[]; kubeRouterRules: number }> {
  const ipsets = (await run('ipset', ['list', '-n'], { allowFailure: true })).stdout
    .split('\n')
    .filter(Boolean)
    .sort();
  const rules = (await run('iptables-save', [], { allowFailure: true })).stdout
    .split('\n')
    .filter((l) => l.includes('KUBE-ROUTER') || l.includes('KUBE-NWPLCY') || l.includes('KUBE-POD-FW'));
  return { ipsets, kubeRouterRules: rules.length };
}

interface Target {
  what: string;
  /** curl's URL, or host:port for PostgreSQL (probed with an SSLRequest). */
  url?: string;
  pg?: string;
  method?: string;
  headers?: string[];
  body?: string;
}

describe(
  'NetworkPolicies enforced on the node (kube-router v2.1.0 as a TEST enforcer, only inside the tier cluster)',
  { skip, timeout: 1_800_000 },
  () => {
    let t: TierCluster | undefined;
    let store: Store;
    let hostBefore: { ipsets: string[]; kubeRouterRules: number };
    let blockedTargets: Target[] = [];
    let openTargets: Target[] = [];
    let fronts = 0;

    const tier = (): TierCluster => {
      assert.ok(t, 'the cluster did not come up');
      return t;
    };

    async function podsOf(selector: string): Promise<Pod[]> {
      return (await releasePodsBy(tier().kube, NS, RELEASE, selector)).filter(
        (p) => !p.metadata.deletionTimestamp,
      );
    }

    /** Runs a probe from the probe pod of `ns`: true when the target answered at all. */
    async function reaches(ns: string, target: Target): Promise<boolean> {
      let script: string;
      if (target.pg) {
        // An SSLRequest: any PostgreSQL answers it with one byte, N or S, before authentication.
        const [host, port] = target.pg.split(':');
        script = `printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 ${host} ${port} | head -c 1`;
      } else {
        const args = [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          "'%{http_code}'",
          '--connect-timeout',
          '3',
          '--max-time',
          '5',
          ...(target.method ? ['-X', target.method] : []),
          ...(target.headers ?? []).flatMap((h) => ['-H', `'${h}'`]),
          ...(target.body ? ['-H', "'content-type: application/json'", '--data', `'${target.body}'`] : []),
          target.url!,
        ];
        script = `curl ${args.join(' ')}`;
      }
      const out = await tier().kube.kubectl(['exec', '-n', ns, PROBE, '--', 'sh', '-c', script], {
        allowFailure: true,
        timeoutMs: 30_000,
      });
      const answer = out.stdout.trim();
      return target.pg ? answer === 'N' || answer === 'S' : /^[1-5]\d\d$/.test(answer);
    }

    /** Every target's reachability from both probe pods. */
    async function survey(targets: Target[]): Promise<Array<{ ns: string; what: string; reached: boolean }>> {
      const out: Array<{ ns: string; what: string; reached: boolean }> = [];
      for (const ns of [NS, OTHER_NS]) {
        const results = await Promise.all(targets.map((target) => reaches(ns, target)));
        targets.forEach((target, i) => out.push({ ns, what: target.what, reached: results[i]! }));
      }
      return out;
    }

    const probePod = (ns: string, image: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      // Unlabelled as far as the chart is concerned: no app.kubernetes.io/* labels.
      metadata: { name: PROBE, namespace: ns, labels: { probe: 'netpol' } },
      spec: {
        containers: [{ name: 'probe', image, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }],
      },
    });

    before(async () => {
      hostBefore = await hostFirewall();
      t = await bringUp(CLUSTER_NAME, { networkPolicy: true });
      const router = await run('pgrep', ['-f', `${t.cluster.layout.configDir}/kube-router.kubeconfig`], {
        allowFailure: true,
      });
      assert.ok(router.stdout.trim(), 'kube-router runs as a node daemon of the cluster');
      store = await installStore(t, chartPodCount());
      const curl = t.records.find((r) => r.name === 'curl-standin');
      assert.ok(curl, 'tools/images built the curl stand-in');
      await t.kube.kubectl(['create', 'namespace', OTHER_NS]);
      await t.kube.kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: [probePod(NS, curl.ref), probePod(OTHER_NS, curl.ref)],
        }),
      });
      await until(
        'both probe pods Ready',
        async () => {
          const pods = await Promise.all(
            [NS, OTHER_NS].map((ns) => t!.kube.json<Pod>(['get', 'pod', '-n', ns, PROBE])),
          );
          return pods.every(podReady) ? true : undefined;
        },
        120_000,
      );
      const ip = async (svc: string) =>
        (await t!.kube.json<{ spec: { clusterIP: string } }>(['get', 'svc', '-n', NS, svc])).spec.clusterIP;
      const podIps = async (selector: string) =>
        (await podsOf(selector)).map((p) => [p.metadata.name, p.status.podIP!] as const);
      const frontPods = await podIps('app.kubernetes.io/component=front');
      fronts = frontPods.length;
      const invalidate = {
        method: 'POST',
        headers: [`authorization: Bearer ${store.internalToken}`],
        body: '{"items":[{"bookId":7,"version":1}]}',
      };
      openTargets = [
        { what: 'front Service :80 GET /livez', url: `http://${store.frontIp}:80/livez` },
        {
          what: 'front Service by name GET /info/1',
          url: `http://bazar-front.${NS}.svc.cluster.local/info/1`,
        },
        ...frontPods.map(([name, addr]) => ({
          what: `${name} :8080 GET /livez`,
          url: `http://${addr}:8080/livez`,
        })),
      ];
      blockedTargets = [
        ...frontPods.map(([name, addr]) => ({
          what: `${name} internal port :8081 POST /internal/invalidate`,
          url: `http://${addr}:8081/internal/invalidate`,
          ...invalidate,
        })),
        {
          what: 'catalog Service :8080 GET /books/1',
          url: `http://${await ip('bazar-catalog')}:8080/books/1`,
        },
        {
          what: 'catalog origin Service :8080 GET /livez',
          url: `http://${await ip('bazar-catalog-origin')}:8080/livez`,
        },
        ...(await podIps('app.kubernetes.io/component=catalog')).map(([name, addr]) => ({
          what: `${name} :8080 POST /internal/versions`,
          url: `http://${addr}:8080/internal/versions`,
          method: 'POST',
          headers: [`authorization: Bearer ${store.internalToken}`],
          body: '{"books":[1]}',
        })),
        { what: 'order Service :8080 GET /livez', url: `http://${await ip('bazar-order')}:8080/livez` },
        ...(await podIps('app.kubernetes.io/component=order')).map(([name, addr]) => ({
          what: `${name} :8080 POST /internal/test-hooks`,
          url: `http://${addr}:8080/internal/test-hooks`,
          method: 'POST',
          headers: [`authorization: Bearer ${store.internalToken}`],
          body: '{}',
        })),
        { what: 'PostgreSQL primary Service :5432', pg: `${store.primaryIp}:5432` },
        { what: 'PostgreSQL standby Service :5432', pg: `${await ip('bazar-postgresql-standby')}:5432` },
        ...(await podIps('app.kubernetes.io/component=postgresql')).flatMap(([name, addr]) => [
          { what: `${name} :5432`, pg: `${addr}:5432` },
          // Patroni's REST API (the default engine): its members' only.
          { what: `${name} :8008 GET /patroni (Patroni's REST API)`, url: `http://${addr}:8008/patroni` },
        ]),
      ];
      log(
        `targets: ${openTargets.length} expected open, ${blockedTargets.length} expected blocked, from ${NS}/${PROBE} and ${OTHER_NS}/${PROBE}`,
      );
    });

    after(async () => {
      await tearDown(t, async () =>
        assert.deepEqual(await hostFirewall(), hostBefore, "the host's ipsets and iptables are as they were"),
      );
    });

    it('an unlabelled pod in the release namespace and one in another namespace reach the front Service, but not catalog, order, PostgreSQL or any /internal/*', async () => {
      const t0 = Date.now();
      // kube-router programs a new pod's rules shortly after it starts: wait for the first full block.
      const settled = await until(
        'every blocked target blocked from both probe pods',
        async () => {
          const s = await survey(blockedTargets);
          return s.every((x) => !x.reached) ? s : undefined;
        },
        120_000,
        2000,
      );
      log(`enforcement in place ${seconds(Date.now() - t0)} after the probe pods were Ready`);
      const open = await survey(openTargets);
      const again = await survey(blockedTargets);
      log(
        `reachability under enforcement:\n${[...open, ...again].map((x) => `  ${x.ns}/${PROBE} → ${x.what}: ${x.reached ? 'reached' : 'blocked'}`).join('\n')}`,
      );
      assert.deepEqual(
        open.filter((x) => !x.reached),
        [],
        'the front (its public port) is reachable from anywhere',
      );
      assert.deepEqual(
        again.filter((x) => x.reached),
        [],
        'catalog, order, PostgreSQL and every /internal/* stay blocked',
      );
      assert.equal(settled.length, again.length);
    });

    it("the fronts' public port does not serve /internal/* at all: 404 even with the right token", async () => {
      for (const ns of [NS, OTHER_NS]) {
        const out = await tier().kube.kubectl(
          [
            'exec',
            '-n',
            ns,
            PROBE,
            '--',
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '-X',
            'POST',
            '-H',
            `authorization: Bearer ${store.internalToken}`,
            '-H',
            'content-type: application/json',
            '--data',
            '{"items":[{"bookId":7,"version":1}]}',
            `${store.frontUrl}/internal/invalidate`,
          ],
          { timeoutMs: 30_000 },
        );
        assert.equal(out.stdout.trim(), '404', `${ns}: POST /internal/invalidate on the front Service`);
      }
    });

    it("the chart's own traffic works under enforcement: a purchase answers X-Invalidated n/n, helm test passes", async () => {
      const out = await tier().kube.kubectl(
        [
          'exec',
          '-n',
          OTHER_NS,
          PROBE,
          '--',
          'curl',
          '-s',
          '-i',
          '-X',
          'POST',
          '-H',
          'idempotency-key: netpol-purchase-1',
          `${store.frontUrl}/purchase/2`,
        ],
        { timeoutMs: 30_000 },
      );
      log(`POST /purchase/2 from ${OTHER_NS}:\n${out.stdout.trim()}`);
      assert.match(out.stdout, /^HTTP\/1\.1 200/);
      assert.match(
        out.stdout,
        new RegExp(`^x-invalidated: ${fronts}/${fronts}\\r?$`, 'im'),
        'every front took the invalidation through its internal port',
      );
      const test = await tier().kube.helm(['test', RELEASE, '-n', NS, '--logs'], { timeoutMs: 300_000 });
      log(test.stdout.slice(test.stdout.indexOf('TEST SUITE')));
      assert.match(test.stdout, /Phase:\s+Succeeded/);
      // Patroni's members reach each other's REST API (its leader race asks the others), and each
      // other's PostgreSQL (replication): the cluster is at full strength under enforcement.
      const members = await podsOf('app.kubernetes.io/component=postgresql');
      for (const from of members) {
        for (const to of members.filter((m) => m !== from)) {
          const res = await tier().kube.kubectl(
            [
              'exec',
              '-n',
              NS,
              from.metadata.name,
              '-c',
              'patroni',
              '--',
              'python3',
              '-c',
              `import urllib.request; print(urllib.request.urlopen('http://${to.status.podIP}:8008/patroni', timeout=5).status)`,
            ],
            { timeoutMs: 30_000 },
          );
          assert.equal(res.stdout.trim(), '200', `${from.metadata.name} → ${to.metadata.name} :8008`);
        }
      }
      const strength = await until(
        'Patroni at full strength under enforcement',
        () => fullStrength(tier().kube, P.instances, P.synchronousNodeCount),
        120_000,
        1000,
      );
      log(`Patroni under enforcement: ${describeMembers(strength.members)}`);
    });

    it('control: with the NetworkPolicies deleted the same pods DO reach catalog, order, PostgreSQL and the internal port; applied again, blocked again', async () => {
      const manifest = (await tier().kube.helm(['get', 'manifest', RELEASE, '-n', NS])).stdout;
      const policies = manifest
        .split(/^---$/m)
        .filter((doc) => /^kind: NetworkPolicy$/m.test(doc))
        .join('\n---\n');
      assert.ok(policies.includes('kind: NetworkPolicy'), 'the release has NetworkPolicies');
      const names = (
        await tier().kube.json<{ items: Array<{ metadata: { name: string } }> }>([
          'get',
          'networkpolicy',
          '-n',
          NS,
          '-l',
          `app.kubernetes.io/instance=${RELEASE}`,
        ])
      ).items.map((i) => i.metadata.name);
      await tier().kube.kubectl(['delete', 'networkpolicy', '-n', NS, ...names]);
      const t0 = Date.now();
      const open = await until(
        'every formerly blocked target reached from both probe pods',
        async () => {
          const s = await survey(blockedTargets);
          return s.every((x) => x.reached) ? s : undefined;
        },
        120_000,
        2000,
      );
      log(
        `without the policies (${names.join(', ')}), everything reached ${seconds(Date.now() - t0)} after the delete`,
      );
      assert.equal(open.length, blockedTargets.length * 2);
      await tier().kube.kubectl(['apply', '-n', NS, '-f', '-'], { input: policies });
      const t1 = Date.now();
      await until(
        'every target blocked again',
        async () => ((await survey(blockedTargets)).every((x) => !x.reached) ? true : undefined),
        120_000,
        2000,
      );
      log(`policies applied again: blocked again ${seconds(Date.now() - t1)} later`);
      assert.deepEqual(
        (await survey(openTargets)).filter((x) => !x.reached),
        [],
        'the front still open',
      );
    });
  },
);
