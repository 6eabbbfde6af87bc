/**
 * Processes the bench runs next to the store: the bare node:http baseline server and extra fronts with
 * a chosen set of catalog endpoints; plus CPU time of any process, read from /proc.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const CLK_TCK = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(out.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** User + system CPU milliseconds a process has used so far (Linux /proc), or undefined elsewhere. */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Spawned {
  name: string;
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
}

/** The ceiling for any Node front: node:http answering every request with the same JSON bytes. */
export async function startBaseline(body: string): Promise<Spawned> {
  const main = fileURLToPath(new URL('./baseline-server.js', import.meta.url));
  const child = fork(main, [], {
    env: { ...process.env, BASELINE_BODY: body },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`baseline server exited (${code})`)));
  });
  return { name: 'baseline', url: `http://127.0.0.1:${port}`, pid: child.pid, stop: stopper(child) };
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get(`${url}/readyz`, { agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
    });
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms`);
}

/**
 * One more front process, configured like the stack's own (static discovery) but with the catalog
 * endpoints given: how the bench varies the number of catalog replicas behind a front without
 * restarting Postgres.
 */
export async function startFront(opts: {
  name: string;
  catalogs: Array<{ name: string; url: string }>;
  orders: Array<{ name: string; url: string }>;
  adminToken: string;
  internalToken: string;
  mode: string;
}): Promise<Spawned> {
  const port = await freePort();
  const main = fileURLToPath(new URL('../../front/src/main.js', import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  Object.assign(env, {
    SERVICE_NAME: opts.name,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    ADMIN_TOKEN: opts.adminToken,
    INTERNAL_TOKEN: opts.internalToken,
    CONSISTENCY_MODE: opts.mode,
    DISCOVERY: 'static',
    SHUTDOWN_DELAY_MS: '0',
    CATALOG_URLS: opts.catalogs.map((c) => `${c.name}=${c.url}`).join(','),
    ORDER_URLS: opts.orders.map((o) => `${o.name}=${o.url}`).join(','),
  });
  const child = fork(main, [], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child);
  try {
    await waitReady(url, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: opts.name, url, pid: child.pid, stop };
}
