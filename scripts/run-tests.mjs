#!/usr/bin/env node
// Runs every test tier this machine can run, in one `node --test` invocation so the summary
// (`# pass N` / `# fail N`) covers them all, and a second one after it for the tiers that need the
// host's network namespace (tools/cluster, tools/images, test/cluster; see below). Tiers that need the Kubernetes toolchain (kube-apiserver,
// etcd, kubectl, helm; built by scripts/k8s-tools.sh) run when it is present; without it they are
// reported as NOT RUN with the reason, and under CI (where .ci/run builds the toolchain) that is an error.
// The cluster tier (test/cluster: a real single-node Kubernetes from tools/cluster) also needs root and
// the host packages of the node and of the image builds, and runs in the host's network namespace.
import { spawnSync, spawn } from 'node:child_process';
import {
  readdirSync,
  statSync,
  existsSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
// A tier is a folder of compiled tests: each test tier under test/ (api, faults, kubernetes, chart),
// and the unit tests beside the code of each service (services/front, ...) and tool (tools/checker, ...).
const TIER_PARENTS = ['services', 'tools', 'test'];
const TOOLCHAIN_TIERS = new Set(['test/kubernetes', 'test/chart', 'test/cluster', 'test/prometheus']);
// The browser tier drives Debian's Chromium (scripts/test-tools.sh installs it; .ci/run does).
const BROWSER_TIER = 'test/browser';
const CHROMIUM = [process.env.BAZAR_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].filter(
  Boolean,
);
const CLUSTER_TIER = 'test/cluster';
// Tiers that start the OpenTelemetry Collector scripts/otelcol.sh builds from the Go module proxy
// (scripts/test-tools.sh runs it; .ci/run does).
const OTELCOL_TIERS = new Set(['tools/otelcol', 'test/tracing']);
// Tiers that make network and mount namespaces of their own and build images (buildah, debootstrap, npm ci
// need the network): never inside the API-server tier's `unshare --net` namespace below.
// test/prometheus needs only loopback, but spends its two minutes waiting on its alerts' `for`: it runs in
// the lane beside the others (below), which ends before theirs.
const HOST_NETWORK_TIERS = new Set([CLUSTER_TIER, 'tools/cluster', 'tools/images', 'test/prometheus']);

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return testFiles(full);
    return name.endsWith('.test.js') ? [full] : [];
  });
}

function tiers() {
  return TIER_PARENTS.flatMap((parent) => {
    const dir = path.join(dist, parent);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .sort()
      .map((name) => ({ name: `${parent}/${name}`, files: testFiles(path.join(dir, name)).sort() }))
      .filter((tier) => tier.files.length > 0);
  });
}

// `npm test -- <arg>...`: an arg names a tier (`test/faults` or just `faults`), a group of tiers
// (`test`, `services`, `tools`), or else any test file whose path contains it (`hostile-input`).
// A bare name that two tiers share means the test tier (`cluster` is test/cluster; the unit tests
// of the tool are `tools/cluster`).
const allTiers = tiers();
function selectsTier(arg, tier) {
  if (arg === tier.name || tier.name.startsWith(`${arg}/`)) return true;
  if (arg !== tier.name.split('/')[1]) return false;
  return tier.name.startsWith('test/') || !allTiers.some((t) => t.name === `test/${arg}`);
}
const namesTier = (arg) => allTiers.some((t) => selectsTier(arg, t));

