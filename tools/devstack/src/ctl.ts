/**
 * `npm run ctl -- <command>`: turns the knobs of a running `npm start` (control.ts), from another
 * terminal. It finds the store through <data dir>/control.json and <data dir>/admin-token.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ControlFile, ControlStatus, ProcessState } from './control.js';
import type { ReplicationState } from './postgres-cluster.js';

export const CTL_USAGE = `Usage: npm run ctl -- <command> [--data-dir DIR]

Turns the knobs of the store that \`npm start\` runs, while it runs (from another terminal).

Commands:
  status                          every process (running, ready, the policy it has in force),
                                  the two PostgreSQL servers and the standby's replay
  policy [--mode M] [--cache-max N] [--cache-ttl-ms N] [--balancing B]
         [--invalidation-timeout-ms N]
                                  change the live policy: written to <data dir>/policy.json, which
                                  every process follows; returns once all have it in force
                                  (M: strict | session | eventual; B: round-robin | random)
  stop|start|restart|kill NAME    a process by name (see status: front-0, catalog-origin-0,
                                  catalog-replica-0, order-origin-0, ...); stop = SIGTERM (ordered
                                  shutdown), kill = SIGKILL
  stop|start primary|standby      a PostgreSQL server (pg_ctl stop -m fast / start)
  lag MS                          the standby applies each commit MS ms after the primary made it
                                  (recovery_min_apply_delay; 0 = off, at most 60000)
  pause | resume                  pause or resume the standby's replay (pg_wal_replay_pause)

Options:
  --data-dir DIR                  the store's data directory (default .bazar, as npm start)
  -h, --help                      show this help

Exit codes: 0 done; 1 the store refused or failed the command (its message is printed);
2 a usage error; 3 no store runs from that data directory.
`;

const POLICY_FLAGS = {
  mode: { type: 'string' },
  'cache-max': { type: 'string' },
  'cache-ttl-ms': { type: 'string' },
  balancing: { type: 'string' },
  'invalidation-timeout-ms': { type: 'string' },
} as const;

export class CtlUsageError extends Error {}

/** One call to the control server: what to send, and how to show its answer. */
export interface CtlRequest {
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  body?: unknown;
  show: (answer: unknown) => string;
}

/** The command line as a request, or 'help'. Throws CtlUsageError. */
export function parseCtl(argv: string[]): { request: CtlRequest; dataDir: string } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { ...POLICY_FLAGS, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new CtlUsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const dataDir = path.resolve(v['data-dir'] ?? '.bazar');
  const [command, arg, ...extra] = parsed.positionals;
  if (command === undefined) throw new CtlUsageError('a command is required');
  const policyFlagsGiven = Object.keys(POLICY_FLAGS).filter((k) => v[k as keyof typeof v] !== undefined);
  if (command !== 'policy' && policyFlagsGiven.length > 0) {
    throw new CtlUsageError(`--${policyFlagsGiven[0]} belongs to the policy command`);
  }
  const noMore = (n: number): void => {
    const rest = [arg, ...extra].slice(n).filter((x) => x !== undefined);
    if (rest.length > 0)
      throw new CtlUsageError(`unexpected argument(s) after ${command}: ${rest.join(' ')}`);
  };
  let request: CtlRequest;
  switch (command) {
    case 'status':
      noMore(0);
      request = { method: 'GET', path: '/status', show: (a) => showStatus(a as ControlStatus) };
      break;
    case 'policy': {
      noMore(0);
      const spec = policyChange(v);
      if (Object.keys(spec).length === 0)
        throw new CtlUsageError(
          'policy: give at least one of --mode, --cache-max, --cache-ttl-ms, --balancing, --invalidation-timeout-ms',
        );
      request = {
        method: 'PUT',
        path: '/policy',
        body: spec,
        show: (a) => {
          const { spec: file, applied } = a as { spec: unknown; applied: string[] };
          return `policy now ${JSON.stringify(file)}\nin force on ${applied.length} processes: ${applied.join(', ')}\n`;
        },
      };
      break;
    }
    case 'stop':
    case 'start':
    case 'restart':
    case 'kill': {
      if (arg === undefined)
        throw new CtlUsageError(`${command} needs a process name (or primary | standby)`);
      noMore(1);
      if (arg === 'primary' || arg === 'standby') {
        if (command !== 'stop' && command !== 'start')
          throw new CtlUsageError(`the ${arg} can be stopped and started`);
        request = {
          method: 'POST',
          path: `/postgres/${arg}/${command}`,
          show: (a) =>
            `${arg} ${command === 'stop' ? 'stopped' : 'started'}\n${showPostgres(a as ReplicationState)}`,
        };
      } else {
        request = {
          method: 'POST',
          path: `/processes/${encodeURIComponent(arg)}/${command}`,
          show: (a) => `${showProcess(a as ProcessState)}\n`,
        };
      }
      break;
    }
    case 'lag': {
      noMore(1);
      if (arg === undefined || !/^\d+$/.test(arg))
        throw new CtlUsageError('lag needs a whole number of milliseconds (0 = off)');
      request = {
        method: 'PUT',
        path: '/postgres/standby/replay',
        body: { delayMs: Number(arg) },
        show: (a) => showPostgres(a as ReplicationState),
      };
      break;
    }
    case 'pause':
    case 'resume':
      noMore(0);
      request = {
        method: 'PUT',
        path: '/postgres/standby/replay',
        body: { paused: command === 'pause' },
        show: (a) => showPostgres(a as ReplicationState),
      };
      break;
    default:
      throw new CtlUsageError(`unknown command "${command}"`);
  }
  return { request, dataDir };
}

