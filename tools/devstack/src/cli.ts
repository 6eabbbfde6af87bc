/**
 * `npm start`: the whole store on loopback with one command.
 *
 *   node dist/tools/devstack/src/cli.js [--fronts N] [--catalog-replicas N] [--order-replicas N]
 *        [--port P] [--mode strict|session|eventual] [--data-dir DIR] [--reset] [--traces] [--books N]
 *        [--help]
 *
 * DATABASE_URL (+ DATABASE_REPLICA_URL) in the environment = use that Postgres, no embedded one.
 * Ctrl-C (SIGINT) or SIGTERM stops everything; a second Ctrl-C forces it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  logDirOf,
  parseInvocation,
  stackOptions,
  USAGE,
  UsageError,
  type Invocation,
} from './cli-options.js';
import { childLine, display, errorText, readyMessage, startingMessage } from './cli-output.js';
import { ControlServer, StoreControl, type ControlFile } from './control.js';
import { startStack, type Stack } from './stack.js';
import { startCollector, type Collector } from '../../otelcol/src/collector.js';

async function main(): Promise<number> {
  const inv = readCommandLine(process.argv.slice(2));
  if (typeof inv === 'number') return inv;
  if (inv.options.reset) await wipeDataDir(inv.options.dataDir);
  const store = new StoreRun(logDirOf(inv.options));
  store.stopOnSignals();
  const t0 = Date.now();
  process.stdout.write(startingMessage(inv));
  const stack = await store.start(inv);
  if (typeof stack === 'number') return stack;
  // For the README's curl block: TOKEN=$(cat .bazar/admin-token). Only the owner may read it.
  await fs.writeFile(path.join(inv.options.dataDir, 'admin-token'), stack.adminToken, { mode: 0o600 });
  await store.serveKnobs(inv.options.dataDir);
  process.stdout.write(readyMessage(stack, inv, store.logDir, Date.now() - t0));
  if (store.collector) process.stdout.write(tracesMessage(store.collector));
  // Stay up until a signal; the children's IPC channels keep the event loop alive.
  return new Promise<number>(() => {});
}

/** Where --traces puts the spans, and how to look at them. */
function tracesMessage(collector: Collector): string {
  return [
    `  Traces:         every service exports its spans to ${collector.otlpHttpEndpoint} (an OpenTelemetry`,
    `                  Collector), written to ${display(collector.tracesFile)}`,
    '  npm run trace                    the newest trace, as a waterfall',
    '  npm run trace -- --list          the newest traces',
    '',
  ].join('\n');
}

/** The invocation, or the exit code when there is nothing to start: 2 for a usage error, 0 for --help. */
function readCommandLine(argv: string[]): Invocation | number {
  let inv: Invocation | 'help';
  try {
    inv = parseInvocation(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bazar: ${err.message}\nRun with --help for the options.\n`);
    return 2;
  }
  if (inv === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  return inv;
}

async function wipeDataDir(dataDir: string): Promise<void> {
  await fs.rm(dataDir, { recursive: true, force: true });
  process.stdout.write(`Wiped ${display(dataDir)}\n`);
}

/**
 * The store this command runs and how it ends: the first Ctrl-C (or SIGTERM) aborts start-up or
 * stops the store in order; a second one forces the exit.
 */
class StoreRun {
  private stack: Stack | undefined;
  private knobs: { server: ControlServer; file: string | undefined } | undefined;
  /** The local OpenTelemetry Collector of --traces. */
  collector: Collector | undefined;
  private stopping: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private signals = 0;
  private lastSignalAt = 0;

  constructor(readonly logDir: string) {}

  /** The started stack, or the exit code when it did not start (0 when stopped by a signal). */
  async start(inv: Invocation): Promise<Stack | number> {
    try {
      const knobs = await this.listenKnobs();
      if (inv.options.traces) {
        this.collector = await startCollector({ workDir: path.join(inv.options.dataDir, 'traces') });
      }
      this.stack = await startStack(
        stackOptions(inv, {
          signal: this.abort.signal,
          log: (proc, line) => this.showChildLine(proc, line),
          knobsUrl: knobs.url,
          ...(this.collector ? { otlpEndpoint: this.collector.otlpHttpEndpoint } : {}),
        }),
      );
      return this.stack;
    } catch (err) {
      this.knobs?.server.close();
      await this.collector?.stop();
      if (this.abort.signal.aborted) {
        process.stdout.write('stopped\n');
        return 0;
      }
      process.stderr.write(`bazar: ${errorText(err)}\n`);
      process.stderr.write(`Logs: ${display(this.logDir)}/\n`);
      return 1;
    }
  }

  /**
   * The knobs' control server (`npm run ctl`, the fronts' live page): it listens before the store
   * starts, so that the fronts can be told its URL, and answers once the store is up.
   */
  async listenKnobs(): Promise<ControlServer> {
    const server = await ControlServer.listen();
    this.knobs = { server, file: undefined };
    return server;
  }

  /** Attaches the started store to the knobs, and says where they are in <data dir>/control.json. */
  async serveKnobs(dataDir: string): Promise<void> {
    const stack = this.stack as Stack;
    const knobs = this.knobs as { server: ControlServer; file: string | undefined };
    knobs.server.attach(new StoreControl(stack, path.join(dataDir, 'policy.json')), stack.adminToken);
    const file = path.join(dataDir, 'control.json');
    const content: ControlFile = { url: knobs.server.url, pid: process.pid };
    await fs.writeFile(file, JSON.stringify(content) + '\n', { mode: 0o600 });
    knobs.file = file;
  }

  stopOnSignals(): void {
    process.on('SIGINT', (sig) => this.onSignal(sig));
    process.on('SIGTERM', (sig) => this.onSignal(sig));
  }

  private showChildLine(proc: string, line: string): void {
    const shown = childLine(proc, line, {
      up: this.stack !== undefined && !this.stopping,
      logDir: this.logDir,
    });
    if (shown) process[shown.stream].write(shown.text);
  }

  private onSignal(sig: NodeJS.Signals): void {
    const now = Date.now();
    // One Ctrl-C can arrive twice (from the terminal and forwarded by a wrapper): not a "second" one.
    if (this.signals > 0 && now - this.lastSignalAt < 300) return;
    this.signals += 1;
    this.lastSignalAt = now;
    if (this.signals === 1) this.stopInOrder();
    else this.forceExit(sig);
  }

  private stopInOrder(): void {
    this.abort.abort();
    // During start-up startStack notices the abort, tears down and rejects (handled in start()).
    if (!this.stack) return;
    this.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`bazar: stop failed: ${errorText(err)}\n`);
        process.exit(1);
      },
    );
  }

  private stop(): Promise<void> {
    this.stopping ??= (async () => {
      process.stdout.write('\nStopping…\n');
      if (this.knobs) {
        this.knobs.server.close();
        if (this.knobs.file) await fs.rm(this.knobs.file, { force: true });
      }
      await this.stack?.stop();
      // After the services: their last spans are flushed on the way out.
      await this.collector?.stop();
      process.stdout.write('stopped\n');
    })();
    return this.stopping;
  }

  /**
   * Services exit when our IPC channel closes and Postgres is stopped by its detached reaper
   * once this process is gone; SIGKILL the services anyway.
   */
  private forceExit(sig: NodeJS.Signals): never {
    process.stderr.write(`bazar: ${sig} again, forcing exit\n`);
    for (const p of this.stack?.all ?? []) {
      const pid = p.pid();
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    process.exit(130);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bazar: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
