/**
 * Fault-injection helpers: a TCP proxy that delays, resets or swallows traffic, free port blocks, a
 * Prometheus text reader, a log sink, small timing helpers, and a PostgreSQL pair with a writer's commit
 * guard on it for the tests that drive the database directly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { after, before } from 'node:test';
import { startPgCluster, type PgCluster } from '../../tools/devstack/src/postgres-cluster.js';
import type { Stack } from '../../tools/devstack/src/stack.js';
import { Database } from '../../services/shared/src/db/database.js';
import { CommitGuard, type StandbyLoss } from '../../services/shared/src/db/write-transaction.js';
import type { Logger } from '../../services/shared/src/logger.js';
import { counter, createMetrics, gauge, type Metrics } from '../../services/shared/src/metrics.js';
import { policyFromConfig } from '../../services/shared/src/service-config.js';
export { metric } from '../../tools/bench/src/prom.js';
import type { FrontEndpoint } from '../../tools/checker/src/client.js';
import type { WorkloadOptions } from '../../tools/checker/src/workload.js';

export const now = (): number => performance.now();
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * - pass: forward both ways;
 * - delay: forward the request at once, hold every response chunk for `delayMs` (a slow upstream);
 * - reset: answer the next request bytes with a TCP RST (connection reset);
 * - drop-response: forward the request, then reset instead of relaying the answer (work done, answer lost);
 * - blackhole: accept and read, never answer (an unreachable peer behind a live socket).
 */
export type ProxyMode = 'pass' | 'delay' | 'reset' | 'drop-response' | 'blackhole';

export class TcpProxy {
  mode: ProxyMode = 'pass';
  delayMs = 0;
  readonly stats = { connections: 0, requests: 0, resets: 0, delayed: 0, dropped: 0, blackholed: 0 };
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  #port = 0;

  constructor(
    public target: { host: string; port: number },
    readonly name = 'proxy',
  ) {}

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  resetStats(): void {
    for (const k of Object.keys(this.stats) as (keyof TcpProxy['stats'])[]) this.stats[k] = 0;
  }

  async listen(port = 0): Promise<number> {
    const server = net.createServer((client) => this.#handle(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as net.AddressInfo).port;
    return this.#port;
  }

  /** Drops every open connection (new ones see the current mode). */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  #handle(client: net.Socket): void {
    this.stats.connections++;
    this.#sockets.add(client);
    const upstream = net.connect(this.target.port, this.target.host);
    this.#sockets.add(upstream);
    let queue = Promise.resolve();
    let dead = false;
    const kill = (reset: boolean) => {
      if (dead) return;
      dead = true;
      if (reset && !client.destroyed) client.resetAndDestroy();
      else client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', () => kill(false));
    upstream.on('error', () => kill(true));
    client.on('close', () => kill(false));
    upstream.on('end', () => {
      void queue.then(() => client.end());
    });
    client.on('data', (chunk: Buffer) => {
      if (dead) return;
      this.stats.requests++;
      switch (this.mode) {
        case 'reset':
          this.stats.resets++;
          kill(true);
          return;
        case 'blackhole':
          this.stats.blackholed++;
          return;
        default:
          upstream.write(chunk);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (dead) return;
      switch (this.mode) {
        case 'drop-response':
          this.stats.dropped++;
          kill(true);
          return;
        case 'delay': {
          this.stats.delayed++;
          const ms = this.delayMs;
          queue = queue.then(() => sleep(ms)).then(() => void (!dead && client.write(chunk)));
          return;
        }
        default:
          queue = queue.then(() => void (!dead && client.write(chunk)));
      }
    });
  }
}

/** `n` consecutive free loopback ports below the ephemeral range (for StackOptions.servicePortBase). */
export async function freePortBlock(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const servers: net.Server[] = [];
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const srv = net.createServer();
      ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(base + i, '127.0.0.1', () => resolve(true));
      });
      servers.push(srv);
    }
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
    if (ok) return base;
  }
  throw new Error(`no block of ${n} free ports found`);
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

