/**
 * The lab: the experiments of the lab report Bazar descends from, and the ones this store adds, each
 * a function that drives a store and returns what it measured in the report's shape (Bazar's figure
 * beside the original's) and the expected outcomes it checked. docs/lab.md walks through them.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreClient, type ClientReply, type FrontEndpoint } from '../../checker/src/client.js';
import { StoreControl } from '../../devstack/src/control.js';
import { startStack, type Stack, type StackOptions } from '../../devstack/src/stack.js';

/** One line of an experiment's table: what, the original report's figure (or ''), Bazar's. */
export type Row = [label: string, original: string, bazar: string];

/** An expected outcome, and whether this run showed it. */
export interface Check {
  expected: string;
  ok: boolean;
  /** What was seen, when it did not hold. */
  seen?: string;
}

export interface Outcome {
  table: Row[];
  checks: Check[];
  notes?: string[];
}

export interface Experiment {
  /** The name to run it by: `npm run lab -- <id>`. */
  id: string;
  title: string;
  /** `front`: only reads and buys through a front (works with --front URL); `store`: needs the knobs. */
  needs: 'front' | 'store';
  run(lab: Lab): Promise<Outcome>;
}

export interface LabOptions {
  /** Fewer repetitions: the short form the tests run. */
  short: boolean;
  /** Data directories of the stores the lab starts go under here. */
  workDir: string;
  log?: (line: string) => void;
}

/** A store the lab drives: the one it started (with its knobs), or a front it was pointed at. */
export class Lab {
  readonly #clients = new Map<number, StoreClient>();
  readonly #extra: Stack[] = [];

  private constructor(
    readonly options: LabOptions,
    readonly fronts: FrontEndpoint[],
    readonly stack: Stack | undefined,
    readonly control: StoreControl | undefined,
  ) {}

  /** Starts a store of its own: 2 fronts, a catalog and an order replica each; the fronts' test hooks on. */
  static async start(options: LabOptions): Promise<Lab> {
    const stack = await startLabStack(options, 'store', 2);
    const control = new StoreControl(stack, policyFileOf(options, 'store'));
    return new Lab(options, endpoints(stack), stack, control);
  }

  /** A running store's front (e.g. through kubectl port-forward): the experiments that need no knob. */
  static against(options: LabOptions, frontUrl: string): Lab {
    return new Lab(options, [{ name: 'front', url: frontUrl.replace(/\/+$/, '') }], undefined, undefined);
  }

  get short(): boolean {
    return this.options.short;
  }

  /** How many times to repeat a measurement: `full`, or `short` in the short form. */
  reps(full: number, short: number): number {
    return this.options.short ? short : full;
  }

  /** A keep-alive client whose home is front `i` (it fails over to the others when that one is down). */
  client(i = 0): StoreClient {
    let c = this.#clients.get(i);
    if (!c) {
      c = new StoreClient({ fronts: this.fronts, home: i, timeoutMs: 10_000, retryHomeAfterMs: 200 });
      this.#clients.set(i, c);
    }
    return c;
  }

  /** One request through front `front`, timed (ms). */
  async timed(
    method: string,
    urlPath: string,
    opts: { front?: number; headers?: Record<string, string>; json?: unknown } = {},
  ): Promise<ClientReply & { ms: number }> {
    const t0 = performance.now();
    const reply = await this.client(opts.front ?? 0).request(method, urlPath, {
      ...(opts.headers ? { headers: opts.headers } : {}),
      ...(opts.json !== undefined ? { json: opts.json } : {}),
    });
    return { ...reply, ms: performance.now() - t0 };
  }

  /** The knobs; an experiment that needs them is only listed when the lab started the store. */
  knobs(): { stack: Stack; control: StoreControl } {
    if (!this.stack || !this.control) throw new Error('this experiment needs the store the lab starts');
    return { stack: this.stack, control: this.control };
  }

