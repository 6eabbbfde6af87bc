import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import got, { type Got, RequestError } from 'got';
import type { Logger } from './logger.js';
import type { Discovery, Endpoint } from './discovery.js';
import { HttpError, isErrorBody } from './errors.js';
import type { Metrics } from './metrics.js';
import { boundObserver } from './metrics.js';
import type { LoadBalancingPolicy } from './policy.js';
import { currentRequestId } from './request-context.js';
import { tracedCall, tracingOn } from './tracing.js';

/**
 * One got instance per process: keep-alive agents (connection reuse is most of the latency budget on a
 * miss), a hard per-attempt timeout, and no retries of its own: retries go to the *next* endpoint,
 * which `Upstream` decides. Every call goes through `send`, got's cheapest form (see there).
 *
 * Two settings are there for CPU alone, each measured (docs/performance.md, "What changed"):
 * - `cacheOptions` emptied. got builds node's request options as one object literal that spreads
 *   `cacheOptions` before ~35 named properties; V8 in Node 20 then adds each property in its runtime,
 *   about 80-120 µs per call with the four default keys against ~9 µs with none. No got cache is used.
 * - `request`: plain-HTTP calls (every call between the services) hand node only the options such a
 *   call can carry, not got's ~37-key object that `ClientRequest` and the agent each copy again.
 */
export function createHttpClient(opts: { timeoutMs: number; maxSockets?: number }): Got {
  const agentOptions = {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: opts.maxSockets ?? 256,
    maxFreeSockets: 64,
  };
  const client = got.extend({
    agent: { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) },
    timeout: { request: opts.timeoutMs },
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    decompress: false,
    request: leanRequest,
    // Left mutable only until cacheOptions is emptied (a merge cannot remove keys), then frozen.
    mutableDefaults: true,
  });
  client.defaults.options.cacheOptions = {};
  client.defaults.options.freeze();
  return client;
}

/** The native options a plain-HTTP call of got can carry; got sets the rest for TLS, HTTP/2 or caching. */
const HTTP_REQUEST_KEYS = [
  'method',
  'headers',
  'agent',
  'setHost',
  'localAddress',
  'family',
  'lookup',
  'maxHeaderSize',
  'createConnection',
  'socketPath',
  'path',
  'host',
] as const satisfies ReadonlyArray<keyof http.RequestOptions>;

/** got's `request` option (its documented hook for the request function): http.request, leaner. */
function leanRequest(
  url: URL,
  options: https.RequestOptions,
  callback?: (res: http.IncomingMessage) => void,
): http.ClientRequest {
  if (url.protocol !== 'http:') return https.request(url, options, callback);
  const lean: http.RequestOptions = {};
  const target = lean as Record<string, unknown>;
  const source = options as Record<string, unknown>;
  for (const key of HTTP_REQUEST_KEYS) if (source[key] !== undefined) target[key] = source[key];
  return http.request(url, lean, callback);
}

/** An HTTP answer as it arrived: status, headers and the body's bytes. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

export interface SendOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /**
   * A body already serialised (JSON): sent with its Content-Length, and `content-type:
   * application/json` unless `headers` name a Content-Type of their own (the services refuse a body
   * of any other type, or of none, with 415).
   */
  body?: string;
  timeoutMs?: number;
}

const NO_HEADERS: Record<string, string> = {};

/**
 * One request through `client`, answered as status, headers and body bytes. It uses `got.stream` with
 * only the options this call needs: got's promise API adds a second wrapper (and its response-type
 * handling) around the same stream, and every option given is merged into a fresh copy of the defaults
 * on each call; measured on loopback, this form costs about 100 µs of CPU less per call (docs/
 * performance.md). Rejects with got's RequestError (its `code`: ECONNREFUSED, ETIMEDOUT, ...).
 */
export function send(client: Got, url: string, opts: SendOptions): Promise<RawResponse> {
  const options: Record<string, unknown> = { method: opts.method };
  if (opts.body !== undefined) {
    options.body = opts.body;
    options.headers =
      opts.headers !== undefined && hasContentType(opts.headers)
        ? opts.headers
        : { ...opts.headers, 'content-type': 'application/json' };
  } else if (opts.method !== 'GET') {
    // A stream with a method that may carry a body waits for one: send an empty one.
    options.body = '';
    options.headers = opts.headers ?? NO_HEADERS;
  } else if (opts.headers !== undefined) {
    options.headers = opts.headers;
  }
  if (opts.timeoutMs !== undefined) options.timeout = { request: opts.timeoutMs };
  // The request this call serves, when requests are followed (request-context.ts: debug logs only).
  const requestId = currentRequestId();
  if (requestId !== undefined) {
    options.headers = {
      ...(options.headers as Record<string, string> | undefined),
      'x-request-id': requestId,
    };
  }
  if (tracingOn()) {
    return tracedCall(opts.method, url, options.headers as Record<string, string> | undefined, (headers) =>
      sendNow(client, url, { ...options, headers }),
    );
  }
  return sendNow(client, url, options);
}