export async function readyz(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Collects every log line of every process of a stack (pass `sink.add` as StackOptions.log). */
export class LogSink {
  readonly lines: { proc: string; line: string; at: number }[] = [];
  readonly add = (proc: string, line: string): void => {
    this.lines.push({ proc, line, at: now() });
  };
  since(mark: number): { proc: string; line: string; at: number }[] {
    return this.lines.filter((l) => l.at >= mark);
  }
  /** Parsed JSON log records (pino) since `mark`, with the process that wrote them. */
  records(mark = 0): { proc: string; rec: Record<string, unknown> }[] {
    const out: { proc: string; rec: Record<string, unknown> }[] = [];
    for (const l of this.since(mark)) {
      if (!l.line.startsWith('{')) continue;
      try {
        out.push({ proc: l.proc, rec: JSON.parse(l.line) as Record<string, unknown> });
      } catch {
        // a partial line: skip
      }
    }
    return out;
  }
}

/** Runs SQL on the server at `url` on a connection of its own (the URLs carry the superuser's credentials). */
export async function onServer<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Runs SQL on the stack's standby as the superuser. */
export function onStandby<T extends pg.QueryResultRow>(stack: Stack, sql: string, params: unknown[] = []) {
  return onServer<T>(stack.standbyUrl, sql, params);
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export const ms = (x: number) => `${x.toFixed(0)} ms`;

/** Polls `probe` until it returns true; resolves with the time it took, or rejects after `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 50) {
  const start = now();
  for (;;) {
    if (await probe()) return now() - start;
    if (now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The books the recorded fault scenarios own (nothing else writes them while a scenario runs). */
export const FAULT_BOOKS: readonly number[] = [1, 2, 3];

/**
 * The recorded workload the replay-pause scenarios share: four clients reading (half of the reads
 * uncached, so they reach the catalog pods), buying and changing prices on FAULT_BOOKS.
 */
export function mixedWorkload(stack: Stack, fronts: readonly FrontEndpoint[]): WorkloadOptions {
  return {
    fronts,
    clients: 4,
    books: FAULT_BOOKS,
    mix: { read: 6, purchase: 3, setPrice: 1 },
    adminToken: stack.adminToken,
    noCacheRatio: 0.5,
  };
}

/**
 * A PostgreSQL primary and synchronous standby of the test's own (tools/devstack), in a temporary
 * directory; remove() stops both servers and deletes it.
 */
export async function scratchPgCluster(
  name: string,
): Promise<{ cluster: PgCluster; dataDir: string; remove(): Promise<void> }> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), `bazar-${name}-`));
  const dataDir = path.join(workDir, 'pg');
  const base = await freePortBlock(2);
  const cluster = await startPgCluster({
    dataDir,
    primaryPort: base,
    standbyPort: base + 1,
    reset: true,
    fsync: false,
  }).catch((err: unknown) => {
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  });
  return {
    cluster,
    dataDir,
    async remove() {
      try {
        await cluster.stop();
      } finally {
        rmSync(workDir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * For a test file that drives PostgreSQL directly: a scratch pair made before its tests and removed
 * after them, and strict commit guards on its primary, each closed before the pair goes.
 */
export function useScratchPair(name: string, logger: Logger) {
  let pair: Awaited<ReturnType<typeof scratchPgCluster>> | undefined;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    pair = await scratchPgCluster(name);
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await pair?.remove();
  });
  const made = () => {
    if (!pair) throw new Error(`the scratch pair ${name} did not start`);
    return pair;
  };
  return {
    cluster: (): PgCluster => made().cluster,
    dataDir: (): string => made().dataDir,
    guard(opts: { name: string; syncTimeoutMs: number; standbyLoss: StandbyLoss }) {
      const g = strictCommitGuard(made().cluster.primaryUrl, { ...opts, logger });
      closers.push(g.close);
      return g;
    },
  };
}

/**
 * A strict writer's commit guard on the primary at `url`, with the pools and metrics createWriter
 * (services/shared/src/writer.ts) gives one; close() ends it and its pools.
 */
export function strictCommitGuard(
  url: string,
  opts: { name: string; syncTimeoutMs: number; standbyLoss: StandbyLoss; logger: Logger },
): { guard: CommitGuard; primary: Database; control: Database; metrics: Metrics; close(): Promise<void> } {
  const { name, logger } = opts;
  const primary = new Database('primary', url, logger, {
    applicationName: name,
    commitWaitMs: opts.syncTimeoutMs,
  });
  const control = new Database('primary', url, logger, { applicationName: `${name}-control`, max: 2 });
  const metrics = createMetrics({ service: 'test', podName: name, defaultMetrics: false });
  const guard = new CommitGuard({
    primary,
    control,
    policy: policyFromConfig({
      LOAD_BALANCING: 'round-robin',
      CONSISTENCY_MODE: 'strict',
      INVALIDATION_TIMEOUT_MS: 1000,
    }),
    logger,
    syncTimeoutMs: opts.syncTimeoutMs,
    standbyLoss: opts.standbyLoss,
    degradedGauge: gauge(metrics, 'bazar_consistency_degraded', 'degraded'),
    syncTimeouts: counter(metrics, 'bazar_sync_commit_timeouts_total', 'timeouts'),
  });
  return {
    guard,
    primary,
    control,
    metrics,
    async close() {
      guard.close();
      await control.close();
      await primary.close();
    },
  };
}