const only = process.argv.slice(2);
// How the files share the machine (two cores), in three stages; each lane is a `node --test` of its own,
// and a cluster file's cluster has a name of its own (its own namespaces, state directory and image store:
// it shares nothing with another lane's). A lane's output is printed after that of the lane it ran beside.
//   1. The main lane (every file that needs no host network, inside its own network namespace) WITH_MAIN
//      the alerts on loopback (a minute of waiting on their rules' `for`).
//   2. The other host-network files, one at a time (the chaos scenarios, 15 minutes, a third of it waiting
//      on an alert's `for`; the NetworkPolicies; the cluster and image tools), BESIDE the PostgreSQL
//      failover scenarios (most of their 10 minutes waiting on Patroni's timers), the cluster tool's
//      multi-node file (a minute of it waiting for the control plane to notice a node cut off) and
//      skaffold on a cluster of its own (run, dev with an edit, delete: 6 minutes).
//      Measured in CI (2026-12-07): stage 1 477 s, stage 2 1,094 s (`npm test` 1,785 s); a second run of
//      the same layout took 535 s and 1,201 s (1,980 s). With skaffold moved beside the main lane and the
//      NetworkPolicies beside the failover scenarios instead, 595 s and 1,004 s (1,829 s): no gain beyond
//      the noise between runs, so the layout that had run longest stays.
//   3. The user-path file asserts the k6 smoke scenario's latency thresholds, which a failover's load
//      beside it broke (info p95 168 ms against 50): it runs LAST, ALONE.
const relativeName = (file) => path.relative(dist, file).split(path.sep).join('/');
const WITH_MAIN = new Set(['test/prometheus/alerts-fire.test.js']);
const BESIDE = new Set([
  'test/cluster/failover.test.js',
  'tools/cluster/src/multinode.test.js',
  'test/cluster/skaffold.test.js',
]);
const LAST_ALONE = new Set(['test/cluster/user-path.test.js']);
// Files that run only when named (`npm test -- <name>`), not in the default run. The store's node faults
// with the chart's defaults on a control plane and two workers of their own (about 12 minutes; `npm test
// -- node-faults`, docs/reliability.md "Node faults"): beside the main lane they would add about 7 minutes
// to a default run already over its warm budget (30-32 minutes against 25), on two cores that the
// failover and chaos files fill.
const BY_NAME_ONLY = new Set(['test/cluster/node-faults.test.js']);
const namesFile = (file) => only.some((o) => !namesTier(o) && path.relative(dist, file).includes(o));
const toolsCheck = spawnSync('bash', [path.join(root, 'scripts', 'k8s-tools.sh'), '--check'], {
  encoding: 'utf8',
});
const toolsPresent = toolsCheck.status === 0;
if (toolsPresent) {
  const binDir = spawnSync('bash', [path.join(root, 'scripts', 'k8s-tools.sh'), '--print-bin-dir'], {
    encoding: 'utf8',
  });
  process.env.BAZAR_TOOLS_BIN = binDir.stdout.trim();
}

let notRunTiers = 0;
function notRun(message) {
  notRunTiers++;
  if (process.env.CI) {
    console.error(`${message}\nUnder CI every tier must run; its absence here is an error.`);
    process.exit(1);
  }
  console.warn(`\n*** ${message}\n`);
}

// Why the cluster tier cannot run (root, toolchain, host packages), from its own check.
async function clusterTierBlocker() {
  const file = path.join(dist, 'test', 'cluster', 'prerequisites.js');
  if (!existsSync(file)) return `${path.relative(root, file)} is not built`;
  const mod = await import(pathToFileURL(file).href);
  return mod.clusterTierBlocker();
}

const files = [];
const hostFiles = [];
for (const tier of allTiers) {
  const selected =
    only.length === 0 || only.some((o) => selectsTier(o, tier)) ? tier.files : tier.files.filter(namesFile);
  if (selected.length === 0) continue;
  if (TOOLCHAIN_TIERS.has(tier.name) && !toolsPresent) {
    const why = (toolsCheck.stdout + toolsCheck.stderr).trim() || 'scripts/k8s-tools.sh --check failed';
    const message = `NOT RUN: the ${tier.name} tier needs the Kubernetes toolchain (${why}). Build it with scripts/k8s-tools.sh.`;
    if (process.env.CI) {
      console.error(`${message}\nCI builds the toolchain in .ci/run; its absence here is an error.`);
      process.exit(1);
    }
    console.warn(`\n*** ${message}\n`);
    notRunTiers++;
    continue;
  }
  if (tier.name === BROWSER_TIER && !CHROMIUM.some((p) => existsSync(p))) {
    notRun(
      `NOT RUN: the ${tier.name} tier needs Chromium (${CHROMIUM.join(' or ')}): bash scripts/test-tools.sh installs it`,
    );
    continue;
  }
  if (OTELCOL_TIERS.has(tier.name)) {
    const check = spawnSync('bash', [path.join(root, 'scripts', 'otelcol.sh'), '--check'], {
      encoding: 'utf8',
    });
    if (check.status !== 0) {
      notRun(
        `NOT RUN: the ${tier.name} tier needs the OpenTelemetry Collector at its pinned versions (scripts/otelcol.sh --check failed): bash scripts/test-tools.sh builds it`,
      );
      continue;
    }
  }
  if (tier.name === CLUSTER_TIER) {
    const why = await clusterTierBlocker();
    if (why) {
      notRun(`NOT RUN: the ${tier.name} tier (a real single-node Kubernetes): ${why}`);
      continue;
    }
  }
  const chosen = selected.filter((f) => !BY_NAME_ONLY.has(relativeName(f)) || namesFile(f));
  for (const f of selected.filter((x) => !chosen.includes(x))) {
    console.log(`# ${relativeName(f)} runs only when named: npm test -- ${path.basename(f, '.test.js')}`);
  }
  (HOST_NETWORK_TIERS.has(tier.name) ? hostFiles : files).push(...chosen);
}