function sendNow(client: Got, url: string, options: Record<string, unknown>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const stream = client.stream(url, options);
    const chunks: Buffer[] = [];
    let response: { statusCode: number; headers: IncomingHttpHeaders } | undefined;
    stream.once('response', (res: { statusCode: number; headers: IncomingHttpHeaders }) => {
      response = res;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      if (!response) return reject(new RequestError('no response', {}, stream));
      resolve({
        status: response.statusCode,
        headers: response.headers,
        raw: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
      });
    });
    stream.once('error', reject);
  });
}

/** Whether `headers` name a Content-Type (header names are case-insensitive). */
function hasContentType(headers: Record<string, string>): boolean {
  for (const name in headers) if (name.toLowerCase() === 'content-type') return true;
  return false;
}

export type RetryPolicy =
  /** Safe to resend anywhere: reads, and writes carrying an idempotency key. */
  | 'idempotent'
  /** Resend only when the request provably never left (connection refused). */
  | 'connect-only';

export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  retry: RetryPolicy;
  timeoutMs?: number;
}

export interface UpstreamResponse extends RawResponse {
  /** The body parsed as JSON (undefined when it is empty or not JSON), parsed on first use. */
  readonly body: unknown;
  endpoint: Endpoint;
}

/** An upstream answer whose JSON body is parsed only if someone reads it (a relayed body never is). */
class ParsedLazily implements UpstreamResponse {
  #body: unknown;
  #parsed = false;

  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    readonly raw: Buffer,
    readonly endpoint: Endpoint,
  ) {}

  get body(): unknown {
    if (!this.#parsed) {
      this.#body = parseJson(this.raw);
      this.#parsed = true;
    }
    return this.#body;
  }
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);

/**
 * On a write's 503 primary_unavailable: the writer waited this long (ms) for a writable primary
 * (PRIMARY_WAIT_MS, writer.ts) before it gave up. Such an answer is final for the request: every writer
 * waits for the same primary, so trying the next one would only spend its whole wait again (and, behind
 * a front, run into UPSTREAM_WRITE_TIMEOUT_MS: a 504 that reads as "maybe applied" where the truth is
 * "nothing was written"). A 503 without it (a writer that does not wait) is retried as any other.
 * Relayed with the error (errorFromResponse), so a catalog replica's answer carries it to the front.
 */
export const PRIMARY_WAITED_HEADER = 'X-Bazar-Primary-Waited-Ms';
const PRIMARY_WAITED = PRIMARY_WAITED_HEADER.toLowerCase();
/**
 * On a write's 503 commit_outcome_unknown: no standby confirmed it within this long (ms), and its
 * commit still waits on the primary (STRICT_STANDBY_LOSS=refuse, db/write-transaction.ts). Final for the
 * request, as PRIMARY_WAITED_HEADER: every writer's commit waits for the same standbys, and a second
 * attempt would queue behind the first one's locks. Relayed with the error.
 */
export const COMMIT_UNCONFIRMED_HEADER = 'X-Bazar-Commit-Unconfirmed-Ms';
const COMMIT_UNCONFIRMED = COMMIT_UNCONFIRMED_HEADER.toLowerCase();
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Calls one Bazar service through discovery: balanced, bounded retries on other endpoints, metrics. */
export class Upstream {
  #next = 0;
  /** One bound observer per outcome: prom-client would hash the labels on every call otherwise. */
  readonly #durations = new Map<string, (seconds: number) => void>();

  constructor(
    private readonly opts: {
      service: string;
      discovery: Discovery;
      http: Got;
      metrics: Metrics;
      logger: Logger;
      loadBalancing: () => LoadBalancingPolicy;
      /** Attempts per request, across distinct endpoints. */
      maxAttempts: number;
    },
  ) {}

  get service(): string {
    return this.opts.service;
  }

