/**
 * skaffold for real (issue 22, item 4): skaffold v2.19.0, built from the Go module proxy by
 * scripts/skaffold.sh, runs skaffold.yaml's `bazar-cluster` profile against a cluster of the tier's own
 * (`skaffold`, one node) through scripts/skaffold/cluster.sh: the custom builder calls the project's
 * image tool (buildah) and loads the image into the node, the deployer is the chart.
 *
 *   - `skaffold run` installs a release that reaches Ready and answers a search and a purchase;
 *   - `skaffold dev` rebuilds and rolls out after a source file of a service changes, and the new pods
 *     serve the change (the time from the edit to the first answer that shows it is printed);
 *   - `skaffold delete` (the wrapper's) leaves nothing of the release in the cluster.
 *
 * skaffold watches and builds a copy of the repository (its tracked files, node_modules linked, dist
 * copied), so the edit never touches the working tree the tests run from.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  bringUp,
  tearDown,
  clusterIp,
  NS,
  RELEASE,
  releaseReady,
  skipReason,
  type TierCluster,
} from './chaos-support.js';
import {
  chartPodCount,
  CLUSTER_DEFAULTS,
  command,
  log,
  NAMESPACED_KINDS,
  repoRoot,
  seconds,
  until,
} from './support.js';

const CLUSTER_NAME = 'skaffold';
const SKAFFOLD_SH = path.join(repoRoot, 'scripts', 'skaffold.sh');

// skaffold itself is built in `before` when it is missing (scripts/skaffold.sh, cached outside the repo).
const skip = await skipReason('the skaffold tier (test/cluster/skaffold.test.ts)');

/** The edit `skaffold dev` must roll out: an error message of the front's, visible with one request. */
const EDITED_FILE = path.join('services', 'front', 'src', 'reads.ts');
const ORIGINAL = 'current version ${entry.version}`,';
const EDITED = 'current version ${entry.version} (rebuilt by skaffold dev)`,';

