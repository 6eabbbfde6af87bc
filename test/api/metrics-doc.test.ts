/**
 * docs/operations.md's metrics table against what the processes of a running store really export: every
 * bazar_* metric scraped is in the table with its type and labels, and every one in the table is
 * scraped, except those marked "Kubernetes discovery only", which must exist in the services' code.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { bearer, call, startTestStack, type TestStack } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Documented {
  type: string;
  labels: string[];
  kubernetesOnly: boolean;
}

function documented(): Map<string, Documented> {
  const doc = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
  const rows = new Map<string, Documented>();
  for (const line of doc.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`(bazar_[a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!name) continue;
    rows.set(name, {
      type: cells[2]!,
      labels: [...(cells[4] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).sort(),
      kubernetesOnly: (cells[5] ?? '').includes('Kubernetes discovery only'),
    });
  }
  return rows;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sources(full);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [full] : [];
  });
}

/** The bazar_* metric names a text's queries use (histogram series by their metric's name). */
function metricsNamedIn(text: string): Set<string> {
  return new Set(
    [...text.matchAll(/\b(bazar_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, '')),
  );
}

describe('docs/operations.md names every metric the services export, as they export it', () => {
  let t: TestStack;
  let exported: Set<string>;

  before(async () => {
    t = await startTestStack();
    // Some traffic, so that labelled series exist: reads, a purchase, a price change, a lookup.
    const front = t.front(0);
    for (const id of [1, 2]) {
      await call(front, 'GET', `/info/${id}`);
      await call(front, 'GET', `/info/${id}`);
    }
    await call(front, 'POST', '/purchase/1');
    await call(front, 'PATCH', '/books/2', { headers: bearer(t.stack.adminToken), body: { price: 77 } });
  });
  after(async () => t?.stop());

  it('every scraped bazar_* metric is in the table with its type and labels; every other row is Kubernetes-only and in the code', async () => {
    const table = documented();
    assert.ok(table.size > 20, `the table was read (${table.size} rows)`);
    const scraped = new Map<string, { type: string; labels: Set<string>; sampled: boolean }>();
    for (const p of t.stack.all) {
      const text = (await call<string>(p.url, 'GET', '/metrics')).body;
      for (const line of text.split('\n')) {
        const type = /^# TYPE (bazar_[a-z_]+) (\S+)$/.exec(line);
        if (type)
          scraped.set(
            type[1]!,
            scraped.get(type[1]!) ?? { type: type[2]!, labels: new Set(), sampled: false },
          );
        const sample = /^(bazar_[a-z_]+?)(?:_bucket|_sum|_count)?\{([^}]*)\}/.exec(line);
        if (!sample) continue;
        const metric = scraped.get(sample[1]!);
        if (metric) metric.sampled = true;
        for (const l of sample[2]!.matchAll(/([a-z_]+)="/g)) {
          if (!['pod', 'le', 'service'].includes(l[1]!)) metric?.labels.add(l[1]!);
        }
      }
    }
    exported = new Set(scraped.keys());
    for (const [name, { type, labels, sampled }] of scraped) {
      const row = table.get(name);
      assert.ok(row, `${name} (${type}) is exported but not in docs/operations.md`);
      assert.equal(row.type, type, `${name}: the table says ${row.type}`);
      // A labelled metric shows its labels once it has a series (no upstream error, no series).
      if (sampled) assert.deepEqual(row.labels, [...labels].sort(), `${name}: the labels the table names`);
    }
    const code = sources(path.join(ROOT, 'services'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const [name, row] of table) {
      if (scraped.has(name)) continue;
      assert.ok(row.kubernetesOnly, `${name} is in the table but no process exported it`);
      assert.ok(code.includes(`'${name}'`), `${name} (Kubernetes only) is defined in services/`);
    }
  });

  it("the dashboard's queries and the alert rules name only metrics the services export", () => {
    assert.ok(exported, 'the first test scraped the store');
    const kubernetesOnly = new Set(
      [...documented()].filter(([, row]) => row.kubernetesOnly).map(([name]) => name),
    );
    for (const file of ['charts/bazar/dashboards/bazar.json', 'charts/bazar/templates/prometheusrule.yaml']) {
      const names = metricsNamedIn(readFileSync(path.join(ROOT, file), 'utf8'));
      assert.ok(names.size > 5, `${file} names metrics`);
      for (const name of names) {
        assert.ok(
          exported.has(name) || kubernetesOnly.has(name),
          `${file} names ${name}, which no process exports`,
        );
      }
    }
  });
});
