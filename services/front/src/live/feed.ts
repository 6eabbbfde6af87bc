import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { PROBES, type FastPath } from '../../../shared/src/server.js';

/** Where the live page and its event stream are served; the page's own requests are not shown on it. */
export const LIVE_PREFIX = '/live';

/** One answer of this front, as the live page shows it. */
export interface RequestEvent {
  /** Epoch ms when the request arrived. */
  t: number;
  method: string;
  path: string;
  status: number;
  front: string;
  /** hit | miss (reads). */
  cache?: string;
  /** The process that produced the body (X-Served-By). */
  servedBy?: string;
  /** The PostgreSQL server it was read from (X-Database). */
  database?: string;
  /** The book version the answer shows (reads and writes of a book). */
  version?: number;
  /** X-Invalidated of a write. */
  invalidated?: string;
  ms: number;
  reqId?: string;
}

/** A writer's message that reached this front: a write announced (strict) or an invalidation. */
export interface InvalidationEvent {
  t: number;
  kind: 'announce' | 'invalidate';
  /** The writer pod that sent it. */
  from?: string;
  books: Array<{ bookId: number; version?: number }>;
  writeId?: string;
}

/**
 * What the live page watches: this front's answers and the invalidations it receives, as events, only
 * while at least one page is connected. Nobody watching, the cost on a request is one comparison (the
 * tap is the first fast path, and answers false).
 */
export class LiveFeed extends EventEmitter<{ request: [RequestEvent]; invalidation: [InvalidationEvent] }> {
  #watchers = 0;

  constructor(readonly front: string) {
    super();
  }

  get watching(): boolean {
    return this.#watchers > 0;
  }

  /** One more watcher; the function returned ends it (once). */
  watch(): () => void {
    this.#watchers++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#watchers--;
    };
  }

  tap(): FastPath {
    return (req, res) => {
      if (this.#watchers > 0 && shown(req.url)) this.#observe(req, res);
      return false;
    };
  }

  invalidation(event: Omit<InvalidationEvent, 't'>): void {
    if (this.#watchers > 0) this.emit('invalidation', { t: Date.now(), ...event });
  }

  /**
   * Follows one answer to its end. The fast paths write their head in one writeHead call with a flat
   * header list (not kept by node:http), Koa through setHeader: both are caught where they are written.
   */
  #observe(req: http.IncomingMessage, res: http.ServerResponse): void {
    const t = Date.now();
    const start = performance.now();
    const seen: Record<string, string> = {};
    let body: Buffer | undefined;
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => http.ServerResponse;
    (res as { writeHead: unknown }).writeHead = (...args: unknown[]) => {
      for (const arg of args.slice(1)) collectHeaders(arg, seen);
      return writeHead(...args);
    };
    const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
    (res as { end: unknown }).end = (...args: unknown[]) => {
      const chunk = args[0];
      if (Buffer.isBuffer(chunk)) body = chunk;
      else if (typeof chunk === 'string') body = Buffer.from(chunk);
      return end(...args);
    };
    res.once('finish', () => {
      for (const [name, value] of Object.entries(res.getHeaders()))
        seen[name.toLowerCase()] ??= String(value);
      const event: RequestEvent = {
        t,
        method: req.method ?? '?',
        path: req.url ?? '?',
        status: res.statusCode,
        front: this.front,
        ms: Math.round((performance.now() - start) * 100) / 100,
      };
      const named: Array<[keyof RequestEvent, string]> = [
        ['cache', 'x-cache'],
        ['servedBy', 'x-served-by'],
        ['database', 'x-database'],
        ['invalidated', 'x-invalidated'],
        ['reqId', 'x-request-id'],
      ];
      for (const [key, header] of named)
        if (seen[header] !== undefined) Object.assign(event, { [key]: seen[header] });
      const version = res.statusCode === 200 && body !== undefined ? versionIn(body) : undefined;
      if (version !== undefined) event.version = version;
      this.emit('request', event);
    });
  }
}

/** The page's own requests and the probes (kubelets, Prometheus, npm start's knobs) are not shown. */
function shown(url: string | undefined): boolean {
  return url !== undefined && !url.startsWith(LIVE_PREFIX) && !PROBES.has(url.split('?')[0]!);
}

function collectHeaders(arg: unknown, into: Record<string, string>): void {
  if (Array.isArray(arg)) {
    for (let i = 0; i + 1 < arg.length; i += 2) into[String(arg[i]).toLowerCase()] = String(arg[i + 1]);
  } else if (arg !== null && typeof arg === 'object') {
    for (const [name, value] of Object.entries(arg)) into[name.toLowerCase()] = String(value);
  }
}

/** The `version` of a book answer (GET /info, a purchase, a price change); undefined for anything else. */
function versionIn(body: Buffer): number | undefined {
  if (body.length > 4096 || body[0] !== 0x7b) return undefined;
  try {
    const version = (JSON.parse(body.toString('utf8')) as { version?: unknown }).version;
    return typeof version === 'number' ? version : undefined;
  } catch {
    return undefined;
  }
}
