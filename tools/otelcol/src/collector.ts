/**
 * A real OpenTelemetry Collector for tests: the binary scripts/otelcol.sh builds (receiver otlp,
 * processor batch, exporters file and debug), started on a free loopback port with a config that
 * writes every span it receives to a JSON-lines file, and the parser of that file.
 *
 *   const collector = await startCollector({ workDir });
 *   // export spans to `${collector.otlpHttpEndpoint}/v1/traces` (OTLP/HTTP, JSON or protobuf)
 *   const spans = readSpans(collector.tracesFile);
 *   await collector.stop();
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../bench/src/processes.js';

export interface StartCollectorOptions {
  /** The config (otelcol.yaml) and the exported spans (traces.jsonl) go here; created if missing. */
  workDir: string;
}

export interface Collector {
  /** The OTLP/HTTP receiver's base URL, e.g. http://127.0.0.1:PORT (traces go to /v1/traces). */
  otlpHttpEndpoint: string;
  /** Where the file exporter writes: one OTLP/JSON TracesData object per line. */
  tracesFile: string;
  /** The collector's process id. */
  pid: number;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

/** OTLP SpanKind, by name without its SPAN_KIND_ prefix. */
export type SpanKindName = 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
/** OTLP status code, by name without its STATUS_CODE_ prefix. */
export type StatusCodeName = 'UNSET' | 'OK' | 'ERROR';

/** One span as the file exporter wrote it, with its resource's service.name and service.instance.id. */
export interface ExportedSpan {
  /** Lowercase hex, 32 characters (the file exporter writes hex, not base64). */
  traceId: string;
  /** Lowercase hex, 16 characters. */
  spanId: string;
  /** Lowercase hex, or '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP/JSON writes the enum's number (2); this is its name ('SERVER'). */
  kind: SpanKindName;
  /** The resource's service.name attribute, if any. */
  serviceName: string | undefined;
  /** The resource's service.instance.id attribute, if any. */
  serviceInstance: string | undefined;
  /** Integers as numbers (bigint beyond 2^53), arrays as arrays, key-value lists as objects. */
  attributes: Record<string, unknown>;
  /** Nanoseconds since the epoch, as the decimal string OTLP/JSON uses (beyond Number's precision). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  /** OTLP/JSON writes the code's number (or nothing for UNSET); this is its name. */
  status: { code: StatusCodeName; message: string };
}

const STOP_GRACE_MS = 5_000;
const READY_TIMEOUT_MS = 20_000;
const OUTPUT_LIMIT = 64 * 1024;
// What the collector logs (at info, which the config keeps) once every pipeline has started, receivers
// last (service.go in go.opentelemetry.io/collector/service v0.165.0). Waiting for it as well as for the
// port means a port another process took meanwhile is not mistaken for the collector's.
const READY_LINE = 'Everything is ready. Begin running and processing data.';

/** The bin directory of scripts/otelcol.sh: ${BAZAR_TOOLS_DIR:-$HOME/.cache/bazar-tools}/bin. */
export function toolsBinDir(): string {
  const base = process.env.BAZAR_TOOLS_DIR || path.join(os.homedir(), '.cache', 'bazar-tools');
  return path.join(base, 'bin');
}

/** The collector binary, or an error that says how to build it. */
export function otelcolBinary(): string {
  const bin = path.join(toolsBinDir(), 'otelcol');
  if (!existsSync(bin)) {
    throw new Error(
      `the OpenTelemetry Collector is not built: no ${bin} (bash scripts/otelcol.sh builds it, ` +
        'so does bash scripts/test-tools.sh)',
    );
  }
  return bin;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

function configYaml(port: number, tracesFile: string): string {
  // JSON strings are valid YAML double-quoted scalars: safe for any path.
  return `# Written by tools/otelcol/src/collector.ts.
receivers:
  otlp:
    protocols:
      http:
        endpoint: ${JSON.stringify(`127.0.0.1:${port}`)}
processors:
  batch:
    # Spans reach the file quickly (the default waits 200 ms too, or 8192 spans).
    timeout: 200ms
exporters:
  file:
    path: ${JSON.stringify(tracesFile)}
    format: json
    flush_interval: 100ms
service:
  telemetry:
    # No internal metrics server (it would listen on 8888 and collide with any other collector).
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
`;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

async function startOnce(bin: string, workDir: string): Promise<Collector> {
  const port = await freePort();
  mkdirSync(workDir, { recursive: true });
  const tracesFile = path.join(workDir, 'traces.jsonl');
  const configFile = path.join(workDir, 'otelcol.yaml');
  writeFileSync(configFile, configYaml(port, tracesFile));

  const child = spawn(bin, ['--config', configFile], { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let ready = false;
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    ready ||= output.includes(READY_LINE);
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  // A test process that ends without stop() (a crash, process.exit) takes its collector with it.
  const killOnExit = () => {
    if (!exit) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));

  const stop = async (): Promise<void> => {
    if (exit || child.pid === undefined) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (!exit) child.kill('SIGKILL');
        resolve();
      }, STOP_GRACE_MS);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    await exited;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError) throw new Error(`could not start ${bin}: ${spawnError.message}`);
    if (exit) {
      const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
      throw new StartError(
        `the collector exited with ${how} before its OTLP/HTTP receiver listened on 127.0.0.1:${port}; ` +
          `its output:\n${output}`,
        /address already in use/.test(output),
      );
    }
    if (ready && (await canConnect(port))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new StartError(
        `the collector's OTLP/HTTP receiver did not listen on 127.0.0.1:${port} within ` +
          `${READY_TIMEOUT_MS / 1000} s; its output:\n${output}`,
        false,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (child.pid === undefined) throw new Error(`could not start ${bin}: no process id`);
  return { otlpHttpEndpoint: `http://127.0.0.1:${port}`, tracesFile, pid: child.pid, stop };
}

/**
 * Starts the collector (the binary of scripts/otelcol.sh) with its OTLP/HTTP receiver on a free
 * loopback port, and resolves once the receiver accepts connections and the collector has logged that
 * every pipeline runs. The port is picked by listening
 * on port 0 and closing: should another process take it meanwhile, the collector fails to bind and
 * is started again on another port (3 attempts).
 */
export async function startCollector(opts: StartCollectorOptions): Promise<Collector> {
  const bin = otelcolBinary();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(bin, opts.workDir);
    } catch (err) {
      if (!(err instanceof StartError && err.portInUse && attempt < 3)) throw err;
    }
  }
}

// ---------------------------------------------------------------- the file exporter's OTLP/JSON

interface AnyValueJson {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  bytesValue?: string;
  arrayValue?: { values?: AnyValueJson[] };
  kvlistValue?: { values?: KeyValueJson[] };
}
interface KeyValueJson {
  key: string;
  value?: AnyValueJson;
}
interface SpanJson {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number | string;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: KeyValueJson[];
  status?: { code?: number | string; message?: string };
}
interface TracesDataJson {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValueJson[] };
    scopeSpans?: Array<{ spans?: SpanJson[] }>;
  }>;
}

