/**
 * Test harness: the real store (embedded PostgreSQL primary + standby, real service processes on
 * loopback) started through the same devstack `npm start` uses, plus small HTTP and SQL helpers.
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startStack, type Stack, type StackOptions } from '../../tools/devstack/src/stack.js';

export interface TestStack {
  stack: Stack;
  db: pg.Pool;
  /** Each process logs into <logDir>/<name>.log. */
  logDir: string;
  front(i?: number): string;
  stop(): Promise<void>;
}

export async function startTestStack(opts: Partial<StackOptions> = {}): Promise<TestStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-test-'));
  await chmod(dataDir, 0o755);
  const stack = await startStack({
    dataDir,
    fronts: 2,
    catalogReplicas: 1,
    orderReplicas: 1,
    fsync: false,
    logLevel: 'warn',
    logDir: path.join(dataDir, 'logs'),
    ...opts,
    env: { TEST_HOOKS: 'true', ...opts.env },
  });
  const db = new pg.Pool({ connectionString: stack.primaryUrl, max: 4 });
  // Tests stop and restart the primary: an idle client's 57P01 is then the pool's 'error', fatal unheard.
  db.on('error', () => undefined);
  return {
    stack,
    db,
    logDir: path.join(dataDir, 'logs'),
    front: (i = 0) => stack.fronts[i]!.url,
    async stop() {
      await db.end().catch(() => undefined);
      await stack.stop();
      if (!process.env.BAZAR_KEEP_TEST_DATA) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: unknown; raw?: string | Buffer; timeoutMs?: number } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text (e.g. /metrics)
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export interface BookRow {
  id: number;
  price: string;
  stock: number;
  version: string;
}

/** Everything a rejected request must leave untouched. */
export async function snapshot(db: pg.Pool): Promise<{ books: BookRow[]; orders: number }> {
  const books = await db.query<BookRow>(
    'SELECT id, price::text, stock, version::text FROM books ORDER BY id',
  );
  const orders = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
  return { books: books.rows, orders: orders.rows[0]!.n };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
