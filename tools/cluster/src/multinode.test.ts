/**
 * The local cluster with workers, end to end: `up({ nodes: 3 })` → a control plane (tainted, running
 * the addons) and two workers, each a node of its own → pods on each worker reach each other by pod IP,
 * Service and DNS name across the switch → a PVC's volume belongs to the node its pod ran on → a worker
 * cut off: the others no longer reach it, the control plane loses it (Ready Unknown) while its kubelet
 * runs on; healed: Ready again and reached again → a worker killed (power loss): every process of it
 * gone at once; powered on: it rejoins, its pods run again on their kept volumes → down leaves nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { pidsIn, strayCgroups } from './cgroups.js';
import { up, type Cluster } from './cluster.js';
import { daemonAlive } from './daemons.js';
import { sleep, waitFor } from './exec.js';
import { clusterImages } from './images.js';
import { status } from './status.js';
import { clusterTestSkipReason, jsonOf } from './test-support.js';

const NAME = 'multi';
const skip = clusterTestSkipReason();
const log = (line: string): void => {
  process.stderr.write(`[multi] ${line}\n`);
};

interface NodeObject {
  metadata: { name: string; labels: Record<string, string> };
  spec: { taints?: Array<{ key: string; effect: string }> };
  status: { conditions: Array<{ type: string; status: string }>; addresses: Array<{ address: string }> };
}

async function readyStatus(cluster: Cluster, node: string): Promise<string | undefined> {
  const n = await jsonOf<NodeObject>(cluster, ['get', 'node', node]);
  return n.status.conditions.find((c) => c.type === 'Ready')?.status;
}

/** A web server on `node` behind a Service of the same name, and (on the first) a PVC of its own. */
function podsOn(busybox: string, workers: string[]): string {
  const items: unknown[] = [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '16Mi' } } },
    },
  ];
  workers.forEach((node, i) => {
    const name = `web${i + 1}`;
    // The first keeps a line per start on its volume: after a power loss the line is there twice.
    const script =
      i === 0
        ? `echo started >> /data/starts && echo ${node} > /www/index.html && exec httpd -f -p 8080 -h /www`
        : `echo ${node} > /www/index.html && exec httpd -f -p 8080 -h /www`;
    items.push(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { app: name } },
        spec: {
          // A selector, not nodeName: the scheduler must place it, so the PVC binds on its node.
          nodeSelector: { 'kubernetes.io/hostname': node },
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'web',
              image: busybox,
              imagePullPolicy: 'IfNotPresent',
              command: ['sh', '-c', `mkdir -p /www && ${script}`],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              ...(i === 0 ? { volumeMounts: [{ name: 'data', mountPath: '/data' }] } : {}),
            },
          ],
          ...(i === 0 ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] } : {}),
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name },
        spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    );
  });
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

/** wget from pod `from` (exit code and output): 2 s to connect, as a client that gives up. */
async function fetchFrom(cluster: Cluster, from: string, url: string): Promise<{ ok: boolean; out: string }> {
  const r = await cluster.kubectl(['exec', from, '--', 'wget', '-qO-', '-T', '2', url], {
    allowFailure: true,
    timeoutMs: 30_000,
  });
  return { ok: r.code === 0, out: r.stdout.trim() };
}

