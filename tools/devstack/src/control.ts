/**
 * The knobs of a running `npm start`, for people (and the lab): the live policy, the processes, the
 * two PostgreSQL servers and the standby's replay. The launcher owns the processes, so the knobs live
 * in it: `serveControl` answers them on loopback (admin token), `npm run ctl` (ctl.ts) and the lab call
 * it. None of this is in the images or the chart: on Kubernetes the StorePolicy is the policy knob and
 * kubectl the rest.
 */
import { timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { specToPolicy, type StorePolicySpec } from '../../../services/shared/src/kubernetes/store-policy.js';
import type { RuntimePolicy } from '../../../services/shared/src/policy.js';
import { readPolicySpec } from '../../../services/shared/src/policy-file-watch.js';
import type { ReplicationState } from './postgres-cluster.js';
import { writePolicyFile, type ServiceProcess, type Stack } from './stack.js';

export const PROCESS_ACTIONS = ['stop', 'start', 'restart', 'kill'] as const;
export type ProcessAction = (typeof PROCESS_ACTIONS)[number];
export const PG_ROLES = ['primary', 'standby'] as const;
export type PgRoleName = (typeof PG_ROLES)[number];
/** The longest replay delay the lag knob takes: a minute is plenty to watch, and bounded to undo. */
export const MAX_REPLAY_DELAY_MS = 60_000;

/** A knob asked for something it cannot do; `status` is the HTTP status the control server answers. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ProcessState {
  name: string;
  service: string;
  role: string;
  url: string;
  running: boolean;
  pid?: number;
  /** The policy the process reports in force (GET /readyz), when it answers. */
  policy?: RuntimePolicy;
  ready?: boolean;
}

export interface ControlStatus {
  processes: ProcessState[];
  /** The policy file's spec (what every process follows). */
  policyFile: { path: string; spec: StorePolicySpec };
  /** Absent with an external database (DATABASE_URL): its servers are not ours to stop or lag. */
  postgres?: ReplicationState;
}

export class StoreControl {
  constructor(
    private readonly stack: Stack,
    readonly policyFile: string,
  ) {}

  async status(): Promise<ControlStatus> {
    const processes = await Promise.all(this.stack.all.map((p) => processState(p)));
    const status: ControlStatus = {
      processes,
      policyFile: { path: this.policyFile, spec: await this.readSpec() },
    };
    if (this.stack.pg) status.postgres = await this.stack.pg.replication();
    return status;
  }

