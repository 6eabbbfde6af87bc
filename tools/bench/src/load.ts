/**
 * Load generation: wrk (wrk.ts, the default) or autocannon (MIT, in this process; `--load-generator
 * autocannon`), behind one `load()`. With autocannon, latencies are taken from its per-response event at
 * sub-millisecond resolution (its own histogram keeps whole milliseconds); wrk reports every latency in
 * µs. The target processes' CPU time is read around the run, a figure that drifts far less than
 * throughput on a shared machine, and so is the load generator's own.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { perRequest, poolSpent, snapshot, spentBetween, totalOf, type Watched } from './cpu.js';
import { Samples, percentile } from './stats.js';
import { runWrk } from './wrk.js';
import type { LoadGenerator } from './options.js';

let generator: LoadGenerator = 'wrk';
/** The generator every later `load()` uses (the bench's `--load-generator`). */
export function useLoadGenerator(chosen: LoadGenerator): void {
  generator = chosen;
}
/** How many random paths a `path()` spec is drawn into for wrk, which takes them in turn. */
export const WRK_RANDOM_PATHS = 50_000;

export interface LoadSpec {
  url: string;
  connections: number;
  /** Seconds (default 5). */
  duration?: number;
  method?: 'GET' | 'POST' | 'PUT';
  headers?: Record<string, string>;
  body?: string;
  /** Rotates the request path over these (e.g. every book id). */
  paths?: string[];
  /** Or asks this for every request's path (e.g. a random book of a million). */
  path?: () => string;
  /** Processes whose CPU time to charge to this run (every process on the path under test). */
  watch?: Watched[];
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  latencies: Samples;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** CPU milliseconds each watched process spent during the run (absent where /proc is not readable). */
  cpuSpentMs?: Map<string, number>;
  /** CPU microseconds per request per watched process. */
  cpu?: Map<string, number>;
  /** Their sum. */
  cpuUsPerRequest?: number;
  /** The load generator's own CPU, µs per request (wrk's process, or this one's under autocannon). */
  generatorCpuUsPerRequest?: number;
}

type Bare = Omit<LoadResult, 'cpu' | 'cpuUsPerRequest' | 'cpuSpentMs'>;

function withCpu(
  result: Bare,
  spent: Map<string, number> | undefined,
  cpu?: Map<string, number>,
): LoadResult {
  if (!spent || spent.size === 0) return result;
  const perReq = cpu ?? perRequest(spent, result.requests);
  const total = totalOf(perReq);
  return {
    ...result,
    cpuSpentMs: spent,
    ...(total !== undefined ? { cpu: perReq, cpuUsPerRequest: total } : {}),
  };
}

export async function load(spec: LoadSpec): Promise<LoadResult> {
  return generator === 'wrk' ? loadWithWrk(spec) : loadWithAutocannon(spec);
}

async function loadWithWrk(spec: LoadSpec): Promise<LoadResult> {
  const pathOf = spec.path;
  const paths = spec.paths ?? (pathOf ? Array.from({ length: WRK_RANDOM_PATHS }, () => pathOf()) : undefined);
  const cpu0 = spec.watch ? snapshot(spec.watch) : undefined;
  const report = await runWrk({
    url: spec.url,
    connections: spec.connections,
    seconds: spec.duration ?? 5,
    ...(spec.method ? { method: spec.method } : {}),
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    ...(paths ? { paths } : {}),
  });
  const cpu1 = spec.watch ? snapshot(spec.watch) : undefined;
  return withCpu(
    {
      requests: report.requests,
      seconds: report.seconds,
      rps: report.requests / report.seconds,
      latencies: report.latencies,
      errors: report.errors,
      timeouts: report.timeouts,
      non2xx: report.status4xx5xx,
      ...(report.cpuMs !== undefined && report.requests > 0
        ? { generatorCpuUsPerRequest: (report.cpuMs * 1000) / report.requests }
        : {}),
    },
    cpu0 && cpu1 ? spentBetween(cpu0, cpu1) : undefined,
  );
}

