#!/usr/bin/env node
// A real, local Kubernetes control plane for tests — in the spirit of
// controller-runtime's envtest: etcd on loopback with its own data dir plus
// kube-apiserver with RBAC really enforced.  No controller-manager and no
// scheduler run, so nothing reconciles: no EndpointSlices are made for
// Services, namespaces stay Terminating after delete, no "default"
// ServiceAccount appears.  Tests create what they need.
//
// Binaries come from scripts/k8s-tools.sh (default bin dir
// ${BAZAR_TOOLS_DIR:-~/.cache/bazar-tools}/bin).
//
// Library:
//   import { startLocalApiServer } from './scripts/local-apiserver.mjs';
//   const api = await startLocalApiServer({ binDir, dataDir });   // all options optional
//   api.url, api.adminToken, api.kubeconfigPath, api.saSigningKeyPath, ...
//   await api.restart();  // restarts kube-apiserver only (same ports, same etcd)
//   await api.stop();
//
// CLI:
//   node scripts/local-apiserver.mjs [--data-dir DIR] [--bin-dir DIR] [--api-port N] [--etcd-port N]
//   prints URL, token and kubeconfig path; Ctrl-C stops everything.
//
// Only Node built-ins are used (no npm dependencies).

import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HOST = '127.0.0.1';

export function defaultBinDir() {
  if (process.env.BAZAR_TOOLS_BIN) return process.env.BAZAR_TOOLS_BIN;
  const tools = process.env.BAZAR_TOOLS_DIR || path.join(os.homedir(), '.cache', 'bazar-tools');
  return path.join(tools, 'bin');
}

/** Ask the kernel for a free loopback port (tiny race until the child binds it). */
function freePort(exclude = []) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => (exclude.includes(port) ? freePort(exclude).then(resolve, reject) : resolve(port)));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tail(file, n = 40) {
  try {
    const lines = readFileSync(file, 'utf8').split('\n');
    return lines.slice(Math.max(0, lines.length - n - 1)).join('\n');
  } catch {
    return '(no log)';
  }
}