function policyChange(v: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const cache: Record<string, number> = {};
  const num = (flag: string): number | undefined => {
    const raw = v[flag];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string' || !/^\d+$/.test(raw))
      throw new CtlUsageError(`--${flag} must be a whole number, got "${String(raw)}"`);
    return Number(raw);
  };
  if (v['mode'] !== undefined) spec['consistencyMode'] = v['mode'];
  if (v['balancing'] !== undefined) spec['loadBalancing'] = v['balancing'];
  const max = num('cache-max');
  const ttl = num('cache-ttl-ms');
  const inv = num('invalidation-timeout-ms');
  if (max !== undefined) cache['maxEntries'] = max;
  if (ttl !== undefined) cache['ttlMs'] = ttl;
  if (Object.keys(cache).length > 0) spec['cache'] = cache;
  if (inv !== undefined) spec['invalidationTimeoutMs'] = inv;
  return spec;
}

function showProcess(p: ProcessState): string {
  const state = !p.running ? 'stopped' : p.ready ? 'ready' : 'not ready';
  const policy = p.policy
    ? `${p.policy.consistencyMode}${p.service === 'front' ? `, cache ${p.policy.cacheMaxEntries} × ${p.policy.cacheTtlMs} ms, ${p.policy.loadBalancing}` : ''}`
    : '';
  return `${p.name.padEnd(20)} ${state.padEnd(10)} ${(p.pid ? `pid ${p.pid}` : '').padEnd(10)} ${p.url.padEnd(24)} ${policy}`.trimEnd();
}

function showPostgres(r: ReplicationState): string {
  const replay = r.standbyUp
    ? `replay ${r.replayPaused ? 'PAUSED' : 'running'}, delay ${r.replayDelayMs} ms`
    : 'replay: standby stopped';
  const stream = r.streaming
    ? `streaming (${r.streaming.syncState}), ${r.streaming.replayLagBytes} bytes not yet applied` +
      (r.streaming.replayLagMs !== null ? `, replay lag ${Math.round(r.streaming.replayLagMs)} ms` : '')
    : r.primaryUp && r.standbyUp
      ? 'not streaming yet'
      : 'not streaming';
  return `postgres: primary ${r.primaryUp ? 'up' : 'STOPPED'}, standby ${r.standbyUp ? 'up' : 'STOPPED'}; ${replay}; ${stream}\n`;
}

function showStatus(s: ControlStatus): string {
  return [
    ...s.processes.map(showProcess),
    '',
    s.postgres ? showPostgres(s.postgres).trimEnd() : 'postgres: external (DATABASE_URL), no knobs',
    `policy file ${s.policyFile.path}: ${JSON.stringify(s.policyFile.spec)}`,
    '',
  ].join('\n');
}

/** Sends the request to the store running from dataDir; the exit code and what to print. */
export async function runCtl(
  request: CtlRequest,
  dataDir: string,
): Promise<{ code: number; out: string; err: string }> {
  let control: ControlFile;
  let token: string;
  try {
    control = JSON.parse(await fs.readFile(path.join(dataDir, 'control.json'), 'utf8')) as ControlFile;
    token = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  } catch {
    return { code: 3, out: '', err: `no store runs from ${dataDir} (start one with npm start)\n` };
  }
  let res: Response;
  try {
    res = await fetch(`${control.url}${request.path}`, {
      method: request.method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
      signal: AbortSignal.timeout(120_000),
    });
  } catch {
    return {
      code: 3,
      out: '',
      err: `no store answers at ${control.url} (pid ${control.pid}); is npm start still running?\n`,
    };
  }
  const answer: unknown = await res.json();
  if (!res.ok) {
    const message = (answer as { error?: { message?: string } }).error?.message ?? JSON.stringify(answer);
    return { code: 1, out: '', err: `${message}\n` };
  }
  return { code: 0, out: request.show(answer), err: '' };
}
