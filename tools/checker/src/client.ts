/**
 * A store client as a real one would be written: it talks to one "home" front, and when that front
 * cannot be reached (refused, reset, no answer in time) it fails over to the next front, resending the
 * same request (reads, and purchases under the same Idempotency-Key, are safe to resend). Every
 * connection failure is kept, so tests can count them per front.
 */
import http from 'node:http';
import type { ConnFailure } from './history.js';

export interface FrontEndpoint {
  name: string;
  url: string;
}

export interface ClientReply {
  status: number;
  body: unknown;
  headers: http.IncomingHttpHeaders;
  front: string;
  connFailures: ConnFailure[];
  /** Network error code when no front answered. */
  error?: string;
}

/** Connection-level errors after which the same request may be resent to another front. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'client_timeout',
]);

export class StoreClient {
  readonly #agent: http.Agent;
  #home: number;
  /** Front index → time until which it is skipped after a connection failure. */
  readonly #downUntil = new Map<number, number>();

  constructor(
    private readonly opts: {
      fronts: readonly FrontEndpoint[];
      home: number;
      /** Per attempt. */
      timeoutMs?: number;
      /** How long a front that failed is avoided before the client tries it again. */
      retryHomeAfterMs?: number;
      now?: () => number;
    },
  ) {
    if (opts.fronts.length === 0) throw new Error('StoreClient needs at least one front');
    this.#home = opts.home % opts.fronts.length;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** The fronts in the order this request tries them: home first unless it recently failed. */
  #order(): number[] {
    const n = this.opts.fronts.length;
    const now = Date.now();
    const all = Array.from({ length: n }, (_, i) => (this.#home + i) % n);
    const up = all.filter((i) => (this.#downUntil.get(i) ?? 0) <= now);
    const down = all.filter((i) => (this.#downUntil.get(i) ?? 0) > now);
    return [...up, ...down];
  }

  async request(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; json?: unknown } = {},
  ): Promise<ClientReply> {
    const connFailures: ConnFailure[] = [];
    const now = this.opts.now ?? Date.now;
    let lastError = 'no_front';
    for (const i of this.#order()) {
      const front = this.opts.fronts[i] as FrontEndpoint;
      try {
        const res = await this.#send(front, method, path, opts);
        return { ...res, front: front.name, connFailures };
      } catch (err) {
        const code = errorCode(err);
        if (!CONNECTION_ERRORS.has(code)) throw err;
        lastError = code;
        connFailures.push({ front: front.name, code, at: now() });
        this.#downUntil.set(i, Date.now() + (this.opts.retryHomeAfterMs ?? 500));
      }
    }
    return { status: 0, body: undefined, headers: {}, front: '', connFailures, error: lastError };
  }

  #send(
    front: FrontEndpoint,
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; json?: unknown },
  ): Promise<{ status: number; body: unknown; headers: http.IncomingHttpHeaders }> {
    const payload = opts.json === undefined ? undefined : Buffer.from(JSON.stringify(opts.json));
    const headers: Record<string, string> = { ...opts.headers };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(front.url + path, { method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      });
      req.setTimeout(this.opts.timeoutMs ?? 5000, () => {
        const err = new Error('no answer in time') as NodeJS.ErrnoException;
        err.code = 'client_timeout';
        req.destroy(err);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.message === 'string' && /socket hang up/i.test(e.message)) return 'ECONNRESET';
  return 'error';
}
