import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from './logger.js';
import { boundObserver, type Metrics } from './metrics.js';
import { HttpError } from './errors.js';
import { REQUEST_ID_HEADER, requestIdFrom, withRequestId } from './request-context.js';
import { noteAnswer, tracedListener, tracingOn } from './tracing.js';

export type AppState = Koa.DefaultState;
export type AppContext = Koa.Context;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, string>;
}

/** Process-wide lifecycle flags that the probes read. */
export class Lifecycle {
  #shuttingDown = false;
  readonly #onShutdown: Array<() => void> = [];

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Set once, when the shutdown starts; the onShutdown callbacks run then, in order. */
  set shuttingDown(value: boolean) {
    if (!value || this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const callback of this.#onShutdown) callback();
  }

  /** Runs `callback` when the shutdown starts (before the delay), e.g. to stop serving a cache. */
  onShutdown(callback: () => void): void {
    this.#onShutdown.push(callback);
  }
}

/** Every answer from now on closes its connection (set before any handler writes its head). */
const closeAfterAnswer = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
  res.shouldKeepAlive = false;
};

export interface BaseAppOptions {
  podName: string;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  /** Checks that must pass for /readyz to answer 200 (discovery synced, database reachable, ...). */
  readiness: () => Promise<ReadinessReport['checks']>;
  /** Facts shown in the /readyz body that do not gate readiness (e.g. a degraded consistency mode). */
  details?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  router: Router;
  /**
   * Tried before Koa for every request; answers the hottest requests (a front's cache hits) without
   * Koa's per-request context, middleware chain and router. Returns true when it has answered.
   */
  fastPath?: FastPath;
  /** A front's name: sent as `X-Front` on every answer, so that any request shows which front took it. */
  frontName?: string;
}

/** A request handler that runs before Koa; true = answered, false = Koa handles the request. */
export type FastPath = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** Asked every few seconds by kubelets and Prometheus: not logged as accesses. */
export const PROBES: ReadonlySet<string> = new Set(['/livez', '/readyz', '/metrics']);

/** One request, answered (debug level). */
export function logAccess(
  logger: Logger,
  req: http.IncomingMessage,
  status: number,
  start: bigint,
  reqId: string,
  cache?: string,
): void {
  logger.debug(
    {
      reqId,
      method: req.method,
      path: req.url,
      status,
      ms: Number(process.hrtime.bigint() - start) / 1e6,
      ...(cache ? { cache } : {}),
    },
    'access',
  );
}

const STATUS_CODES: Record<number, [string, string]> = {
  404: ['not_found', 'no such route'],
  405: ['method_not_allowed', 'method not allowed on this route'],
  501: ['not_implemented', 'method not implemented'],
};

/**
 * The Koa app every service shares: one error middleware (the documented error body, never a stack), the
 * X-Served-By header, request metrics, /livez, /readyz and /metrics. Services add their routes.
 */
export function createBaseApp(opts: BaseAppOptions): Koa {
  const { podName, logger, metrics, lifecycle } = opts;
  const app = new Koa({ proxy: false });
  app.silent = true;

  app.on('error', (err: unknown, ctx?: AppContext) => {
    logger.error(
      { err, method: ctx?.method, path: ctx?.path, reqId: ctx?.state.requestId },
      'unhandled error',
    );
  });

  // Outermost: the request's id (request-context.ts) on the answer, errors included; at debug, the
  // request runs in its context and is logged once answered.
  const follow = logger.isLevelEnabled('debug');
  app.use(async (ctx, next) => {
    const requestId = requestIdFrom(ctx.req.headers['x-request-id']);
    ctx.state.requestId = requestId;
    ctx.set(REQUEST_ID_HEADER, requestId);
    if (!follow) return next();
    const start = process.hrtime.bigint();
    await withRequestId(requestId, next);
    if (!PROBES.has(ctx.path))
      logAccess(logger, ctx.req, ctx.status, start, requestId, ctx.response.get('X-Cache'));
  });

  // Then: every error becomes the documented error body; unknown ones are 500 and logged, not shown.
  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        // A method no route implements (PROPFIND, TRACE, ...) is as unwelcome as a known one the route
        // lacks: 405 with the Allow list, or 404 where no route matches the path at all.
        if (ctx.status === 501) ctx.status = ctx.response.get('Allow') ? 405 : 404;
        const known = STATUS_CODES[ctx.status];
        if (known) throw new HttpError(ctx.status, known[0], known[1]);
      }
    } catch (err) {
      const httpError = toHttpError(err);
      if (httpError.status >= 500 && !(err instanceof HttpError)) ctx.app.emit('error', err, ctx);
      ctx.status = httpError.status;
      for (const [name, value] of Object.entries(httpError.headers)) ctx.set(name, value);
      ctx.body = httpError.toBody();
    }
  });

  // Request metrics; the route label is the matched pattern, never the raw path (bounded cardinality).
  const observeRequest = requestObserver(metrics);
  app.use(async (ctx, next) => {
    const start = process.hrtime.bigint();
    ctx.set('X-Served-By', podName);
    if (opts.frontName !== undefined) ctx.set('X-Front', opts.frontName);
    try {
      await next();
    } finally {
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      if (tracingOn()) {
        noteAnswer(ctx.res, route, ctx.state.requestId as string, ctx.response.get('X-Cache') || undefined);
      }
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      observeRequest(ctx.method, route, ctx.status, seconds);
    }
  });

  const probes = new Router();
  probes.get('/livez', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  probes.get('/readyz', async (ctx) => {
    const checks = lifecycle.shuttingDown ? { lifecycle: 'shutting down' } : await opts.readiness();
    const ready = Object.values(checks).every((v) => v === 'ok');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', pod: podName, checks, ...(await opts.details?.()) };
  });
  probes.get('/metrics', async (ctx) => {
    ctx.set('Content-Type', metrics.registry.contentType);
    ctx.body = await metrics.registry.metrics();
  });

  app.use(probes.routes());
  app.use(opts.router.routes());
  app.use(opts.router.allowedMethods());
  app.use(probes.allowedMethods());
  if (opts.fastPath) withFastPath(app, opts.fastPath);
  return app;
}

