/**
 * The k6 stand-in's entry point: runs a k6 script (an ES module written to k6's API) in a worker thread
 * against a real HTTP server, performing its requests on this thread, and reports what k6 would have
 * seen: the options (validated against k6's shapes), checks, requests, metrics, threshold verdicts and
 * handleSummary's outputs. It exists because k6 itself (AGPL) is not installed on these machines; the
 * scripts stay plain k6 scripts for users' own k6.
 */
import http from 'node:http';
import https from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { HttpRequestMessage, HttpResponseMessage, WorkerPlan, WorkerReport } from './protocol.js';
import { validateOptions } from './options.js';
import { evaluateThresholds, type ThresholdResult } from './summary-data.js';

export interface RunOptions {
  /** Path of the script (e.g. load-tests/bazar.js). */
  script: string;
  /** Root the script's relative imports must stay in (default: the script's directory). */
  root?: string;
  /** __ENV. */
  env?: Record<string, string>;
  /** inspect = init context only (options, exports, metrics); run = setup → iterations → teardown → handleSummary. */
  action: 'inspect' | 'run';
  /** The scenario whose exec function runs (default: the first in options.scenarios). */
  scenario?: string;
  iterations?: number;
  /** Longest real pause for one sleep() (default 20 ms). */
  sleepCapMs?: number;
  seed?: number;
  /** Where handleSummary's relative file outputs are written (default: the current directory). */
  cwd?: string;
  /** Whole-run limit (default 120 s). */
  timeoutMs?: number;
}

export interface RunResult extends WorkerReport {
  /** Problems in `options` against k6's documented shapes. */
  validation: string[];
  thresholds: ThresholdResult[];
  /** Files handleSummary asked for, as written. */
  written: string[];
  /** Everything that would make this a failed k6 run or a broken script; empty = good. */
  failures: string[];
}

const ERROR_CODES: Record<string, number> = {
  ECONNREFUSED: 1212,
  ECONNRESET: 1220,
  ENOTFOUND: 1101,
  ETIMEDOUT: 1050,
};

async function perform(req: HttpRequestMessage, agents: { http: http.Agent; https: https.Agent }) {
  const started = performance.now();
  let url = req.url;
  let method = req.method;
  let body = req.body;
  for (let hop = 0; ; hop++) {
    const res = await once(url, method, req.headers, body, req.timeoutMs, agents, started);
    const location = res.location;
    if (location && res.status >= 300 && res.status < 400 && hop < req.redirects) {
      url = new URL(location, url).href;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = null;
      }
      continue;
    }
    return res.message;
  }
}

