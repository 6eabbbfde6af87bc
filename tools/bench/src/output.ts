/**
 * Where a run's results go: results.json and the SVG figures in the results directory and, with
 * --docs, docs/performance.md's generated section (between its markers) and docs/perf/.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Comparison } from './compare.js';
import { renderMarkdown, type Report } from './report.js';

export const START = '<!-- bench:results:start -->';
export const END = '<!-- bench:results:end -->';

/** `doc` with the text between the markers replaced by `generated`; throws if the markers are missing. */
export function replaceSection(doc: string, generated: string): string {
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`no ${START} … ${END} section`);
  return doc.slice(0, a + START.length) + '\n' + generated + '\n' + doc.slice(b);
}

/**
 * Formats a generated file the way the repository's Prettier config wants (when Prettier is installed).
 * `configFrom`: where to look the config up, for a file written outside the repository (`--out`).
 */
export async function pretty(file: string, text: string, configFrom = file): Promise<string> {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(configFrom)) ?? {};
    return await prettier.format(text, { ...options, filepath: file });
  } catch {
    return text;
  }
}

export function plainComparison(c: Comparison) {
  const side = (r: Comparison['floor']) => ({
    requests: r.requests,
    rps: r.rps,
    errors: r.errors + r.timeouts + r.non2xx,
    cpuUsPerRequest: r.cpuUsPerRequest,
    cpuByProcess: r.cpu ? Object.fromEntries(r.cpu) : undefined,
  });
  return { ...c, floor: side(c.floor), bazar: side(c.bazar) };
}

/** The figures a results.json says its run drew (none if it is absent, unreadable or older). */
async function previousFigures(resultsFile: string): Promise<string[]> {
  try {
    const previous = JSON.parse(await readFile(resultsFile, 'utf8')) as { figures?: unknown };
    const list = Array.isArray(previous.figures) ? previous.figures : [];
    return list.filter((f): f is string => typeof f === 'string' && /^[\w-]+\.svg$/.test(f));
  } catch {
    return [];
  }
}

export async function writeResults(opts: {
  root: string;
  outDir: string;
  docs: boolean;
  report: Report;
  figures: Record<string, string>;
}): Promise<void> {
  const { outDir, report, figures } = opts;
  await mkdir(outDir, { recursive: true });
  const resultsFile = path.join(outDir, 'results.json');
  if (opts.docs) {
    // Figures this bench drew last time and no longer draws must not linger beside the new ones. Only
    // those: docs/perf/ also holds the figures of --fanout and bench:hit-ratio, which other pages show.
    for (const f of await previousFigures(resultsFile)) {
      if (!(f in figures)) await rm(path.join(outDir, f), { force: true });
    }
  }
  const json = {
    ...report.meta,
    figures: Object.keys(figures),
    comparisons: report.comparisons.map(plainComparison),
    rows: report.rows,
    targets: report.targets,
  };
  // Latency samples are not worth keeping in the file: the table has their percentiles.
  const text = JSON.stringify(json, (k, v: unknown) => (k === 'latencies' ? undefined : v), 2) + '\n';
  await writeFile(resultsFile, await pretty(resultsFile, text));
  for (const [name, svg] of Object.entries(figures)) await writeFile(path.join(outDir, name), svg);
  if (opts.docs) {
    const doc = path.join(opts.root, 'docs', 'performance.md');
    const generated = renderMarkdown(
      report,
      Object.keys(figures).map((f) => `perf/${f}`),
    );
    await writeFile(doc, await pretty(doc, replaceSection(await readFile(doc, 'utf8'), generated)));
  }
}