  #observe(outcome: string, seconds: number): void {
    let observe = this.#durations.get(outcome);
    if (!observe) {
      observe = boundObserver(this.opts.metrics.upstreamDuration, { target: this.opts.service, outcome });
      this.#durations.set(outcome, observe);
    }
    observe(seconds);
  }

  /** Endpoints in the order this request will try them. */
  #plan(): Endpoint[] {
    const endpoints = this.opts.discovery.endpoints();
    const n = endpoints.length;
    if (n === 0) return [];
    const start = this.opts.loadBalancing() === 'random' ? Math.floor(Math.random() * n) : this.#next++ % n;
    if (this.#next > 1e9) this.#next = 0;
    const attempts = Math.min(n, this.opts.maxAttempts);
    const plan: Endpoint[] = [];
    for (let i = 0; i < attempts; i++) plan.push(endpoints[(start + i) % n] as Endpoint);
    return plan;
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { service, metrics, logger } = this.opts;
    const plan = this.#plan();
    if (plan.length === 0) {
      metrics.upstreamErrors.inc({ target: service, reason: 'no_endpoints' });
      throw new HttpError(503, 'service_unavailable', `no ready ${service} endpoint`);
    }
    let lastResponse: UpstreamResponse | undefined;
    let lastError: RequestError | undefined;
    // A write attempt that may have taken effect (its answer was lost, or it says so itself). Unless a
    // later attempt succeeds, that is the truthful outcome, not a later endpoint's "unavailable", which
    // would read as "nothing was done" (docs/guarantees.md G6).
    let uncertain: { response?: UpstreamResponse; error?: RequestError } | undefined;
    const write = req.method !== 'GET';
    const body = req.json === undefined ? undefined : JSON.stringify(req.json);
    for (const endpoint of plan) {
      const start = process.hrtime.bigint();
      const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
      try {
        const res = await send(this.opts.http, endpoint.url + req.path, {
          method: req.method,
          ...(req.headers !== undefined ? { headers: req.headers } : {}),
          ...(body !== undefined ? { body } : {}),
          ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
        });
        lastResponse = new ParsedLazily(res.status, res.headers, res.raw, endpoint);
        if (RETRYABLE_STATUS.has(res.status)) {
          this.#observe(`http_${res.status}`, elapsed());
          metrics.upstreamErrors.inc({ target: service, reason: `http_${res.status}` });
          const answer = lastResponse.body;
          if (write && isErrorBody(answer) && answer.error.code === 'commit_outcome_unknown') {
            uncertain ??= { response: lastResponse };
          }
          // The writer already waited its budget for a primary: final (see PRIMARY_WAITED_HEADER).
          if (write && res.headers[PRIMARY_WAITED] !== undefined) break;
          // A commit left waiting for a standby: final too (see COMMIT_UNCONFIRMED_HEADER).
          if (write && res.headers[COMMIT_UNCONFIRMED] !== undefined) break;
          if (req.retry === 'idempotent') continue;
          return lastResponse;
        }
        this.#observe('ok', elapsed());
        return lastResponse;
      } catch (err) {
        if (!(err instanceof RequestError)) throw err;
        const reason = err.code ?? 'error';
        this.#observe('error', elapsed());
        metrics.upstreamErrors.inc({ target: service, reason });
        logger.warn({ upstream: endpoint.name, reason, path: req.path }, 'upstream call failed');
        lastError = err;
        // An earlier endpoint's answer stays the answer: this attempt adds nothing it could replace it
        // with (a write this attempt may have applied is `uncertain`, answered as such below).
        if (write && !NEVER_SENT.has(reason)) uncertain ??= { error: err };
        if (req.retry === 'idempotent' || NEVER_SENT.has(reason)) continue;
        break;
      }
    }
    if (uncertain?.response) return uncertain.response;
    if (uncertain?.error) {
      lastError = uncertain.error;
      lastResponse = undefined;
    }
    if (lastResponse) return lastResponse;
    const maybe = uncertain ? '; the request may have been applied' : '';
    if (lastError?.code === 'ETIMEDOUT') {
      throw new HttpError(504, 'upstream_timeout', `${service} did not answer in time${maybe}`);
    }
    if (uncertain) {
      // Sent, then the connection failed: the write's outcome is unknown, as when an order pod's own
      // connection dies during COMMIT (docs/guarantees.md G6), and the caller does the same: retry it
      // under its key.
      throw new HttpError(
        503,
        'commit_outcome_unknown',
        `the connection to ${service} failed (${lastError?.code ?? 'error'}) after the request was sent${maybe}: retry it under the same key`,
      );
    }
    throw new HttpError(
      503,
      'service_unavailable',
      `${service} is unavailable (${lastError?.code ?? 'error'})${maybe}`,
    );
  }
}

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString());
  } catch {
    return undefined;
  }
}

/** An upstream's error answer as an HttpError with the same status and body (bodyless → bad_gateway). */
export function errorFromResponse(res: UpstreamResponse): HttpError {
  if (isErrorBody(res.body)) {
    const waited = res.headers[PRIMARY_WAITED];
    const unconfirmed = res.headers[COMMIT_UNCONFIRMED];
    const headers: Record<string, string> = {};
    if (typeof waited === 'string') headers[PRIMARY_WAITED_HEADER] = waited;
    if (typeof unconfirmed === 'string') headers[COMMIT_UNCONFIRMED_HEADER] = unconfirmed;
    return new HttpError(res.status, res.body.error.code, res.body.error.message, headers);
  }
  return new HttpError(
    res.status >= 500 ? res.status : 502,
    'bad_gateway',
    `upstream answered HTTP ${res.status}`,
  );
}
