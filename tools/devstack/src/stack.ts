/**
 * Launches the whole store on loopback: Postgres (embedded primary + standby unless
 * URLs are given), then catalog and order origins, their replicas, then the fronts.
 * Used by `npm start` (cli.ts) and by the integration and fault tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { startPgCluster, type PgCluster } from './postgres-cluster.js';
import {
  allProcesses,
  assignPorts,
  fixedPorts,
  freePortsNeeded,
  planStack,
  serviceEnv,
  startStages,
  STOP_ORDER,
  type PortAssignment,
  type ProcessSpec,
  type StackPlan,
} from './stack-plan.js';
import { SERVICE_NODE_FLAGS } from '../../../services/shared/src/node-flags.js';
import { seedBooks, type SeedResult } from '../../../services/catalog/src/seed.js';
import type { StorePolicySpec } from '../../../services/shared/src/kubernetes/store-policy.js';

export type ServiceKind = 'front' | 'catalog' | 'order';
export type ServiceRole = 'origin' | 'replica' | 'front';
export type ConsistencyMode = 'strict' | 'session' | 'eventual';

export interface StackOptions {
  /** Number of front processes (default 1). */
  fronts?: number;
  /** Catalog replicas besides the one catalog origin (default 1). */
  catalogReplicas?: number;
  /** Order replicas besides the one order origin (default 1). */
  orderReplicas?: number;
  consistencyMode?: ConsistencyMode;
  /** First front's port; further fronts take the next ports. 0 or absent = any free port. */
  frontPort?: number;
  /** Catalog and order processes take consecutive ports from here; absent = any free ports. */
  servicePortBase?: number;
  /** Holds the embedded Postgres cluster (`<dataDir>/pg`). */
  dataDir: string;
  /** Wipe the embedded Postgres data first. */
  reset?: boolean;
  /** Postgres fsync (default true; tests pass false). */
  fsync?: boolean;
  /** Existing primary; when given, no embedded Postgres is started. */
  databaseUrl?: string;
  /** Existing standby for catalog replica reads and order lookups (default: databaseUrl). */
  replicaDatabaseUrl?: string;
  /** Extra environment for every service process. */
  env?: Record<string, string>;
  /** Extra environment per process (wins over `env`). */
  envFor?: (proc: { service: ServiceKind; role: ServiceRole; name: string }) => Record<string, string>;
  adminToken?: string;
  internalToken?: string;
  logLevel?: string;
  cacheMaxEntries?: number;
  cacheTtlMs?: number;
  /**
   * Every service follows this JSON file (a StorePolicy spec; POLICY_FILE, policy-file-watch.ts), which
   * startStack writes first with the mode (and cache settings) above: change the policy live by
   * rewriting it (control.ts does). Absent = the environment's policy stays.
   */
  policyFile?: string;
  /** The knobs' control server (control.ts): the fronts' live page offers its knobs (LIVE_KNOBS_URL). */
  knobsUrl?: string;
  /** Receives every log line of every child (and `postgres` progress lines). */
  log?: (proc: string, line: string) => void;
  /**
   * Children write straight into `<logDir>/<name>.log` (truncated at stack start, appended on
   * restarts); strongly advised, see ChildService. `log` then gets the lines read back (≤200 ms late).
   */
  logDir?: string;
  /** How long a process may take to answer GET /readyz 200 (default 60 s). */
  readyTimeoutMs?: number;
  /** Grace period after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
  /** Aborts start-up (Ctrl-C while starting): what was started is stopped and startStack rejects. */
  signal?: AbortSignal;
  /**
   * Books to seed beside the lab's seven (services/catalog/src/seed.ts), once the origins have migrated
   * the schema and before the replicas and fronts start. 0 or absent: none (books seeded earlier stay).
   */
  books?: number;
  /** Entry module of a service (default dist/services/<service>/src/main.js). For tests of the launcher. */
  mainFor?: (service: ServiceKind) => string;
}

export interface ServiceProcess {
  name: string;
  service: ServiceKind;
  role: ServiceRole;
  url: string;
  pid(): number | undefined;
  /** Sends a signal (default SIGTERM). Resolves on exit (SIGKILL after the grace period);
   *  SIGSTOP/SIGCONT resolve once sent. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process (stopping it first if it is running) and waits for GET /readyz 200. */
  start(): Promise<void>;
  running(): boolean;
}

export interface Stack {
  fronts: ServiceProcess[];
  catalogs: ServiceProcess[];
  orders: ServiceProcess[];
  all: ServiceProcess[];
  pg?: PgCluster;
  primaryUrl: string;
  standbyUrl: string;
  adminToken: string;
  internalToken: string;
  /** What the seed of `books` did (absent when no books were asked for). */
  seeded?: SeedResult;
  stop(): Promise<void>;
}

