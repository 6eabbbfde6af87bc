/**
 * One checked run: read the books' state, let concurrent clients drive the store while `during` does
 * whatever it does (nothing, or inject faults), stop them, settle purchases and restocks whose outcome
 * is unknown by retrying them under their Idempotency-Key (what a real client does), then check the
 * history against the database.
 */
import type pg from 'pg';
import { check, type CheckOptions, type CheckReport, type ConsistencyMode } from './check.js';
import { StoreClient, type FrontEndpoint } from './client.js';
import { collectFacts, dbNow, readBooks } from './db-facts.js';
import { outcome, type DbFacts, type Op } from './history.js';
import {
  now,
  record,
  restockRequest,
  startWorkload,
  type Workload,
  type WorkloadOptions,
} from './workload.js';

export interface CheckedRun {
  /** What the clients recorded, then the settling retries. */
  history: Op[];
  /** What the clients recorded during the run (no settling retries). */
  recorded: Op[];
  facts: DbFacts;
  report: CheckReport;
  /** Start of the run on the history's clock. */
  t0: number;
  /** Unknown-outcome purchases and restocks that the settling retry returned as already committed. */
  settledReplayed: number;
  settled: number;
}

export async function checkedRun(
  opts: {
    db: pg.Pool;
    workload: WorkloadOptions;
    check?: CheckOptions;
    /**
     * The store's consistency mode: the rules checked (kindsFor(mode), unless check.kinds is given)
     * and the workload's defaults (X-Min-Version in session mode), unless they are set there.
     * Without it: check()'s default kinds and no X-Min-Version.
     */
    mode?: ConsistencyMode;
    /** Retry unknown-outcome purchases and restocks under their key after the run (default true). */
    settle?: boolean;
  },
  during: (w: Workload) => Promise<void>,
): Promise<CheckedRun> {
  const initial = await readBooks(opts.db, opts.workload.books);
  const since = await dbNow(opts.db);
  const t0 = now();
  const mode = opts.mode ?? opts.workload.mode;
  const workloadMode = opts.workload.mode ?? opts.mode;
  const workload = startWorkload({ ...opts.workload, ...(workloadMode ? { mode: workloadMode } : {}) });
  try {
    await during(workload);
  } finally {
    await workload.stop();
  }
  const recorded = [...workload.history];
  const history = [...recorded];
  let settled = 0;
  let settledReplayed = 0;
  if (opts.settle ?? true) {
    const extra = await settleUnknownPurchases(history, opts.workload.fronts, {
      adminToken: opts.workload.adminToken,
    });
    settled = extra.length;
    settledReplayed = extra.filter((o) => o.settledReplay).length;
    history.push(...extra);
  }
  const facts = await collectFacts(opts.db, opts.workload.books, initial, since);
  return {
    history,
    recorded,
    facts,
    report: check(history, facts, { ...(mode ? { mode } : {}), ...opts.check }),
    t0,
    settled,
    settledReplayed,
  };
}

/**
 * Resends every purchase and restock whose outcome is unknown (5xx, no answer) under its
 * Idempotency-Key, as the same client, until it gets a definite answer (bounded). The store promises
 * that such a retry returns the committed result when there is one (docs/guarantees.md G6).
 */
export async function settleUnknownPurchases(
  history: Op[],
  fronts: readonly FrontEndpoint[],
  opts: { attempts?: number; pauseMs?: number; adminToken?: string | undefined } = {},
): Promise<(Op & { settledReplay?: boolean })[]> {
  const keyed = (o: Op) => (o.kind === 'purchase' || o.kind === 'restock') && o.key !== undefined;
  const settledKeys = new Set(history.filter((o) => keyed(o) && outcome(o) !== 'unknown').map((o) => o.key));
  const pending = new Map<string, Op>();
  for (const op of history) {
    if (keyed(op) && outcome(op) === 'unknown' && !settledKeys.has(op.key)) {
      pending.set(op.key as string, op);
    }
  }
  if (pending.size === 0) return [];
  let id = Math.max(...history.map((o) => o.id)) + 1;
  const client = new StoreClient({ fronts, home: 0, timeoutMs: 5000, now });
  const out: (Op & { settledReplay?: boolean })[] = [];
  try {
    for (const first of pending.values()) {
      for (let attempt = 0; attempt < (opts.attempts ?? 20); attempt++) {
        const op: Op & { settledReplay?: boolean } = {
          id: id++,
          client: first.client,
          kind: first.kind,
          bookId: first.bookId,
          key: first.key as string,
          ...(first.quantity !== undefined ? { quantity: first.quantity } : {}),
          invoke: now(),
          complete: 0,
          status: 0,
        };
        const reply =
          first.kind === 'restock'
            ? await client.request(
                'POST',
                `/books/${first.bookId}/restock`,
                restockRequest(first, opts.adminToken),
              )
            : await client.request('POST', `/purchase/${first.bookId}`, {
                headers: { 'idempotency-key': first.key as string },
              });
        op.complete = now();
        record(op, reply);
        if (reply.headers['idempotent-replayed'] === 'true') op.settledReplay = true;
        out.push(op);
        if (outcome(op) !== 'unknown') break;
        await new Promise((r) => setTimeout(r, opts.pauseMs ?? 250));
      }
    }
  } finally {
    client.close();
  }
  return out;
}