async function loadWithAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const latencies = new Samples();
  const cpu0 = spec.watch ? snapshot(spec.watch) : undefined;
  const ownCpu0 = process.cpuUsage();
  const paths = spec.paths;
  const pathOf = spec.path ?? (paths ? () => paths[next++ % paths.length] as string : undefined);
  let next = 0;
  const opts: autocannon.Options = {
    url: spec.url,
    connections: spec.connections,
    method: spec.method ?? 'GET',
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    duration: spec.duration ?? 5,
    timeout: 10,
    ...(pathOf
      ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, path: pathOf() }) }] }
      : {}),
  };
  const started = process.hrtime.bigint();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(opts, (err: unknown, res: autocannon.Result) =>
      err ? reject(err) : resolve(res),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu1 = spec.watch ? snapshot(spec.watch) : undefined;
  const ownCpu = process.cpuUsage(ownCpu0);
  const requests = result.requests.total;
  return withCpu(
    {
      requests,
      seconds,
      rps: requests / seconds,
      latencies,
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      ...(requests > 0 ? { generatorCpuUsPerRequest: (ownCpu.user + ownCpu.system) / requests } : {}),
    },
    cpu0 && cpu1 ? spentBetween(cpu0, cpu1) : undefined,
  );
}

/** Several runs of the same spec pooled: total requests over total time, all latencies together. */
export function pool(runs: LoadResult[]): LoadResult {
  const latencies = new Samples();
  for (const r of runs) for (const v of r.latencies.values()) latencies.push(v);
  const requests = runs.reduce((a, r) => a + r.requests, 0);
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  const withGenerator = runs.filter((r) => r.generatorCpuUsPerRequest !== undefined);
  const generatorRequests = withGenerator.reduce((a, r) => a + r.requests, 0);
  const generatorUs = withGenerator.reduce((a, r) => a + r.generatorCpuUsPerRequest! * r.requests, 0);
  return withCpu(
    {
      requests,
      seconds,
      rps: requests / seconds,
      latencies,
      errors: runs.reduce((a, r) => a + r.errors, 0),
      timeouts: runs.reduce((a, r) => a + r.timeouts, 0),
      non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
      ...(withGenerator.length === runs.length && generatorRequests > 0
        ? { generatorCpuUsPerRequest: generatorUs / generatorRequests }
        : {}),
    },
    ...poolArgs(runs),
  );
}

function poolArgs(runs: LoadResult[]): [Map<string, number> | undefined, Map<string, number>?] {
  const pooled = poolSpent(runs);
  return pooled ? [pooled.spent, pooled.perRequest] : [undefined];
}

export function p(r: LoadResult, q: number): number {
  return percentile(r.latencies.values(), q);
}

/**
 * Open-loop load below saturation: `rate` requests per second spread evenly over time (a timer tick
 * every millisecond sends what is due), over at most `connections` keep-alive sockets. autocannon's own
 * rate limit sends each second's quota as fast as it can and then pauses, which measures bursts; this
 * measures what a request costs when the server is not already busy.
 */
export async function paced(spec: {
  url: string;
  connections: number;
  rate: number;
  seconds: number;
  headers?: Record<string, string>;
  watch?: Watched[];
}): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const target = new URL(spec.url);
  const total = Math.max(1, Math.round(spec.rate * spec.seconds));
  const interval = 1000 / spec.rate;
  const latencies = new Samples();
  let errors = 0;
  let non2xx = 0;
  const cpu0 = spec.watch ? snapshot(spec.watch) : undefined;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let done = 0;
    const finish = () => {
      if (++done === total) resolve();
    };
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (sent < due) {
        sent++;
        const began = performance.now();
        const req = http.request(
          { host: target.hostname, port: target.port, path: target.pathname, agent, headers: spec.headers },
          (res) => {
            res.on('data', () => undefined);
            res.on('end', () => {
              latencies.push(performance.now() - began);
              if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) non2xx++;
              finish();
            });
          },
        );
        req.on('error', () => {
          errors++;
          finish();
        });
        req.end();
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  const cpu1 = spec.watch ? snapshot(spec.watch) : undefined;
  return withCpu(
    { requests: total, seconds, rps: total / seconds, latencies, errors, timeouts: 0, non2xx },
    cpu0 && cpu1 ? spentBetween(cpu0, cpu1) : undefined,
  );
}