const LOG_TAIL = 40;

/** Default entry: dist/services/<service>/src/main.js, beside this compiled tool's dist/tools/. */
function defaultMain(service: ServiceKind): string {
  return fileURLToPath(new URL(`../../../services/${service}/src/main.js`, import.meta.url));
}

/**
 * One service process. With a log file the child writes straight into it (stdout and
 * stderr are the file): a pipe to this launcher would turn into EPIPE when the launcher
 * is killed, and pino's exit-time flushSync retries EPIPE forever, so the orphan would
 * hang instead of exiting on IPC disconnect. The launcher reads the file back for the
 * `log` callback and for error messages. Without a log file, output is piped.
 */
class ChildService implements ServiceProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly tail: string[] = [];
  private fd: number | undefined;
  private fileOpened = false;
  private readOffset = 0;
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private poller: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    readonly service: ServiceKind,
    readonly role: ServiceRole,
    readonly port: number,
    private readonly main: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly sink: ((proc: string, line: string) => void) | undefined,
    private readonly logFile: string | undefined,
    private readonly readyTimeoutMs: number,
    private readonly stopTimeoutMs: number,
    private readonly abort: AbortSignal | undefined,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines the process printed, for error messages. */
  lastLines(): string {
    this.drain();
    return this.tail.length > 0 ? this.tail.join('\n') : '(no output)';
  }

  async start(): Promise<void> {
    if (this.running()) await this.kill('SIGTERM');
    if (!existsSync(this.main)) {
      throw new Error(`${this.name}: ${this.main} does not exist (run \`npm run build\` first)`);
    }
    this.tail.length = 0;
    if (this.logFile && this.fd === undefined) {
      // Each stack run starts a fresh file; restarts within the run append to it.
      if (!this.fileOpened) writeFileSync(this.logFile, '');
      this.fileOpened = true;
      this.fd = openSync(this.logFile, 'a+');
      this.readOffset = fstatSync(this.fd).size;
      this.poller = setInterval(() => this.drain(), 200);
      this.poller.unref();
    }
    const out = this.fd ?? 'pipe';
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, this.main], {
      env: this.env,
      // The IPC channel lets the services exit when this launcher dies (no orphans).
      stdio: ['ignore', out, out, 'ipc'],
      // Own process group: a terminal Ctrl-C reaches only the launcher, which then
      // stops the services in order (fronts first).
      detached: true,
    });
    this.child = child;
    this.event(`--- started pid ${child.pid ?? '?'} at ${new Date().toISOString()} ---`);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.drain();
        this.event(`--- exited (${signal ?? `code ${code}`}) ---`);
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      let buf = '';
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          this.line(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
      stream.on('end', () => {
        if (buf !== '') this.line(buf);
        buf = '';
      });
    }
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => {});
    await Promise.race([this.waitReady(child), spawnError]);
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    child.kill(signal);
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') return;
    // A process frozen by a fault test (SIGSTOP) must wake up to act on the signal.
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    let timer: NodeJS.Timeout | undefined;
    const escalate = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.running()) {
          this.event(`--- no exit ${this.stopTimeoutMs} ms after ${signal}: SIGKILL ---`);
          child.kill('SIGKILL');
        }
        resolve();
      }, this.stopTimeoutMs);
    });
    await Promise.race([this.exited, escalate]);
    clearTimeout(timer);
    await this.exited;
  }

  closeLog(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    this.drain();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** A line of the launcher's own (start, exit): into the file, or straight to the tail and sink. */
  private event(text: string): void {
    if (this.fd === undefined) {
      this.line(text);
      return;
    }
    this.drain();
    writeSync(this.fd, text + '\n');
    this.drain();
  }

  /** Reads what was appended to the log file since last time. */
  private drain(): void {
    if (this.fd === undefined) return;
    const size = fstatSync(this.fd).size;
    if (size < this.readOffset) this.readOffset = 0; // truncated by someone
    const buf = Buffer.alloc(64 * 1024);
    while (this.readOffset < size) {
      const n = readSync(this.fd, buf, 0, Math.min(buf.length, size - this.readOffset), this.readOffset);
      if (n <= 0) break;
      this.readOffset += n;
      this.partial += this.decoder.write(buf.subarray(0, n));
      let nl: number;
      while ((nl = this.partial.indexOf('\n')) >= 0) {
        this.line(this.partial.slice(0, nl));
        this.partial = this.partial.slice(nl + 1);
      }
    }
  }

  private line(text: string): void {
    this.tail.push(text);
    if (this.tail.length > LOG_TAIL) this.tail.shift();
    this.sink?.(this.name, text);
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (child !== this.child || child.exitCode !== null || child.signalCode !== null) {
        await this.exited;
        throw new Error(
          `${this.name} exited during start-up (${child.signalCode ?? `code ${child.exitCode}`}); last output:\n` +
            indent(this.lastLines()),
        );
      }
      const status = await httpStatus(`${this.url}/readyz`, 1000).catch((err: unknown) => {
        last = err instanceof Error ? err.message : String(err);
        return 0;
      });
      if (status === 200) return;
      if (this.abort?.aborted) throw new Error(`${this.name}: start-up aborted`);
      if (status !== 0) last = `GET /readyz answered ${status}`;
      await sleep(100);
    }
    throw new Error(
      `${this.name} was not ready within ${this.readyTimeoutMs} ms (${last}); last output:\n` +
        indent(this.lastLines()),
    );
  }
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const plan = planStack(opts);
  const ports = await reservePorts(opts, plan);
  if (opts.logDir) await fs.mkdir(opts.logDir, { recursive: true });
  if (opts.policyFile) await writePolicyFile(opts.policyFile, initialPolicySpec(opts));
  const launch = new Launch();
  try {
    const db = await startDatabase(opts, ports, launch);
    const procs = createProcesses(opts, plan, ports, db);
    let seeded: SeedResult | undefined;
    await startInStages(plan, procs, launch, opts.signal, async (stage) => {
      // The origins are ready: the schema is migrated. Seed before anything reads the books.
      if (stage === 0 && opts.books) seeded = await seed(opts, db.primaryUrl, opts.books);
    });
    const stack = stackHandle(plan, procs, db, launch);
    if (seeded) stack.seeded = seeded;
    return stack;
  } catch (err) {
    await launch.teardown().catch(() => {});
    throw new Error(`bazar stack failed to start: ${errorText(err)}`, { cause: err });
  }
}

