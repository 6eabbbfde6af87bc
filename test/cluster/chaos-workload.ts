/**
 * The chaos scenarios' recorded workload, as a program run INSIDE the cluster's network namespace
 * (Cluster.exec with the host's node and this repository's dist/): the history checker's clients
 * (tools/checker) drive the store through the front Service's ClusterIP, the address that survives
 * pod changes, and resend a request whose connection was lost (at most twice), until a stop file appears; then unknown outcomes are settled by key and the history is
 * checked against the primary (reached through its Service too). Everything is written as JSON to
 * the output file; a progress file is rewritten every 250 ms so the test can see the run is alive.
 *
 *   node dist/test/cluster/chaos-workload.js <config.json>
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { jsonReport } from '../../tools/checker/src/cli-output.js';
import { StoreClient } from '../../tools/checker/src/client.js';
import type { Op } from '../../tools/checker/src/history.js';
import { checkedRun } from '../../tools/checker/src/run.js';
import type { ConsistencyMode } from '../../tools/checker/src/check.js';

export interface ChaosWorkloadConfig {
  /** http://<ClusterIP>:<port> of the front Service. */
  front: string;
  databaseUrl: string;
  adminToken: string;
  books: number[];
  /** Stock set before the run, by book id, through the store (restocks and purchases). */
  stock?: Record<string, number>;
  clients: number;
  mix: { read: number; purchase: number; setPrice: number; restock: number };
  noCacheRatio: number;
  /**
   * The store's mode as far as this run's promise goes (docs/guarantees.md): the checker's rules. A
   * scenario that degrades strict writes (the standby away) is held to the session rules.
   */
  mode: ConsistencyMode;
  thinkMs: number;
  /** Per attempt. */
  timeoutMs: number;
  keyPrefix: string;
  stopFile: string;
  progressFile: string;
  outFile: string;
}

export interface ChaosProgress {
  ops: number;
  /** Operations answered neither 200 nor out_of_stock so far. */
  failed: number;
  /** performance.timeOrigin + now(): epoch ms of the last write of this file. */
  at: number;
}

/**
 * Brings each book's stock to its target through the store: a restock of what is missing, or single
 * purchases of what is over, all through the front Service under keys of their own (`setup-…`, outside
 * the run's key prefix), before the run's facts are read. Not a write to the database behind the
 * store's back: a front that still caches the book would serve the old version after a newer one was
 * read elsewhere (a stale read the checker rightly reports, and that the store never saw).
 */
async function setStockThroughStore(
  config: ChaosWorkloadConfig,
  db: pg.Pool,
  stock: Record<string, number>,
): Promise<void> {
  // One front, the Service: a lost connection is not resent here, it fails the setup.
  const client = new StoreClient({
    fronts: [{ name: 'svc', url: config.front }],
    home: 0,
    timeoutMs: config.timeoutMs,
  });
  const send = async (path: string, key: string, body?: object): Promise<void> => {
    const reply = await client.request('POST', path, {
      // The admin token only where it is needed (a restock, with a body); a purchase is public. The
      // client adds content-type: application/json to a request with a body.
      headers: { 'idempotency-key': key, ...(body ? { authorization: `Bearer ${config.adminToken}` } : {}) },
      ...(body ? { json: body } : {}),
    });
    // Status 0: the connection failed or timed out (the client's error code says which).
    if (reply.error !== undefined) throw new Error(`setup: POST ${path} got no answer (${reply.error})`);
    if (reply.status !== 200) {
      const { body: answered } = reply;
      const text =
        answered === undefined ? '' : typeof answered === 'string' ? answered : JSON.stringify(answered);
      throw new Error(`setup: POST ${path} answered ${reply.status}: ${text}`);
    }
  };
  try {
    for (const [id, target] of Object.entries(stock)) {
      const { rows } = await db.query<{ stock: number }>('SELECT stock FROM books WHERE id = $1', [
        Number(id),
      ]);
      const now = rows[0]?.stock;
      if (now === undefined) throw new Error(`setup: no book ${id}`);
      const key = `setup-${config.keyPrefix}-${id}`;
      if (now < target) await send(`/books/${id}/restock`, `${key}-restock`, { quantity: target - now });
      for (let i = 0; i < now - target; i++) await send(`/purchase/${id}`, `${key}-buy-${i}`);
    }
  } finally {
    client.close();
  }
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as ChaosWorkloadConfig;
  const db = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
  db.on('error', () => undefined);
  const failedOp = (o: Op) => o.status !== 200 && o.error !== 'out_of_stock';
  let ops = 0;
  let failed = 0;
  const progress = () =>
    writeAtomically(
      config.progressFile,
      JSON.stringify({ ops, failed, at: performance.timeOrigin + performance.now() } satisfies ChaosProgress),
    );
  try {
    if (config.stock) await setStockThroughStore(config, db, config.stock);
    progress();
    const run = await checkedRun(
      {
        db,
        mode: config.mode,
        workload: {
          // One address, the Service, listed three times: a client that loses its connection (a
          // reset, a refusal, no answer in time) resends the same request (reads, keyed writes and
          // price changes are safe to resend) on a new connection, which kube-proxy sends to a live
          // pod; at most twice. Every such loss is kept in the history (connFailures).
          fronts: ['svc', 'svc-resend-1', 'svc-resend-2'].map((name) => ({ name, url: config.front })),
          clients: config.clients,
          books: config.books,
          mix: config.mix,
          noCacheRatio: config.noCacheRatio,
          adminToken: config.adminToken,
          keyPrefix: config.keyPrefix,
          thinkMs: config.thinkMs,
          timeoutMs: config.timeoutMs,
          onOp: (op) => {
            ops++;
            if (failedOp(op)) failed++;
          },
        },
      },
      async () => {
        while (!existsSync(config.stopFile)) {
          progress();
          await new Promise((r) => setTimeout(r, 250));
        }
      },
    );
    progress();
    const report = JSON.parse(jsonReport(run)) as Record<string, unknown>;
    writeAtomically(
      config.outFile,
      JSON.stringify({
        ...report,
        // The history's clock is performance.now() of this process: epoch ms = timeOrigin + clock.
        timeOrigin: performance.timeOrigin,
        t0: run.t0,
        recorded: run.recorded.length,
        settled: run.settled,
        settledReplayed: run.settledReplayed,
      }),
    );
  } finally {
    await db.end();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `chaos-workload: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
