/**
 * `npm run trace`'s command line, read without side effects, and the choice of the trace (or the list)
 * it shows among the spans of the collector's file. trace-cli.ts reads the file and prints.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ExportedSpan } from './collector.js';
import { listTraces, type TraceSummary } from './waterfall.js';

/** How many traces --list shows. */
export const LIST_LIMIT = 20;

export const USAGE = `Usage: npm run trace -- [TRACE_ID] [options]

Shows one trace of the store as a waterfall in the terminal: each span (a service's server span,
its calls to other services, its PostgreSQL statements) on the trace's time axis, in call order.
The store exports its spans when started with \`npm start -- --traces\`.

Arguments:
  TRACE_ID         the trace to show: its id, or its first 6 or more hex characters
                   (default: the newest request, a trace whose root span, a server span,
                   has been received)

Options:
  --request ID     the trace of the request with this X-Request-Id (its server spans'
                   bazar.request_id)
  --list           list the ${LIST_LIMIT} newest requests' traces instead
  --all            with --list or by default: the services' own work too (the traces that
                   no request started: polls, background statements)
  --file F         the collector's traces file (default <data dir>/traces/traces.jsonl)
  --data-dir DIR   the store's data directory (default .bazar in the current directory)
  -h, --help       show this help
`;

/** A command line the command refuses (exit 2); the message is shown with the usage. */
export class UsageError extends Error {}

/** A file of spans in which the trace asked for is not (exit 1). */
export class SelectionError extends Error {}

export type TraceQuery =
  | { by: 'newest'; all: boolean }
  | { by: 'id'; prefix: string }
  | { by: 'request'; requestId: string }
  | { by: 'list'; limit: number; all: boolean };

export interface TraceArgs {
  query: TraceQuery;
  /** Absolute. */
  file: string;
  /** Whether the file was named with --file (else it is the data directory's). */
  explicitFile: boolean;
}

/** Throws UsageError for a bad command line; `cwd` resolves relative paths. */
export function parseTraceArgs(argv: string[], cwd: string = process.cwd()): TraceArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        request: { type: 'string' },
        list: { type: 'boolean' },
        all: { type: 'boolean' },
        file: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const positionals = parsed.positionals;
  if (positionals.length > 1) {
    throw new UsageError(`one trace id at most, got ${positionals.length}: ${positionals.join(' ')}`);
  }
  const id = positionals[0];
  const asked = [id !== undefined && 'TRACE_ID', v.request !== undefined && '--request', v.list && '--list'];
  const ways = asked.filter((w): w is string => typeof w === 'string');
  if (ways.length > 1) throw new UsageError(`${ways.join(' and ')} do not go together: give one`);
  const all = v.all ?? false;
  if (all && (id !== undefined || v.request !== undefined)) {
    throw new UsageError(`--all goes with --list or no TRACE_ID, not with ${ways[0]}`);
  }
  if (v.file !== undefined && v['data-dir'] !== undefined) {
    throw new UsageError('--file and --data-dir do not go together: give one');
  }
  if (v.file !== undefined && v.file.trim() === '') throw new UsageError('--file must not be empty');
  const dataDir = v['data-dir'] ?? '.bazar';
  if (dataDir.trim() === '') throw new UsageError('--data-dir must not be empty');

  let query: TraceQuery;
  if (id !== undefined) {
    if (!/^[0-9a-fA-F]{6,32}$/.test(id)) {
      throw new UsageError(`TRACE_ID must be 6 to 32 hex characters (a trace id or its start), got "${id}"`);
    }
    query = { by: 'id', prefix: id.toLowerCase() };
  } else if (v.request !== undefined) {
    if (v.request.trim() === '') throw new UsageError('--request must not be empty');
    query = { by: 'request', requestId: v.request.trim() };
  } else if (v.list) {
    query = { by: 'list', limit: LIST_LIMIT, all };
  } else {
    query = { by: 'newest', all };
  }
  const file =
    v.file !== undefined
      ? path.resolve(cwd, v.file)
      : path.join(path.resolve(cwd, dataDir), 'traces', 'traces.jsonl');
  return { query, file, explicitFile: v.file !== undefined };
}

/** A path as the user would type it from `cwd`: relative when inside it. */
export function display(file: string, cwd: string = process.cwd()): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

