/**
 * The worker-side state behind the stand-in k6 modules: the phase (init, setup, iteration, ...), the
 * VU and iteration numbers, the current group, the samples every metric receives, and the blocking
 * bridge that performs HTTP on the main thread while the script waits, as k6's synchronous API does.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type {
  CheckResult,
  HttpRequestMessage,
  HttpResponseMessage,
  MetricInfo,
  MetricType,
  Phase,
  RequestRecord,
  Sample,
} from './protocol.js';

/** k6's built-in metrics (https://grafana.com/docs/k6/latest/using-k6/metrics/reference/). */
export const BUILTIN_METRICS: Record<string, { type: MetricType; contains: MetricInfo['contains'] }> = {
  checks: { type: 'rate', contains: 'default' },
  data_received: { type: 'counter', contains: 'data' },
  data_sent: { type: 'counter', contains: 'data' },
  dropped_iterations: { type: 'counter', contains: 'default' },
  iteration_duration: { type: 'trend', contains: 'time' },
  iterations: { type: 'counter', contains: 'default' },
  vus: { type: 'gauge', contains: 'default' },
  vus_max: { type: 'gauge', contains: 'default' },
  group_duration: { type: 'trend', contains: 'time' },
  http_reqs: { type: 'counter', contains: 'default' },
  http_req_blocked: { type: 'trend', contains: 'time' },
  http_req_connecting: { type: 'trend', contains: 'time' },
  http_req_duration: { type: 'trend', contains: 'time' },
  http_req_failed: { type: 'rate', contains: 'default' },
  http_req_receiving: { type: 'trend', contains: 'time' },
  http_req_sending: { type: 'trend', contains: 'time' },
  http_req_tls_handshaking: { type: 'trend', contains: 'time' },
  http_req_waiting: { type: 'trend', contains: 'time' },
};

// Captured at load: the worker hides these globals from the script before it runs.
const atomics = Atomics;
const SAB = SharedArrayBuffer;

export class K6Error extends Error {
  override name = 'K6Error';
}

class Runtime {
  phase: Phase = 'init';
  vu = 0;
  iter = 0;
  scenario = '';
  scenarioTags: Record<string, string> = {};
  groupPath = '';
  sleepCapMs = 0;
  sleptSeconds = 0;
  discardResponseBodies = false;
  readonly samples: Sample[] = [];
  readonly metrics = new Map<string, MetricInfo>();
  readonly checks = new Map<string, CheckResult>();
  readonly requests: RequestRecord[] = [];
  readonly sharedArrays = new Map<string, unknown>();
  #port: MessagePort | undefined;
  #signal: Int32Array | undefined;
  readonly #sleeper = new Int32Array(new SAB(4));

  constructor() {
    for (const [name, m] of Object.entries(BUILTIN_METRICS)) this.metrics.set(name, { ...m, builtin: true });
  }

  connect(port: MessagePort, signal: SharedArrayBuffer): void {
    this.#port = port;
    this.#signal = new Int32Array(signal);
  }

  /** Tags every sample carries in this phase (k6's system tags: group, scenario, plus scenario tags). */
  baseTags(): Record<string, string> {
    const tags: Record<string, string> = { ...this.scenarioTags, group: this.groupPath };
    if (this.phase === 'iteration' && this.scenario !== '') tags.scenario = this.scenario;
    return tags;
  }

  requireVuContext(what: string): void {
    if (this.phase === 'init') {
      throw new K6Error(`${what} is not supported in the init context (only in setup, VU code and teardown)`);
    }
  }

  requireInitContext(what: string): void {
    if (this.phase !== 'init') throw new K6Error(`${what} must be called in the init context`);
  }

  addSample(metric: string, value: number, tags: Record<string, string>): void {
    if (!Number.isFinite(value)) throw new K6Error(`metric ${metric}: value ${value} is not a finite number`);
    this.samples.push({ metric, value, tags, phase: this.phase });
  }

  recordCheck(name: string, ok: boolean, tags: Record<string, string>): void {
    const key = `${this.groupPath}\u0000${name}`;
    let result = this.checks.get(key);
    if (!result) {
      result = { name, group: this.groupPath, passes: 0, fails: 0 };
      this.checks.set(key, result);
    }
    if (ok) result.passes++;
    else result.fails++;
    this.addSample('checks', ok ? 1 : 0, { ...this.baseTags(), ...tags, check: name });
  }

  /** Blocks this thread until the main thread has performed the request (k6's http API is synchronous). */
  http(req: HttpRequestMessage): HttpResponseMessage {
    const port = this.#port;
    const signal = this.#signal;
    if (!port || !signal) throw new K6Error('internal: the HTTP bridge is not connected');
    atomics.store(signal, 0, 0);
    port.postMessage(req);
    const waited = atomics.wait(signal, 0, 0, req.timeoutMs + 5_000);
    const reply = receiveMessageOnPort(port);
    if (waited === 'timed-out' || !reply)
      throw new K6Error(`internal: no answer for ${req.method} ${req.url}`);
    return reply.message as HttpResponseMessage;
  }

  sleep(seconds: number): void {
    this.sleptSeconds += seconds;
    const ms = Math.min(seconds * 1000, this.sleepCapMs);
    if (ms > 0) atomics.wait(this.#sleeper, 0, 0, ms);
  }
}

export const runtime = new Runtime();

/** k6 stringifies tag values; objects and arrays are not tags. */
export function toTags(tags: unknown, what: string): Record<string, string> {
  if (tags === undefined || tags === null) return {};
  if (typeof tags !== 'object' || Array.isArray(tags)) throw new K6Error(`${what}: tags must be an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags as Record<string, unknown>)) {
    if (typeof v === 'object' && v !== null) throw new K6Error(`${what}: tag "${k}" must be a string`);
    out[k] = String(v);
  }
  return out;
}
