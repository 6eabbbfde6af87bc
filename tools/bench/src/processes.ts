/**
 * Processes the bench runs next to the store: the bare node:http baseline server, extra fronts with a
 * chosen set of catalog endpoints, and the bare chains (bare-chain.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Every server the bench starts runs in a session of its own, as the devstack starts the services
 * (`detached`): with the kernel's autogroup scheduling (sched_autogroup_enabled, the default on most
 * distributions) each session is one scheduling group with an equal share of a busy CPU, so a floor
 * left in the bench's own session would share one group with the load generator while each Bazar
 * service had a group of its own — and lose to it whenever the machine is busy. They still exit when
 * the bench does: the IPC channel closes and they exit on 'disconnect'.
 */
const DETACHED = true;

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
  return forkServer('baseline', './baseline-server.js', { BASELINE_BODY: body });
}

/** A server script of the bench (beside this file), forked; it reports its port over IPC. */
export async function forkServer(
  name: string,
  script: string,
  env: Record<string, string>,
): Promise<Spawned> {
  const main = fileURLToPath(new URL(script, import.meta.url));
  const child = fork(main, [], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    detached: DETACHED,
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`${name} server exited (${code})`)));
  });
  return { name, url: `http://127.0.0.1:${port}`, pid: child.pid, stop: stopper(child) };
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
  const main = fileURLToPath(new URL('../../../services/front/src/main.js', import.meta.url));
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
  const child = fork(main, [], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: DETACHED });
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

/** The bare chain of bare-chain.ts: its fronts, catalog and order, on the store's Postgres pair. */
export interface BareChain {
  fronts: Spawned[];
  catalog: Spawned;
  order: Spawned;
  all: Spawned[];
  stop(): Promise<void>;
}

export interface BareChainOptions {
  primaryUrl: string;
  standbyUrl: string;
  /** Front processes: the order pushes every invalidation to all of them. */
  fronts: number;
  synchronousCommit: 'remote_apply' | 'local';
  /** `await`: answer after every front acknowledged (strict, session); `background`: answer at once (eventual). */
  push: 'await' | 'background';
  /** Extra environment for every chain process (the profiler's preload). */
  env?: Record<string, string>;
  /**
   * Every front also LISTENs on a connection to the primary (the NOTIFY prototype: the order's
   * `/purchase/:id?notify` commits a NOTIFY instead of pushing) and keeps when each one arrived.
   */
  listen?: boolean;
  /** The chain's NOTIFY channel (notify-sql.ts, chainChannel). */
  channel?: string;
}

async function startChainProcess(name: string, env: Record<string, string>): Promise<Spawned> {
  const main = fileURLToPath(new URL('./bare-chain.js', import.meta.url));
  const child = fork(main, [], {
    env: { ...process.env, SERVICE_NAME: name, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    detached: DETACHED,
  });
  const stop = stopper(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { name, url: `http://127.0.0.1:${port}`, pid: child.pid, stop };
}

/** Waits for every start; each one that succeeded joins `started` (to be stopped), even if another failed. */
async function allStarted(started: Spawned[], starting: Array<Promise<Spawned>>): Promise<Spawned[]> {
  const results = await Promise.allSettled(starting);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<Spawned>).value);
}

/**
 * Starts a bare chain with `fronts` front processes, reading from `standbyUrl` and buying on
 * `primaryUrl` at `synchronousCommit`; stops what it started if any part fails.
 */
export async function startBareChain(opts: BareChainOptions): Promise<BareChain> {
  const started: Spawned[] = [];
  const stop = async () => {
    await Promise.all(started.map((s) => s.stop()));
  };
  const extra = { ...(opts.env ?? {}), ...(opts.channel ? { CHAIN_CHANNEL: opts.channel } : {}) };
  try {
    const frontPorts = await Promise.all(Array.from({ length: opts.fronts }, () => freePort()));
    const frontUrls = frontPorts.map((port) => `http://127.0.0.1:${port}`);
    const [catalog, order] = (await allStarted(started, [
      startChainProcess('chain-catalog', {
        ...extra,
        CHAIN_ROLE: 'catalog',
        CHAIN_DATABASE_URL: opts.standbyUrl,
      }),
      startChainProcess('chain-order', {
        ...extra,
        CHAIN_ROLE: 'order',
        CHAIN_DATABASE_URL: opts.primaryUrl,
        CHAIN_SYNCHRONOUS_COMMIT: opts.synchronousCommit,
        CHAIN_PUSH: opts.push,
        CHAIN_FRONT_URLS: frontUrls.join(','),
      }),
    ])) as [Spawned, Spawned];
    const fronts = await allStarted(
      started,
      frontPorts.map((port, i) =>
        startChainProcess(`chain-front-${i}`, {
          ...extra,
          CHAIN_ROLE: 'front',
          CHAIN_PORT: String(port),
          CHAIN_CATALOG_URL: catalog.url,
          CHAIN_ORDER_URL: order.url,
          ...(opts.listen ? { CHAIN_LISTEN_URL: opts.primaryUrl } : {}),
        }),
      ),
    );
    return { fronts, catalog, order, all: [...fronts, catalog, order], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
