import type http from 'node:http';
import {
  context,
  propagation,
  trace,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { optionalHttpUrl, optionalStr, ratio } from './config.js';
import type { Logger } from './logger.js';

/**
 * OpenTelemetry traces, off unless an OTLP endpoint is configured. One purchase is one trace: the front's
 * server span, its call to an order pod, the order pod's server span and its PostgreSQL statements, and
 * the invalidation it pushes to each front (W3C `traceparent` on every call between the services).
 *
 * The spans are made here, by hand, at the store's three choke points (the HTTP server, `send` in
 * http-client.ts, a pool's connections in db/database.ts), not by auto-instrumentation: the services are
 * ES modules, which Node 20 instruments only through a loader hook, and the choke points are few. While
 * tracing is off nothing is wrapped and the SDK is never loaded: each choke point tests one variable.
 */
export const tracingSchema = {
  /** OTLP/HTTP base URL of a collector (traces go to `<url>/v1/traces`); tracing is on when set. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalHttpUrl(),
  /** The full traces URL, taking precedence over OTEL_EXPORTER_OTLP_ENDPOINT (OpenTelemetry's rule). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalHttpUrl(),
  /** `service.name` of the spans; `bazar-<service>` by default. */
  OTEL_SERVICE_NAME: optionalStr(),
  /** Share of new traces recorded (parent-based: a call follows its caller's decision). */
  OTEL_TRACES_SAMPLER_ARG: ratio({ default: 1 }),
};

export interface TracingConfig {
  OTEL_EXPORTER_OTLP_ENDPOINT: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: string | undefined;
  OTEL_SERVICE_NAME: string | undefined;
  OTEL_TRACES_SAMPLER_ARG: number;
}

/** The traces URL the config names, or undefined (tracing off). */
export function tracesUrl(config: TracingConfig): string | undefined {
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  return config.OTEL_EXPORTER_OTLP_ENDPOINT ? `${config.OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` : undefined;
}

/** Set once tracing has started in this process; each choke point tests it. */
let tracer: Tracer | undefined;

export function tracingOn(): boolean {
  return tracer !== undefined;
}

/**
 * Starts tracing when the config names an endpoint: the SDK (loaded only now), a batch exporter over
 * OTLP/HTTP, W3C trace context, and AsyncLocalStorage as the context manager. Resolves with the
 * flush-and-stop to run at shutdown, or undefined when tracing is off.
 */
export async function startTracing(opts: {
  config: TracingConfig;
  service: string;
  podName: string;
  logger: Logger;
}): Promise<(() => Promise<void>) | undefined> {
  const url = tracesUrl(opts.config);
  if (url === undefined) return undefined;
  const [{ NodeTracerProvider }, base, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all(
    [
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ],
  );
  const serviceName = opts.config.OTEL_SERVICE_NAME ?? `bazar-${opts.service}`;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'service.namespace': 'bazar',
      'service.instance.id': opts.podName,
    }),
    sampler: new base.ParentBasedSampler({
      root: new base.TraceIdRatioBasedSampler(opts.config.OTEL_TRACES_SAMPLER_ARG),
    }),
    spanProcessors: [
      new base.BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1000 }),
    ],
  });
  // Global tracer provider, W3C traceparent/baggage propagation, AsyncLocalStorage context.
  provider.register();
  tracer = provider.getTracer('bazar');
  opts.logger.info(
    { traces: url, serviceName, sampleRatio: opts.config.OTEL_TRACES_SAMPLER_ARG },
    'tracing on',
  );
  return async () => {
    tracer = undefined;
    await provider.shutdown();
  };
}

/** The trace and span ids of the work in progress, for log lines; undefined when tracing is off. */
export function currentTraceIds(): { trace_id: string; span_id: string } | undefined {
  if (tracer === undefined) return undefined;
  const span = trace.getSpanContext(context.active());
  return span === undefined ? undefined : { trace_id: span.traceId, span_id: span.spanId };
}

const ANSWER = Symbol('bazar.answer');
interface AnswerFacts {
  route: string;
  requestId: string | undefined;
  cache: string | undefined;
}
type Noted = http.ServerResponse & { [ANSWER]?: AnswerFacts };

/**
 * What the server span says of an answer: the route pattern (its name), the request's id and the
 * cache's outcome. Told by whoever answers, since the fast paths write their head in one call that
 * getHeader() cannot read back. Callers test tracingOn() first, so that tracing off costs nothing.
 */