test(
  'local cluster with workers: pods across nodes, node-local volumes, a worker cut off and killed, down',
  { skip, timeout: 900_000 },
  async (t) => {
    const images = await clusterImages(log);
    const cluster = await up({ name: NAME, images, nodes: 3, log });
    const releaseSignals = cluster.downOnSignal({ log }); // Interrupted: no `finally` would run.
    const [controlPlane, worker, worker2] = cluster.nodeNames() as [string, string, string];
    let downDone = false;
    try {
      await t.test('three nodes Ready: a tainted control plane running the addons, two workers', async () => {
        const nodes = await jsonOf<{ items: NodeObject[] }>(cluster, ['get', 'nodes']);
        assert.deepEqual(nodes.items.map((n) => n.metadata.name).sort(), [controlPlane, worker, worker2]);
        for (const n of nodes.items) {
          assert.ok(
            n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
            n.metadata.name,
          );
        }
        const byName = new Map(nodes.items.map((n) => [n.metadata.name, n]));
        assert.deepEqual(
          byName.get(controlPlane)?.spec.taints?.map((x) => `${x.key}:${x.effect}`),
          ['node-role.kubernetes.io/control-plane:NoSchedule'],
        );
        assert.equal(byName.get(worker)?.spec.taints, undefined);
        assert.equal(byName.get(worker)?.metadata.labels['node-role.kubernetes.io/worker'], '');
        const addresses = nodes.items.map((n) => n.status.addresses[0]?.address);
        assert.equal(
          new Set(addresses).size,
          3,
          `each node has an address of its own: ${addresses.join(', ')}`,
        );
        const system = await jsonOf<{
          items: Array<{ metadata: { name: string }; spec: { nodeName: string } }>;
        }>(cluster, ['get', 'pods', '-A']);
        assert.ok(system.items.length >= 2);
        for (const p of system.items) assert.equal(p.spec.nodeName, controlPlane, p.metadata.name);
        log(`timings: ${JSON.stringify(cluster.timings)}`);
      });

      await t.test('pods on different workers reach each other by pod IP, Service and DNS', async () => {
        await cluster.kubectl(['apply', '-f', '-'], { input: podsOn(images.busybox.ref, [worker, worker2]) });
        await cluster.kubectl(['wait', '--for=condition=Ready', 'pod/web1', 'pod/web2', '--timeout=120s'], {
          timeoutMs: 130_000,
        });
        const pods = await jsonOf<{
          items: Array<{ metadata: { name: string }; spec: { nodeName: string }; status: { podIP: string } }>;
        }>(cluster, ['get', 'pods']);
        const web1 = pods.items.find((p) => p.metadata.name === 'web1');
        const web2 = pods.items.find((p) => p.metadata.name === 'web2');
        assert.equal(web1?.spec.nodeName, worker);
        assert.equal(web2?.spec.nodeName, worker2);
        // Each node hands out addresses from its own share of the pod range.
        const [first, second] = [cluster.node(worker), cluster.node(worker2)];
        assert.equal(
          web1?.status.podIP.split('.').slice(0, 3).join('.'),
          first.network.podGateway.replace(/\.1$/, ''),
        );
        assert.equal(
          web2?.status.podIP.split('.').slice(0, 3).join('.'),
          second.network.podGateway.replace(/\.1$/, ''),
        );
        assert.deepEqual(await fetchFrom(cluster, 'web1', `http://${web2?.status.podIP}:8080`), {
          ok: true,
          out: worker2,
        });
        assert.deepEqual(await fetchFrom(cluster, 'web1', 'http://web2.default.svc.cluster.local'), {
          ok: true,
          out: worker2,
        });
        assert.deepEqual(await fetchFrom(cluster, 'web2', 'http://web1'), { ok: true, out: worker });
      });

      await t.test("a PVC's volume belongs to its pod's node, in that node's own directory", async () => {
        const pvc = await jsonOf<{ spec: { volumeName: string } }>(cluster, ['get', 'pvc', 'data']);
        const pv = await jsonOf<{
          spec: {
            hostPath: { path: string };
            nodeAffinity: {
              required: { nodeSelectorTerms: Array<{ matchExpressions: Array<{ values: string[] }> }> };
            };
          };
        }>(cluster, ['get', 'pv', pvc.spec.volumeName]);
        const bound = pv.spec.nodeAffinity.required.nodeSelectorTerms[0]?.matchExpressions[0]?.values;
        assert.deepEqual(bound, [worker]);
        assert.ok(
          pv.spec.hostPath.path.startsWith(`${cluster.node(worker).localPathDir}/`),
          `${pv.spec.hostPath.path} lies in ${worker}'s directory`,
        );
      });

      await t.test('a worker cut off: unreachable, lost to the control plane, then healed', async () => {
        const t0 = Date.now();
        await cluster.cutNode(worker2);
        assert.equal((await fetchFrom(cluster, 'web1', 'http://web2')).ok, false, 'web2 is out of reach');
        // Its kubelet runs on: only the network is gone.
        assert.ok(daemonAlive(cluster.node(worker2).pidDir, 'kubelet', 'kubelet'));
        await waitFor(
          `${worker2} no longer Ready for the control plane`,
          async () => ((await readyStatus(cluster, worker2)) !== 'True' ? true : undefined),
          120_000,
          { everyMs: 1000 },
        );
        log(
          `${worker2} lost (Ready ${await readyStatus(cluster, worker2)}) ${((Date.now() - t0) / 1000).toFixed(1)} s after the cut`,
        );
        const t1 = Date.now();
        await cluster.healNode(worker2);
        await waitFor(
          `${worker2} Ready again`,
          async () => ((await readyStatus(cluster, worker2)) === 'True' ? true : undefined),
          120_000,
          { everyMs: 500 },
        );
        await waitFor(
          'web2 reached again through its Service',
          async () => ((await fetchFrom(cluster, 'web1', 'http://web2')).out === worker2 ? true : undefined),
          60_000,
          { everyMs: 500 },
        );
        log(`${worker2} healed: Ready and reached ${((Date.now() - t1) / 1000).toFixed(1)} s after`);
      });

      await t.test(
        'a worker killed: every process gone at once; powered on, it rejoins on its kept disk',
        async () => {
          const node = cluster.node(worker);
          const { killed } = await cluster.killNode(worker);
          assert.ok(killed >= 4, `kubelet, containerd, kube-proxy and the pods' processes: ${killed}`);
          assert.deepEqual(pidsIn(`/${node.cgroupName}`), [], 'nothing of the node runs');
          assert.deepEqual(strayCgroups(node.cgroupName), [], 'its cgroups are gone, as at a power cut');
          assert.equal(
            (await fetchFrom(cluster, 'web2', `http://web1`)).ok,
            false,
            'web1 died with its node',
          );
          // Its other side: the control plane and the other worker run on.
          assert.equal(await readyStatus(cluster, worker2), 'True');
          await sleep(2000);
          const { readyMs } = await cluster.startNode(worker, { log });
          log(`${worker} powered on: Ready in ${(readyMs / 1000).toFixed(1)} s`);
          // The pod's status may still say Ready from before the power loss (the control plane had not
          // noticed it yet): wait for the container the new kubelet starts, which appends its line.
          const starts = await waitFor(
            'web1 started again by the rejoined node',
            async () => {
              const r = await cluster.kubectl(['exec', 'web1', '--', 'cat', '/data/starts'], {
                allowFailure: true,
              });
              return r.code === 0 && r.stdout.split('\n').length > 2 ? r.stdout : undefined;
            },
            120_000,
            { everyMs: 1000 },
          );
          assert.equal(starts, 'started\nstarted\n', 'the volume survived the power loss');
          await waitFor(
            'web1 reached again from the other worker',
            async () => ((await fetchFrom(cluster, 'web2', 'http://web1')).out === worker ? true : undefined),
            60_000,
            { everyMs: 500 },
          );
        },
      );

      await t.test('down leaves nothing behind', async () => {
        const nodeDirs = cluster.nodes.map((n) => n.stateDir);
        const report = await cluster.down({ log });
        downDone = true;
        assert.deepEqual(report.leftovers, []);
        assert.equal((await status(NAME)).state, 'down');
        for (const dir of nodeDirs) assert.equal(existsSync(dir), false, dir);
      });
    } finally {
      if (!downDone) await cluster.down({ log });
      releaseSignals();
    }
  },
);