  /**
   * Merges `change` (a StorePolicy spec, possibly partial) into the policy file, then waits until every
   * running process reports it in force. A change the services would refuse is refused here, whole,
   * and the file is left as it was.
   */
  async setPolicy(change: unknown, waitMs = 5000): Promise<{ spec: StorePolicySpec; applied: string[] }> {
    const { problems } = readPolicySpec(change);
    if (problems.length > 0) throw new ControlError(400, `policy refused: ${problems.join('; ')}`);
    const current = await this.readSpec();
    const c = change as StorePolicySpec;
    const spec: StorePolicySpec = {
      ...current,
      ...c,
      ...(c.cache ? { cache: { ...current.cache, ...c.cache } } : {}),
    };
    await writePolicyFile(this.policyFile, spec);
    const want = specToPolicy(spec).change;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const states = await Promise.all(this.stack.all.filter((p) => p.running()).map((p) => processState(p)));
      const behind = states.filter((s) => !s.policy || !matches(s.policy, want, s.service));
      if (behind.length === 0) return { spec, applied: states.map((s) => s.name) };
      if (Date.now() > deadline) {
        throw new ControlError(
          504,
          `written to ${this.policyFile}, but not in force within ${waitMs} ms on: ${behind.map((s) => s.name).join(', ')}`,
        );
      }
      await sleep(50);
    }
  }

  async process(name: string, action: ProcessAction): Promise<ProcessState> {
    const proc = this.stack.all.find((p) => p.name === name);
    if (!proc) {
      throw new ControlError(
        404,
        `no process named "${name}"; the processes: ${this.stack.all.map((p) => p.name).join(', ')}`,
      );
    }
    if (action === 'stop') await proc.kill('SIGTERM');
    else if (action === 'kill') await proc.kill('SIGKILL');
    else if (action === 'start' && proc.running()) throw new ControlError(409, `${name} is already running`);
    else await proc.start(); // start, or restart (start stops it first)
    return processState(proc);
  }

  async postgres(role: PgRoleName, action: 'stop' | 'start'): Promise<ReplicationState> {
    const pg = this.embedded();
    if (role === 'primary') await (action === 'stop' ? pg.stopPrimary() : pg.startPrimary());
    else await (action === 'stop' ? pg.stopStandby() : pg.startStandby());
    return pg.replication();
  }

  /** The lag knob (a delay on every commit's replay) and the pause knob. */
  async replay(change: { delayMs?: unknown; paused?: unknown }): Promise<ReplicationState> {
    const pg = this.embedded();
    const { delayMs, paused } = change;
    if (delayMs === undefined && paused === undefined) throw new ControlError(400, 'give delayMs or paused');
    if (
      delayMs !== undefined &&
      (typeof delayMs !== 'number' ||
        !Number.isInteger(delayMs) ||
        delayMs < 0 ||
        delayMs > MAX_REPLAY_DELAY_MS)
    ) {
      throw new ControlError(
        400,
        `delayMs must be a whole number of milliseconds from 0 to ${MAX_REPLAY_DELAY_MS}`,
      );
    }
    if (paused !== undefined && typeof paused !== 'boolean')
      throw new ControlError(400, 'paused must be true or false');
    const before = await pg.replication();
    if (paused !== undefined && !before.standbyUp) throw new ControlError(409, 'the standby is stopped');
    if (delayMs !== undefined) await pg.setReplayDelay(delayMs);
    if (paused !== undefined) await pg.setReplayPaused(paused);
    return pg.replication();
  }

  private embedded(): NonNullable<Stack['pg']> {
    if (!this.stack.pg) {
      throw new ControlError(
        409,
        'the store runs on an external database (DATABASE_URL): its servers are not ours to control',
      );
    }
    return this.stack.pg;
  }

  private async readSpec(): Promise<StorePolicySpec> {
    try {
      return JSON.parse(await fs.readFile(this.policyFile, 'utf8')) as StorePolicySpec;
    } catch {
      return {};
    }
  }
}

/** Catalog and order processes have no cache: only the fields they use are compared. */
function matches(inForce: RuntimePolicy, want: Partial<RuntimePolicy>, service: string): boolean {
  return Object.entries(want).every(
    ([k, v]) =>
      (service !== 'front' && (k === 'cacheMaxEntries' || k === 'cacheTtlMs')) ||
      inForce[k as keyof RuntimePolicy] === v,
  );
}

