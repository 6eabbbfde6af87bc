/** What the checker's long mode prints and writes after a run; pure, so its format is tested. */
import type { StaleRead, ViolationKind } from './check.js';
import type { FrontEndpoint } from './client.js';
import type { CheckerOptions } from './cli-options.js';
import type { CheckedRun } from './run.js';

export function runningLine(options: CheckerOptions, fronts: readonly FrontEndpoint[]): string {
  return (
    `running ${options.clients} clients for ${options.duration} through ${fronts.map((f) => f.url).join(', ')} on books ${options.books.join(',')}` +
    (options.chaos ? `, a fault every ${options.chaos}` : '')
  );
}

/** Answered = 200 or out_of_stock; anything else is counted by status and error code. */
export function availabilityLine(run: Pick<CheckedRun, 'recorded' | 'settled' | 'settledReplayed'>): string {
  const failed = run.recorded.filter((o) => o.status !== 200 && o.error !== 'out_of_stock');
  return (
    `availability: ${run.recorded.length - failed.length}/${run.recorded.length} operations answered 200 or out_of_stock` +
    (failed.length ? ` (${summarize(failed.map((o) => `${o.status} ${o.error ?? ''}`.trim()))})` : '') +
    `; ${run.settled} unknown outcomes settled by key (${run.settledReplayed} had committed)`
  );
}

/** Undefined when no read was behind an acknowledged write. */
export function stalenessLine(
  stale: readonly StaleRead[],
  kinds: readonly ViolationKind[],
): string | undefined {
  if (stale.length === 0) return undefined;
  return (
    `staleness: ${stale.length} reads behind an acknowledged write, up to ${Math.max(...stale.map((s) => s.versionsBehind))} versions / ` +
    `${Math.max(...stale.map((s) => s.staleForMs)).toFixed(0)} ms${kinds.includes('stale-read') ? '' : ' (allowed in eventual mode)'}`
  );
}

export function summarize(items: string[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} × ${k}`).join(', ');
}

/** The --json file: the report, the full history and the database facts (maps as objects). */
export function jsonReport(run: Pick<CheckedRun, 'report' | 'history' | 'facts'>): string {
  return JSON.stringify(
    { report: run.report, history: run.history, facts: serializeFacts(run.facts) },
    null,
    1,
  );
}

function serializeFacts(facts: {
  initial: Map<number, unknown>;
  final: Map<number, unknown>;
  orders: unknown[];
  restocks?: unknown[];
}) {
  return {
    initial: Object.fromEntries(facts.initial),
    final: Object.fromEntries(facts.final),
    orders: facts.orders,
    restocks: facts.restocks ?? [],
  };
}
