/**
 * Concurrent clients that drive the store through its fronts and record every operation (history.ts).
 * Each client is a session: it issues one operation at a time against its home front (failing over to
 * another front when its own cannot be reached) and mixes reads, keyed purchases and, with an admin
 * token, price changes and keyed restocks. A share of the reads is sent with `Cache-Control: no-cache`
 * (they bypass the front's cache). In session mode a client carries its session itself: every
 * `GET /info/:id` sends `X-Min-Version`, the newest version of that book it has seen (from its reads
 * and its acknowledged writes), so a front it fails over to knows how fresh an answer it owes.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { ConsistencyMode } from './check.js';
import { StoreClient, type FrontEndpoint, type ClientReply } from './client.js';
import { outcome, type Op, type OpKind } from './history.js';

/** Default share of reads sent with Cache-Control: no-cache. */
export const DEFAULT_NO_CACHE_RATIO = 0.25;

export interface WorkloadOptions {
  fronts: readonly FrontEndpoint[];
  /** Concurrent clients (sessions). */
  clients: number;
  /** Books the run owns (nothing else may write them while it runs). */
  books: readonly number[];
  /** Relative weights of the operations. set-price and restock need adminToken (restock: default 0). */
  mix?: { read?: number; purchase?: number; setPrice?: number; restock?: number };
  /** Fraction of reads sent with Cache-Control: no-cache (they reach the catalog pods). Default 0.25. */
  noCacheRatio?: number;
  /** The store's consistency mode (for the defaults below; the run's). */
  mode?: ConsistencyMode;
  /**
   * Send `X-Min-Version` (the newest version of the book the client has seen) on every read, once
   * the client has seen one. Default: on in session mode, off otherwise.
   */
  minVersionHeader?: boolean;
  adminToken?: string;
  /** Prefix of every Idempotency-Key of the run (default: a random one). */
  keyPrefix?: string;
  /** Per attempt, per front. */
  timeoutMs?: number;
  /** Pause between a client's operations. */
  thinkMs?: number;
  /** Stop after this many operations per client, even if the stop signal has not come. */
  maxOpsPerClient?: number;
  /** Called with every operation as it completes. */
  onOp?: (op: Op) => void;
}

export interface Workload {
  /** Operations completed so far (a live array). */
  readonly history: Op[];
  readonly keyPrefix: string;
  /** Ends the run: clients finish their current operation; resolves with the full history. */
  stop(): Promise<Op[]>;
  /** Resolves when every client has stopped. */
  done: Promise<Op[]>;
}

export const now = (): number => performance.now();