function once(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | null,
  timeoutMs: number,
  agents: { http: http.Agent; https: https.Agent },
  started: number,
): Promise<{ status: number; location?: string; message: HttpResponseMessage }> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const lib = target.protocol === 'https:' ? https : http;
    const sendAt = performance.now();
    let firstByte = 0;
    const out: Record<string, string> = { ...headers };
    if (body && !Object.keys(out).some((h) => h.toLowerCase() === 'content-length')) {
      out['Content-Length'] = String(body.byteLength);
    }
    const fail = (err: NodeJS.ErrnoException, code: string) => {
      const now = performance.now();
      resolve({
        status: 0,
        message: {
          status: 0,
          statusText: '',
          url,
          headers: [],
          body: new Uint8Array(),
          timings: {
            duration: now - sendAt,
            waiting: 0,
            sending: 0,
            receiving: 0,
            blocked: sendAt - started,
          },
          error: `${method} ${url}: ${err.message}`,
          errorCode: ERROR_CODES[code] ?? 1000,
          proto: '',
          remoteIp: '',
          remotePort: 0,
          bytesSent: 0,
        },
      });
    };
    const req = lib.request(
      target,
      {
        method,
        headers: out,
        agent: target.protocol === 'https:' ? agents.https : agents.http,
        timeout: timeoutMs,
      },
      (res) => {
        firstByte = performance.now();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => fail(err, (err as NodeJS.ErrnoException).code ?? ''));
        res.on('end', () => {
          const end = performance.now();
          const pairs: Array<[string, string]> = [];
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            pairs.push([res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string]);
          }
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ...(typeof res.headers.location === 'string' ? { location: res.headers.location } : {}),
            message: {
              status,
              statusText: `${status} ${res.statusMessage ?? ''}`.trim(),
              url,
              headers: pairs,
              body: new Uint8Array(Buffer.concat(chunks)),
              timings: {
                duration: end - sendAt,
                waiting: firstByte - sendAt,
                sending: 0,
                receiving: end - firstByte,
                blocked: sendAt - started,
              },
              error: '',
              errorCode: 0,
              proto: `HTTP/${res.httpVersion}`,
              remoteIp: res.socket?.remoteAddress ?? '',
              remotePort: res.socket?.remotePort ?? 0,
              bytesSent: (body?.byteLength ?? 0) + 100,
            },
          });
        });
      },
    );
    req.on('timeout', () => {
      const err = Object.assign(new Error(`request timeout after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      req.destroy(err);
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(err, err.code ?? ''));
    req.end(body ? Buffer.from(body) : undefined);
  });
}

/** Runs (or inspects) a k6 script; see RunOptions. Never throws for a script's own faults: see failures. */
export async function runK6Script(opts: RunOptions): Promise<RunResult> {
  const script = path.resolve(opts.script);
  const root = path.resolve(opts.root ?? path.dirname(script));
  const { port1, port2 } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const flag = new Int32Array(signal);
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 1 }),
  };
  port1.on('message', (req: HttpRequestMessage) => {
    void perform(req, agents).then((res) => {
      port1.postMessage(res);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    });
  });
  const plan: WorkerPlan = {
    scriptUrl: pathToFileURL(script).href,
    scriptRootUrl: pathToFileURL(root + path.sep).href,
    env: opts.env ?? {},
    action: opts.action,
    ...(opts.scenario !== undefined ? { scenario: opts.scenario } : {}),
    iterations: opts.iterations ?? 1,
    sleepCapMs: opts.sleepCapMs ?? 20,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    httpPort: port2,
    signal,
  };
  const worker = new Worker(new URL('./worker.js', import.meta.url), {
    workerData: plan,
    transferList: [port2],
    stdout: true,
    stderr: true,
  });
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let report: WorkerReport;
  try {
    report = await new Promise<WorkerReport>((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new Error(`the script did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      worker.once('message', (r: WorkerReport) => {
        clearTimeout(timer);
        resolve(r);
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the stand-in worker exited (code ${code}) without a report`));
      });
    });
  } catch (err) {
    report = {
      options: undefined,
      exports: {},
      metrics: {},
      errors: [{ phase: 'init', message: err instanceof Error ? err.message : String(err) }],
      checks: [],
      requests: [],
      samples: [],
      sleptSeconds: 0,
      console: [],
      testRunDurationMs: 0,
    };
  } finally {
    port1.close();
    await worker.terminate();
    agents.http.destroy();
    agents.https.destroy();
  }

  const validation =
    report.options === undefined
      ? []
      : validateOptions(report.options, { exports: report.exports, metrics: report.metrics });
  const thresholds =
    report.options === undefined || validation.length > 0
      ? []
      : evaluateThresholds(
          report.options as Record<string, unknown>,
          report.metrics,
          report.samples,
          report.testRunDurationMs / 1000,
        );
  const failures: string[] = [];
  for (const e of report.errors) failures.push(`${e.phase}: ${e.message}`);
  for (const v of validation) failures.push(`options: ${v}`);
  for (const c of report.checks) {
    if (c.fails > 0)
      failures.push(`check failed: ${c.group ? `${c.group.replace(/^::/, '')} › ` : ''}${c.name}`);
  }
  for (const r of report.requests) {
    if (!r.expected) {
      failures.push(
        `unexpected response: ${r.method} ${r.url} → ${r.status}${r.error ? ` (${r.error})` : ''}`,
      );
    }
  }
  const written: string[] = [];
  if (report.summaryOutputs) {
    for (const [name, content] of Object.entries(report.summaryOutputs)) {
      if (name === 'stdout' || name === 'stderr') continue;
      if (name.endsWith('.json')) {
        try {
          JSON.parse(content);
        } catch {
          failures.push(`handleSummary: ${name} is not valid JSON`);
        }
      }
      const file = path.resolve(opts.cwd ?? process.cwd(), name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content);
      written.push(file);
    }
  }
  return { ...report, validation, thresholds, written, failures };
}
