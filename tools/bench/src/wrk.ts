/**
 * Load generation with wrk (Apache-2.0, Debian's `wrk`): a C load generator, one thread, driven through
 * a Lua script this module writes. It is the bench's default because it needs a small fraction of the
 * CPU that the servers it loads need: on a machine of two shared cores, a load generator that costs as
 * much per request as a server (autocannon, in Node) takes its share of the cores from the system under
 * test, and the ratio of a heavier system to a lighter one moves toward 1 (docs/performance.md, "The
 * load generator").
 *
 * Every latency comes back, not only percentiles: wrk's `done()` hands the script its histogram (µs,
 * one entry per distinct value with its count), which the script prints and `parseWrkReport` expands.
 * wrk has already "corrected" that histogram for coordinated omission (`stats_correct` in its stats.c:
 * each latency L adds made-up samples at L - i, L - 2i, ... for the interval i it expected between a
 * connection's requests), which suits a constant-rate load and not this closed loop, and which
 * autocannon does not do; `uncorrect` takes those samples out again, exactly, so that both generators
 * report the same thing: one latency per answer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Samples } from './stats.js';

export interface WrkSpec {
  url: string;
  connections: number;
  seconds: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Request paths, taken in turn (every connection shares one rotation); else the URL's own path. */
  paths?: readonly string[];
  /** Seconds before a request counts as timed out (wrk's --timeout). */
  timeoutSeconds?: number;
}

export interface WrkReport {
  requests: number;
  /** wrk's own measure of the run, from its first connection to its end. */
  seconds: number;
  /** Milliseconds, one per answered request. */
  latencies: Samples;
  /** Socket errors: connect, read, write. */
  errors: number;
  timeouts: number;
  /** Answers with a status of 400 or more (wrk counts those; it has no count of other non-2xx). */
  status4xx5xx: number;
  /** CPU milliseconds wrk itself used (user + system), from the shell that waited for it. */
  cpuMs: number | undefined;
}

/** A string as a Lua literal: printable ASCII as is, every other byte as a decimal escape. */
export function luaString(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${byte}`;
  }
  return `${out}"`;
}

export const REPORT_MARK = 'bazar-wrk';
export const LATENCY_MARK = 'bazar-wrk-latency';

/** The Lua script for one run: the request (static unless paths rotate) and a `done` that reports. */
export function wrkScript(spec: Pick<WrkSpec, 'method' | 'headers' | 'body' | 'paths'>): string {
  const lines: string[] = [];
  if (spec.method) lines.push(`wrk.method = ${luaString(spec.method)}`);
  if (spec.body !== undefined) lines.push(`wrk.body = ${luaString(spec.body)}`);
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  if (spec.paths && spec.paths.length > 0) {
    // A `request` function makes wrk ask Lua for every request: only when the path changes.
    lines.push(
      'local paths = {',
      ...spec.paths.map((p) => `  ${luaString(p)},`),
      '}',
      'local count = #paths',
      'local next = 0',
      'request = function()',
      '  next = next % count + 1',
      '  return wrk.format(nil, paths[next])',
      'end',
    );
  }
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    `  io.write(string.format("${REPORT_MARK} requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",`,
    '    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))',
    '  local parts = {}',
    '  for k = 1, #latency do',
    '    local value, count = latency(k)',
    '    parts[#parts + 1] = string.format("%d:%d", value, count)',
    '  end',
    `  io.write("${LATENCY_MARK} ", table.concat(parts, ","), "\\n")`,
    'end',
  );
  return `${lines.join('\n')}\n`;
}

/** bash's `times` for its children: "0m1.234s 0m0.056s" (user, system), the second line it prints. */
export function parseChildTimes(text: string): number | undefined {
  const lines = text.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(last.trim());
  if (!m) return undefined;
  const seconds = Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  return seconds * 1000;
}

/**
 * wrk's histogram before its coordinated-omission correction. `stats_correct(expected)` walks the values
 * upwards and adds each one's count c(n) to n - k·expected for every k with n - k·expected > expected, so
 * the corrected count of m is c(m) plus the original counts above it in steps of `expected` (when m >
 * expected), and the originals come back walking downwards. Entries: [value µs, count].
 */