  admin(): Record<string, string> {
    return { Authorization: `Bearer ${this.knobs().stack.adminToken}` };
  }

  /** Another store with `fronts` fronts (fan-out), stopped with the lab. */
  async extraStore(name: string, fronts: number): Promise<{ stack: Stack; lab: Lab }> {
    const stack = await startLabStack(this.options, name, fronts);
    this.#extra.push(stack);
    const control = new StoreControl(stack, policyFileOf(this.options, name));
    return { stack, lab: new Lab(this.options, endpoints(stack), stack, control) };
  }

  async stopExtra(stack: Stack): Promise<void> {
    const i = this.#extra.indexOf(stack);
    if (i >= 0) this.#extra.splice(i, 1);
    await stack.stop();
  }

  closeClients(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  async close(): Promise<void> {
    this.closeClients();
    const errors: unknown[] = [];
    for (const s of [...this.#extra, ...(this.stack ? [this.stack] : [])]) {
      await s.stop().catch((err: unknown) => errors.push(err));
    }
    this.#extra.length = 0;
    if (errors.length > 0) throw errors[0];
  }
}

function policyFileOf(options: LabOptions, name: string): string {
  return path.join(options.workDir, name, 'policy.json');
}

function endpoints(stack: Stack): FrontEndpoint[] {
  return stack.fronts.map((f) => ({ name: f.name, url: f.url }));
}

async function startLabStack(options: LabOptions, name: string, fronts: number): Promise<Stack> {
  const dataDir = path.join(options.workDir, name);
  await fs.mkdir(dataDir, { recursive: true });
  const stackOptions: StackOptions = {
    dataDir,
    reset: true,
    fronts,
    catalogReplicas: 1,
    orderReplicas: 1,
    // The lab measures latency against the original's; fsync on, as a real store.
    logLevel: 'warn',
    logDir: path.join(dataDir, 'logs'),
    policyFile: policyFileOf(options, name),
    // The stale-set race experiment switches the fronts' fences off and delays a fill: test hooks.
    envFor: (p): Record<string, string> => (p.service === 'front' ? { TEST_HOOKS: 'true' } : {}),
  };
  options.log?.(`starting a store for the lab (${fronts} fronts) in ${dataDir} …`);
  const stack = await startStack(stackOptions);
  options.log?.(`its fronts: ${stack.fronts.map((f) => f.url).join(', ')} (watch one live at <url>/live)`);
  return stack;
}

/** A fresh directory for the lab's stores (removed by the caller). */
export async function labWorkDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'bazar-lab-'));
}

// ---- figures ----

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function ms(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return x < 10 ? `${x.toFixed(2)} ms` : `${x.toFixed(0)} ms`;
}

export function check(expected: string, ok: boolean, seen?: string): Check {
  return ok || seen === undefined ? { expected, ok } : { expected, ok, seen };
}

/** An experiment's table and checks as text, the report's shape. */
export function formatOutcome(n: number, e: Experiment, o: Outcome): string {
  const labelWidth = Math.max(...o.table.map((r) => r[0].length), 10);
  const origWidth = Math.max(...o.table.map((r) => r[1].length), 'original report'.length);
  const lines = [
    `${n}. ${e.title}   (npm run lab -- ${e.id})`,
    `   ${''.padEnd(labelWidth)}  ${'original report'.padEnd(origWidth)}  Bazar (this machine)`,
    ...o.table.map(
      ([label, original, bazar]) => `   ${label.padEnd(labelWidth)}  ${original.padEnd(origWidth)}  ${bazar}`,
    ),
    ...(o.notes ?? []).map((n) => `   ${n}`),
    ...o.checks.map(
      (c) => `   ${c.ok ? '✔' : '✘'} ${c.expected}${c.ok || !c.seen ? '' : ` — seen: ${c.seen}`}`,
    ),
    '',
  ];
  return lines.join('\n');
}