/** Records a request's duration under its method, route pattern and status (one bound observer each). */
function requestObserver(
  metrics: Metrics,
): (method: string, route: string, status: number, seconds: number) => void {
  const observers = new Map<string, (seconds: number) => void>();
  return (method, route, status, seconds) => {
    const key = `${method} ${status} ${route}`;
    let observe = observers.get(key);
    if (!observe) {
      observe = boundObserver(metrics.httpDuration, { method, route, status: String(status) });
      observers.set(key, observe);
    }
    observe(seconds);
  };
}

/** What a handler off Koa's path answers: status, headers as a flat [name, value, ...] list, body. */
export interface OffKoaAnswer {
  status: number;
  headers: string[];
  body: Buffer;
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Serves the hottest routes without Koa (its per-request context, middleware chain and two router
 * dispatches cost about as much again as node:http itself): `answer(req, res, route, work)` sends what
 * `work` resolves to, under the contract the Koa app keeps for every route — `X-Served-By` (unless the
 * answer names who served it), an HttpError as its status and documented error body, anything else logged and
 * answered 500 `internal_error`, and the request-duration metric under the route's pattern.
 */
export function offKoa(opts: {
  podName: string;
  logger: Logger;
  metrics: Metrics;
  /** As BaseAppOptions.frontName: `X-Front` on every answer (an answer never names it itself). */
  frontName?: string;
}): (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  route: string,
  work: () => Promise<OffKoaAnswer>,
) => void {
  const observeRequest = requestObserver(opts.metrics);
  const follow = opts.logger.isLevelEnabled('debug');
  const send = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    answer: OffKoaAnswer,
    requestId: string,
  ) => {
    const headers = answer.headers.includes('X-Served-By')
      ? answer.headers
      : ['X-Served-By', opts.podName, ...answer.headers];
    if (opts.frontName !== undefined) headers.push('X-Front', opts.frontName);
    headers.push(REQUEST_ID_HEADER, requestId);
    headers.push('Content-Length', String(answer.body.length));
    res.writeHead(answer.status, headers);
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  };
  return (req, res, route, work) => {
    const start = process.hrtime.bigint();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const finish = (answer: OffKoaAnswer) => {
      if (!res.headersSent) send(req, res, answer, requestId);
      if (tracingOn()) noteAnswer(res, route, requestId, headerIn(answer.headers, 'X-Cache'));
      observeRequest(
        req.method ?? 'GET',
        route,
        answer.status,
        Number(process.hrtime.bigint() - start) / 1e9,
      );
      if (follow)
        logAccess(opts.logger, req, answer.status, start, requestId, headerIn(answer.headers, 'X-Cache'));
    };
    (follow ? withRequestId(requestId, work) : work()).then(finish, (err: unknown) => {
      const httpError = toHttpError(err);
      if (httpError.status >= 500 && !(err instanceof HttpError)) {
        opts.logger.error({ err, method: req.method, path: req.url, reqId: requestId }, 'unhandled error');
      }
      const headers = ['Content-Type', JSON_CONTENT_TYPE];
      for (const [name, value] of Object.entries(httpError.headers)) headers.push(name, value);
      finish({ status: httpError.status, headers, body: Buffer.from(JSON.stringify(httpError.toBody())) });
    });
  };
}

/** The answer of a handler shared by a fast path and a Koa route, set on the Koa context. */
export function answerKoa(ctx: AppContext, answer: OffKoaAnswer): void {
  for (let i = 0; i + 1 < answer.headers.length; i += 2) {
    ctx.set(answer.headers[i] as string, answer.headers[i + 1] as string);
  }
  ctx.status = answer.status;
  ctx.body = answer.body;
}

/**
 * The id in a fast path's URL: what follows `prefix` when it is 1-40 ASCII digits and nothing else (no
 * query string, no trailing slash); undefined leaves the request to Koa, which validates the rest.
 */
