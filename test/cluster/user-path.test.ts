/**
 * The cluster tier: the user's path through README.md and docs/deploy.md, on a real single-node
 * Kubernetes built from parts (tools/cluster) with our images built from our Dockerfile
 * (tools/images; stand-ins, named as such, only for images that cannot be pulled here).
 *
 * One cluster for the whole tier: up once, images loaded once, down at the end (nothing may be left).
 * The steps run in order on one release `bazar` in `default`, then a second release and the plain
 * manifests in namespaces of their own:
 *   install → pods Ready (timed) → Patroni (the default engine) elected a leader, the other member
 *   streams from it as Sync Standby → migrations applied once, by an origin → `helm test --logs` twice, a key each →
 *   port-forward + every README curl example → the k6 smoke scenario (stand-in) → a live StorePolicy
 *   patch → scale out → one pod of each Deployment deleted under a read stream → helm upgrade →
 *   helm uninstall (what stays is what the docs say) → release `shop` in `books` and the plain
 *   manifests in `plain`, each answering a purchase.
 *
 * Values given to the chart: the image values of tools/images and smaller CPU requests (so that three
 * stores fit the node's 1.9 CPUs), nothing else. Needs root, the toolchain and the host packages
 * (prerequisites.ts); without them it is NOT RUN, and under CI that is a failure.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { MIGRATIONS } from '../../services/shared/src/db/migrations.js';
import { ClusterAlreadyUpError, down, leftovers, up, type Cluster } from '../../tools/cluster/src/index.js';
import type { ImageRecord } from '../../tools/cluster/src/index.js';
import {
  buildImages,
  BUILD_ONLY_IMAGES,
  chartImageValues,
  chartValuesYaml,
} from '../../tools/images/src/index.js';
import { runK6Script } from '../../tools/k6-standin/src/runner.js';
import {
  parseCurlI,
  PortForward,
  portForwardPids,
  request,
  stopAllPortForwards,
  type Answer,
} from './http.js';
import { describeMembers, fullStrength, patroniValues } from './failover-support.js';
import { clusterTierBlocker } from './prerequisites.js';
import { ReadLoop, type ReadLoopReport } from './read-loop.js';
import {
  chartDefaults,
  CLUSTER_DEFAULTS,
  chartPodCount,
  Kube,
  NAMESPACED_KINDS,
  label,
  log,
  type Pod,
  podReady,
  podTable,
  releasePods,
  releasePodsBy,
  repoRoot,
  restarts,
  seconds,
  secondsToReady,
  smallResources,
  Timings,
  until,
} from './support.js';

const CLUSTER_NAME = 'tier';
const NS = 'default';
const RELEASE = 'bazar';
/** How long a fresh release may take until every pod is Ready (measured: 30-80 s on 2 shared cores). */
const READY_BOUND_MS = 180_000;

async function skipReason(): Promise<string | false> {
  const why = await clusterTierBlocker();
  if (!why) return false;
  const message = `NOT RUN: the cluster tier (test/cluster): ${why}`;
  if (process.env.CI) throw new Error(`${message} (CI is set: every tier must run)`);
  process.stderr.write(`\n*** ${message}\n\n`);
  return message;
}

const skip = await skipReason();

// ------------------------------------------------------------------ the chart's defaults

// ------------------------------------------------------------------ small helpers

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const role = (p: Pod): string => `${label(p, 'app.kubernetes.io/component')}/${label(p, 'role') ?? ''}`;
const isComponent = (c: string) => (p: Pod) => label(p, 'app.kubernetes.io/component') === c;
const names = (pods: Pod[]): string[] => pods.map((p) => p.metadata.name);
const servicePods = (pods: Pod[]): Pod[] => pods.filter((p) => !isComponent('postgresql')(p));
/** Patroni's settings in values.yaml (members, synchronous standbys). */
const P = patroniValues();

async function waitReleaseReady(
  kube: Kube,
  ns: string,
  release: string,
  expected: number,
  boundMs = READY_BOUND_MS,
): Promise<Pod[]> {
  let last: Pod[] = [];
  try {
    return await until(
      `${expected} pods of release ${release} in ${ns} Ready`,
      async () => {
        last = await releasePods(kube, ns, release);
        const live = last.filter((p) => !p.metadata.deletionTimestamp);
        return live.length === expected && live.every(podReady) ? live : undefined;
      },
      boundMs,
      1000,
    );
  } catch (err) {
    const events = await kube
      .kubectl(['get', 'events', '-n', ns, '--field-selector', 'type=Warning', '--sort-by', '.lastTimestamp'])
      .then((o) => o.stdout.trim().split('\n').slice(-15).join('\n'))
      .catch((e: unknown) => String(e));
    throw new Error(`${(err as Error).message}\n${podTable(last)}\nwarning events:\n${events}`, {
      cause: err,
    });
  }
}

interface FrontReadyz {
  status: string;
  pod: string;
  policy: { cacheTtlMs: number; cacheMaxEntries: number; consistencyMode: string };
  endpoints: { catalog: number; order: number };
}
interface WriterReadyz {
  status: string;
  pod: string;
  role: string;
  consistency: { mode: string };
}

async function readyz<T>(kube: Kube, ns: string, pod: string): Promise<T> {
  return JSON.parse(await kube.podGet(ns, pod, 8080, '/readyz')) as T;
}

function header(a: Answer, name: string): string | undefined {
  return a.headers[name.toLowerCase()];
}

function secretData(kube: Kube, ns: string, name: string): Promise<Record<string, string>> {
  return kube.json<{ data: Record<string, string> }>(['get', 'secret', '-n', ns, name]).then((s) => s.data);
}

/** The sh blocks of the README's "Try it with curl" section (the lines a user copies). */
function readmeCurlBlocks(): string[] {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('## Try it with curl');
  assert.ok(start >= 0, 'README.md has a "Try it with curl" section');
  const end = readme.indexOf('\n## ', start + 1);
  const blocks = [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length > 0, 'the section has sh blocks');
  return blocks;
}

/** The section's block that holds `marker`: the curl block, or the Kubernetes one (port-forward, token). */
function readmeCurlBlock(marker = 'curl -i localhost:8080/search/'): string {
  const block = readmeCurlBlocks().find((b) => b.includes(marker));
  assert.ok(block, `README.md's "Try it with curl" has a block with: ${marker}`);
  return block;
}

