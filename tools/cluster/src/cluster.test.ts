/**
 * The local cluster, end to end, on this machine: up → node Ready → a busybox pod Running on a PVC
 * bound through local-path (the default StorageClass) → its Service reached by ClusterIP and by DNS
 * name from another pod, the API server reached from a pod through the `kubernetes` Service →
 * `kubectl port-forward` from the host → SIGTERM to a process holding it (downOnSignal): down, nothing
 * left. Then the failure paths: an `up` that fails half-way, one interrupted by SIGTERM and one killed
 * outright (then `down`) leave nothing.
 *
 * Needs root, the Kubernetes toolchain (scripts/k8s-tools.sh) and the host packages;
 * otherwise it is skipped with the reason (under CI, or BAZAR_REQUIRE_CLUSTER_TIER=1, that is a failure).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { down, up, type Cluster } from './cluster.js';
import { status } from './status.js';
import { leftovers } from './teardown.js';
import { sleep, waitFor } from './exec.js';
import { clusterImages, type ClusterImages } from './images.js';
import { clusterLayout } from './layout.js';
import { clusterTestSkipReason, jsonOf } from './test-support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, 'cli.js');
const NAME = 'smoke';

const skip = clusterTestSkipReason();
const log = (line: string): void => {
  process.stderr.write(`[cluster] ${line}\n`);
};

const smokeManifests = (busybox: string): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'data' },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '16Mi' } } },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: busybox,
              imagePullPolicy: 'IfNotPresent',
              command: [
                'sh',
                '-c',
                'echo served-from-pvc > /data/index.html && exec httpd -f -p 8080 -h /data',
              ],
              ports: [{ containerPort: 8080 }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client' },
        spec: {
          containers: [
            { name: 'client', image: busybox, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] },
          ],
        },
      },
    ],
  });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function inClient(cluster: Cluster, script: string): Promise<string> {
  return (await cluster.kubectl(['exec', 'client', '--', 'sh', '-c', script], { timeoutMs: 30_000 })).stdout;
}

/** `kubectl port-forward` on the host, then an HTTP GET through it (as the chart tier will do). */
async function throughPortForward(cluster: Cluster, target: string, remotePort: number): Promise<string> {
  const port = await freePort();
  const pf = spawn(cluster.toolchain.bin.kubectl, ['port-forward', target, `${port}:${remotePort}`], {
    env: cluster.env(),
    stdio: 'ignore',
  });
  try {
    return await waitFor(
      `port-forward ${target}`,
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(3000) });
        return res.ok ? await res.text() : undefined;
      },
      30_000,
    );
  } finally {
    pf.kill('SIGTERM');
  }
}

