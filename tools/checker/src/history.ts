/**
 * The history a consistency check reads: every operation a client invoked against the store, with its
 * invoke and complete times (ms on one monotonic clock), its arguments and what it returned.
 */

export type OpKind = 'read' | 'purchase' | 'set-price' | 'restock';

/** A connection-level failure on one front, after which the client tried another front. */
export interface ConnFailure {
  front: string;
  code: string;
  at: number;
}

export interface Op {
  /** Unique within the history. */
  id: number;
  /** Client (session) that issued it; a client's operations never overlap. */
  client: string;
  kind: OpKind;
  bookId: number;
  /** Purchase, restock: the Idempotency-Key sent (every attempt of the op uses the same key). */
  key?: string;
  /** set-price: the price asked for. */
  price?: number;
  /** restock: the copies asked to add. */
  quantity?: number;
  invoke: number;
  complete: number;
  /** HTTP status of the final answer; 0 when no front answered (connection failures, timeout). */
  status: number;
  /** The error code of a 4xx/5xx body, or a network error code when status is 0. */
  error?: string;
  /** The message of a 4xx/5xx body (for reports: which of a code's causes it was). */
  errorMessage?: string;
  /**
   * Front that gave the final answer: its `X-Front` header (the process or pod name), or, on an answer
   * without one (writes, errors), the name of the front endpoint the client sent the request to.
   */
  front?: string;
  /**
   * The client-side name of the front endpoint the final attempt was sent to, when it differs from
   * `front` (a Service address answered by some pod; a failover).
   */
  clientFront?: string;
  /** X-Served-By / X-Cache of the final answer (for reports). */
  servedBy?: string;
  cache?: string;
  /** Read: sent with `Cache-Control: no-cache` (it bypassed the front's cache; it answers X-Cache: miss). */
  noCache?: boolean;
  /** Read: the `X-Min-Version` header sent (session mode: the newest version of the book this client had seen). */
  minVersion?: number;
  /** The book version the answer shows (read, purchase, set-price). */
  version?: number;
  /** Read, set-price, restock: the stock and price shown. */
  stock?: number;
  resultPrice?: number;
  /** Purchase: the order id and remaining stock acknowledged. */
  orderId?: string;
  remainingStock?: number;
  /** Connection failures before the final answer (failover between fronts). */
  connFailures?: ConnFailure[];
}

export type Outcome = 'ok' | 'failed' | 'unknown';

/**
 * What an answer proves about an operation's effect: 200 = it happened; 4xx = it did not (the store
 * promises a rejected request changes nothing); 5xx or no answer = unknown (it may have committed).
 */
export function outcome(op: Pick<Op, 'status'>): Outcome {
  if (op.status >= 200 && op.status < 300) return 'ok';
  if (op.status >= 400 && op.status < 500) return 'failed';
  return 'unknown';
}

export interface BookState {
  stock: number;
  version: number;
  price: number;
}

export interface OrderRow {
  id: string;
  bookId: number;
  key: string | null;
  bookVersion: number;
  remainingStock: number;
}

/** A row of the `restocks` table: one per idempotency key, written in the statement that added the stock. */
export interface RestockRow {
  key: string;
  bookId: number;
  quantity: number;
  /** The book's version and stock right after this restock. */
  bookVersion: number;
  stock: number;
}

/** Facts read from the primary before and after the run. */
export interface DbFacts {
  /** Books as they were before the first operation. */
  initial: Map<number, BookState>;
  /** Books after the last operation completed. */
  final: Map<number, BookState>;
  /** Every order row created for the run's books since the run began. */
  orders: OrderRow[];
  /** Every keyed restock of the run's books since the run began (absent: the run made none). */
  restocks?: RestockRow[];
}
