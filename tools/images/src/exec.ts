/**
 * Running the build tools (buildah, debootstrap, gcc, tar, unshare). Their output goes to a log file
 * (the build can be long and chatty); a failure throws with the command and the tail of its output,
 * so the cause is in the error without opening the log.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Append stdout and stderr here. */
  logFile?: string;
  /** Return stdout (otherwise it is only logged). */
  capture?: boolean;
  /** Exit statuses besides 0 that are not a failure. */
  allowExit?: number[];
}

export interface RunResult {
  stdout: string;
  status: number;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: number | null,
    readonly tail: string,
  ) {
    super(`${command} failed (${status === null ? 'killed' : `exit ${status}`})${tail ? `:\n${tail}` : ''}`);
  }
}

const TAIL_LINES = 30;

/** The environment a build step sees: the caller's, minus what would leak host state into images. */
export function buildEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // The host's Node trusts its CA bundle through this; inside a chroot that path means something else.
  delete env.NODE_EXTRA_CA_CERTS;
  return { ...env, LC_ALL: 'C.UTF-8', ...extra };
}

export function quote(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function keepTail(lines: string[], chunk: string): void {
  lines.push(...chunk.split('\n').filter((l) => l.length > 0));
  if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = quote([cmd, ...args]);
  let log: WriteStream | undefined;
  if (opts.logFile) {
    log = createWriteStream(opts.logFile, { flags: 'a' });
    log.write(`\n$ ${command}\n`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? buildEnv(),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const out: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => {
      if (opts.capture) out.push(b);
      log?.write(b);
      if (!opts.capture) keepTail(tail, b.toString());
    });
    child.stderr?.on('data', (b: Buffer) => {
      log?.write(b);
      keepTail(tail, b.toString());
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const finish = (err: Error | undefined, result: RunResult): void => {
      if (log) log.end(() => (err ? reject(err) : resolve(result)));
      else if (err) reject(err);
      else resolve(result);
    };
    child.on('error', (err) =>
      finish(new CommandError(command, null, err.message), { stdout: '', status: -1 }),
    );
    child.on('close', (status) => {
      const result = { stdout: Buffer.concat(out).toString(), status: status ?? -1 };
      if (status === 0 || (status !== null && opts.allowExit?.includes(status))) finish(undefined, result);
      else finish(new CommandError(command, status, tail.join('\n')), result);
    });
  });
}

/** stdout of a short command, trimmed. */
export async function output(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const { stdout } = await run(cmd, args, { ...opts, capture: true });
  return stdout.trim();
}
