/**
 * `npm run trace`: one trace of the store as a waterfall in the terminal.
 *
 *   node dist/tools/otelcol/src/trace-cli.js [TRACE_ID] [--request ID] [--list] [--all] [--file F]
 *        [--data-dir DIR] [--help]
 *
 * Reads the file the collector of `npm start -- --traces` writes (<data dir>/traces/traces.jsonl).
 * Exit 0 when shown, 1 when the file or the trace is not there, 2 for a bad command line.
 */
import { existsSync } from 'node:fs';
import { readSpans } from './collector.js';
import {
  display,
  missingFileMessage,
  parseTraceArgs,
  selectTrace,
  USAGE,
  UsageError,
  type TraceArgs,
} from './trace-select.js';
import { LISTED_ID_LENGTH, renderList, renderTrace } from './waterfall.js';

function main(): number {
  let args: TraceArgs | 'help';
  try {
    args = parseTraceArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`trace: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!existsSync(args.file)) {
    process.stderr.write(`trace: ${missingFileMessage(args)}\n`);
    return 1;
  }
  const where = display(args.file);
  try {
    const selection = selectTrace(readSpans(args.file), args.query, where);
    if (selection.kind === 'list') {
      process.stdout.write(renderList(selection.traces, selection.limit));
      const more = selection.traces.length - selection.limit;
      const left = [
        more > 0 ? `${more} older` : '',
        selection.background > 0
          ? `${selection.background} of the services' own work (--all shows them)`
          : '',
      ].filter((s) => s !== '');
      if (left.length > 0) process.stdout.write(`not shown: ${left.join('; ')}\n`);
      process.stdout.write(
        `npm run trace -- <trace> shows one (the first ${LISTED_ID_LENGTH} characters above will do)\n`,
      );
    } else {
      process.stdout.write(renderTrace(selection.spans));
      if (selection.note !== undefined) process.stderr.write(`trace: ${selection.note}\n`);
    }
    return 0;
  } catch (err) {
    // SelectionError: no such trace; or readSpans: a line of the file that is not OTLP/JSON.
    if (!(err instanceof Error)) throw err;
    process.stderr.write(`trace: ${err.message}\n`);
    return 1;
  }
}

process.exitCode = main();