export function noteAnswer(
  res: http.ServerResponse,
  route: string,
  requestId: string | undefined,
  cache: string | undefined,
): void {
  if (tracer !== undefined) (res as Noted)[ANSWER] = { route, requestId, cache };
}

/**
 * A request listener that runs `handle` inside a server span, continuing the caller's trace when the
 * request carries `traceparent`. `untraced` paths (probes, scrapes) get none.
 */
export function tracedListener(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => unknown,
  untraced: ReadonlySet<string>,
): (req: http.IncomingMessage, res: http.ServerResponse) => unknown {
  return (req, res) => {
    const active = tracer;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (active === undefined || untraced.has(path)) return handle(req, res);
    const method = req.method ?? 'GET';
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = active.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': method,
          'url.path': path,
          ...(q < 0 ? {} : { 'url.query': url.slice(q + 1) }),
          'server.port': req.socket.localPort,
          'client.address': req.socket.remoteAddress,
        },
      },
      parent,
    );
    res.once('close', () => {
      const facts = (res as Noted)[ANSWER];
      if (facts !== undefined) {
        span.updateName(`${method} ${facts.route}`);
        span.setAttribute('http.route', facts.route);
        if (facts.requestId !== undefined) span.setAttribute('bazar.request_id', facts.requestId);
        if (facts.cache !== undefined) span.setAttribute('bazar.cache', facts.cache);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      if (!res.writableFinished) span.setAttribute('bazar.aborted', true);
      span.end();
    });
    return context.with(trace.setSpan(parent, span), () => handle(req, res));
  };
}

/**
 * Runs one outgoing HTTP call in a client span and puts its `traceparent` in `headers` (a fresh object:
 * the caller's is not changed). `call` resolves with the answer's status.
 */
export async function tracedCall<T extends { status: number }>(
  method: string,
  url: string,
  headers: Record<string, string> | undefined,
  call: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  const active = tracer;
  if (active === undefined) return call(headers ?? {});
  const target = new URL(url);
  const span = active.startSpan(`${method} ${target.pathname}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'http.request.method': method,
      'url.full': url,
      'server.address': target.hostname,
      'server.port': Number(target.port || 80),
    },
  });
  const carrier: Record<string, string> = { ...headers };
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  try {
    const answer = await call(carrier);
    span.setAttribute('http.response.status_code', answer.status);
    if (answer.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    return answer;
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** What traceQueries wraps: a pg client (its overloaded `query`, seen as one variadic function). */
export interface Queryable {
  query: (...args: unknown[]) => unknown;
}

/**
 * Wraps a pg client's `query` so that every statement it runs is a client span under the work that
 * issued it (pool.query runs through a client's query too). Statement text is recorded as sent, with
 * its `$n` placeholders: parameters never are.
 */
export function traceQueries(client: Queryable, attributes: Attributes): void {
  const query = client.query;
  client.query = function tracedQuery(this: unknown, ...args: unknown[]): unknown {
    const active = tracer;
    const first = args[0] as string | { text?: string; submit?: unknown } | undefined;
    // Submittables (cursors, streams) report on their own; they are not used by the store.
    if (active === undefined || (typeof first === 'object' && typeof first?.submit === 'function')) {
      return query.apply(this, args);
    }
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    const operation = /^\s*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
    const span = active.startSpan(operation, {
      kind: SpanKind.CLIENT,
      attributes: { ...attributes, 'db.operation.name': operation, 'db.query.text': text },
    });
    const last = args.length - 1;
    const callback = args[last];
    const run = () => context.with(trace.setSpan(context.active(), span), () => query.apply(this, args));
    if (typeof callback === 'function') {
      args[last] = (err: unknown, result: unknown) => {
        if (err) failed(span, err);
        span.end();
        return (callback as (e: unknown, r: unknown) => unknown)(err, result);
      };
      return run();
    }
    return (run() as Promise<unknown>).then(
      (value) => {
        span.end();
        return value;
      },
      (err: unknown) => {
        failed(span, err);
        span.end();
        throw err;
      },
    );
  };
}

function failed(span: Span, err: unknown): void {
  const e = err as { message?: unknown; code?: unknown };
  span.setStatus({ code: SpanStatusCode.ERROR, message: typeof e?.message === 'string' ? e.message : '' });
  if (typeof e?.code === 'string') span.setAttribute('error.type', e.code);
}