test(
  'local cluster: up, pods on a PVC, Service + DNS, API via ClusterIP, port-forward, down',
  { skip, timeout: 900_000 },
  async (t) => {
    const images: ClusterImages = await clusterImages(log);
    const cluster = await up({ name: NAME, images, log });
    const releaseSignals = cluster.downOnSignal({ log }); // Interrupted: no `finally` would run.
    let downDone = false;
    try {
      await t.test('the node is Ready and runs the Kubernetes version we built', async () => {
        const node = await jsonOf<{
          status: {
            conditions: Array<{ type: string; status: string }>;
            nodeInfo: { kubeletVersion: string };
          };
        }>(cluster, ['get', 'node', cluster.layout.nodeName]);
        assert.ok(node.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'));
        assert.equal(node.status.nodeInfo.kubeletVersion, cluster.kubeVersion);
        log(`timings: ${JSON.stringify(cluster.timings)}`);
      });

      await t.test('the default StorageClass is standard (local-path)', async () => {
        const sc = await jsonOf<{ metadata: { annotations?: Record<string, string> }; provisioner: string }>(
          cluster,
          ['get', 'storageclass', 'standard'],
        );
        assert.equal(sc.provisioner, 'rancher.io/local-path');
        assert.equal(sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
      });

      await t.test('a pod on a PVC bound through local-path runs, and its Service answers', async () => {
        const t0 = Date.now();
        await cluster.kubectl(['apply', '-f', '-'], { input: smokeManifests(images.busybox.ref) });
        await cluster.kubectl(['wait', '--for=condition=Ready', 'pod/web', 'pod/client', '--timeout=120s'], {
          timeoutMs: 130_000,
        });
        log(`pods Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after apply`);
        const pvc = await jsonOf<{ status: { phase: string }; spec: { storageClassName: string } }>(cluster, [
          'get',
          'pvc',
          'data',
        ]);
        assert.equal(pvc.status.phase, 'Bound');
        assert.equal(pvc.spec.storageClassName, 'standard');
        const svc = await jsonOf<{ spec: { clusterIP: string } }>(cluster, ['get', 'svc', 'web']);
        const byIp = await inClient(
          cluster,
          `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${svc.spec.clusterIP} 80`,
        );
        assert.match(byIp, /served-from-pvc/);
        const lookup = await inClient(cluster, 'nslookup web.default.svc.cluster.local');
        assert.ok(lookup.includes(svc.spec.clusterIP), `nslookup answered:\n${lookup}`);
        const byName = await inClient(
          cluster,
          `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 web 80`,
        );
        assert.match(byName, /served-from-pvc/);
      });

      await t.test('a process on the node reaches the Service by its ClusterIP (cluster.exec)', async () => {
        const svc = await jsonOf<{ spec: { clusterIP: string } }>(cluster, ['get', 'svc', 'web']);
        const out = await cluster.exec(
          [
            'sh',
            '-c',
            `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | socat -t 5 - TCP:${svc.spec.clusterIP}:80`,
          ],
          { timeoutMs: 30_000 },
        );
        assert.match(out.stdout, /served-from-pvc/);
      });

      await t.test('pods reach the API server through the kubernetes Service (kube-proxy)', async () => {
        // busybox speaks no TLS; the API server's answer to plain HTTP proves the path (ClusterIP → node:6443).
        const answer = await inClient(
          cluster,
          `printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | nc -w 5 kubernetes.default.svc.cluster.local 443`,
        );
        assert.match(answer, /HTTP\/1\.[01] 400 Bad Request/);
      });

      await t.test('kubectl port-forward from the host reaches a pod and a Service', async () => {
        assert.match(await throughPortForward(cluster, 'pod/web', 8080), /served-from-pvc/);
        assert.match(await throughPortForward(cluster, 'svc/web', 80), /served-from-pvc/);
      });

      await t.test('restartApiServer: the API goes away and comes back, the pods keep running', async () => {
        const before = await jsonOf<{ metadata: { uid: string }; status: { phase: string } }>(cluster, [
          'get',
          'pod',
          'web',
        ]);
        const r = await cluster.restartApiServer({ downMs: 1000 });
        log(`kube-apiserver stopped in ${r.stoppedMs} ms, ready again after ${r.readyMs} ms`);
        assert.ok(r.readyMs >= 1000, 'it was down for the second asked');
        const after = await jsonOf<{ metadata: { uid: string }; status: { phase: string } }>(cluster, [
          'get',
          'pod',
          'web',
        ]);
        assert.equal(after.metadata.uid, before.metadata.uid);
        assert.equal(after.status.phase, 'Running');
        assert.match(await throughPortForward(cluster, 'pod/web', 8080), /served-from-pvc/);
      });

      await t.test(
        'down on a signal: a process that holds the cluster (downOnSignal), sent SIGTERM, takes it down and leaves nothing behind',
        async () => {
          // What a test file does with its cluster: a run interrupted (^C, CI's time limit) must not leave
          // it up, as Node's default for the signal (end at once, no `after` hook) would.
          const holder = spawn(
            process.execPath,
            [
              '--input-type=module',
              '-e',
              `const { attach } = await import(${JSON.stringify(pathToFileURL(path.join(here, 'cluster.js')).href)});
               const cluster = await attach(${JSON.stringify(NAME)});
               cluster.downOnSignal({ log: (line) => console.error(line) });
               console.error('holding the cluster');
               setInterval(() => undefined, 60_000);`,
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] },
          );
          const exited = new Promise<number | null>((r) => holder.on('exit', (code) => r(code)));
          await untilLine(holder, /holding the cluster/);
          const t0 = Date.now();
          holder.kill('SIGTERM');
          assert.equal(await exited, 143, 'it exits as SIGTERM would, once the cluster is down');
          downDone = true;
          log(`down on SIGTERM in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
          assert.deepEqual(await leftovers(clusterLayout(NAME)), []);
          assert.equal((await status(NAME)).state, 'down');
        },
      );
    } finally {
      if (!downDone) await cluster.down({ log });
      releaseSignals();
    }
  },
);

test('an up that fails half-way leaves nothing behind', { skip, timeout: 300_000 }, async () => {
  const images = await clusterImages(log);
  // An image that does not exist: up gets as far as containerd, then fails importing it.
  const broken = {
    ...images,
    coredns: { ...images.coredns, archive: '/nonexistent/coredns.tar', ref: 'localhost/none:1' },
  };
  await assert.rejects(up({ name: NAME, images: broken, log }), /nonexistent/);
  assert.deepEqual(await leftovers(clusterLayout(NAME)), []);
});

function cliUp(): ReturnType<typeof spawn> {
  return spawn(process.execPath, [CLI, 'up', `--name`, NAME], { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function untilLine(child: ReturnType<typeof spawn>, re: RegExp): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (b: Buffer) => {
      seen += b.toString();
      if (re.test(seen)) resolve();
    });
    child.on('exit', () => reject(new Error(`up exited before ${re}:\n${seen}`)));
  });
}

test(
  'SIGTERM during up tears down; SIGKILL during up, then down, leaves nothing',
  { skip, timeout: 300_000 },
  async () => {
    await clusterImages(log); // cached: the CLI's own call is then instant
    const terminated = cliUp();
    await untilLine(terminated, /kube-apiserver\s+[\d.]+ s/);
    const exited = new Promise<number | null>((r) => terminated.on('exit', (code) => r(code)));
    terminated.kill('SIGTERM');
    assert.equal(await exited, 143);
    assert.deepEqual(await leftovers(clusterLayout(NAME)), []);

    const killed = cliUp();
    await untilLine(killed, /containerd\s+[\d.]+ s/);
    const gone = new Promise<void>((r) => killed.on('exit', () => r()));
    killed.kill('SIGKILL');
    await gone;
    await sleep(200);
    assert.notDeepEqual(
      await leftovers(clusterLayout(NAME), { keepData: true }),
      [],
      'a killed up leaves its daemons',
    );
    const report = await down(NAME, { log });
    assert.deepEqual(report.leftovers, []);
  },
);