if (files.length === 0 && hostFiles.length === 0) {
  if (notRunTiers > 0) {
    console.warn('nothing else selected: every selected tier is NOT RUN here (see above)');
    process.exit(0);
  }
  console.error('no test files found: did `npm run build` run?');
  process.exit(1);
}

// The Kubernetes tier publishes its pods in EndpointSlices, and the API server refuses loopback
// addresses there. So, as root, the whole run goes into a network namespace of its own with a veth
// pair: its address (a test host that exists only inside the namespace) is where the tier's pods
// listen, and no test traffic can leave the namespace. Everything else only needs the namespace's
// loopback. Without root the Kubernetes tier reports itself NOT RUN, with the reason.
const POD_ADDRESS = '10.213.0.1';
const wantsNetns = files.some((f) => f.includes(`${path.sep}test${path.sep}kubernetes${path.sep}`));
const canNetns =
  wantsNetns &&
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--net', '--', 'ip', 'link', 'show', 'lo'], { stdio: 'ignore' }).status === 0;
if (wantsNetns && !canNetns) {
  const message =
    'NOT RUN: the Kubernetes API-server tier needs a network namespace for its pods (run the tests as root with unshare and iproute2)';
  if (process.env.CI) {
    console.error(message);
    process.exit(1);
  }
  console.warn(`\n*** ${message}\n`);
}

// Every `node --test` below writes TAP to stdout and, through scripts/failures-reporter.mjs, a line per
// failed test to a file of its own; the end of the run prints those lines together, so that the tail of
// a long log names what failed.
const failuresDir = mkdtempSync(path.join(os.tmpdir(), 'bazar-test-failures-'));
let reporters = 0;
function reporterArgs() {
  const destination = path.join(failuresDir, `${++reporters}.txt`);
  return [
    '--test-reporter=tap',
    '--test-reporter-destination=stdout',
    `--test-reporter=${path.join(root, 'scripts', 'failures-reporter.mjs')}`,
    `--test-reporter-destination=${destination}`,
  ];
}
function printFailures() {
  const lines = readdirSync(failuresDir)
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    .map((name) => readFileSync(path.join(failuresDir, name), 'utf8'))
    .join('');
  rmSync(failuresDir, { recursive: true, force: true });
  if (lines.trim() !== '') console.log(`\n# failed tests, from every part of this run:\n${lines.trimEnd()}`);
}

