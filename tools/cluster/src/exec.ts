/**
 * Running commands: captured (for short tools such as ip, openssl, kubectl) and inside the cluster's
 * namespaces (nsenter). Every child gets a proxy-free environment: the cluster's traffic must never be
 * sent to a proxy, and loopback/netns addresses are the only targets we ever talk to.
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  timeoutMs?: number;
  cwd?: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
    super(`${command} exited with ${result.code}${detail ? `:\n${detail}` : ''}`);
  }
}

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment every cluster process gets: no proxies, a PATH that has runc, iptables, mount. */
export function cleanEnv(extraPath: string[] = [], base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const key of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
    delete env[key];
  }
  env.NO_PROXY = '*';
  env.no_proxy = '*';
  env.PATH = [...extraPath, SYSTEM_PATH, base.PATH ?? ''].filter(Boolean).join(':');
  return env;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? cleanEnv(),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer =
      opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (result.code !== 0 && !opts.allowFailure) {
        reject(new CommandError([cmd, ...args].join(' ').slice(0, 300), result));
      } else {
        resolve(result);
      }
    });
    if (child.stdin) {
      // A command that exits without reading its input must not crash us with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}

/** Paths of the two pinned namespaces every cluster process lives in. */
export interface Namespaces {
  net: string;
  mnt: string;
}

/** `nsenter` arguments that put a command into the cluster's network and mount namespaces. */
export function nsenterArgs(ns: Namespaces, argv: string[], opts: { netOnly?: boolean } = {}): string[] {
  return [`--net=${ns.net}`, ...(opts.netOnly ? [] : [`--mount=${ns.mnt}`]), '--', ...argv];
}

/** Runs a command inside the cluster's namespaces and captures its output. */
export function runIn(ns: Namespaces, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('nsenter', nsenterArgs(ns, argv), opts);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value; the error names what was awaited and the last failure. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  opts: { everyMs?: number; abort?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const aborted = opts.abort?.();
    if (aborted) throw new Error(`while waiting for ${what}: ${aborted}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.slice(0, 400)})` : ''}`,
      );
    }
    await sleep(opts.everyMs ?? 250);
  }
}