/** A signal to a detached child's whole process group (the wrapper's bash and skaffold under it). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** A process's exit, or 'timeout' after `ms` (the timer does not keep the test process alive). */
function exitWithin(exited: Promise<number | null>, ms: number): Promise<number | null | 'timeout'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
    void exited.then((code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The repository's tracked files (as they are in the working tree), node_modules linked, dist copied. */
async function copyOfRepository(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-skaffold-copy-'));
  await command('/bin/sh', [
    '-c',
    `git -C "$1" ls-files -z | tar -C "$1" --null -T - -cf - | tar -C "$2" -xf -`,
    'sh',
    repoRoot,
    dir,
  ]);
  assert.ok(existsSync(path.join(dir, 'skaffold.yaml')), 'the copy has skaffold.yaml');
  // dist is copied, not linked: the image tool finds the repository from its own file, and a link would
  // send it back to the working tree (it built the unedited sources when dist was a link).
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  cpSync(path.join(repoRoot, 'dist'), path.join(dir, 'dist'), { recursive: true });
  return dir;
}

/**
 * The environment of skaffold and of the image tool its builder runs: the copy's images in a scope of
 * their own (tools/images paths.ts), so that its builds, from sources the test edits, neither replace
 * the repository's image index nor delete archives other tests of the run still load (CI of 2026-12-07:
 * the NetworkPolicy tier found `catalog@14ffa46930a1.tar` gone, replaced by the copy's build).
 */
const SKAFFOLD_ENV = { ...process.env, BAZAR_IMAGE_SCOPE: 'skaffold-tier' };

/** scripts/skaffold/cluster.sh of the copy, for this tier's cluster. */
function skaffold(copy: string, args: string[], timeoutMs: number) {
  return command('bash', skaffoldArgs(copy, args), { cwd: copy, timeoutMs, env: SKAFFOLD_ENV });
}

/**
 * cluster.sh's command line, with skaffold's own state (its global config, and for run and dev its
 * artifact cache) in the copy: nothing in ~/.skaffold, and no cache entry of an earlier run (keyed by
 * the same inputs' digest) stands in for this run's build.
 */
function skaffoldArgs(copy: string, args: string[]): string[] {
  const [command, ...rest] = args as [string, ...string[]];
  const state = ['--config', path.join(copy, '.skaffold-config')];
  if (command !== 'delete') state.push('--cache-file', path.join(copy, '.skaffold-cache'));
  return [
    path.join(copy, 'scripts', 'skaffold', 'cluster.sh'),
    '--name',
    CLUSTER_NAME,
    command,
    ...state,
    ...rest,
  ];
}

/** What is left of the release in its namespace and in the cluster (cluster defaults aside). */
async function releaseLeftovers(t: TierCluster): Promise<string[]> {
  // StorePolicies go with their CRD, which is checked below (a kind without its CRD is an error to kubectl).
  const kinds = NAMESPACED_KINDS.filter((k) => k !== 'storepolicy').join(',');
  const ns = await t.kube.json<{ items: Array<{ kind: string; metadata: { name: string } }> }>([
    'get',
    kinds,
    '-n',
    NS,
  ]);
  const pvs = await t.kube.json<{ items: Array<{ metadata: { name: string } }> }>(['get', 'pv']);
  const crds = await t.kube.json<{ items: Array<{ metadata: { name: string } }> }>(['get', 'crd']);
  return [
    ...ns.items.map((i) => `${i.kind}/${i.metadata.name}`).filter((n) => !CLUSTER_DEFAULTS.has(n)),
    ...pvs.items.map((p) => `PersistentVolume/${p.metadata.name}`),
    ...crds.items
      .map((c) => `CustomResourceDefinition/${c.metadata.name}`)
      .filter((n) => n.endsWith('bazar.dev')),
  ].sort();
}

/** One request from the control-plane node to the front Service: status and body. */
async function front(
  t: TierCluster,
  urlPath: string,
  headers: string[] = [],
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const ip = await clusterIp(t.kube, `${RELEASE}-front`);
  const out = await t.cluster.exec(
    [
      'curl',
      '-s',
      '-m',
      '10',
      '-X',
      method,
      ...headers.flatMap((h) => ['-H', h]),
      '-w',
      '\n%{http_code}',
      `http://${ip}${urlPath}`,
    ],
    { allowFailure: true },
  );
  const lines = out.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

describe(
  'skaffold against the cluster tier: run, dev (edit → served), delete',
  { skip, timeout: 2_400_000 },
  () => {
    let t: TierCluster | undefined;
    let copy: string | undefined;
    let dev: ChildProcess | undefined;
    const tier = () => {
      if (!t || !copy) throw new Error('the skaffold tier did not come up');
      return { t, copy };
    };

    // skaffold makes ~/.skaffold (empty config and cache files) even with --config and --cache-file:
    // removed afterwards if the tier made it.
    const homeState = path.join(os.homedir(), '.skaffold');
    const homeStateBefore = existsSync(homeState);

    // Interrupted (SIGINT, SIGTERM: no `after` hook runs then), skaffold dev's process group and the copy go
    // too; the cluster goes down by itself (bringUp), and that handler ends the process.
    const removeCopies = (): void => {
      if (copy) rmSync(copy, { recursive: true, force: true });
      if (!homeStateBefore) rmSync(homeState, { recursive: true, force: true });
    };
    const onSignal = (): void => {
      if (dev && dev.exitCode === null) signalGroup(dev, 'SIGTERM');
      removeCopies();
    };

    before(async () => {
      const built = await command('bash', [SKAFFOLD_SH], { timeoutMs: 1_800_000 });
      log(`skaffold: ${(built.stderr || built.stdout).trim().split('\n').pop()}`);
      t = await bringUp(CLUSTER_NAME);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      copy = await copyOfRepository();
    });

    after(async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (dev && dev.exitCode === null) {
        const exited = new Promise<number | null>((resolve) => dev!.once('exit', (code) => resolve(code)));
        signalGroup(dev, 'SIGINT');
        if ((await exitWithin(exited, 20_000)) === 'timeout') signalGroup(dev, 'SIGKILL');
      }
      await tearDown(t);
      removeCopies();
    });

    it('skaffold run builds the four images, installs the chart, and the release answers', async () => {
      const { t, copy } = tier();
      const t0 = Date.now();
      const out = await skaffold(copy, ['run', '--status-check=true'], 1_200_000);
      log(`skaffold run: ${seconds(Date.now() - t0)}\n${out.stdout.trim().split('\n').slice(-8).join('\n')}`);
      const pods = await releaseReady(t.kube, chartPodCount(), 300_000);
      const images = new Set(pods.flatMap((p) => p.spec.containers.map((c) => c.image)));
      log(`images running: ${[...images].sort().join(', ')}`);
      for (const name of ['bazar-front', 'bazar-catalog', 'bazar-order', 'bazar-postgres-patroni']) {
        assert.ok(
          [...images].some((i) => i.includes(`${name}:`)),
          `a pod runs the ${name} image skaffold built`,
        );
      }
      const search = await front(t, '/search/distributed%20systems');
      assert.equal(search.status, 200, search.body);
      const bought = await front(t, '/purchase/2', ['idempotency-key: skaffold-run-1'], 'POST');
      assert.equal(bought.status, 200, bought.body);
    });

    it('skaffold dev rebuilds and rolls out a changed source file, and the new pods serve the change', async () => {
      const { t, copy } = tier();
      const logFile = path.join(copy, 'skaffold-dev.log');
      const sink = createWriteStream(logFile);
      const seen = { text: '' };
      dev = spawn('bash', skaffoldArgs(copy, ['dev', '--port-forward=off', '--cleanup=false']), {
        cwd: copy,
        env: SKAFFOLD_ENV,
        stdio: ['ignore', 'pipe', 'pipe'],
        // A process group of its own: Ctrl-C reaches skaffold itself, not only the wrapper's bash.
        detached: true,
      });
      for (const stream of [dev.stdout!, dev.stderr!]) {
        stream.on('data', (b: Buffer) => {
          sink.write(b);
          seen.text += b.toString();
        });
      }
      const exited = new Promise<number | null>((resolve) => dev!.once('exit', (code) => resolve(code)));
      try {
        // `until` retries a check that throws: an exit is returned, and thrown here.
        const devExited = () => new Error(`skaffold dev exited ${dev!.exitCode}:\n${seen.text.slice(-3000)}`);
        const watching = await until(
          'skaffold dev to deploy and watch',
          async () =>
            dev!.exitCode !== null
              ? 'exited'
              : /Watching for changes/.test(seen.text)
                ? 'watching'
                : undefined,
          900_000,
          1000,
        );
        if (watching === 'exited') throw devExited();
        await releaseReady(t.kube, chartPodCount(), 300_000);
        const probe = () => front(t, '/info/1', ['x-min-version: 999999']);
        const before = await probe();
        assert.equal(before.status, 412, before.body);
        assert.doesNotMatch(before.body, /rebuilt by skaffold dev/);

        const file = path.join(copy, EDITED_FILE);
        const source = readFileSync(file, 'utf8');
        assert.ok(source.includes(ORIGINAL), `${EDITED_FILE} has the message the test edits`);
        const watchedFrom = seen.text.length;
        const editedAt = Date.now();
        writeFileSync(file, source.replace(ORIGINAL, EDITED));
        log(`edited ${EDITED_FILE} in the copy; waiting for skaffold dev to build and roll out`);
        const served = await until(
          'the edited message served by the front',
          async () => {
            if (dev!.exitCode !== null) return 'exited' as const;
            const r = await probe();
            return r.status === 412 && /rebuilt by skaffold dev/.test(r.body) ? r : undefined;
          },
          900_000,
          2000,
        );
        if (served === 'exited') throw devExited();
        const servedAfter = Date.now() - editedAt;
        log(`skaffold dev: the edit served ${seconds(servedAfter)} after it was saved: ${served.body}`);
        const after = seen.text.slice(watchedFrom);
        assert.match(
          after,
          /Generating tags|Building \[bazar-front\]|Starting build/,
          'skaffold dev rebuilt after the edit',
        );
        const pods = await releaseReady(t.kube, chartPodCount(), 300_000);
        const fronts = pods.filter((p) => p.metadata.labels?.['app.kubernetes.io/component'] === 'front');
        const images = new Set(fronts.flatMap((p) => p.spec.containers.map((c) => c.image)));
        assert.equal(
          images.size,
          1,
          `every front runs one image after the rollout: ${[...images].join(', ')}`,
        );
        for (let i = 0; i < 6; i++) {
          const r = await probe();
          assert.match(r.body, /rebuilt by skaffold dev/, 'every answer after the rollout shows the edit');
        }
      } finally {
        signalGroup(dev, 'SIGINT');
        const code = await exitWithin(exited, 60_000);
        if (code === 'timeout') signalGroup(dev, 'SIGKILL');
        sink.end();
        log(
          `skaffold dev stopped (${String(code)}); its last lines:\n${seen.text.trim().split('\n').slice(-6).join('\n')}`,
        );
      }
    });

    it('skaffold delete leaves nothing of the release behind', async () => {
      const { t, copy } = tier();
      const t0 = Date.now();
      const out = await skaffold(copy, ['delete'], 600_000);
      log(
        `skaffold delete: ${seconds(Date.now() - t0)}\n${(out.stdout + out.stderr).trim().split('\n').slice(-12).join('\n')}`,
      );
      const left = await until(
        'nothing of the release left',
        async () => {
          const l = await releaseLeftovers(t);
          return l.length === 0 ? l : undefined;
        },
        180_000,
        2000,
      ).catch(async () => releaseLeftovers(t));
      assert.deepEqual(left, [], 'skaffold delete left these behind');
    });
  },
);
