/**
 * Reaching the store from the host: `kubectl port-forward` (as a user does), plain HTTP requests
 * through it, and the parsing of `curl -i` output for the README's own command lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Kube } from './support.js';
import { log } from './support.js';

/** Every port-forward the tier started, so that the end of the tier can stop any left running. */
const running = new Set<PortForward>();
/** The pid of every port-forward ever started (to check that none is left). */
export const portForwardPids: number[] = [];

export class PortForward {
  #child: ChildProcess;
  #exited: Promise<void>;
  #alive = true;
  stderr = '';

  private constructor(
    child: ChildProcess,
    readonly port: number,
    readonly target: string,
  ) {
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.#exited.then(() => {
      this.#alive = false;
      running.delete(this);
    });
    child.stderr?.on('data', (b: Buffer) => {
      this.stderr += b.toString();
    });
  }

  get alive(): boolean {
    return this.#alive;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * `kubectl port-forward -n NS TARGET :REMOTE --address 127.0.0.1` on the host: kubectl picks a free
   * local port and prints it ("Forwarding from 127.0.0.1:PORT -> 8080").
   */
  static async start(kube: Kube, ns: string, target: string, remotePort: number): Promise<PortForward> {
    const child = spawn(
      kube.cluster.toolchain.bin.kubectl,
      ['port-forward', '-n', ns, target, `:${remotePort}`, '--address', '127.0.0.1'],
      { env: kube.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const port = await new Promise<number>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`port-forward ${target}: no "Forwarding from" within 30 s:\n${seen}`));
      }, 30_000);
      child.stdout?.on('data', (b: Buffer) => {
        seen += b.toString();
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(seen);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.stderr?.on('data', (b: Buffer) => {
        seen += b.toString();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`port-forward ${target} exited (${code}):\n${seen}`));
      });
    });
    const pf = new PortForward(child, port, target);
    running.add(pf);
    if (child.pid) portForwardPids.push(child.pid);
    log(`kubectl port-forward -n ${ns} ${target} → 127.0.0.1:${port} (pid ${child.pid})`);
    return pf;
  }

  async stop(): Promise<void> {
    if (!this.#alive) return;
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(killer);
  }
}

/** Stops every port-forward still running; returns how many there were. */
export async function stopAllPortForwards(): Promise<number> {
  const all = [...running];
  await Promise.all(all.map((pf) => pf.stop()));
  return all.length;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: unknown;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One request to `base` (no keep-alive, like curl); headers in lower case. */
export async function request(
  base: string,
  method: string,
  urlPath: string,
  opts: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { connection: 'close', ...opts.headers };
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  const h: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    h[k.toLowerCase()] = v;
  });
  return { status: res.status, headers: h, body: text, json: parseJson(text) };
}

/** The answer in `curl -i` output (status line, headers, blank line, body). */
export function parseCurlI(output: string): Answer {
  const normalised = output.replace(/\r\n/g, '\n');
  const split = normalised.indexOf('\n\n');
  const head = split < 0 ? normalised : normalised.slice(0, split);
  const body = split < 0 ? '' : normalised.slice(split + 2);
  const [statusLine = '', ...lines] = head.split('\n');
  const m = /^HTTP\/[\d.]+ (\d{3})/.exec(statusLine);
  if (!m?.[1]) throw new Error(`not a curl -i answer:\n${output.slice(0, 500)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(m[1]), headers, body, json: parseJson(body) };
}