export function uncorrect(
  corrected: readonly (readonly [number, number])[],
  expected: number,
): [number, number][] {
  if (!(expected > 0)) return corrected.map(([v, c]) => [v, c]);
  const suffix = new Map<number, number>(); // value -> its original count + those above it, `expected` apart
  const out: [number, number][] = [];
  for (const [value, count] of [...corrected].sort((a, b) => b[0] - a[0])) {
    const above = value > expected ? (suffix.get(value + expected) ?? 0) : 0;
    const original = count - above;
    if (original < 0)
      throw new Error(`wrk's histogram does not undo at ${value} µs (interval ${expected} µs)`);
    suffix.set(value, original + above);
    if (original > 0) out.push([value, original]);
  }
  return out.reverse();
}

/** The interval wrk corrected for: its run time over the requests each connection completed (integers). */
export function correctionInterval(durationUs: number, requests: number, connections: number): number {
  const perConnection = Math.floor(requests / connections);
  return perConnection > 0 ? Math.floor(durationUs / perConnection) : 0;
}

/** What the script's `done` printed, read back; undefined if it printed nothing (wrk failed first). */
export function parseWrkReport(output: string, connections: number, cpuMs?: number): WrkReport | undefined {
  const summary = new RegExp(
    `^${REPORT_MARK} requests=(\\d+) duration_us=(\\d+) connect=(\\d+) read=(\\d+) write=(\\d+) status=(\\d+) timeout=(\\d+)$`,
    'm',
  ).exec(output);
  if (!summary) return undefined;
  const [requests, durationUs, connect, read, write, status, timeout] = summary.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const histogram = (new RegExp(`^${LATENCY_MARK} ?(.*)$`, 'm').exec(output)?.[1] ?? '')
    .split(',')
    .filter((entry) => entry !== '')
    .map((entry) => entry.split(':').map(Number) as [number, number]);
  const latencies = new Samples();
  for (const [valueUs, count] of uncorrect(
    histogram,
    correctionInterval(durationUs, requests, connections),
  )) {
    for (let i = 0; i < count; i++) latencies.push(valueUs / 1000);
  }
  // One latency per answer, less those wrk could not record (past its timeout, counted as timeouts).
  if (latencies.length > requests || latencies.length < requests - timeout) {
    throw new Error(`wrk reported ${requests} answers but ${latencies.length} latencies: ${output}`);
  }
  return {
    requests,
    seconds: durationUs / 1e6,
    latencies,
    errors: connect + read + write,
    timeouts: timeout,
    status4xx5xx: status,
    cpuMs,
  };
}

/** Throws, saying how to install it, unless `wrk` runs here. */
export function requireWrk(): void {
  const r = spawnSync('wrk', ['--version'], { stdio: 'ignore' });
  if (r.error) {
    throw new Error(
      `the bench drives its load with wrk, which is not here (${r.error.message}): apt-get install wrk ` +
        '(bash scripts/test-tools.sh installs it), or run with --load-generator autocannon',
    );
  }
}

/** Runs wrk once (one thread); rejects if it cannot run or reports nothing. */
export async function runWrk(spec: WrkSpec): Promise<WrkReport> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-wrk-'));
  try {
    const script = path.join(dir, 'load.lua');
    writeFileSync(script, wrkScript(spec));
    const args = [
      '-t1',
      `-c${spec.connections}`,
      `-d${Math.max(1, Math.round(spec.seconds))}s`,
      `--timeout`,
      `${spec.timeoutSeconds ?? 10}s`,
      '-s',
      script,
      spec.url,
    ];
    // bash waits for wrk and then prints its children's CPU time (`times`) on stderr.
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve, reject) => {
      const child = spawn('bash', ['-c', 'wrk "$@"; rc=$?; times >&2; exit $rc', 'bash', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      // 'close', not 'exit': the output may still be in the pipes when the process has exited.
      child.on('close', (c) => resolve({ code: c, stdout, stderr }));
    });
    const report = code === 0 ? parseWrkReport(stdout, spec.connections, parseChildTimes(stderr)) : undefined;
    if (!report) throw new Error(`wrk ${args.join(' ')} exited ${code}: ${stdout}${stderr}`);
    return report;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