/** The policy file's first content: what the options fix (the rest stays at the services' defaults). */
function initialPolicySpec(opts: StackOptions): StorePolicySpec {
  const cache = {
    ...(opts.cacheMaxEntries !== undefined ? { maxEntries: opts.cacheMaxEntries } : {}),
    ...(opts.cacheTtlMs !== undefined ? { ttlMs: opts.cacheTtlMs } : {}),
  };
  return {
    consistencyMode: opts.consistencyMode ?? 'strict',
    ...(Object.keys(cache).length > 0 ? { cache } : {}),
  };
}

/** Written whole and renamed into place: a service never reads half a file. */
export async function writePolicyFile(file: string, spec: StorePolicySpec): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(spec, null, 2) + '\n');
  await fs.rename(tmp, file);
}

/** The URLs the services use: the embedded pair's or the given ones. */
interface Databases {
  primaryUrl: string;
  standbyUrl: string;
}

/** What start-up has started so far: what a failed start-up or stop() stops. */
class Launch {
  readonly started: ChildService[] = [];
  pg: PgCluster | undefined;
  private stopped = false;

  /** Services stage by stage (STOP_ORDER), their log files, then Postgres. */
  async teardown(): Promise<void> {
    for (const role of STOP_ORDER) {
      await Promise.all(this.started.filter((p) => p.role === role).map((p) => p.kill('SIGTERM')));
    }
    for (const p of this.started) p.closeLog();
    const cluster = this.pg;
    this.pg = undefined;
    await cluster?.stop();
  }

  async stopOnce(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.teardown();
  }
}

/** Given ports must be free (checked up front); the others are found now, all distinct. */
async function reservePorts(opts: StackOptions, plan: StackPlan): Promise<PortAssignment> {
  const fixed = fixedPorts(opts, plan);
  const given = [...fixed.fronts, ...fixed.services];
  await assertPortsFree(given).catch((err: unknown) => {
    throw new Error(`bazar stack failed to start: ${errorText(err)}`);
  });
  const embeddedPostgres = !opts.databaseUrl;
  const free = await freePorts(freePortsNeeded(plan, fixed, embeddedPostgres), given);
  return assignPorts(plan, fixed, free, embeddedPostgres);
}

async function startDatabase(opts: StackOptions, ports: PortAssignment, launch: Launch): Promise<Databases> {
  if (opts.databaseUrl) {
    return { primaryUrl: opts.databaseUrl, standbyUrl: opts.replicaDatabaseUrl ?? opts.databaseUrl };
  }
  // Reserved by reservePorts whenever no databaseUrl is given.
  const { primary, standby } = ports.postgres as { primary: number; standby: number };
  launch.pg = await startPgCluster({
    dataDir: path.join(path.resolve(opts.dataDir), 'pg'),
    primaryPort: primary,
    standbyPort: standby,
    reset: opts.reset ?? false,
    fsync: opts.fsync ?? true,
    log: (line) => opts.log?.('postgres', line),
  });
  return { primaryUrl: launch.pg.primaryUrl, standbyUrl: launch.pg.standbyUrl };
}