export function digitsAfter(url: string | undefined, prefix: string): string | undefined {
  if (url === undefined || !url.startsWith(prefix)) return undefined;
  const n = url.length - prefix.length;
  if (n < 1 || n > 40) return undefined;
  for (let i = prefix.length; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return url.slice(prefix.length);
}

/**
 * A request header's value read from `req.rawHeaders`, without building `req.headers`: Node builds
 * that object on first access, one property per header the client sent (a per-request cost the
 * cache-hit path need not pay). Several lines of the header are joined with ", ", as `req.headers`
 * joins them for the headers a fast path reads (`cache-control`, say). `name` is in lower case.
 */
export function rawHeader(req: http.IncomingMessage, name: string): string | undefined {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i] as string;
    if (key.length !== name.length || key.toLowerCase() !== name) continue;
    const line = raw[i + 1] as string;
    value = value === undefined ? line : `${value}, ${line}`;
  }
  return value;
}

/** Several fast paths, tried in turn. */
export function fastPaths(...paths: FastPath[]): FastPath {
  return (req, res) => paths.some((path) => path(req, res));
}

/** Every server made from `app.callback()` (listen, app.listen, tests) tries `fast` first. */
function withFastPath(app: Koa, fast: FastPath): void {
  const koaCallback = app.callback.bind(app);
  app.callback = () => {
    const handle = koaCallback() as (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
    return ((req: http.IncomingMessage, res: http.ServerResponse) =>
      fast(req, res) ? undefined : handle(req, res)) as ReturnType<Koa['callback']>;
  };
}

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // Errors from Koa itself or its helpers (ctx.throw, http-errors) carry an exposed 4xx status.
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true) {
    const code = STATUS_CODES[e.status]?.[0] ?? 'bad_request';
    return new HttpError(e.status, code, typeof e.message === 'string' ? e.message : 'bad request');
  }
  return new HttpError(500, 'internal_error', 'internal error');
}

/** Where and how a service listens: the common settings every service reads (service-config.ts). */
export interface ListenConfig {
  HOST: string;
  PORT: number;
  HTTP_REQUEST_TIMEOUT_MS: number;
  HTTP_HEADERS_TIMEOUT_MS: number;
}

/** Starts listening with server timeouts that cut off slow clients; resolves with the bound address. */
export async function listen(app: Koa, config: ListenConfig): Promise<http.Server> {
  // The whole request must arrive within HTTP_REQUEST_TIMEOUT_MS, its headers within
  // HTTP_HEADERS_TIMEOUT_MS (capped at the former).
  const requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(config.HTTP_HEADERS_TIMEOUT_MS, requestTimeout);
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout,
      // Node checks both timeouts on this period (default 30 s, which would let a slowloris client hold a
      // connection up to 30 s past its deadline).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    // With tracing on, every request but the probes and scrapes runs in a server span (tracing.ts).
    tracingOn() ? tracedListener(app.callback(), PROBES) : app.callback(),
  );
  server.keepAliveTimeout = 65_000;
  server.maxRequestsPerSocket = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export function boundUrl(server: http.Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
}

/**
 * Ordered graceful shutdown (podinfo-style): readiness goes false, wait for load balancers to notice,
 * stop accepting, drain in-flight requests (bounded), then close the dependencies (pools, watches).
 * Triggered by SIGTERM, SIGINT, or the parent launcher going away (IPC disconnect).
 */
export function installShutdown(opts: {
  logger: Logger;
  server: http.Server;
  lifecycle: Lifecycle;
  delayMs: number;
  drainTimeoutMs: number;
  closers: Array<() => Promise<unknown>>;
}): (reason: string) => Promise<void> {
  let shutting: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shutting ??= (async () => {
      opts.logger.info({ reason }, 'shutting down');
      // Clients that hold a keep-alive connection to this pod (through a Service, conntrack keeps it
      // here) move to the other pods while this one still serves: each next answer closes its
      // connection, so none is left busy for the drain's forced close to cut.
      opts.server.prependListener('request', closeAfterAnswer);
      opts.lifecycle.shuttingDown = true;
      if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
      const closed = new Promise<void>((resolve) => opts.server.close(() => resolve()));
      opts.server.closeIdleConnections();
      const forced = setTimeout(() => opts.server.closeAllConnections(), opts.drainTimeoutMs);
      await closed;
      clearTimeout(forced);
      for (const close of opts.closers) {
        try {
          await close();
        } catch (err) {
          opts.logger.warn({ err }, 'error while closing a dependency');
        }
      }
      opts.logger.info('stopped');
    })();
    return shutting;
  };
  const exitAfter = (reason: string) => () => {
    void shutdown(reason).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', exitAfter('SIGTERM'));
  process.once('SIGINT', exitAfter('SIGINT'));
  if (process.send) process.once('disconnect', exitAfter('parent disconnected'));
  return shutdown;
}

/** A header's value in a flat [name, value, ...] list. */
function headerIn(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length - 1; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}