/** GET url → status code (or 0 on connection error). TLS is not verified (loopback only). */
function probe(url, token, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(
      url,
      {
        rejectUnauthorized: false,
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

/** A child process with its output appended to logFile. */
function startProcess(bin, args, logFile, env) {
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  const proc = { child, exited: false, exitCode: null, signal: null, error: null };
  proc.done = new Promise((resolve) => {
    child.on('error', (err) => {
      proc.error = err;
      proc.exited = true;
      resolve();
    });
    child.on('exit', (code, signal) => {
      proc.exited = true;
      proc.exitCode = code;
      proc.signal = signal;
      resolve();
    });
  });
  return proc;
}

async function stopProcess(proc, graceMs = 10000, signal = 'SIGTERM') {
  if (!proc || proc.exited) return;
  try {
    proc.child.kill(signal);
  } catch {
    /* already gone */
  }
  const timer = setTimeout(() => {
    try {
      proc.child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await proc.done;
  clearTimeout(timer);
}

async function waitFor(what, proc, logFile, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exited) {
      const how = proc.error ? proc.error.message : `code ${proc.exitCode}, signal ${proc.signal}`;
      throw new Error(
        `${what} exited during startup (${how}); last log lines of ${logFile}:\n${tail(logFile)}`,
      );
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${what} not ready after ${timeoutMs} ms; last log lines of ${logFile}:\n${tail(logFile)}`,
      );
    }
    await sleep(200);
  }
}

function writeKubeconfig(file, url, token, caFile) {
  // insecure-skip-tls-verify: the serving cert is self-signed by kube-apiserver
  // (--cert-dir); caCertPath is returned too for clients that want to verify.
  void caFile;
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${url}
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: local
  context:
    cluster: local
    user: admin
    namespace: default
current-context: local
`;
  writeFileSync(file, yaml, { mode: 0o600 });
}

/**
 * Start etcd + kube-apiserver on loopback.
 *
 * @param {object} [opts]
 * @param {string} [opts.binDir]     dir holding etcd and kube-apiserver (default: defaultBinDir())
 * @param {string} [opts.dataDir]    where etcd data, certs, keys, kubeconfig and logs go
 *                                   (default: a fresh temp dir, removed by stop())
 * @param {number} [opts.etcdPort]   etcd client port (default: a free port)
 * @param {number} [opts.apiPort]    kube-apiserver secure port (default: a free port)
 * @param {number} [opts.startTimeoutMs] default 90000
 * @param {string[]} [opts.extraApiServerArgs] appended to the kube-apiserver flags
 * @param {boolean} [opts.keepDataDir] never delete dataDir on stop()
 */
export async function startLocalApiServer(opts = {}) {
  const binDir = opts.binDir || defaultBinDir();
  const etcdBin = path.join(binDir, 'etcd');
  const apiBin = path.join(binDir, 'kube-apiserver');
  for (const b of [etcdBin, apiBin]) {
    if (!existsSync(b)) throw new Error(`${b} not found — run scripts/k8s-tools.sh first`);
  }
  const ownDataDir = !opts.dataDir;
  const dataDir = path.resolve(opts.dataDir || mkdtempSync(path.join(os.tmpdir(), 'bazar-apiserver-')));
  mkdirSync(dataDir, { recursive: true });
  const startTimeoutMs = opts.startTimeoutMs ?? 90000;

  // Ports: all distinct; the etcd peer port is never used by clients but must not collide.
  const etcdPort = opts.etcdPort || (await freePort());
  const apiPort = opts.apiPort || (await freePort([etcdPort]));
  const peerPort = await freePort([etcdPort, apiPort]);

  // Files.
  const etcdDataDir = path.join(dataDir, 'etcd');
  mkdirSync(etcdDataDir, { recursive: true, mode: 0o700 });
  const certDir = path.join(dataDir, 'certs');
  mkdirSync(certDir, { recursive: true });
  const etcdLog = path.join(dataDir, 'etcd.log');
  const apiLog = path.join(dataDir, 'kube-apiserver.log');
  const tokenFile = path.join(dataDir, 'tokens.csv');
  const saSigningKeyPath = path.join(dataDir, 'sa.key');
  const saPublicKeyPath = path.join(dataDir, 'sa.pub');
  const kubeconfigPath = path.join(dataDir, 'kubeconfig');
  const caCertPath = path.join(certDir, 'apiserver.crt'); // serving cert + its self-signed CA

  // Reuse token and keys when dataDir is reused, so old tokens stay valid.
  let adminToken;
  if (existsSync(tokenFile)) {
    adminToken = readFileSync(tokenFile, 'utf8').split(',')[0].trim();
  } else {
    adminToken = randomBytes(24).toString('hex');
    // token,user,uid,"group1,group2"
    writeFileSync(tokenFile, `${adminToken},bazar-admin,bazar-admin,"system:masters"\n`, { mode: 0o600 });
  }
  if (!existsSync(saSigningKeyPath) || !existsSync(saPublicKeyPath)) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(saSigningKeyPath, privateKey, { mode: 0o600 });
    writeFileSync(saPublicKeyPath, publicKey);
  }

  const url = `https://${HOST}:${apiPort}`;
  const etcdUrl = `http://${HOST}:${etcdPort}`;
  const peerUrl = `http://${HOST}:${peerPort}`;
  const serviceAccountIssuer = 'https://kubernetes.default.svc.cluster.local';

  // Children must never go through a proxy to reach loopback.
  const env = { ...process.env, NO_PROXY: `${HOST},localhost`, no_proxy: `${HOST},localhost` };
  delete env.HTTP_PROXY;
  delete env.HTTPS_PROXY;
  delete env.http_proxy;
  delete env.https_proxy;

  const etcdArgs = [
    '--name=default',
    `--data-dir=${etcdDataDir}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    '--unsafe-no-fsync=true', // test data only; much faster on slow disks
    '--log-level=warn',
  ];
  const apiArgs = [
    `--etcd-servers=${etcdUrl}`,
    `--secure-port=${apiPort}`,
    `--bind-address=${HOST}`,
    `--advertise-address=${HOST}`,
    `--cert-dir=${certDir}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=${serviceAccountIssuer}`,
    `--service-account-key-file=${saPublicKeyPath}`,
    `--service-account-signing-key-file=${saSigningKeyPath}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    // No controller-manager: nothing would create the "default" ServiceAccount pods need.
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    // The lease reconciler would try to publish 127.0.0.1 as the kubernetes Service's
    // endpoint, which validation rejects (loopback) — an error line every 10 s.
    '--endpoint-reconciler-type=none',
    // On SIGTERM end open watches (clean end of stream) instead of letting them pin the
    // HTTP server until the 60 s shutdown timeout.
    '--shutdown-watch-termination-grace-period=2s',
    '--profiling=false',
    ...(opts.extraApiServerArgs || []),
  ];

  let etcd = null;
  let api = null;
  let stopped = false;

  const killSync = () => {
    for (const p of [api, etcd])
      if (p && !p.exited) {
        try {
          p.child.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }
  };
  process.on('exit', killSync); // never leave orphans behind if the test runner exits

  async function startApi() {
    api = startProcess(apiBin, apiArgs, apiLog, env);
    await waitFor(
      'kube-apiserver',
      api,
      apiLog,
      async () => (await probe(`${url}/readyz`, adminToken)) === 200,
      startTimeoutMs,
    );
  }

  const stop = async () => {
    stopped = true;
    await stopProcess(api);
    await stopProcess(etcd);
    process.removeListener('exit', killSync);
    if (ownDataDir && !opts.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    etcd = startProcess(etcdBin, etcdArgs, etcdLog, env);
    await waitFor(
      'etcd',
      etcd,
      etcdLog,
      async () => (await probe(`${etcdUrl}/health`)) === 200,
      startTimeoutMs,
    );
    await startApi();
  } catch (err) {
    await stopProcess(api);
    await stopProcess(etcd);
    process.removeListener('exit', killSync);
    // The error already carries the last log lines; pass keepDataDir to keep the files.
    if (ownDataDir && !opts.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  writeKubeconfig(kubeconfigPath, url, adminToken, caCertPath);

  /**
   * Restart kube-apiserver only (same ports, certs, keys, tokens and etcd) — breaks every watch.
   * Default: SIGTERM, open watches end cleanly (end of stream) within ~0.5 s.
   * { hard: true }: SIGKILL, like a crash — clients see ECONNRESET / socket hang up.
   */
  const restart = async ({ hard = false } = {}) => {
    if (stopped) throw new Error('local apiserver was stopped');
    await stopProcess(api, 10000, hard ? 'SIGKILL' : 'SIGTERM');
    await startApi();
  };

  return {
    url,
    adminToken,
    kubeconfigPath,
    saSigningKeyPath,
    saPublicKeyPath,
    serviceAccountIssuer,
    caCertPath,
    dataDir,
    etcdUrl,
    apiPort,
    etcdPort,
    logs: { etcd: etcdLog, apiserver: apiLog },
    stop,
    restart,
  };
}

// ---------------------------------------------------------------- CLI
function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split('=', 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (k) {
      case '--data-dir':
        o.dataDir = val();
        break;
      case '--bin-dir':
        o.binDir = val();
        break;
      case '--api-port':
        o.apiPort = Number(val());
        break;
      case '--etcd-port':
        o.etcdPort = Number(val());
        break;
      case '--keep-data-dir':
        o.keepDataDir = true;
        break;
      case '-h':
      case '--help':
        console.log(
          'usage: node scripts/local-apiserver.mjs [--data-dir DIR] [--bin-dir DIR] [--api-port N] [--etcd-port N] [--keep-data-dir]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return o;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const t0 = Date.now();
  let srv;
  try {
    srv = await startLocalApiServer(parseArgs(process.argv.slice(2)));
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`kube-apiserver ready in ${Date.now() - t0} ms`);
  console.log(`URL:        ${srv.url}`);
  console.log(`token:      ${srv.adminToken}`);
  console.log(`kubeconfig: ${srv.kubeconfigPath}`);
  console.log(`data dir:   ${srv.dataDir}`);
  console.log(`etcd:       ${srv.etcdUrl}`);
  console.log(`logs:       ${srv.logs.apiserver} ${srv.logs.etcd}`);
  console.log(`try:        KUBECONFIG=${srv.kubeconfigPath} kubectl get ns`);
  console.log('Ctrl-C (or SIGTERM) stops everything; SIGHUP restarts kube-apiserver.');
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log('stopping ...');
    await srv.stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', async () => {
    const t = Date.now();
    try {
      await srv.restart();
      console.log(`kube-apiserver restarted in ${Date.now() - t} ms`);
    } catch (err) {
      console.error(err.message);
    }
  });
}