const START_HINT = 'start the store with `npm start -- --traces`, then make a request';

/** What to say when the traces file does not exist. */
export function missingFileMessage(args: TraceArgs, cwd: string = process.cwd()): string {
  return args.explicitFile
    ? `no such file: ${display(args.file, cwd)} (${START_HINT}; the traces go to <data dir>/traces/traces.jsonl)`
    : `no traces yet: ${display(args.file, cwd)} does not exist; ${START_HINT}`;
}

export type Selection =
  | {
      kind: 'list';
      /** Newest first: all of them, or (without --all) those a request started or whose root is missing. */
      traces: TraceSummary[];
      limit: number;
      /** How many traces of the services' own work were left out (0 with --all). */
      background: number;
    }
  | {
      kind: 'trace';
      traceId: string;
      /** The trace's spans, in file order. */
      spans: ExportedSpan[];
      /** Something to say besides the trace (e.g. other traces matched too), or undefined. */
      note: string | undefined;
    };

function requestIdOf(span: ExportedSpan): string | undefined {
  const id = span.attributes['bazar.request_id'];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

/**
 * A trace no request started: its root is not a server span (a service's own statement or call, e.g.
 * a poll). A trace whose root has not been received is not known to be one.
 */
export function isBackground(trace: TraceSummary): boolean {
  return trace.root !== undefined && trace.root.kind !== 'SERVER';
}

function traceOf(spans: readonly ExportedSpan[], traceId: string, note?: string): Selection {
  return { kind: 'trace', traceId, spans: spans.filter((s) => s.traceId === traceId), note };
}

/**
 * The trace (or list) `query` names among `spans`; throws SelectionError when there is none (the
 * message names `where`, the file, as it should be shown).
 */
export function selectTrace(spans: readonly ExportedSpan[], query: TraceQuery, where: string): Selection {
  if (spans.length === 0) {
    throw new SelectionError(`no spans in ${where} yet: ${START_HINT} (spans arrive within a few seconds)`);
  }
  const traces = listTraces(spans);
  switch (query.by) {
    case 'list': {
      const shown = query.all ? traces : traces.filter((t) => !isBackground(t));
      return { kind: 'list', traces: shown, limit: query.limit, background: traces.length - shown.length };
    }
    case 'newest': {
      const newest = traces.find((t) => t.root !== undefined && (query.all || !isBackground(t)));
      if (newest === undefined) {
        const background = traces.filter(isBackground).length;
        throw new SelectionError(
          query.all || background === 0
            ? `none of the ${traces.length} trace(s) in ${where} has its root span yet: wait a few seconds, ` +
                'or name one (npm run trace -- --list)'
            : `no request in ${where} yet, only the services' own work (${background} trace(s): ` +
                'npm run trace -- --all shows the newest): make a request to the store',
        );
      }
      return traceOf(spans, newest.traceId);
    }
    case 'id': {
      const matches = traces.filter((t) => t.traceId.startsWith(query.prefix));
      const only = matches[0];
      if (only === undefined) {
        throw new SelectionError(
          `no trace ${query.prefix}${query.prefix.length < 32 ? '…' : ''} in ${where} ` +
            '(npm run trace -- --list shows the newest)',
        );
      }
      if (matches.length > 1) {
        const ids = matches.slice(0, 5).map((t) => t.traceId);
        throw new SelectionError(
          `${query.prefix} starts ${matches.length} trace ids (${ids.join(', ')}` +
            `${matches.length > ids.length ? ', …' : ''}): give more of it`,
        );
      }
      return traceOf(spans, only.traceId);
    }
    case 'request': {
      const ids = new Set(
        spans.filter((s) => s.kind === 'SERVER' && requestIdOf(s) === query.requestId).map((s) => s.traceId),
      );
      const matches = traces.filter((t) => ids.has(t.traceId));
      const newest = matches[0];
      if (newest === undefined) {
        throw new SelectionError(
          `no trace in ${where} has a server span of request ${query.requestId} (attribute bazar.request_id)`,
        );
      }
      const note =
        matches.length > 1
          ? `${matches.length} traces carry request id ${query.requestId}; this is the newest ` +
            `(the others: ${matches
              .slice(1)
              .map((t) => t.traceId)
              .join(', ')})`
          : undefined;
      return traceOf(spans, newest.traceId, note);
    }
  }
}
