/** Messages and reports shared by the stand-in's main thread (runner) and its script worker. */
import type { MessagePort } from 'node:worker_threads';

export interface HttpRequestMessage {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Request body bytes (already encoded as k6 would: a string as is, an object form-encoded). */
  body: Uint8Array | null;
  timeoutMs: number;
  redirects: number;
}

export interface HttpResponseMessage {
  status: number;
  statusText: string;
  url: string;
  /** Raw response headers: [name, value] pairs as received. */
  headers: Array<[string, string]>;
  body: Uint8Array;
  timings: { duration: number; waiting: number; sending: number; receiving: number; blocked: number };
  error: string;
  errorCode: number;
  proto: string;
  remoteIp: string;
  remotePort: number;
  bytesSent: number;
}

export type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';

export interface Sample {
  metric: string;
  value: number;
  tags: Record<string, string>;
  /** The phase that produced it: setup, the iteration, or teardown. */
  phase: Phase;
}

export type Phase = 'init' | 'setup' | 'iteration' | 'teardown' | 'summary';

export interface MetricInfo {
  type: MetricType;
  contains: 'time' | 'data' | 'default';
  builtin: boolean;
}

export interface CheckResult {
  name: string;
  /** k6 group path, '' for the root group, '::a::b' for nested groups. */
  group: string;
  passes: number;
  fails: number;
}

export interface RequestRecord {
  phase: Phase;
  method: string;
  url: string;
  status: number;
  expected: boolean;
  tags: Record<string, string>;
  error: string;
  durationMs: number;
}

export interface WorkerPlan {
  scriptUrl: string;
  /** Directory every relative import must stay inside (the script's load-tests root). */
  scriptRootUrl: string;
  env: Record<string, string>;
  /** inspect: evaluate the init context only; run: setup, iterations, teardown, handleSummary. */
  action: 'inspect' | 'run';
  scenario?: string;
  iterations: number;
  /** Upper bound for one sleep() (the stand-in checks behaviour, not pacing). */
  sleepCapMs: number;
  /** Seeds Math.random (k6's randomSeed does the same) so a test can pin the branches taken. */
  seed?: number;
  httpPort: MessagePort;
  signal: SharedArrayBuffer;
}

export interface WorkerReport {
  options: unknown;
  exports: Record<string, string>;
  metrics: Record<string, MetricInfo>;
  errors: Array<{ phase: Phase; message: string }>;
  checks: CheckResult[];
  requests: RequestRecord[];
  samples: Sample[];
  setupData?: unknown;
  summaryOutputs?: Record<string, string>;
  sleptSeconds: number;
  console: string[];
  testRunDurationMs: number;
}