export function startWorkload(opts: WorkloadOptions): Workload {
  const history: Op[] = [];
  const keyPrefix = opts.keyPrefix ?? `chk-${randomBytes(4).toString('hex')}`;
  const mix = { read: 6, purchase: 3, setPrice: opts.adminToken ? 1 : 0, restock: 0, ...opts.mix };
  if (!opts.adminToken) {
    mix.setPrice = 0;
    mix.restock = 0;
  }
  const total = mix.read + mix.purchase + mix.setPrice + mix.restock;
  const noCacheRatio = opts.noCacheRatio ?? DEFAULT_NO_CACHE_RATIO;
  const sendMinVersion = opts.minVersionHeader ?? opts.mode === 'session';
  let stopped = false;
  let nextId = 0;
  const clients: StoreClient[] = [];

  const runClient = async (c: number): Promise<void> => {
    const name = `c${c}`;
    const client = new StoreClient({ fronts: opts.fronts, home: c, timeoutMs: opts.timeoutMs ?? 5000, now });
    clients.push(client);
    let seq = 0;
    // The client's session: book → the newest version it has seen (its reads, its acknowledged writes).
    const seen = new Map<number, number>();
    let rng = hashSeed(`${keyPrefix}-${c}`);
    const random = () => {
      // mulberry32: each client's choices are reproducible from the key prefix
      rng = (rng + 0x6d2b79f5) | 0;
      let t = rng;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    while (!stopped && (opts.maxOpsPerClient === undefined || seq < opts.maxOpsPerClient)) {
      const bookId = opts.books[Math.floor(random() * opts.books.length)] as number;
      const pick = random() * total;
      const kind: OpKind =
        pick < mix.read
          ? 'read'
          : pick < mix.read + mix.purchase
            ? 'purchase'
            : pick < mix.read + mix.purchase + mix.setPrice
              ? 'set-price'
              : 'restock';
      const op: Op = { id: nextId++, client: name, kind, bookId, invoke: 0, complete: 0, status: 0 };
      let reply: ClientReply;
      if (kind === 'read') {
        const headers: Record<string, string> = {};
        if (random() < noCacheRatio) {
          headers['cache-control'] = 'no-cache';
          op.noCache = true;
        }
        const min = seen.get(bookId);
        if (sendMinVersion && min !== undefined) {
          headers['x-min-version'] = String(min);
          op.minVersion = min;
        }
        op.invoke = now();
        reply = await client.request('GET', `/info/${bookId}`, { headers });
      } else if (kind === 'purchase') {
        op.key = `${keyPrefix}-${name}-${seq}`;
        op.invoke = now();
        reply = await client.request('POST', `/purchase/${bookId}`, {
          headers: { 'idempotency-key': op.key },
        });
      } else if (kind === 'set-price') {
        op.price = 10 + Math.floor(random() * 190);
        op.invoke = now();
        reply = await client.request('PATCH', `/books/${bookId}`, {
          headers: { authorization: `Bearer ${opts.adminToken}` },
          json: { price: op.price },
        });
      } else {
        op.key = `${keyPrefix}-${name}-r${seq}`;
        op.quantity = 1 + Math.floor(random() * 3);
        op.invoke = now();
        reply = await client.request('POST', `/books/${bookId}/restock`, restockRequest(op, opts.adminToken));
      }
      op.complete = now();
      record(op, reply);
      if (outcome(op) === 'ok' && op.version !== undefined && op.version > (seen.get(bookId) ?? -Infinity)) {
        seen.set(bookId, op.version);
      }
      seq++;
      history.push(op);
      opts.onOp?.(op);
      if (opts.thinkMs) await new Promise((r) => setTimeout(r, opts.thinkMs));
    }
  };

  const done = Promise.all(Array.from({ length: opts.clients }, (_, c) => runClient(c))).then(() => {
    for (const c of clients) c.close();
    return history;
  });
  return {
    history,
    keyPrefix,
    done,
    stop() {
      stopped = true;
      return done;
    },
  };
}

/** The request of a keyed restock (sent again, unchanged, to settle an unknown outcome). */
export function restockRequest(
  op: Pick<Op, 'key' | 'quantity'>,
  adminToken: string | undefined,
): { headers: Record<string, string>; json: unknown } {
  return {
    headers: { authorization: `Bearer ${adminToken}`, 'idempotency-key': op.key as string },
    json: { quantity: op.quantity },
  };
}

/**
 * Copies what a reply proves into the operation. `front` is the answer's X-Front (the front that
 * answered), or the endpoint the client sent it to when the answer names none; that endpoint is kept
 * as `clientFront` when it differs.
 */
export function record(op: Op, reply: ClientReply): void {
  op.status = reply.status;
  const xFront = reply.headers['x-front'];
  if (typeof xFront === 'string' && xFront !== '') {
    op.front = xFront;
    if (reply.front && reply.front !== xFront) op.clientFront = reply.front;
  } else if (reply.front) op.front = reply.front;
  if (reply.connFailures.length > 0) op.connFailures = reply.connFailures;
  const servedBy = reply.headers['x-served-by'];
  if (typeof servedBy === 'string') op.servedBy = servedBy;
  const cache = reply.headers['x-cache'];
  if (typeof cache === 'string') op.cache = cache;
  if (reply.status === 0) {
    op.error = reply.error ?? 'no_answer';
    return;
  }
  const body = (reply.body ?? {}) as Record<string, unknown>;
  if (reply.status !== 200) {
    const error = body.error as { code?: unknown; message?: unknown } | undefined;
    op.error = typeof error?.code === 'string' ? error.code : `http_${reply.status}`;
    if (typeof error?.message === 'string') op.errorMessage = error.message;
    return;
  }
  if (typeof body.version === 'number') op.version = body.version;
  if (typeof body.price === 'number') op.resultPrice = body.price;
  if (op.kind === 'purchase') {
    if (typeof body.orderId === 'string') op.orderId = body.orderId;
    if (typeof body.remainingStock === 'number') op.remainingStock = body.remainingStock;
  } else if (typeof body.stock === 'number') op.stock = body.stock;
}

function hashSeed(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h | 0;
}
