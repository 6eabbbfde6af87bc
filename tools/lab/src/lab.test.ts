/**
 * Every experiment of the lab in its short form, against a store the lab starts, as `npm run lab --
 * --short` runs them: each must run and show every outcome docs/lab.md tells the student to expect.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { EXPERIMENTS } from './experiments.js';
import { formatOutcome, Lab, labWorkDir } from './lab.js';

describe('the lab, short form', { timeout: 300_000 }, () => {
  let workDir: string;
  let lab: Lab;

  before(async () => {
    workDir = await labWorkDir();
    lab = await Lab.start({ short: true, workDir });
  });

  after(async () => {
    await lab?.close();
    await fs.rm(workDir, { recursive: true, force: true });
  });

  for (const [i, experiment] of EXPERIMENTS.entries()) {
    test(`${experiment.id}: ${experiment.title}`, async () => {
      const outcome = await experiment.run(lab);
      const text = formatOutcome(i + 1, experiment, outcome);
      assert.ok(outcome.table.length > 0, 'it measured something');
      assert.ok(outcome.checks.length > 0, 'it checks an expected outcome');
      for (const c of outcome.checks) assert.ok(c.ok, `${c.expected}: seen ${c.seen ?? '?'}\n${text}`);
    });
  }

  test('docs/lab.md has an exercise for every experiment, by the name it runs under', async () => {
    const doc = await fs.readFile(new URL('../../../../docs/lab.md', import.meta.url), 'utf8');
    for (const e of EXPERIMENTS)
      assert.ok(doc.includes(`npm run lab -- ${e.id}`), `docs/lab.md runs ${e.id}`);
  });
});
