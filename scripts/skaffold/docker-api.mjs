// The node's containerd of a local cluster (tools/cluster), seen through the few Docker Engine API calls
// skaffold's local builder makes, on a unix socket that DOCKER_HOST names (scripts/skaffold/cluster.sh
// starts it). skaffold's custom builder with push: false asks "the local Docker daemon" for the ID of
// the image the build command produced, then tags that ID as <repository>:<id> and deploys that name;
// there is no Docker here, and the image the command produced is in the node's containerd
// (scripts/skaffold/build-image.sh puts it there), which is also where the kubelet looks. So:
//   HEAD|GET /_ping, GET /version           who we are (API 1.41)
//   GET  /v*/images/{name}/json             {Id, RepoTags} of an image in containerd (404 if none);
//                                           the Id is containerd's digest of the image (its manifest)
//   POST /v*/images/{id-or-name}/tag?repo=R&tag=T   `ctr images tag` in every node (up --nodes N)
// Everything else answers 501 with what was asked, so that a skaffold that needs more says so.
//
// Usage: node scripts/skaffold/docker-api.mjs --cluster NAME --socket PATH   (as root: nsenter)
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { cluster: { type: 'string', default: 'bazar' }, socket: { type: 'string' } },
});
if (!values.socket) {
  process.stderr.write('usage: docker-api.mjs --cluster NAME --socket PATH\n');
  process.exit(2);
}
const state = path.join(process.env.BAZAR_CLUSTER_DIR || '/var/tmp/bazar-cluster', values.cluster);
const API_VERSION = '1.41';

/** The pinned namespaces of every node: the control plane's, then each worker's (tools/cluster layout). */
function nodeNamespaceDirs() {
  const workers = path.join(state, 'nodes');
  const names = existsSync(workers) ? readdirSync(workers).sort() : [];
  return [path.join(state, 'ns'), ...names.map((n) => path.join(workers, n, 'ns'))];
}

function ctr(args, nsDir = path.join(state, 'ns')) {
  const argv = [
    `--net=${nsDir}/net`,
    `--mount=${nsDir}/mnt`,
    '--',
    'ctr',
    '--address',
    '/run/containerd/containerd.sock',
    '--namespace',
    'k8s.io',
    ...args,
  ];
  return new Promise((resolve, reject) => {
    execFile('nsenter', argv, { maxBuffer: 16 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ctr ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** containerd's name for a reference: without a registry host it is Docker Hub's (tools/cluster). */
function normalise(ref) {
  const first = ref.split('/')[0] ?? '';
  const hasHost = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost) return ref;
  const named = ref.includes(':', ref.lastIndexOf('/')) ? ref : `${ref}:latest`;
  return named.includes('/') ? `docker.io/${named}` : `docker.io/library/${named}`;
}

/** Every image of the node: [{ref, digest}] (`ctr images ls`: REF TYPE DIGEST SIZE PLATFORMS LABELS). */
async function images() {
  const lines = (await ctr(['images', 'ls'])).split('\n').slice(1);
  return lines
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && f[2].startsWith('sha256:'))
    .map((f) => ({ ref: f[0], digest: f[2] }));
}

/** The images a Docker name means: an ID (sha256:... or a prefix of its hex) or a reference. */
async function find(name) {
  const all = await images();
  const hex = name.replace(/^sha256:/, '');
  if (/^[0-9a-f]{12,64}$/.test(hex)) {
    const byId = all.filter((i) => i.digest.slice('sha256:'.length).startsWith(hex));
    if (byId.length > 0) return byId;
  }
  const ref = normalise(name);
  const one = all.find((i) => i.ref === ref);
  return one ? all.filter((i) => i.digest === one.digest) : [];
}

function send(res, status, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Api-Version': API_VERSION,
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://docker');
  const route = url.pathname.replace(/^\/v[0-9.]+(?=\/)/, '');
  if (route === '/_ping') {
    res.writeHead(200, { 'Api-Version': API_VERSION, 'Content-Type': 'text/plain', OSType: 'linux' });
    return res.end(req.method === 'HEAD' ? undefined : 'OK');
  }
  if (route === '/version' && req.method === 'GET') {
    return send(res, 200, {
      Version: `bazar-cluster-${values.cluster}`,
      ApiVersion: API_VERSION,
      MinAPIVersion: '1.24',
      Os: 'linux',
      Arch: process.arch === 'x64' ? 'amd64' : process.arch,
    });
  }
  const m = /^\/images\/(.+)\/(json|tag)$/.exec(route);
  if (m && ((m[2] === 'json' && req.method === 'GET') || (m[2] === 'tag' && req.method === 'POST'))) {
    const name = decodeURIComponent(m[1]);
    const found = await find(name);
    if (found.length === 0) return send(res, 404, { message: `No such image: ${name}` });
    if (m[2] === 'json') {
      return send(res, 200, {
        Id: found[0].digest,
        RepoTags: found.map((i) => i.ref),
        RepoDigests: [],
        Os: 'linux',
      });
    }
    const repo = url.searchParams.get('repo');
    const tag = url.searchParams.get('tag') || 'latest';
    if (!repo) return send(res, 400, { message: 'repo is required' });
    for (const nsDir of nodeNamespaceDirs()) {
      await ctr(['images', 'tag', '--force', found[0].ref, normalise(`${repo}:${tag}`)], nsDir);
    }
    process.stderr.write(`[docker-api] tagged ${found[0].ref} as ${normalise(`${repo}:${tag}`)}\n`);
    return send(res, 201);
  }
  process.stderr.write(`[docker-api] not implemented: ${req.method} ${req.url}\n`);
  return send(res, 501, {
    message: `${req.method} ${url.pathname}: not implemented by scripts/skaffold/docker-api.mjs (no Docker here)`,
  });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) =>
    send(res, 500, { message: err instanceof Error ? err.message : String(err) }),
  );
});
rmSync(values.socket, { force: true });
server.listen(values.socket, () =>
  process.stderr.write(`[docker-api] ${values.socket} → cluster ${values.cluster}\n`),
);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    rmSync(values.socket, { force: true });
    process.exit(0);
  });
}