const SPAN_KINDS: readonly SpanKindName[] = [
  'UNSPECIFIED',
  'INTERNAL',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'CONSUMER',
];
const STATUS_CODES: readonly StatusCodeName[] = ['UNSET', 'OK', 'ERROR'];

/**
 * An OTLP enum by name: the file exporter writes its number, and leaves out a zero; the full name
 * (SPAN_KIND_SERVER), which protobuf's JSON mapping also allows, is accepted too.
 */
function enumName<N extends string>(
  value: number | string | undefined,
  names: readonly N[],
  prefix: string,
): N {
  const fallback = names[0] as N;
  if (value === undefined) return fallback;
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const name = names[Number(value)];
    if (name === undefined) throw new Error(`unknown ${prefix}${value}`);
    return name;
  }
  const name = names.find((n) => value === `${prefix}${n}` || value === n);
  if (name === undefined) throw new Error(`unknown ${prefix} value ${value}`);
  return name;
}

function anyValue(v: AnyValueJson | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) {
    const big = BigInt(v.intValue);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.bytesValue !== undefined) return Buffer.from(v.bytesValue, 'base64');
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue !== undefined) return keyValues(v.kvlistValue.values);
  return undefined;
}

function keyValues(list: KeyValueJson[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/**
 * Every span in the file exporter's output, in file order: one OTLP/JSON TracesData object per line
 * (resourceSpans → scopeSpans → spans). A missing file is no spans yet; so is a last line the
 * exporter has not finished writing.
 */
export function readSpans(tracesFile: string): ExportedSpan[] {
  if (!existsSync(tracesFile)) return [];
  const lines = readFileSync(tracesFile, 'utf8').split('\n');
  const spans: ExportedSpan[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let data: TracesDataJson;
    try {
      data = JSON.parse(line) as TracesDataJson;
    } catch (err) {
      if (i === lines.length - 1) return; // being written
      throw new Error(`${tracesFile}:${i + 1}: not JSON: ${(err as Error).message}`, { cause: err });
    }
    for (const rs of data.resourceSpans ?? []) {
      const resource = keyValues(rs.resource?.attributes);
      const serviceName = typeof resource['service.name'] === 'string' ? resource['service.name'] : undefined;
      const instance = resource['service.instance.id'];
      const serviceInstance = typeof instance === 'string' ? instance : undefined;
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            traceId: s.traceId ?? '',
            spanId: s.spanId ?? '',
            parentSpanId: s.parentSpanId ?? '',
            name: s.name ?? '',
            kind: enumName(s.kind, SPAN_KINDS, 'SPAN_KIND_'),
            serviceName,
            serviceInstance,
            attributes: keyValues(s.attributes),
            startTimeUnixNano: String(s.startTimeUnixNano ?? '0'),
            endTimeUnixNano: String(s.endTimeUnixNano ?? '0'),
            status: {
              code: enumName(s.status?.code, STATUS_CODES, 'STATUS_CODE_'),
              message: s.status?.message ?? '',
            },
          });
        }
      }
    }
  });
  return spans;
}