/** A command line of a doc's block without its trailing comment. */
const uncommented = (line: string): string => line.replace(/\s+#.*$/, '');

/**
 * The lines that set RELEASE, NAMESPACE and NAME in a doc (README.md, docs/deploy.md), run as the doc
 * writes them, for `release` in `ns`: the doc's own values when they are the tier's release (the
 * first line must then be exactly the doc's), the same lines with another release's otherwise.
 */
function docNames(doc: string, release = RELEASE, ns = NS): string {
  const set = /^RELEASE=\S+ NAMESPACE=\S+.*$/m.exec(doc)?.[0];
  const name = /^case \$RELEASE in .*$/m.exec(doc)?.[0];
  assert.ok(set && name, 'the doc sets RELEASE, NAMESPACE and NAME');
  assert.equal(uncommented(set), `RELEASE=${RELEASE} NAMESPACE=${NS}`, "the doc's release is the tier's");
  return `RELEASE=${release} NAMESPACE=${ns}\n${name}`;
}

/** A doc's command with the values of NAMESPACE and NAME written in, as the install notes print it. */
function filledIn(line: string, ns: string, name: string): string {
  return uncommented(line)
    .replace(/\s*&.*$/, '')
    .replaceAll('"$NAMESPACE"', ns)
    .replace(/"([^"$]*)\$NAME([^"]*)"/g, `$1${name}$2`);
}

/** A README command line, run by /bin/sh with the port-forward's address for localhost:8080. */
async function runReadme(kube: Kube, block: string, line: string, pf: PortForward): Promise<string> {
  const command = line.replace(/\s+#.*$/, '');
  assert.ok(block.includes(line), `README.md's curl block has the line:\n${line}`);
  const local = command.replaceAll('localhost:8080', `127.0.0.1:${pf.port}`);
  const out = await kube.sh(local, { timeoutMs: 30_000 });
  log(`$ ${command}\n${out.stdout.trim()}`);
  return out.stdout;
}

// ------------------------------------------------------------------ the tier

describe(
  "cluster tier: the user's path on a real single-node Kubernetes",
  { skip, timeout: 3_600_000 },
  () => {
    const timings = new Timings();
    const defaults = chartDefaults();
    let cluster: Cluster | undefined;
    let kube: Kube;
    let records: ImageRecord[] = [];
    let work = '';
    let releaseSignals: () => void = () => undefined;
    let imagesValues = '';
    let smallValues = '';
    let pf: PortForward | undefined;
    /** Set once the release answers; the steps after it need it. */
    let installed = false;
    let catalogPods: string[] = [];
    let frontPods: string[] = [];
    let lastOrderId = '';
    let adminToken = '';

    const needInstall = (): void => assert.ok(installed, 'the install step failed: nothing to check');
    const k = (): Kube => kube;
    /** The member Patroni leads with (the pod it labelled role=primary), for psql. */
    const primaryPod = async (): Promise<string> => {
      const pods = await releasePodsBy(
        k(),
        NS,
        RELEASE,
        'app.kubernetes.io/component=postgresql,role=primary',
      );
      assert.equal(pods.length, 1, `one PostgreSQL pod labelled role=primary: ${names(pods).join(', ')}`);
      return pods[0]!.metadata.name;
    };
    const psqlPrimary = async (sql: string, db?: string): Promise<string[][]> =>
      k().psql(NS, await primaryPod(), sql, db, 'patroni');

    /** The port-forward of the README, started again if its pod went away. */
    async function forward(): Promise<PortForward> {
      if (pf?.alive) {
        const probe = await request(pf.base, 'GET', '/livez').catch(() => undefined);
        if (probe?.status === 200) return pf;
        await pf.stop();
      }
      pf = await PortForward.start(k(), NS, 'svc/bazar-front', 80);
      return pf;
    }

    before(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'bazar-cluster-tier-'));
      records = await timings.time('images: buildImages() (tools/images, cached)', () =>
        buildImages({ log: (l) => log(`images: ${l}`) }),
      );
      const byName = (n: string): ImageRecord => {
        const r = records.find((x) => x.name === n);
        if (!r) throw new Error(`tools/images built no ${n}`);
        return r;
      };
      const images = {
        pause: byName('pause'),
        coredns: byName('coredns'),
        localPathProvisioner: byName('local-path-provisioner'),
        busybox: byName('busybox-standin'),
      };
      const upOpts = {
        name: CLUSTER_NAME,
        images,
        ensurePackages: false,
        log: (l: string) => log(`cluster: ${l}`),
      };
      cluster = await timings.time('cluster: up()', async () => {
        try {
          return await up(upOpts);
        } catch (err) {
          if (!(err instanceof ClusterAlreadyUpError)) throw err;
          // Up, and the process that brought it up still runs: another run of this tier is using it.
          const owner = err.cluster.state.upPid;
          if (owner !== process.pid && processAlive(owner)) {
            throw new Error(
              `cluster ${CLUSTER_NAME} is in use by process ${owner} (another run of this tier)`,
              {
                cause: err,
              },
            );
          }
          log(
            `cluster ${CLUSTER_NAME} was left up by an earlier run (process ${owner} is gone): down, then up again`,
          );
          await down(CLUSTER_NAME);
          return up(upOpts);
        }
      });
      // Interrupted (no `after` hook runs then), the cluster goes down and the work directory goes.
      releaseSignals = cluster.downOnSignal({
        log: (l) => log(`cluster: ${l}`),
        also: () => rmSync(work, { recursive: true, force: true }),
      });
      kube = new Kube(cluster);
      const podImages = records.filter((r) => !BUILD_ONLY_IMAGES.includes(r.name));
      await timings.time('cluster: loadImages(our images and the stand-ins)', async () => {
        const imported = await cluster!.loadImages(podImages);
        log(`imported ${imported.length ? imported.join(', ') : 'nothing (the node had them all)'}`);
      });
      imagesValues = path.join(work, 'images-values.yaml');
      writeFileSync(imagesValues, chartValuesYaml(chartImageValues(records)));
      smallValues = path.join(work, 'small-resources-values.yaml');
      writeFileSync(smallValues, stringifyYaml(smallResources()));
      log(`chart values (images):\n${readFileSync(imagesValues, 'utf8')}`);
    });

    let stepStart = 0;
    beforeEach(() => {
      stepStart = Date.now();
    });
    afterEach((t) => {
      timings.record(`step: ${t.name}`, Date.now() - stepStart);
    });

    after(async () => {
      const stopped = await stopAllPortForwards();
      if (stopped > 0) log(`stopped ${stopped} port-forward(s)`);
      try {
        if (cluster) {
          const report = await timings.time('cluster: down()', () =>
            cluster!.down({ log: (l) => log(`cluster: ${l}`) }),
          );
          assert.deepEqual(report.leftovers, [], 'down left something behind');
          assert.deepEqual(await leftovers(cluster.layout), [], 'leftovers() after down');
        }
      } finally {
        if (work) rmSync(work, { recursive: true, force: true });
        releaseSignals();
        log(`timings:\n${timings.table()}`);
      }
      const alive = portForwardPids.filter((pid) => processAlive(pid));
      assert.deepEqual(alive, [], 'no kubectl port-forward of the tier is left running');
      log(`${portForwardPids.length} port-forward(s) started, none left running`);
    });

    it('helm install bazar charts/bazar: every pod Ready within the bound', async () => {
      const t0 = Date.now();
      await timings.time('helm install bazar charts/bazar', () =>
        k().helm(['install', RELEASE, 'charts/bazar', '-f', imagesValues, '-f', smallValues]),
      );
      const pods = await timings.time('  every pod Ready', () =>
        waitReleaseReady(k(), NS, RELEASE, chartPodCount(defaults)),
      );
      const slowest = Math.max(...pods.map((p) => secondsToReady(p) ?? 0));
      log(
        `all ${pods.length} pods Ready ${seconds(Date.now() - t0)} after helm install started (slowest pod: ${slowest} s from creation)\n${podTable(pods)}`,
      );
      log((await k().kubectl(['get', 'pods', '-n', NS, '-o', 'wide'])).stdout);
      assert.deepEqual(
        pods.filter((p) => restarts(p) > 0).map((p) => `${p.metadata.name}: ${restarts(p)} restarts`),
        [],
        'no pod restarted on the way to Ready',
      );
      const count = (c: string, r?: string) =>
        pods.filter((p) => isComponent(c)(p) && (r === undefined || label(p, 'role') === r)).length;
      assert.equal(count('front'), defaults.fronts);
      assert.equal(count('catalog', 'origin'), defaults.catalogOrigins);
      assert.equal(count('catalog', 'replica'), defaults.catalogReplicas);
      assert.equal(count('order', 'origin'), defaults.orderOrigins);
      assert.equal(count('order', 'replica'), defaults.orderReplicas);
      frontPods = names(pods.filter(isComponent('front')));
      catalogPods = names(pods.filter(isComponent('catalog')));
      adminToken = Buffer.from(
        (await secretData(k(), NS, 'bazar'))['admin-token'] ?? '',
        'base64',
      ).toString();
      assert.ok(adminToken.length >= 16, 'the chart generated an admin token');
      installed = true;
    });

    it('Patroni (the default engine) elected a leader, labelled role=primary, and the other member streams from it as Sync Standby', async () => {
      needInstall();
      const strength = await until(
        'Patroni at full strength',
        () => fullStrength(k(), P.instances, P.synchronousNodeCount),
        120_000,
        1000,
      );
      log(`patronictl list: ${describeMembers(strength.members)}`);
      const rows = await psqlPrimary(
        'SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name;',
      );
      log(`pg_stat_replication on ${strength.leader}: ${JSON.stringify(rows)}`);
      const syncState = (name: string) =>
        strength.members.find((m) => m.name === name)?.role === 'Sync Standby' ? 'sync' : 'async';
      assert.deepEqual(
        rows,
        [...strength.standbys].sort().map((name) => [name, 'streaming', syncState(name)]),
        'one walsender per other member, named after its pod, synchronous where Patroni says',
      );
      for (const standby of strength.standbys) {
        assert.deepEqual(await k().psql(NS, standby, 'SELECT pg_is_in_recovery();', 'postgres', 'patroni'), [
          ['t'],
        ]);
        assert.deepEqual(await k().psql(NS, standby, 'SELECT count(*) FROM books;', 'bazar', 'patroni'), [
          ['7'],
        ]);
      }
      // Patroni keeps its state in the namespace's ConfigMaps (no Endpoints, nothing cluster-wide).
      const cms = await k().json<{ items: Array<{ metadata: { name: string } }> }>([
        'get',
        'configmap',
        '-n',
        NS,
        '-l',
        'cluster-name=bazar-patroni',
      ]);
      const cmNames = cms.items.map((c) => c.metadata.name);
      for (const n of ['bazar-patroni-config', 'bazar-patroni-leader']) {
        assert.ok(cmNames.includes(n), `Patroni's ConfigMap ${n} (${cmNames.join(', ')})`);
      }
    });

    it('the migrations were applied once, by an origin, and logged by that origin only', async () => {
      needInstall();
      const applied = await psqlPrimary(
        'SELECT version, name FROM schema_migrations ORDER BY version;',
        'bazar',
      );
      assert.deepEqual(
        applied,
        MIGRATIONS.map((m) => [String(m.version), m.name]),
      );
      const pods = servicePods(await releasePods(k(), NS, RELEASE));
      const logged: Array<{ pod: string; role: string; version: number }> = [];
      for (const p of pods) {
        const out = (await k().kubectl(['logs', '-n', NS, p.metadata.name])).stdout;
        for (const line of out.split('\n')) {
          if (!line.startsWith('{')) continue;
          const entry = JSON.parse(line) as { msg?: string; version?: number };
          if (entry.msg === 'migration applied')
            logged.push({ pod: p.metadata.name, role: role(p), version: entry.version ?? -1 });
        }
      }
      log(`"migration applied" log lines: ${JSON.stringify(logged)}`);
      assert.deepEqual(
        logged.map((l) => l.version).sort((a, b) => a - b),
        MIGRATIONS.map((m) => m.version),
        'each migration logged exactly once in the whole release',
      );
      for (const l of logged) assert.match(l.role, /\/origin$/, `${l.pod} (${l.role}) applied a migration`);
    });

    it('helm test bazar --logs passes and prints the log, twice, each run with a key of its own', async () => {
      needInstall();
      const runs: Array<{ key: string; order: string; startedAt: number }> = [];
      for (let i = 0; i < 2; i++) {
        const startedAt = Date.now();
        const out = await timings.time(`helm test bazar --logs (run ${i + 1})`, () =>
          k().helm(['test', RELEASE, '--logs'], { timeoutMs: 300_000 }),
        );
        const text = out.stdout;
        log(`helm test run ${i + 1}:\n${text.slice(text.indexOf('TEST SUITE'))}`);
        assert.match(text, /Phase:\s+Succeeded/);
        assert.match(text, /POD LOGS: bazar-test-store/, 'the test pod log is printed');
        assert.match(text, /PASS: searched, read and bought through http:\/\/bazar-front:80/);
        const key = /Idempotency-Key: (\S+)\)/.exec(text)?.[1] ?? '';
        const order = /order: GET \S+\/orders\/(\S+)/.exec(text)?.[1] ?? '';
        assert.match(
          key,
          /^helm-test-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
          `the key as the pod's shell made it: ${key}`,
        );
        assert.ok(order, 'the purchase made an order');
        runs.push({ key, order, startedAt });
      }
      log(`the second run started ${seconds(runs[1]!.startedAt - runs[0]!.startedAt)} after the first`);
      assert.notEqual(runs[0]!.key, runs[1]!.key, 'each run uses a key of its own');
      assert.notEqual(runs[0]!.order, runs[1]!.order, 'each run bought a book of its own');
      const stored = await psqlPrimary(
        "SELECT idempotency_key FROM orders WHERE idempotency_key LIKE 'helm-test-%' ORDER BY created_at;",
        'bazar',
      );
      assert.deepEqual(
        stored.map((r) => r[0]),
        runs.map((r) => r.key),
        'one order per run, under its key',
      );
      // hook-delete-policy before-hook-creation: the finished pod stays (for --logs and kubectl logs).
      const testPod = await k().json<Pod>(['get', 'pod', '-n', NS, 'bazar-test-store']);
      assert.equal(testPod.status.phase, 'Succeeded');
    });

    it('kubectl port-forward svc/bazar-front, then every README curl example answers as the README says', async () => {
      needInstall();
      const block = readmeCurlBlock();
      const fwd = await forward();
      const run = (line: string): Promise<string> => runReadme(k(), block, line, fwd);
      const isFront = (n: string | undefined) => !!n && frontPods.includes(n);
      const isCatalog = (n: string | undefined) => !!n && catalogPods.includes(n);

      const search = parseCurlI(await run('curl -i localhost:8080/search/distributed%20systems'));
      assert.equal(search.status, 200);
      assert.deepEqual(
        (search.json as { books: Array<{ id: number }> }).books.map((b) => b.id),
        [1, 2, 5],
      );

      const miss = parseCurlI(
        await run(
          'curl -i localhost:8080/info/5            # X-Cache: miss, X-Served-By: the catalog pod that answered',
        ),
      );
      assert.equal(miss.status, 200);
      assert.equal(header(miss, 'X-Cache'), 'miss');
      assert.ok(
        isCatalog(header(miss, 'X-Served-By')),
        `X-Served-By ${header(miss, 'X-Served-By')} is a catalog pod (${catalogPods.join(', ')})`,
      );
      const front = header(miss, 'X-Front');
      assert.ok(isFront(front), `X-Front ${front} is a front pod (${frontPods.join(', ')})`);
      assert.match(front!, /^bazar-front-[a-z0-9]+-[a-z0-9]{5}$/, 'front pods are named as the README says');
      const hit = parseCurlI(
        await run(
          'curl -i localhost:8080/info/5            # X-Cache: hit,  X-Served-By: the front that answered (= X-Front)',
        ),
      );
      assert.equal(hit.status, 200);
      assert.equal(header(hit, 'X-Cache'), 'hit');
      assert.equal(
        header(hit, 'X-Served-By'),
        front,
        'a hit is served by the front, the same one: port-forward sticks to one pod',
      );
      assert.equal(header(hit, 'X-Front'), front);
      assert.deepEqual(hit.json, miss.json);

      const loop = await run(
        "for i in 1 2 3 4; do curl -s -o /dev/null -D - -H 'Cache-Control: no-cache' localhost:8080/info/1 | grep -i x-served-by; done",
      );
      const served = loop
        .trim()
        .split('\n')
        .map((l) => l.replace(/^x-served-by:\s*/i, '').trim());
      assert.equal(served.length, 4);
      for (const s of served) assert.ok(isCatalog(s), `${s} is a catalog pod`);
      assert.equal(
        new Set(served).size,
        Math.min(4, catalogPods.length),
        `round-robin over the ${catalogPods.length} catalog pods: ${served.join(', ')}`,
      );
      for (let i = 1; i < served.length; i++)
        assert.notEqual(served[i], served[i - 1], 'consecutive reads go to different catalog pods');

      const fronts = `${defaults.fronts}/${defaults.fronts}`;
      const bought = parseCurlI(
        await run(
          'curl -i -X POST localhost:8080/purchase/5                                   # buy one copy; X-Invalidated: n/n (every front)',
        ),
      );
      assert.equal(bought.status, 200);
      assert.equal(header(bought, 'X-Invalidated'), fronts);
      const purchase = bought.json as {
        orderId: string;
        bookId: number;
        price: number;
        remainingStock: number;
      };
      assert.equal(purchase.bookId, 5);
      assert.equal(purchase.remainingStock, 99);

      const keyed =
        "curl -i -X POST -H 'Idempotency-Key: my-order-1' localhost:8080/purchase/5  # run it twice: same orderId, Idempotent-Replayed: true";
      const first = parseCurlI(await run(keyed));
      const again = parseCurlI(await run(keyed));
      assert.equal(first.status, 200);
      assert.equal(header(first, 'Idempotent-Replayed'), undefined);
      assert.equal(again.status, 200);
      assert.equal(header(again, 'Idempotent-Replayed'), 'true');
      assert.equal((again.json as { orderId: string }).orderId, (first.json as { orderId: string }).orderId);
      assert.equal(
        (first.json as { remainingStock: number }).remainingStock,
        98,
        'the retry bought nothing more',
      );
      assert.equal(header(first, 'X-Invalidated'), fronts);
      assert.equal(header(again, 'X-Invalidated'), fronts);

      // The order id captured from an answer, as the README does it (nothing to fill in by hand).
      const orderLines = [
        `ORDER=$(curl -s -X POST -H 'Idempotency-Key: my-order-1' localhost:8080/purchase/5 | sed 's/.*"orderId":"\\([^"]*\\)".*/\\1/')`,
        'curl -i localhost:8080/orders/$ORDER     # the order the keyed purchase made (the key replays it: nothing more is bought)',
      ];
      for (const l of orderLines) assert.ok(block.includes(l), `README.md's curl block has the line:\n${l}`);
      const orderScript = orderLines
        .map((l) => l.replace(/\s+#.*$/, '').replaceAll('localhost:8080', `127.0.0.1:${fwd.port}`))
        .join('\n');
      const order = parseCurlI((await k().sh(orderScript)).stdout);
      log(`$ ${orderLines.join('\n$ ')}\n${order.status} ${order.body}`);
      assert.equal(order.status, 200);
      const keyedOrder = (first.json as { orderId: string }).orderId;
      assert.deepEqual(
        { ...(order.json as Record<string, unknown>), createdAt: undefined },
        {
          orderId: keyedOrder,
          bookId: 5,
          title: 'How to finish Project 3 on time',
          price: 130,
          createdAt: undefined,
        },
      );
      lastOrderId = purchase.orderId;

      // The admin token as the README reads it (RELEASE, NAMESPACE and NAME set by its own lines),
      // which is the install notes' line with the names filled in; so is its port-forward line.
      const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
      const vars = docNames(readme);
      const kubeBlock = readmeCurlBlock('port-forward');
      const [setLine = '', nameLine = ''] = kubeBlock.split('\n');
      assert.equal(`${uncommented(setLine)}\n${nameLine}`, vars, 'the block sets RELEASE, NAMESPACE, NAME');
      const name = (await k().sh(`${vars}\nprintf %s "$NAME"`)).stdout;
      assert.equal(name, 'bazar', "the README's NAME for release bazar");
      const kubeLines = kubeBlock.split('\n');
      const tokenLine = kubeLines.find((l) => l.startsWith('TOKEN=$('));
      const forwardLine = kubeLines.find((l) => l.includes(' port-forward '));
      assert.ok(tokenLine && forwardLine, 'the README reads the token and forwards a port');
      const notes = (await k().helm(['get', 'notes', RELEASE])).stdout;
      const noteLines = notes.split('\n').map((l) => l.trim());
      for (const l of [tokenLine, forwardLine]) {
        assert.ok(
          noteLines.includes(filledIn(l, NS, name)),
          `helm get notes prints the README's line with the names filled in: ${filledIn(l, NS, name)}\n${notes}`,
        );
      }
      const patchCmd = `curl -i -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\\n     -d '{"price":120}' localhost:8080/books/5`;
      const restockCmd = `curl -i -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\\n     -d '{"quantity":10}' localhost:8080/books/5/restock`;
      assert.ok(block.includes(patchCmd), 'README has the PATCH example');
      assert.ok(block.includes(restockCmd), 'README has the restock example');
      const local = (c: string) => c.replaceAll('localhost:8080', `127.0.0.1:${fwd.port}`);
      const admin = await k().sh(
        `${vars}\n${tokenLine}\n${local(patchCmd)}\necho; echo ---; ${local(restockCmd)}\necho; echo ---; printf %s "$TOKEN"`,
      );
      const [patchOut = '', restockOut = '', token = ''] = admin.stdout.split('\n---\n');
      log(`$ ${tokenLine}\n$ ${patchCmd}\n${patchOut.trim()}\n$ ${restockCmd}\n${restockOut.trim()}`);
      assert.equal(token, adminToken, "the README's line reads the admin token of the Secret");
      const patched = parseCurlI(patchOut.trim());
      assert.equal(patched.status, 200);
      assert.equal((patched.json as { price: number }).price, 120);
      assert.equal(header(patched, 'X-Invalidated'), fronts);
      const restocked = parseCurlI(restockOut.trim());
      assert.equal(restocked.status, 200);
      assert.equal((restocked.json as { stock: number }).stock, 98 + 10);
      assert.equal(header(restocked, 'X-Invalidated'), fronts);
      // Read-your-writes through the cache that held book 5 before the writes.
      const fresh = await request(fwd.base, 'GET', '/info/5');
      assert.deepEqual(
        [(fresh.json as { price: number }).price, (fresh.json as { stock: number }).stock],
        [120, 108],
      );

      const bad = parseCurlI(
        await run(
          'curl -i localhost:8080/info/abc          # 400 {"error":{"code":"invalid_id","message":"..."}}',
        ),
      );
      assert.equal(bad.status, 400);
      const err = (bad.json as { error: { code: string; message: string } }).error;
      assert.equal(err.code, 'invalid_id');
      assert.equal(typeof err.message, 'string');
      assert.ok(err.message.length > 0);

      // The live page through the same port-forward (README "Watch it live"): pods by name, no knobs.
      const livePage = await fetch(`${fwd.base}/live`);
      assert.equal(livePage.status, 200);
      assert.match(livePage.headers.get('content-type') ?? '', /^text\/html/);
      await livePage.arrayBuffer();
      const liveConfig = (await (await fetch(`${fwd.base}/live/config`)).json()) as {
        front: string;
        knobsUrl?: string;
      };
      assert.ok(isFront(liveConfig.front), `the page names its front pod (${liveConfig.front})`);
      assert.equal(liveConfig.knobsUrl, undefined, "the knobs are npm start's, not the chart's");
      const snapshot = (await firstLiveSnapshot(`${fwd.base}/live/events`)) as {
        catalogPods: Array<{ name: string }>;
      };
      assert.deepEqual(
        snapshot.catalogPods.map((p) => p.name).sort(),
        [...catalogPods].sort(),
        'the page shows every catalog pod by name',
      );

      const probes = await run(
        'curl -s localhost:8080/readyz; curl -s localhost:8080/metrics | grep bazar_cache',
      );
      assert.match(probes, /^\{"status":"ready","pod":"bazar-front-/);
      assert.match(probes, /^bazar_cache_hits_total\{service="front",pod="bazar-front-[^"]+"\} [1-9]/m);
      assert.match(probes, /^bazar_cache_misses_total\{/m);
    });

    it("the README's numbers (fronts, catalog and order pods, X-Invalidated) are the chart's defaults", () => {
      // The numbers in the README's prose are the chart's defaults.
      const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8').replace(/\s+/g, ' ');
      const some = (n: number, one: string, many: string) => (n === 1 ? one : `${n} ${many}`);
      const runs = [
        some(defaults.fronts, 'a front', 'fronts'),
        `${some(defaults.catalogOrigins, 'a catalog origin', 'catalog origins')} and ${some(defaults.catalogReplicas, 'a catalog replica', 'catalog replicas')}`,
        `${some(defaults.orderOrigins, 'an order origin', 'order origins')} and ${some(defaults.orderReplicas, 'an order replica', 'order replicas')}`,
      ].join(', ');
      for (const phrase of [
        `the chart runs several of each: ${runs}.`,
        `the loop cycles through the ${defaults.catalogOrigins + defaults.catalogReplicas} catalog pods`,
        `a write answers \`X-Invalidated: ${defaults.fronts}/${defaults.fronts}\``,
      ]) {
        assert.ok(readme.includes(phrase), `README.md says, as the chart's defaults are: "${phrase}"`);
      }
    });

    it('docs/deploy.md\'s "Try it" answers as it says', async () => {
      needInstall();
      const docs = readFileSync(path.join(repoRoot, 'docs', 'deploy.md'), 'utf8');
      const start = docs.indexOf('## Try it');
      const block = /```sh\n([\s\S]*?)```/.exec(docs.slice(start))?.[1] ?? '';
      const fwd = await forward();
      const run = async (line: string): Promise<Answer> => {
        assert.ok(block.includes(line), `docs/deploy.md's Try it has: ${line}`);
        const cmd = line.replace(/\s+#.*$/, '').replaceAll('localhost:8080', `127.0.0.1:${fwd.port}`);
        const a = parseCurlI((await k().sh(cmd)).stdout);
        log(
          `$ ${line}\n  → ${a.status} X-Cache ${header(a, 'X-Cache') ?? '-'}, X-Served-By ${header(a, 'X-Served-By')}: ${a.body}`,
        );
        return a;
      };
      assert.equal((await run('curl -i http://localhost:8080/search/distributed%20systems')).status, 200);
      const first = await run('curl -i http://localhost:8080/info/1');
      const again = await run('curl -i http://localhost:8080/info/1                 # again: X-Cache: hit');
      assert.equal(header(again, 'X-Cache'), 'hit');
      assert.equal(header(again, 'X-Served-By'), header(again, 'X-Front'));
      assert.deepEqual(again.json, first.json);
      const bought = await run(
        "curl -i -X POST -H 'Idempotency-Key: my-first-book' http://localhost:8080/purchase/1",
      );
      assert.equal(bought.status, 200);
      const later = await run(
        'curl -i http://localhost:8080/info/1                 # stock went down; the cache was invalidated',
      );
      const stock = (a: Answer) => (a.json as { stock: number }).stock;
      assert.equal(stock(later), stock(first) - 1);
      assert.equal(header(later, 'X-Cache'), 'miss', 'the purchase invalidated the cached copy');
      const tokenLine = `TOKEN=$(kubectl --namespace "$NAMESPACE" get secret "$NAME" -o jsonpath='{.data.admin-token}' | base64 -d)`;
      const patch = `curl -i -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\\n  -d '{"price":120}' http://localhost:8080/books/1`;
      assert.ok(docs.includes(tokenLine) && docs.includes(patch), 'docs/deploy.md has the admin example');
      const forwardLine = 'kubectl --namespace "$NAMESPACE" port-forward "svc/$NAME-front" 8080:80 & sleep 2';
      assert.ok(block.includes(forwardLine), `docs/deploy.md's Try it forwards the port: ${forwardLine}`);
      // Run with the doc's own RELEASE, NAMESPACE and NAME lines before it.
      const out = await k().sh(
        `${docNames(docs)}\n${tokenLine}\n${patch.replaceAll('localhost:8080', `127.0.0.1:${fwd.port}`)}`,
      );
      const patched = parseCurlI(out.stdout);
      assert.equal(patched.status, 200);
      assert.equal((patched.json as { price: number }).price, 120);
    });

    it('the k6 smoke scenario (k6 stand-in) passes its thresholds at the Service in the cluster, and its checks through the port-forward', async () => {
      needInstall();
      const fwd = await forward();
      const script = path.join(repoRoot, 'load-tests', 'bazar.js');
      const env = { ADMIN_TOKEN: adminToken, SCENARIO: 'smoke' };
      const breached = (ts: Array<{ key: string; expression: string; ok: boolean; actual: unknown }>) =>
        ts.filter((t) => !t.ok).map((t) => `${t.key}: ${t.expression} (${String(t.actual)})`);
      const verdicts = (ts: Array<{ key: string; expression: string; ok: boolean; actual: unknown }>) =>
        ts
          .map((t) => `${t.key} ${t.expression} ${t.ok ? 'ok' : 'BREACHED'} (${String(t.actual)})`)
          .join('; ');

      // 1. As a k6 running in the cluster would: from the node's network namespace to the front
      //    Service's ClusterIP, no tunnel in between. Every threshold holds.
      const clusterIp = (
        await k().json<{ spec: { clusterIP: string } }>(['get', 'svc', '-n', NS, 'bazar-front'])
      ).spec.clusterIP;
      const inNodeDir = path.join(work, 'k6-in-node');
      mkdirSync(inNodeDir, { recursive: true });
      const configFile = path.join(inNodeDir, 'config.json');
      const outFile = path.join(inNodeDir, 'result.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          script,
          env: { ...env, BASE_URL: `http://${clusterIp}:80` },
          cwd: inNodeDir,
          out: outFile,
        }),
      );
      await timings.time('k6 smoke (stand-in) in the node at the ClusterIP', () =>
        cluster!.exec(
          [process.execPath, path.join(repoRoot, 'dist', 'test', 'cluster', 'k6-in-node.js'), configFile],
          {
            timeoutMs: 180_000,
          },
        ),
      );
      const inNode = JSON.parse(readFileSync(outFile, 'utf8')) as {
        thresholds: Array<{ key: string; expression: string; ok: boolean; actual: unknown }>;
        failures: string[];
        iterationRequests: number;
        summary: string;
      };
      log(`k6 smoke at http://${clusterIp}:80 (in the node):\n${inNode.summary}`);
      log(`k6 thresholds in the node: ${verdicts(inNode.thresholds)}`);
      assert.deepEqual(inNode.failures, []);
      assert.ok(inNode.thresholds.length > 0, 'the smoke scenario has thresholds');
      assert.deepEqual(breached(inNode.thresholds), [], 'thresholds breached at the ClusterIP');
      assert.ok(inNode.iterationRequests > 5, 'the iteration made its requests');

      // 2. The README's way: through `kubectl port-forward`. What the tunnel itself costs here first:
      //    cached reads, one at a time, on one connection (the store's share of a hit is under 1 ms).
      const hits: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const a = await request(fwd.base, 'GET', '/info/1', { headers: { connection: 'keep-alive' } });
        hits.push(performance.now() - t0);
        assert.equal(a.status, 200);
      }
      hits.sort((a, b) => a - b);
      const tunnelP95 = hits[18]!;
      const context = `cached GET /info/1 through the port-forward: p50 ${hits[9]!.toFixed(1)} ms, p95 ${tunnelP95.toFixed(1)} ms; load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${os.cpus().length} CPUs`;
      log(context);
      const summaryDir = path.join(work, 'k6');
      const r = await timings.time('k6 smoke (stand-in) via port-forward', () =>
        runK6Script({ script, action: 'run', env: { ...env, BASE_URL: fwd.base }, cwd: summaryDir }),
      );
      log(`k6 smoke summary (port-forward):\n${r.summaryOutputs?.stdout ?? '(no summary)'}`);
      log(`k6 thresholds through the port-forward: ${verdicts(r.thresholds)}`);
      assert.deepEqual(r.failures, []);
      assert.ok(r.thresholds.length > 0, 'the smoke scenario has thresholds');
      assert.ok(
        r.requests.filter((q) => q.phase === 'iteration').length > 5,
        'the iteration made its requests',
      );
      // Checks and failed requests are the store's, whatever the tunnel: always asserted.
      const latency = (t: { key: string }) => t.key.startsWith('http_req_duration');
      assert.deepEqual(
        breached(r.thresholds.filter((t) => !latency(t))),
        [],
        `thresholds breached (${context})`,
      );
      // Latency is judged at the ClusterIP above, where k6 in the cluster would measure the store.
      // Through the tunnel (kubectl → kube-apiserver → kubelet → containerd, each a process to schedule
      // on shared cores) a p95 of a handful of requests is the slowest one, and it measures the tunnel:
      // gating the assertion on a separate sample of the tunnel made it flaky (CI: the tunnel's p95
      // 50.0 ms against a 50 ms bound let it through, then one read of five took 52.7 ms). So the
      // figures are reported beside the tunnel's own cost, not asserted.
      const overTunnel = breached(r.thresholds.filter(latency));
      log(
        `port-forward latency (reported; judged at the ClusterIP): ${overTunnel.join('; ') || 'no bound exceeded'}; ${context}`,
      );
    });

    it('no service pod logged an error on the way (install, helm test, the curl walk, k6)', async () => {
      needInstall();
      const errors: string[] = [];
      const warnings: Record<string, number> = {};
      for (const p of servicePods(await releasePods(k(), NS, RELEASE))) {
        const out = (await k().kubectl(['logs', '-n', NS, p.metadata.name])).stdout;
        for (const line of out.split('\n')) {
          if (!line.startsWith('{')) continue;
          const entry = JSON.parse(line) as { level?: number; msg?: string };
          if ((entry.level ?? 0) >= 50) errors.push(`${p.metadata.name}: ${line.slice(0, 400)}`);
          else if ((entry.level ?? 0) >= 40)
            warnings[entry.msg ?? '?'] = (warnings[entry.msg ?? '?'] ?? 0) + 1;
        }
      }
      log(
        `service pod logs so far: ${errors.length} error lines; warnings by message: ${JSON.stringify(warnings)}`,
      );
      assert.deepEqual(errors, []);
    });

    it('kubectl patch storepolicy reaches every pod live (no restart) and shows in status', async () => {
      needInstall();
      const podsBefore = servicePods(await releasePods(k(), NS, RELEASE));
      const ident = (pods: Pod[]) =>
        pods.map((p) => `${p.metadata.name} ${p.metadata.uid} ${restarts(p)}`).sort();
      // The README's commands, run with its RELEASE, NAMESPACE and NAME lines before them.
      const patch = `kubectl --namespace "$NAMESPACE" patch storepolicy "$NAME" --type merge -p '{"spec":{"cache":{"ttlMs":5000},"consistencyMode":"session"}}'`;
      const getPolicy = 'kubectl --namespace "$NAMESPACE" get storepolicy "$NAME"';
      const getStatus = `kubectl --namespace "$NAMESPACE" get storepolicy "$NAME" -o jsonpath='{.status}'`;
      const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
      for (const c of [patch, `${getPolicy}   #`, getStatus])
        assert.ok(readme.includes(c), `the README has this command: ${c}`);
      const vars = docNames(readme);

      async function applied(mode: string, ttl: number, t0: number): Promise<Record<string, number>> {
        const when: Record<string, number> = {};
        await until(
          `every pod applying ${mode}/${ttl}`,
          async () => {
            await Promise.all(
              podsBefore
                .filter((p) => when[p.metadata.name] === undefined)
                .map(async (p) => {
                  const name = p.metadata.name;
                  if (isComponent('front')(p)) {
                    const r = await readyz<FrontReadyz>(k(), NS, name);
                    if (r.policy.consistencyMode === mode && r.policy.cacheTtlMs === ttl)
                      when[name] = Date.now() - t0;
                  } else {
                    const r = await readyz<WriterReadyz>(k(), NS, name);
                    if (r.consistency.mode === mode) when[name] = Date.now() - t0;
                  }
                }),
            );
            return Object.keys(when).length === podsBefore.length ? when : undefined;
          },
          30_000,
          200,
        );
        return when;
      }

      let t0 = Date.now();
      log(`$ ${patch}\n${(await k().sh(`${vars}\n${patch}`)).stdout.trim()}`);
      const reached = await applied('session', 5000, t0);
      log(`session + ttl 5000 seen in /readyz (ms after the patch): ${JSON.stringify(reached)}`);
      const sp = await until(
        'StorePolicy status.observedGeneration to follow',
        async () => {
          const o = await k().json<{
            metadata: { generation: number };
            status?: { observedGeneration?: number; consistencyMode?: string; cache?: { ttlMs?: number } };
          }>(['get', 'storepolicy', 'bazar', '-n', NS]);
          return o.status?.observedGeneration === o.metadata.generation ? o : undefined;
        },
        30_000,
      );
      log(
        `status followed ${seconds(Date.now() - t0)} after the patch: observedGeneration ${sp.status?.observedGeneration}`,
      );
      assert.equal(sp.status?.consistencyMode, 'session');
      assert.equal(sp.status?.cache?.ttlMs, 5000);
      const shown = (await k().sh(`${vars}\n${getPolicy}`)).stdout;
      log(`$ ${getPolicy}\n${shown.trim()}`);
      assert.match(shown, /^bazar\s+session\s+5000\s+/m);
      const statusJson = (await k().sh(`${vars}\n${getStatus}`)).stdout;
      assert.equal(
        (JSON.parse(statusJson) as { observedGeneration: number }).observedGeneration,
        sp.metadata.generation,
      );

      // Back to strict (the TTL stays at 5 s: the upgrade step checks that helm keeps a live edit).
      t0 = Date.now();
      await k().kubectl([
        'patch',
        'storepolicy',
        'bazar',
        '-n',
        NS,
        '--type',
        'merge',
        '-p',
        '{"spec":{"consistencyMode":"strict"}}',
      ]);
      const back = await applied('strict', 5000, t0);
      log(`strict seen in /readyz (ms after the patch): ${JSON.stringify(back)}`);
      const rows = await psqlPrimary('SELECT state, sync_state FROM pg_stat_replication;');
      assert.deepEqual(rows, [['streaming', 'sync']]);
      const afterPods = servicePods(await releasePods(k(), NS, RELEASE));
      assert.deepEqual(ident(afterPods), ident(podsBefore), 'same pods (UIDs), no restarts');
    });

    it('scale fronts and catalog replicas by one: discovery follows, writes invalidate every front', async () => {
      needInstall();
      const fronts = defaults.fronts + 1;
      const replicas = defaults.catalogReplicas + 1;
      const beforeCatalog = new Set(catalogPods);
      await timings.time(
        `kubectl scale: fronts ${defaults.fronts} → ${fronts}, catalog replicas ${defaults.catalogReplicas} → ${replicas}`,
        async () => {
          await k().kubectl(['scale', '-n', NS, 'deployment/bazar-front', `--replicas=${fronts}`]);
          await k().kubectl([
            'scale',
            '-n',
            NS,
            'deployment/bazar-catalog-replica',
            `--replicas=${replicas}`,
          ]);
          await waitReleaseReady(
            k(),
            NS,
            RELEASE,
            chartPodCount({ ...defaults, fronts, catalogReplicas: replicas }),
            120_000,
          );
        },
      );
      const pods = await releasePods(k(), NS, RELEASE);
      frontPods = names(pods.filter(isComponent('front')));
      catalogPods = names(pods.filter(isComponent('catalog')));
      const catalogs = defaults.catalogOrigins + replicas;
      const t0 = Date.now();
      await until(
        `every front seeing ${catalogs} catalog endpoints`,
        async () => {
          const seen = await Promise.all(frontPods.map((p) => readyz<FrontReadyz>(k(), NS, p)));
          return seen.every((r) => r.endpoints.catalog === catalogs) ? true : undefined;
        },
        30_000,
      );
      log(`every front sees ${catalogs} catalog pods ${seconds(Date.now() - t0)} after the pods were Ready`);
      const fwd = await forward();
      // Writes go to either order pod (round-robin) and to the catalog origin: each writer must know 3 fronts.
      let writes = 0;
      const want = `${fronts}/${fronts}`;
      await until(
        `a purchase answering X-Invalidated: ${want}`,
        async () => {
          writes++;
          const r = await request(fwd.base, 'POST', '/purchase/2', {
            headers: { 'idempotency-key': `scale-${writes}` },
          });
          assert.equal(r.status, 200);
          return header(r, 'X-Invalidated') === want ? true : undefined;
        },
        20_000,
      );
      const more: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await request(fwd.base, 'POST', '/purchase/2', {
          headers: { 'idempotency-key': `scale-more-${i}` },
        });
        more.push(`${header(r, 'X-Served-By')} ${header(r, 'X-Invalidated')}`);
      }
      const patched = await request(fwd.base, 'PATCH', '/books/2', {
        headers: { authorization: `Bearer ${adminToken}` },
        body: { price: 55 },
      });
      log(
        `X-Invalidated ${want} on write ${writes} after the scale-out; then ${more.join(', ')}; PATCH by ${header(patched, 'X-Served-By')}: ${header(patched, 'X-Invalidated')}`,
      );
      for (const m of more) assert.ok(m.endsWith(` ${want}`), m);
      assert.equal(patched.status, 200);
      assert.equal(header(patched, 'X-Invalidated'), want);
      const added = catalogPods.filter((p) => !beforeCatalog.has(p));
      assert.equal(added.length, 1, 'one new catalog pod');
      const served: string[] = [];
      for (let i = 0; i < 2 * catalogs && !served.includes(added[0]!); i++) {
        const r = await request(fwd.base, 'GET', '/info/3', { headers: { 'cache-control': 'no-cache' } });
        served.push(header(r, 'X-Served-By') ?? '?');
      }
      log(`no-cache reads after the scale-out served by: ${served.join(', ')}`);
      assert.ok(served.includes(added[0]!), `the new catalog pod ${added[0]} serves reads`);
    });

    it('deleting one pod of each Deployment: each is replaced, reads through the Service keep answering', async () => {
      needInstall();
      if (!lastOrderId) {
        const fwd = await forward();
        const bought = await request(fwd.base, 'POST', '/purchase/4', {
          headers: { 'idempotency-key': 'reads' },
        });
        assert.equal(bought.status, 200);
        lastOrderId = (bought.json as { orderId: string }).orderId;
      }
      // Reads that reach every kind of pod: uncached book reads (catalog), search, an order (order pods).
      const curl = records.find((r) => r.name === 'curl-standin')!.ref;
      const loop = await ReadLoop.start(k(), NS, curl, 'http://bazar-front:80', [
        '/info/1',
        '/search/distributed%20systems',
        `/orders/${lastOrderId}`,
        '/info/4',
        '/info/6',
      ]);
      const deployments: Array<[string, string]> = [
        ['bazar-front', 'app.kubernetes.io/component=front'],
        ['bazar-catalog-origin', 'app.kubernetes.io/component=catalog,role=origin'],
        ['bazar-catalog-replica', 'app.kubernetes.io/component=catalog,role=replica'],
        ['bazar-order-origin', 'app.kubernetes.io/component=order,role=origin'],
        ['bazar-order-replica', 'app.kubernetes.io/component=order,role=replica'],
      ];
      const replaced: string[] = [];
      let report: ReadLoopReport;
      try {
        for (const [d, selector] of deployments) {
          const podsOf = () => releasePodsBy(k(), NS, RELEASE, selector);
          const beforePods = (await podsOf()).filter((p) => !p.metadata.deletionTimestamp);
          const victim = beforePods[0]!;
          const t0 = Date.now();
          await k().kubectl(['delete', 'pod', '-n', NS, victim.metadata.name, '--wait=false']);
          const fresh = await until(
            `${d}: a new pod Ready and ${victim.metadata.name} gone`,
            async () => {
              const now = await podsOf();
              const gone = !now.some((p) => p.metadata.uid === victim.metadata.uid);
              const ready = now.filter((p) => podReady(p));
              const added = ready.filter((p) => !beforePods.some((b) => b.metadata.uid === p.metadata.uid));
              return gone && ready.length === beforePods.length && added.length === 1 ? added[0] : undefined;
            },
            120_000,
          );
          const line = `${d}: deleted ${victim.metadata.name}; ${fresh.metadata.name} Ready and the old pod gone after ${seconds(Date.now() - t0)}`;
          replaced.push(line);
          log(line);
        }
      } finally {
        report = await loop.stop();
      }
      log(
        `reads through the Service bazar-front from a pod during the deletes: ${report.requests} requests in ${seconds(report.durationMs)}, ${report.failures.length} failed${report.failures.length ? `: ${JSON.stringify(report.failures.slice(0, 20))}` : ''}\n  served by: ${JSON.stringify(report.servedBy)}\n  fronts: ${JSON.stringify(report.fronts)}`,
      );
      assert.equal(replaced.length, deployments.length);
      assert.ok(report.requests > 50, 'the reads kept going');
      assert.equal(
        report.failures.length,
        0,
        `no read failed while pods were deleted and replaced; failed: ${JSON.stringify(report.failures.slice(0, 20))}`,
      );
      for (const name of Object.keys(report.servedBy)) assert.match(name, /^bazar-(front|catalog|order)-/);
      const pods = await releasePods(k(), NS, RELEASE);
      frontPods = names(pods.filter(isComponent('front')));
      catalogPods = names(pods.filter(isComponent('catalog')));
    });

    it('helm upgrade with a changed value rolls the service pods and keeps the Secret', async () => {
      needInstall();
      const secretBefore = await secretData(k(), NS, 'bazar');
      const podsBefore = await releasePods(k(), NS, RELEASE);
      await timings.time('helm upgrade bazar charts/bazar --set config.logLevel=debug --wait', () =>
        k().helm([
          'upgrade',
          RELEASE,
          'charts/bazar',
          '-f',
          imagesValues,
          '-f',
          smallValues,
          '--set',
          'config.logLevel=debug',
          '--wait',
          '--timeout',
          '5m',
        ]),
      );
      const pods = await waitReleaseReady(k(), NS, RELEASE, chartPodCount(defaults), 120_000);
      log(`after the upgrade:\n${podTable(pods)}`);
      const oldUids = new Set(podsBefore.map((p) => p.metadata.uid));
      const survivors = servicePods(pods).filter((p) => oldUids.has(p.metadata.uid));
      assert.deepEqual(names(survivors), [], 'every service pod was replaced');
      for (const p of pods.filter(isComponent('postgresql'))) {
        assert.ok(oldUids.has(p.metadata.uid), `${p.metadata.name} is not restarted by a service setting`);
      }
      assert.deepEqual(
        await secretData(k(), NS, 'bazar'),
        secretBefore,
        'the Secret is byte-equal: tokens and passwords kept',
      );
      assert.equal(
        pods.filter(isComponent('front')).length,
        defaults.fronts,
        'helm upgrade puts kubectl scale back to the values',
      );
      const sp = await k().json<{ spec: { cache: { ttlMs: number } } }>([
        'get',
        'storepolicy',
        'bazar',
        '-n',
        NS,
      ]);
      assert.equal(
        sp.spec.cache.ttlMs,
        5000,
        'helm upgrade keeps the live StorePolicy edit (its values did not change)',
      );
      const front = pods.find(isComponent('front'))!;
      const r = await readyz<FrontReadyz>(k(), NS, front.metadata.name);
      assert.equal(r.policy.cacheTtlMs, 5000, 'a new pod starts with the live policy');
      const env = (
        await k().json<{
          spec: {
            template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } };
          };
        }>(['get', 'deployment', '-n', NS, 'bazar-front'])
      ).spec.template.spec.containers[0]!.env;
      assert.equal(env.find((e) => e.name === 'LOG_LEVEL')?.value, 'debug');
      const fwd = await forward();
      const bought = await request(fwd.base, 'POST', '/purchase/3', {
        headers: { 'idempotency-key': 'after-upgrade' },
      });
      assert.equal(bought.status, 200);
      const admin = await request(fwd.base, 'PATCH', '/books/3', {
        headers: { authorization: `Bearer ${adminToken}` },
        body: { price: 51 },
      });
      assert.equal(admin.status, 200, 'the kept admin token still works');
    });

    it('helm uninstall leaves exactly what docs/deploy.md says it keeps', async () => {
      needInstall();
      await pf?.stop();
      await timings.time('helm uninstall bazar', () => k().helm(['uninstall', RELEASE, '--wait']));
      const left = await until(
        'the release pods to terminate',
        async () => {
          const l = await k().json<{
            items: Array<{ kind: string; metadata: { name: string; deletionTimestamp?: string } }>;
          }>(['get', NAMESPACED_KINDS.join(','), '-n', NS]);
          const items = l.items
            .map((i) => `${i.kind}/${i.metadata.name}`)
            .filter((n) => !CLUSTER_DEFAULTS.has(n));
          return items.some((n) => n.startsWith('Pod/') && n !== 'Pod/bazar-test-store')
            ? undefined
            : items.sort();
        },
        90_000,
      );
      log(`left in ${NS} after helm uninstall: ${left.join(', ')}`);
      const members = Array.from({ length: P.instances }, (_, i) => `bazar-patroni-${i}`);
      // Patroni's own ConfigMaps (it creates them, not Helm): config and leader always, failover and
      // sync once used.
      const patroniState = left.filter((n) => n.startsWith('ConfigMap/'));
      for (const n of patroniState) {
        assert.match(
          n,
          /^ConfigMap\/bazar-patroni-(config|leader|failover|sync)$/,
          'only Patroni state is left',
        );
      }
      assert.ok(patroniState.includes('ConfigMap/bazar-patroni-config'), 'Patroni keeps its configuration');
      assert.deepEqual(
        left.filter((n) => !n.startsWith('ConfigMap/')),
        [...members.map((m) => `PersistentVolumeClaim/data-${m}`), 'Pod/bazar-test-store', 'Secret/bazar'],
      );
      const pvs = await k().json<{
        items: Array<{ spec: { claimRef?: { namespace: string; name: string } }; status: { phase: string } }>;
      }>(['get', 'pv']);
      assert.deepEqual(
        pvs.items
          .map((p) => `${p.spec.claimRef?.namespace}/${p.spec.claimRef?.name} ${p.status.phase}`)
          .sort(),
        members.map((m) => `default/data-${m} Bound`),
      );
      // The documented way to remove the rest, run as written, after the doc's RELEASE, NAMESPACE and
      // NAME lines.
      const docs = readFileSync(path.join(repoRoot, 'docs', 'deploy.md'), 'utf8');
      const vars = docNames(docs);
      const cleanup = [
        'kubectl --namespace "$NAMESPACE" delete secret "$NAME"',
        'kubectl --namespace "$NAMESPACE" delete pvc -l app.kubernetes.io/instance="$RELEASE"',
        'kubectl --namespace "$NAMESPACE" delete configmap -l app.kubernetes.io/instance="$RELEASE",cluster-name="$NAME-patroni"',
        'kubectl --namespace "$NAMESPACE" delete pod "$NAME-test-store"',
        'kubectl delete crd storepolicies.bazar.dev',
      ];
      for (const c of cleanup) {
        assert.ok(docs.includes(c), `docs/deploy.md has: ${c}`);
        log(`$ ${c}\n${(await k().sh(`${vars}\n${c}`, { timeoutMs: 60_000 })).stdout.trim()}`);
      }
      await until(
        'the PersistentVolumes to go (reclaim policy Delete)',
        async () =>
          (await k().json<{ items: unknown[] }>(['get', 'pv'])).items.length === 0 ? true : undefined,
        60_000,
      );
    });

    it('a second release (shop in books) and the plain manifests (in plain) reach Ready and answer a purchase', async () => {
      // The plain manifests as docs/deploy.md says: k8s/ (here a copy) with its namespace changed, the
      // namespace created, the Secret's values in secrets.env, the CRD first. The only other change is
      // the image names (kustomize `images`, as skaffold's manifests profile does it).
      const docs = readFileSync(path.join(repoRoot, 'docs', 'deploy.md'), 'utf8');
      const plain = path.join(work, 'k8s');
      cpSync(path.join(repoRoot, 'k8s'), plain, { recursive: true });
      const kustomization = path.join(plain, 'kustomization.yaml');
      const kz = readFileSync(kustomization, 'utf8');
      assert.match(kz, /^namespace: default$/m);
      const byName = (n: string) => records.find((r) => r.name === n)!;
      const tagOf = (ref: string) => ref.slice(ref.lastIndexOf(':') + 1);
      const images = [
        ...['front', 'catalog', 'order'].map(
          (s) => `  - name: bazar-${s}\n    newTag: '${tagOf(byName(s).ref)}'`,
        ),
        `  - name: bazar-postgres-patroni\n    newTag: '${tagOf(byName('postgres-patroni').ref)}'`,
      ].join('\n');
      writeFileSync(kustomization, `${kz}images:\n${images}\n`);
      const placeholders = readFileSync(path.join(plain, 'secrets.env'), 'utf8');
      const fill = /```sh\n(for k in admin-token[\s\S]*?done > k8s\/secrets\.env)\n/.exec(docs)?.[1];
      assert.ok(fill, 'docs/deploy.md shows how to fill k8s/secrets.env');
      const docSteps = [
        'kubectl create namespace "$NAMESPACE"',
        'sed -i "s/^namespace: default\\$/namespace: $NAMESPACE/" k8s/kustomization.yaml',
        'kubectl apply -k k8s/crds',
        'kubectl wait --for condition=established crd/storepolicies.bazar.dev',
        'kubectl apply -k k8s/',
        'kubectl --namespace "$NAMESPACE" wait --for condition=Available deployment -l app.kubernetes.io/instance=bazar --timeout 10m',
      ];
      for (const c of docSteps) assert.ok(docs.includes(c), `docs/deploy.md has: ${c}`);
      const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
      const readmeLine =
        'kubectl apply -k k8s/crds && kubectl wait --for condition=established crd/storepolicies.bazar.dev';
      assert.ok(readme.includes(readmeLine), 'the README waits for the CRD too');
      // Every step after the doc's RELEASE, NAMESPACE and NAME lines, with the namespace plain (the
      // manifests are release bazar).
      const plainNames = docNames(docs, 'bazar', 'plain');
      const sh = async (c: string) => {
        const out = await k().sh(`${plainNames}\n${c}`, { cwd: work, timeoutMs: 900_000 });
        log(`$ ${c.split('\n')[0]}   (NAMESPACE=plain)\n${out.stdout.trim()}`);
      };
      // The second release exactly as the README installs one on this cluster, with RELEASE=shop and
      // NAMESPACE=books; the tier's two values files in place of the one `npm run images` writes (the
      // same image values, and the smaller CPU requests).
      const readmeValues = '~/.cache/bazar/images/chart-values.yaml';
      const readmeInstall = `helm install "$RELEASE" charts/bazar --namespace "$NAMESPACE" --create-namespace \\\n  -f ${readmeValues} --wait --timeout 10m`;
      assert.ok(readme.includes(readmeInstall), `the README installs so: ${readmeInstall}`);
      const shopNames = docNames(readme, 'shop', 'books');
      const shopInstall = `${shopNames}\n${readmeInstall.replace(readmeValues, `${imagesValues} -f ${smallValues}`)}`;

      const t0 = Date.now();
      // The CRD is gone (the uninstall step removed it, as an empty cluster has none): the plain manifests
      // bring it first, then the helm release and the manifests are installed side by side.
      await timings.time('plain manifests: namespace, secrets.env, CRD established', async () => {
        await sh(docSteps[0]!);
        await sh(docSteps[1]!);
        await sh(fill);
        await sh(docSteps[2]!);
        await sh(docSteps[3]!);
      });
      assert.match(readFileSync(kustomization, 'utf8'), /^namespace: plain$/m);
      assert.notEqual(
        readFileSync(path.join(plain, 'secrets.env'), 'utf8'),
        placeholders,
        'secrets.env was filled',
      );
      await Promise.all([
        timings.time(
          "helm install shop charts/bazar -n books --create-namespace --wait (the README's line)",
          () => k().sh(shopInstall, { timeoutMs: 900_000 }),
        ),
        timings.time('plain manifests: kubectl apply -k k8s/, wait for Ready', async () => {
          await sh(docSteps[4]!);
          try {
            await sh(docSteps[5]!);
          } catch (err) {
            // Once in CI (2026-12-07) the documented wait ran out with every Deployment unavailable, and
            // nothing said why: what the cluster shows then.
            for (const args of [
              ['get', 'pods', '-A', '-o', 'wide'],
              ['get', 'events', '-n', 'plain', '--sort-by=.lastTimestamp'],
              ['describe', 'nodes'],
            ]) {
              const out = await k().kubectl(args, { allowFailure: true, timeoutMs: 30_000 });
              log(
                `plain manifests not Ready: kubectl ${args.join(' ')}\n${(out.stdout + out.stderr).trim()}`,
              );
            }
            throw err;
          }
          // The documented wait is enough: once it returns, every service pod is ready.
          const now = servicePods(await releasePods(k(), 'plain', 'bazar'));
          assert.deepEqual(
            now.filter((p) => !podReady(p)).map((p) => p.metadata.name),
            [],
            'service pods not ready when the documented wait returned',
          );
        }),
      ]);
      const [shopPods, plainPods] = await Promise.all([
        waitReleaseReady(k(), 'books', 'shop', chartPodCount(defaults)),
        waitReleaseReady(k(), 'plain', 'bazar', chartPodCount(defaults)),
      ]);
      log(
        `shop in books and bazar (plain manifests) in plain Ready ${seconds(Date.now() - t0)} after they started\n${podTable(shopPods)}\n${podTable(plainPods)}`,
      );
      assert.ok(
        shopPods.every((p) => p.metadata.name.startsWith('shop-bazar-')),
        'release shop names its objects shop-bazar-*',
      );
      const shopTest = await k().helm(['test', 'shop', '-n', 'books', '--logs'], { timeoutMs: 300_000 });
      assert.match(shopTest.stdout, /PASS: searched, read and bought through http:\/\/shop-bazar-front:80/);
      const notes = (await k().helm(['get', 'notes', 'shop', '-n', 'books'])).stdout;
      assert.match(notes, /kubectl --namespace books port-forward svc\/shop-bazar-front 8080:80/);
      // The README's NAME for release shop is the chart's, and its port-forward and token lines, filled
      // in with it, are the ones the notes print.
      const shopName = (await k().sh(`${shopNames}\nprintf %s "$NAME"`)).stdout;
      assert.equal(shopName, 'shop-bazar', "the README's NAME for release shop");
      const noteLines = notes.split('\n').map((l) => l.trim());
      for (const l of readmeCurlBlock('port-forward')
        .split('\n')
        .filter((x) => x.startsWith('TOKEN=$(') || x.includes(' port-forward '))) {
        assert.ok(
          noteLines.includes(filledIn(l, 'books', shopName)),
          `release shop's notes print the README's line filled in: ${filledIn(l, 'books', shopName)}`,
        );
      }
      for (const [ns, svc, fronts] of [
        ['books', 'shop-bazar-front', shopPods.filter(isComponent('front')).length],
        ['plain', 'bazar-front', plainPods.filter(isComponent('front')).length],
      ] as const) {
        const f = await PortForward.start(k(), ns, `svc/${svc}`, 80);
        try {
          const r = await request(f.base, 'POST', '/purchase/7', {
            headers: { 'idempotency-key': `${ns}-1` },
          });
          log(
            `${ns}: POST /purchase/7 → ${r.status} ${r.body} (X-Served-By ${header(r, 'X-Served-By')}, X-Invalidated ${header(r, 'X-Invalidated')})`,
          );
          assert.equal(r.status, 200);
          assert.equal(
            (r.json as { remainingStock: number }).remainingStock,
            99,
            `${ns} has a database of its own`,
          );
          assert.equal(header(r, 'X-Invalidated'), `${fronts}/${fronts}`);
          const o = await request(f.base, 'GET', `/orders/${(r.json as { orderId: string }).orderId}`);
          assert.equal(o.status, 200);
        } finally {
          await f.stop();
        }
      }
    });
  },
);

/** The first snapshot a live page's event stream sends (it sends one at once, then every second). */
async function firstLiveSnapshot(url: string): Promise<unknown> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  try {
    const res = await fetch(url, { signal: controller.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the event stream ended before a snapshot: ${text.slice(0, 300)}`);
      text += decoder.decode(value, { stream: true });
      const match = /event: snapshot\ndata: (.*)\n\n/.exec(text);
      if (match) return JSON.parse(match[1]!) as unknown;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
