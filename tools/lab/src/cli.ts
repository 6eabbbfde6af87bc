/**
 * `npm run lab -- [experiment ...] [--short] [--front URL] [--list]`: see USAGE.
 */
import * as fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { EXPERIMENTS } from './experiments.js';
import { formatOutcome, Lab, labWorkDir, type Experiment } from './lab.js';

const USAGE = `Usage: npm run lab -- [EXPERIMENT ...] [--short] [--front URL] [--list]

Runs the lab's experiments (docs/lab.md) and prints, for each, a table in the shape of the original
lab report (its figure beside Bazar's) and the expected outcomes, each marked ✔ or ✘.
Without --front it starts a store of its own on loopback (ports chosen free, data in a temporary
directory, removed at the end), so that it may stop servers and lag the standby; a running
npm start is left alone.

  EXPERIMENT     run only these (default: all), by name: ${EXPERIMENTS.map((e) => e.id).join(', ')}
  --short        fewer repetitions (about a minute in all; what the tests run)
  --front URL    use this running store's front instead (e.g. kubectl port-forward's
                 http://127.0.0.1:8080); only the experiments that need no knob run: ${EXPERIMENTS.filter(
                   (e) => e.needs === 'front',
                 )
                   .map((e) => e.id)
                   .join(', ')}
  --list         list the experiments and exit
  -h, --help     show this help

Exit codes: 0 every expected outcome was seen; 1 some was not (or an experiment failed to run);
2 a usage error.
`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        short: { type: 'boolean' },
        front: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (v.list) {
    for (const e of EXPERIMENTS)
      process.stdout.write(
        `${e.id.padEnd(14)} ${e.title}${e.needs === 'store' ? '' : '   (works with --front)'}\n`,
      );
    return 0;
  }
  const unknown = parsed.positionals.filter((p) => !EXPERIMENTS.some((e) => e.id === p));
  if (unknown.length > 0) return usageError(`no experiment named ${unknown.join(', ')}`);
  let chosen =
    parsed.positionals.length > 0
      ? EXPERIMENTS.filter((e) => parsed.positionals.includes(e.id))
      : [...EXPERIMENTS];
  if (v.front !== undefined) {
    try {
      new URL(v.front);
    } catch {
      return usageError(`--front must be a URL, got "${v.front}"`);
    }
    const skipped = chosen.filter((e) => e.needs === 'store');
    if (skipped.length > 0) {
      process.stdout.write(
        `Skipped with --front (they need the knobs of a store the lab starts): ${skipped.map((e) => e.id).join(', ')}\n\n`,
      );
    }
    chosen = chosen.filter((e) => e.needs === 'front');
  }

  const workDir = await labWorkDir();
  const options = {
    short: v.short ?? false,
    workDir,
    log: (line: string) => process.stdout.write(`${line}\n`),
  };
  let lab: Lab | undefined;
  const stopOnSignal = (): void => {
    process.stderr.write('\nlab: interrupted, stopping its store …\n');
    void (lab?.close() ?? Promise.resolve())
      .finally(() => fs.rm(workDir, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    lab = v.front !== undefined ? Lab.against(options, v.front) : await Lab.start(options);
    return await runAll(lab, chosen);
  } finally {
    await lab?.close();
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

async function runAll(lab: Lab, chosen: Experiment[]): Promise<number> {
  let missed = 0;
  process.stdout.write('\n');
  for (const [i, e] of chosen.entries()) {
    try {
      const outcome = await e.run(lab);
      process.stdout.write(formatOutcome(EXPERIMENTS.indexOf(e) + 1, e, outcome) + '\n');
      missed += outcome.checks.filter((c) => !c.ok).length;
    } catch (err) {
      missed++;
      process.stdout.write(
        `${i + 1}. ${e.title}: could not run: ${err instanceof Error ? err.message : String(err)}\n\n`,
      );
    }
  }
  process.stdout.write(
    missed === 0
      ? 'Every expected outcome was seen.\n'
      : `${missed} expected outcome(s) not seen (✘ above).\n`,
  );
  return missed === 0 ? 0 : 1;
}

function usageError(message: string): number {
  process.stderr.write(`lab: ${message}\nRun with --help for the options.\n`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lab: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