// One file at a time: integration files each start a Postgres pair and several processes, and this
// machine has two cores.
const netnsSetup = [
  'ip link set lo up',
  'ip link add bazar-pods type veth peer name bazar-peer',
  `ip addr add ${POD_ADDRESS}/24 dev bazar-pods`,
  'ip link set bazar-pods up',
  'ip link set bazar-peer up',
  'exec "$@"',
].join(' && ');
// Every lane runs in a process group of its own, so that an interrupted run (^C, CI's time limit: SIGINT
// or SIGTERM to this process, or to its whole group) reaches every process of every lane, and this process
// can wait until they are gone: a file that brought a cluster up takes it down on the signal (its `after`
// hooks do not run then), which takes a while.
const lanes = new Set();
const besides = new Set();
let stopping = false;
const LANE_TEARDOWN_MS = 300_000;
function spawnLane(command, args, options) {
  if (stopping) return undefined;
  const child = spawn(command, args, { cwd: root, ...options, detached: true });
  lanes.add(child);
  const done = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      lanes.delete(child);
      // Stopping: stop() ends the process once every lane's group is gone, not the stage that was waiting.
      if (!stopping) resolve(code ?? (signal ? 1 : 0));
    }),
  );
  return { child, done };
}
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  const groups = [...lanes].map((c) => c.pid);
  console.log(`\n# ${signal}: stopping ${groups.length} lane(s); each file tears down what it made`);
  for (const pgid of groups) {
    try {
      process.kill(-pgid, signal);
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + LANE_TEARDOWN_MS;
  while (groups.some(groupAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const left = groups.filter(groupAlive);
  if (left.length > 0) {
    console.log(
      `# still running after ${LANE_TEARDOWN_MS / 1000} s, killed: process groups ${left.join(', ')}`,
    );
    for (const pgid of left) process.kill(-pgid, 'SIGKILL');
  }
  for (const beside of besides) {
    process.stdout.write(readFileSync(beside.logFile));
    rmSync(beside.dir, { recursive: true, force: true });
  }
  printFailures();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}
process.on('SIGINT', (signal) => void stop(signal));
process.on('SIGTERM', (signal) => void stop(signal));

// Resolves with the lane's exit code; never once the run is stopping (stop() ends the process).
function runChild(command, args, env = process.env) {
  const lane = spawnLane(command, args, { stdio: 'inherit', env });
  return lane ? lane.done : new Promise(() => undefined);
}

/**
 * Starts a lane beside the one this process runs next: its TAP goes to a file, printed by `finishBeside`
 * after the other lane's (so that neither interleaves), or by stop() if the run is interrupted.
 */
function startBeside(list, what) {
  if (stopping) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-tests-beside-'));
  const logFile = path.join(dir, 'tap.log');
  const fd = openSync(logFile, 'w');
  console.log(`# running beside ${what} (output after theirs): ${list.map(relativeName).join(', ')}`);
  const startedAt = Date.now();
  const { done } = spawnLane(
    process.execPath,
    ['--test', '--test-concurrency=1', ...reporterArgs(), ...list],
    {
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  const beside = { done, logFile, dir, startedAt, what };
  besides.add(beside);
  return beside;
}
async function finishBeside(beside) {
  const code = await beside.done;
  if (stopping) return new Promise(() => undefined);
  besides.delete(beside);
  console.log(
    `# the files run beside ${beside.what}, ${Math.round((Date.now() - beside.startedAt) / 1000)} s:`,
  );
  process.stdout.write(readFileSync(beside.logFile));
  rmSync(beside.dir, { recursive: true, force: true });
  return code;
}
const nodeTest = (list) =>
  runChild(process.execPath, ['--test', '--test-concurrency=1', ...reporterArgs(), ...list]);

// The host-network files by stage (see the lanes above). Without a lane to run beside (`npm test --
// cluster/skaffold`, `npm test -- cluster/failover`), a file runs in the lane that would have had it beside.
const withMainFiles = hostFiles.filter((f) => WITH_MAIN.has(relativeName(f)));
const besideFiles = hostFiles.filter((f) => BESIDE.has(relativeName(f)));
const lastFiles = hostFiles.filter((f) => LAST_ALONE.has(relativeName(f)));
const serialFiles = hostFiles.filter(
  (f) => !withMainFiles.includes(f) && !besideFiles.includes(f) && !lastFiles.includes(f),
);

let exitCode = 0;
// Stage 1: the main lane, in its network namespace, with the WITH_MAIN files beside it.
const withMain =
  files.length > 0 && withMainFiles.length > 0 ? startBeside(withMainFiles, 'the main lane') : undefined;
if (files.length > 0) {
  const testArgs = ['--test', '--test-concurrency=1', ...reporterArgs(), ...files];
  exitCode = canNetns
    ? await runChild(
        'unshare',
        ['--net', '--', 'sh', '-c', netnsSetup, 'sh', process.execPath, ...testArgs],
        {
          ...process.env,
          BAZAR_POD_ADDRESS: POD_ADDRESS,
        },
      )
    : await runChild(process.execPath, testArgs);
}
if (withMain) exitCode = (await finishBeside(withMain)) || exitCode;
// Stage 2: the other host-network files one at a time, the BESIDE files meanwhile.
const serial = [...(withMain ? [] : withMainFiles), ...serialFiles];
const beside =
  serial.length > 0 && besideFiles.length > 0 ? startBeside(besideFiles, 'the others') : undefined;
if (!beside) serial.push(...besideFiles);
if (serial.length > 0) exitCode = (await nodeTest(serial)) || exitCode;
if (beside) exitCode = (await finishBeside(beside)) || exitCode;
// Stage 3.
if (lastFiles.length > 0) exitCode = (await nodeTest(lastFiles)) || exitCode;
printFailures();
process.exit(exitCode);