async function processState(p: ServiceProcess): Promise<ProcessState> {
  const state: ProcessState = {
    name: p.name,
    service: p.service,
    role: p.role,
    url: p.url,
    running: p.running(),
  };
  const pid = p.pid();
  if (pid !== undefined) state.pid = pid;
  if (!state.running) return state;
  try {
    const res = await fetch(`${p.url}/readyz`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { policy?: RuntimePolicy };
    state.ready = res.status === 200;
    if (body.policy) state.policy = body.policy;
  } catch {
    state.ready = false;
  }
  return state;
}

/** Where a running launcher says its control server is (written beside the admin token). */
export interface ControlFile {
  url: string;
  pid: number;
}

/**
 * The HTTP face of StoreControl on 127.0.0.1 (a free port), every request with the admin token:
 *   GET  /status
 *   PUT  /policy                     body: a StorePolicy spec (partial)
 *   POST /processes/<name>/<stop|start|restart|kill>
 *   POST /postgres/<primary|standby>/<stop|start>
 *   PUT  /postgres/standby/replay    body: { "delayMs": N } and/or { "paused": true|false }
 * Errors answer { "error": { "code", "message" } } as the store's own API does. It listens before the
 * store starts (the fronts' live page is told its URL) and answers 503 until `attach`. Pages served by
 * a loopback origin (the fronts' live page) may call it from the browser (CORS), with the token.
 */
export class ControlServer {
  #control: StoreControl | undefined;
  #expected: Buffer | undefined;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async listen(): Promise<ControlServer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const self = new ControlServer(server, `http://127.0.0.1:${port}`);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => self.handle(req, res));
    return self;
  }

  attach(control: StoreControl, adminToken: string): void {
    this.#control = control;
    this.#expected = Buffer.from(`Bearer ${adminToken}`);
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      origin !== undefined && LOOPBACK_ORIGIN.test(origin)
        ? { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' }
        : {};
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'Access-Control-Allow-Methods': 'GET, PUT, POST',
        'Access-Control-Allow-Headers': 'authorization, content-type',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    const control = this.#control;
    const expected = this.#expected;
    const answer =
      control && expected
        ? handle(control, expected, req)
        : Promise.reject(new ControlError(503, 'the store is still starting'));
    void answer.then(
      ({ status, body }) => send(res, status, body, cors),
      (err: unknown) =>
        err instanceof ControlError
          ? send(res, err.status, { error: { code: codeOf(err.status), message: err.message } }, cors)
          : send(
              res,
              500,
              { error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } },
              cors,
            ),
    );
  }
}

/** http://127.0.0.1:PORT, http://localhost:PORT, http://[::1]:PORT. */
const LOOPBACK_ORIGIN = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;

/** A control server answering `control` at once (tests, the lab). */
export async function serveControl(control: StoreControl, adminToken: string): Promise<ControlServer> {
  const server = await ControlServer.listen();
  server.attach(control, adminToken);
  return server;
}

async function handle(
  control: StoreControl,
  expected: Buffer,
  req: http.IncomingMessage,
): Promise<{ status: number; body: unknown }> {
  const given = Buffer.from(req.headers.authorization ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ControlError(401, 'the admin token is required (Authorization: Bearer <.bazar/admin-token>)');
  }
  const parts = (req.url ?? '/').split('?')[0]!.split('/').filter(Boolean);
  const route = `${req.method} /${parts.join('/')}`;
  if (route === 'GET /status') return { status: 200, body: await control.status() };
  if (route === 'PUT /policy') return { status: 200, body: await control.setPolicy(await jsonBody(req)) };
  if (req.method === 'POST' && parts[0] === 'processes' && parts.length === 3) {
    const action = parts[2] as ProcessAction;
    if (!PROCESS_ACTIONS.includes(action))
      throw new ControlError(404, `actions: ${PROCESS_ACTIONS.join(', ')}`);
    return { status: 200, body: await control.process(decodeURIComponent(parts[1]!), action) };
  }
  if (route === 'PUT /postgres/standby/replay') {
    return { status: 200, body: await control.replay((await jsonBody(req)) as Record<string, unknown>) };
  }
  if (req.method === 'POST' && parts[0] === 'postgres' && parts.length === 3) {
    const [, role, action] = parts as [string, PgRoleName, 'stop' | 'start'];
    if (!PG_ROLES.includes(role) || (action !== 'stop' && action !== 'start')) {
      throw new ControlError(404, 'POST /postgres/<primary|standby>/<stop|start>');
    }
    return { status: 200, body: await control.postgres(role, action) };
  }
  throw new ControlError(404, `no such knob: ${route}`);
}

async function jsonBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new ControlError(413, 'body too large');
    chunks.push(chunk);
  }
  try {
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
    return body;
  } catch {
    throw new ControlError(400, 'the body must be a JSON object');
  }
}

function codeOf(status: number): string {
  return (
    {
      400: 'invalid_body',
      401: 'unauthorized',
      404: 'not_found',
      409: 'conflict',
      413: 'too_large',
      504: 'timeout',
    }[status] ?? 'error'
  );
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    ...extra,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { ServiceProcess };
