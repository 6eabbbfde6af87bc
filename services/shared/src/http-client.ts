import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import got, { type Got, RequestError } from 'got';
import type { Logger } from './logger.js';
import type { Discovery, Endpoint } from './discovery.js';
import { HttpError, isErrorBody } from './errors.js';
import type { Metrics } from './metrics.js';
import type { LoadBalancingPolicy } from './policy.js';

/**
 * One got instance per process: keep-alive agents (connection reuse is most of the latency budget on a
 * miss), a hard per-attempt timeout, and no retries of its own: retries go to the *next* endpoint,
 * which `Upstream` decides.
 */
export function createHttpClient(opts: { timeoutMs: number; maxSockets?: number }): Got {
  const agentOptions = {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: opts.maxSockets ?? 256,
    maxFreeSockets: 64,
  };
  return got.extend({
    agent: { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) },
    timeout: { request: opts.timeoutMs },
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    decompress: false,
    responseType: 'text',
  });
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

export interface UpstreamResponse {
  status: number;
  body: unknown;
  headers: IncomingHttpHeaders;
  endpoint: Endpoint;
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Calls one Bazar service through discovery: balanced, bounded retries on other endpoints, metrics. */
export class Upstream {
  #next = 0;

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
      metrics.upstreamErrors.inc({ service, reason: 'no_endpoints' });
      throw new HttpError(503, 'service_unavailable', `no ready ${service} endpoint`);
    }
    let lastResponse: UpstreamResponse | undefined;
    let lastError: RequestError | undefined;
    // A write attempt that may have taken effect (its answer was lost, or it says so itself). Unless a
    // later attempt succeeds, that is the truthful outcome, not a later endpoint's "unavailable", which
    // would read as "nothing was done" (DESIGN.md §4.6).
    let uncertain: { response?: UpstreamResponse; error?: RequestError } | undefined;
    const write = req.method !== 'GET';
    for (const endpoint of plan) {
      const stop = metrics.upstreamDuration.startTimer({ service });
      try {
        const res = await this.opts.http(endpoint.url + req.path, {
          method: req.method,
          headers: req.headers,
          json: req.json,
          ...(req.timeoutMs !== undefined ? { timeout: { request: req.timeoutMs } } : {}),
        });
        const body = parseJson(res.body);
        lastResponse = { status: res.statusCode, body, headers: res.headers, endpoint };
        if (RETRYABLE_STATUS.has(res.statusCode)) {
          stop({ outcome: `http_${res.statusCode}` });
          metrics.upstreamErrors.inc({ service, reason: `http_${res.statusCode}` });
          if (write && isErrorBody(body) && body.error.code === 'commit_outcome_unknown') {
            uncertain ??= { response: lastResponse };
          }
          if (req.retry === 'idempotent') continue;
          return lastResponse;
        }
        stop({ outcome: 'ok' });
        return lastResponse;
      } catch (err) {
        if (!(err instanceof RequestError)) throw err;
        const reason = err.code ?? 'error';
        stop({ outcome: 'error' });
        metrics.upstreamErrors.inc({ service, reason });
        logger.warn({ upstream: endpoint.name, reason, path: req.path }, 'upstream call failed');
        lastError = err;
        lastResponse = undefined;
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
    throw new HttpError(
      503,
      'service_unavailable',
      `${service} is unavailable (${lastError?.code ?? 'error'})${maybe}`,
    );
  }
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An upstream's error answer as an HttpError with the same status and body (bodyless → bad_gateway). */
export function errorFromResponse(res: UpstreamResponse): HttpError {
  if (isErrorBody(res.body)) return new HttpError(res.status, res.body.error.code, res.body.error.message);
  return new HttpError(
    res.status >= 500 ? res.status : 502,
    'bad_gateway',
    `upstream answered HTTP ${res.status}`,
  );
}