/** One ChildService per process, by name; none is started yet. */
function createProcesses(
  opts: StackOptions,
  plan: StackPlan,
  ports: PortAssignment,
  db: Databases,
): Map<string, ChildService> {
  const mainFor = opts.mainFor ?? defaultMain;
  const wiring = { plan, portOf: ports.portOf, ...db, options: opts };
  const make = (s: ProcessSpec): ChildService =>
    new ChildService(
      s.name,
      s.service,
      s.role,
      ports.portOf.get(s.name) ?? 0,
      mainFor(s.service),
      serviceEnv(s, wiring, process.env),
      opts.log,
      opts.logDir ? path.join(opts.logDir, `${s.name}.log`) : undefined,
      opts.readyTimeoutMs ?? 60_000,
      opts.stopTimeoutMs ?? 10_000,
      opts.signal,
    );
  return new Map(allProcesses(plan).map((s) => [s.name, make(s)] as const));
}

/** Seeds the books, saying so on the `seed` log line (npm start shows it). */
async function seed(opts: StackOptions, primaryUrl: string, books: number): Promise<SeedResult> {
  opts.log?.('seed', `seeding ${books.toLocaleString('en-US')} books…`);
  const result = await seedBooks(primaryUrl, books, {
    progress: (done, total) =>
      opts.log?.('seed', `  ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}`),
  });
  opts.log?.(
    'seed',
    result.inserted > 0
      ? `seeded ${result.inserted.toLocaleString('en-US')} books in ${(result.ms / 1000).toFixed(1)} s`
      : `${result.books.toLocaleString('en-US')} seeded books there already: nothing to do`,
  );
  return result;
}

/**
 * Each stage (startStages) starts at once and must be ready before the next; every failure is
 * reported. `afterStage` runs once a stage is ready, before the next starts.
 */
async function startInStages(
  plan: StackPlan,
  procs: Map<string, ChildService>,
  launch: Launch,
  signal: AbortSignal | undefined,
  afterStage?: (index: number) => Promise<void>,
): Promise<void> {
  for (const [index, stage] of startStages(plan).entries()) {
    if (signal?.aborted) throw new Error('start-up aborted');
    const results = await Promise.allSettled(
      stage.map(async (s) => {
        const p = procs.get(s.name) as ChildService;
        launch.started.push(p);
        await p.start();
      }),
    );
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    if (failed.length > 0) throw new Error(failed.map(errorText).join('\n'));
    await afterStage?.(index);
  }
}

function stackHandle(
  plan: StackPlan,
  procs: Map<string, ChildService>,
  db: Databases,
  launch: Launch,
): Stack {
  const get = (s: ProcessSpec): ChildService => procs.get(s.name) as ChildService;
  const fronts = plan.fronts.map(get);
  const catalogs = plan.services.filter((s) => s.service === 'catalog').map(get);
  const orders = plan.services.filter((s) => s.service === 'order').map(get);
  const stack: Stack = {
    fronts,
    catalogs,
    orders,
    all: [...fronts, ...catalogs, ...orders],
    primaryUrl: db.primaryUrl,
    standbyUrl: db.standbyUrl,
    adminToken: plan.adminToken,
    internalToken: plan.internalToken,
    async stop() {
      await launch.stopOnce();
    },
  };
  if (launch.pg) stack.pg = launch.pg;
  return stack;
}

/** Fixed ports asked for must be free: a clear message beats a child's EADDRINUSE. */
async function assertPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`invalid port ${port}`);
    await new Promise<void>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            err.code === 'EADDRINUSE' ? `port ${port} is already in use` : `port ${port}: ${err.message}`,
          ),
        ),
      );
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
    });
  }
}

/**
 * Binds `n` ephemeral ports at once (so they are distinct), then releases them for
 * the children. The kernel hands out ephemeral ports in sequence, so a reuse race
 * within the few seconds of start-up is unlikely.
 */
async function freePorts(n: number, avoid: number[]): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < n) {
      const srv = net.createServer();
      servers.push(srv);
      const port = await new Promise<number>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => {
          const addr = srv.address();
          resolve(typeof addr === 'object' && addr ? addr.port : 0);
        });
      });
      if (!avoid.includes(port)) ports.push(port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
  return ports;
}

function httpStatus(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    // agent: false = no keep-alive socket left behind to hold the event loop.
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
