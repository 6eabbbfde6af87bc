/**
 * The counts that the docs (README.md, docs/*.md) repeat, each checked against the one place that
 * decides it, so that a changed default makes this test fail instead of leaving a stale figure behind:
 *
 *   pods of a release, and of each workload     charts/bazar/values.yaml (test/cluster/support.ts's
 *                                                chartDefaults and chartPodCount, which the cluster
 *                                                tier also checks the real release against)
 *   images skaffold builds                       skaffold.yaml's build.artifacts
 *   the books of the seed data                   the seed migration in services/shared/src/db/migrations.ts
 *   the processes `npm start` runs               planStack (tools/devstack) of the command line's
 *                                                defaults (parseInvocation with no arguments)
 *   the API-server tier's processes and its      test/kubernetes/kubernetes.test.ts (its kubelet.run
 *   watch-recovery scenarios                     calls; its tests named "watch recovery: ...")
 *   the Kubernetes toolchain's first build time  a measurement: nothing in the repository derives it,
 *                                                so the README states it and every other doc must
 *                                                refer to it instead of giving a figure of its own
 *
 * Each claim is a regular expression over a doc's text (line breaks read as spaces, so a sentence
 * may wrap) whose groups are the figures; every match in every doc must say the true figure, and the
 * docs named in `stated` must still state it, so that rewording a sentence cannot silently retire
 * its check (reword the pattern with it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { MIGRATIONS } from '../../services/shared/src/db/migrations.js';
import { parseInvocation } from '../../tools/devstack/src/cli-options.js';
import { planStack } from '../../tools/devstack/src/stack-plan.js';
import { chartDefaults, chartPodCount } from '../cluster/support.js';

const ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);

const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

/** README.md and every docs/*.md, by path relative to the root. */
const DOCS: ReadonlyMap<string, string> = new Map(
  [
    'README.md',
    ...readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => `docs/${f}`),
  ].map((rel) => [rel, read(rel)]),
);

const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
const MORE_WORDS = ['eleven', 'twelve'];

/** The number a doc writes as `2`, `1,494`, `seven`, `a` or `an`; undefined for any other word. */
function figure(word: string): number | undefined {
  const w = word.toLowerCase();
  if (/^\d[\d,]*$/.test(w)) return Number(w.replaceAll(',', ''));
  if (w === 'a' || w === 'an') return 1;
  const i = [...WORDS, ...MORE_WORDS].indexOf(w);
  return i >= 0 ? i : undefined;
}

interface Match {
  file: string;
  line: number;
  text: string;
  groups: string[];
}

/** Every match of `pattern` (global) in every doc, line breaks read as spaces. */
function matches(pattern: RegExp, files: Iterable<string> = DOCS.keys()): Match[] {
  assert.ok(pattern.global, `${String(pattern)} must be global`);
  const found: Match[] = [];
  for (const file of files) {
    const original = DOCS.get(file);
    assert.ok(original !== undefined, `no doc ${file}`);
    // Same length as the original, so an index is a position in it.
    const text = original.replaceAll('\n', ' ');
    for (const m of text.matchAll(pattern)) {
      found.push({
        file,
        line: original.slice(0, m.index).split('\n').length,
        text: m[0].replace(/\s+/g, ' '),
        groups: m.slice(1).map((g) => g ?? ''),
      });
    }
  }
  return found;
}

interface Claim {
  /** What the figures count. */
  what: string;
  /** Where the true figures come from. */
  source: string;
  /** A sentence that states them: one group per figure (a number, a number word, `a` or `an`). */
  pattern: RegExp;
  /** The true figure of each group. */
  expected: number[];
  /** Docs that state it today: each must still have a match. */
  stated: string[];
  /** Matches whose groups are not numbers at all ("both pods Ready") are not this claim. */
  numbersOnly?: boolean;
}

/** Failures of one claim: one line each, naming the file, the line and the expected figures. */
function check(claim: Claim): string[] {
  const problems: string[] = [];
  const found = matches(claim.pattern);
  for (const m of found) {
    const said = m.groups.map(figure);
    if (claim.numbersOnly && said.some((n) => n === undefined)) continue;
    if (said.length !== claim.expected.length || said.some((n, i) => n !== claim.expected[i])) {
      problems.push(
        `${m.file}:${m.line}: "${m.text}" says ${m.groups.join(', ')}; ${claim.what} is ` +
          `${claim.expected.join(', ')} (${claim.source})`,
      );
    }
  }
  for (const file of claim.stated) {
    if (!found.some((m) => m.file === file)) {
      problems.push(
        `${file}: no sentence matches ${String(claim.pattern)} any more (${claim.what}: ` +
          `${claim.expected.join(', ')}); reword the pattern with the sentence, or drop ${file} from stated`,
      );
    }
  }
  return problems;
}

function assertClaims(claims: Claim[]): void {
  const problems = claims.flatMap(check);
  assert.deepEqual(problems, [], `stale figures in the docs:\n${problems.join('\n')}`);
}

// ------------------------------------------------------------------ the true figures

const chart = chartDefaults();
const pair = chartDefaults('pair');
const VALUES = 'charts/bazar/values.yaml';
/** Patroni's members: the primary and the standbys beside it. */
const patroniMembers = chartDefaults('patroni').standbys + 1;

const skaffold = parseYaml(read('skaffold.yaml')) as { build: { artifacts: Array<{ image: string }> } };

/** The rows the seed migration inserts into books: one `(id, 'title', ...)` tuple per book. */
function seedBooks(): number {
  const seed = MIGRATIONS.filter((m) => /INSERT INTO books\b/i.test(m.sql));
  assert.equal(seed.length, 1, 'one migration seeds the books');
  const rows = seed[0]!.sql.match(/^\s*\(\d+,/gm) ?? [];
  assert.ok(rows.length > 0, 'the seed migration has rows');
  return rows.length;
}

/** What `npm start` with no arguments launches. */
function npmStartPlan(): ReturnType<typeof planStack> {
  const inv = parseInvocation([], {});
  assert.notEqual(inv, 'help');
  if (inv === 'help') throw new Error('unreachable');
  const o = inv.options;
  return planStack({
    fronts: o.fronts,
    catalogReplicas: o.catalogReplicas,
    orderReplicas: o.orderReplicas,
    dataDir: o.dataDir,
  });
}

/**
 * The processes the API-server tier starts, by name without its index (front, catalog-replica, ...):
 * read from its source, where each is a `kubelet.run('name', ...)` or, in a loop over a literal list,
 * `for (const i of [0, 1, 2]) ... kubelet.run(\`name-${i}\`, ...)`. A start written another way is
 * not counted: the total check below then fails and names this function.
 */
function apiServerTierProcesses(): Map<string, number> {
  const src = read('test/kubernetes/kubernetes.test.ts');
  const counts = new Map<string, number>();
  const add = (kind: string, n: number) => counts.set(kind, (counts.get(kind) ?? 0) + n);
  const looped = /for \(const (\w+) of \[([^\]]*)\]\)\s*\{?\s*await kubelet\.run\(\s*`([\w-]+)-\$\{\1\}`/g;
  for (const m of src.matchAll(looped)) add(m[3]!, m[2]!.split(',').filter((x) => x.trim()).length);
  const single = /await kubelet\.run\(\s*'([\w-]+?)(?:-\d+)?'/g;
  for (const m of src.matchAll(single)) add(m[1]!, 1);
  const all = [...src.matchAll(/kubelet\.run\(/g)].length;
  const seen = [...src.matchAll(looped)].length + [...src.matchAll(single)].length;
  assert.equal(
    seen,
    all,
    'every kubelet.run( in test/kubernetes/kubernetes.test.ts is one apiServerTierProcesses() can count',
  );
  return counts;
}

/** Tests of the API-server tier named "watch recovery: ...". */
function watchRecoveryScenarios(): number {
  const src = read('test/kubernetes/kubernetes.test.ts');
  return [...src.matchAll(/^\s*(['"`])watch recovery: /gm)].length;
}

/**
 * A doc cut into what a reader takes as one statement: a sentence of a prose paragraph (it ends at a
 * full stop followed by a space, so "k8s-tools.sh" or "3.22.0" do not end one), a table row, a line
 * of a code block; each with the line it starts on.
 */
function units(original: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let paragraph: Array<{ line: number; text: string }> = [];
  const flush = (): void => {
    if (paragraph.length === 0) return;
    let text = '';
    const starts: number[] = [];
    for (const p of paragraph) {
      starts.push(text.length);
      text += `${p.text} `;
    }
    let from = 0;
    for (const end of [...text.matchAll(/\.\s/g)].map((m) => m.index + 1).concat(text.length)) {
      const sentence = text.slice(from, end).trim();
      if (sentence) {
        const first = starts.filter((s) => s <= from).length - 1;
        out.push({ line: paragraph[Math.max(first, 0)]!.line, text: sentence });
      }
      from = end;
    }
    paragraph = [];
  };
  let inCode = false;
  original.split('\n').forEach((raw, i) => {
    const t = raw.trim();
    if (t.startsWith('```')) {
      flush();
      inCode = !inCode;
    } else if (inCode || t.startsWith('|')) {
      flush();
      out.push({ line: i + 1, text: t });
    } else if (t === '' || t.startsWith('#')) {
      flush();
    } else {
      paragraph.push({ line: i + 1, text: t });
    }
  });
  flush();
  return out;
}

// ------------------------------------------------------------------ the checks

describe('figures the docs repeat (README.md, docs/*.md) are the ones the repository decides', () => {
  it("pods of a release with the chart's defaults, and of each of its workloads", () => {
    const source = VALUES;
    const workloads = [chart.fronts, chart.catalogOrigins, chart.catalogReplicas, chart.orderOrigins];
    assertClaims([
      {
        what: "the pods of a release with the chart's defaults",
        source,
        pattern: /\b(\w+)\s+pods\s+Ready\b/g,
        expected: [chartPodCount(chart)],
        stated: ['docs/kubernetes.md'],
        numbersOnly: true,
      },
      {
        what: "the pods of a release with the chart's defaults",
        source,
        pattern: /every pod \((\w+) with the chart's defaults\)/g,
        expected: [chartPodCount(chart)],
        stated: ['docs/kubernetes.md'],
      },
      {
        what: "the pods of a release with the chart's defaults and postgresql.engine=pair",
        source,
        pattern: /the pair's\s+PostgreSQL primary and standby:\s+(\w+)\s+pods\b/g,
        expected: [chartPodCount(pair)],
        stated: ['docs/reliability.md'],
      },
      {
        what: 'fronts, catalog origins, catalog replicas, order origins, order replicas',
        source,
        pattern:
          /\b(\w+)\s+fronts?,\s+(\w+)\s+catalog\s+origins?(?:,|\s+and)\s+(\w+)\s+catalog\s+replicas?,\s+(\w+)\s+order\s+origins?\s+and\s+(\w+)\s+order\s+replicas?\b/g,
        expected: [...workloads, chart.orderReplicas],
        stated: ['README.md', 'docs/reliability.md'],
      },
      {
        what: 'the catalog pods a port-forwarded front cycles through, and the fronts a write invalidates',
        source,
        pattern:
          /cycles\s+through\s+the\s+(\w+)\s+catalog\s+pods,\s+and\s+a\s+write\s+answers\s+`X-Invalidated: (\d+)\/(\d+)`/g,
        expected: [chart.catalogOrigins + chart.catalogReplicas, chart.fronts, chart.fronts],
        stated: ['README.md'],
      },
      {
        what: 'the fronts a write invalidates',
        source,
        pattern: /`(\d+)\/(\d+)` with the default (\w+) fronts/g,
        expected: [chart.fronts, chart.fronts, chart.fronts],
        stated: ['docs/deploy.md'],
      },
      ...(
        [
          ['front', chart.fronts],
          ['catalog-origin', chart.catalogOrigins],
          ['catalog-replica', chart.catalogReplicas],
          ['order-origin', chart.orderOrigins],
          ['order-replica', chart.orderReplicas],
        ] as const
      ).map(([workload, n]): Claim => ({
        what: `the pods of bazar-${workload}`,
        source,
        pattern: new RegExp(`\`bazar-${workload}\`(?: Deployment)? \\((\\w+) pods?\\b`, 'g'),
        expected: [n],
        stated: ['docs/deploy.md'],
      })),
      {
        what: "Patroni's members",
        source: `${source} (postgresql.patroni.instances)`,
        pattern:
          /(?:`bazar-patroni` of|`postgresql\.patroni\.instances` members \(|chart defaults:|Patroni among them \()\s*(\w+)(?: by default|\s+members)/g,
        expected: [patroniMembers],
        stated: ['docs/deploy.md', 'docs/kubernetes.md', 'docs/reliability.md'],
      },
    ]);
  });

  it('images skaffold builds', () => {
    assertClaims([
      {
        what: 'the images skaffold builds',
        source: 'skaffold.yaml, build.artifacts',
        pattern: /skaffold builds the (\w+) images/g,
        expected: [skaffold.build.artifacts.length],
        stated: ['README.md', 'docs/deploy.md'],
      },
    ]);
  });

  it('books of the seed data', () => {
    assertClaims([
      {
        what: 'the books the migrations seed',
        source: 'services/shared/src/db/migrations.ts',
        pattern: /\b(?:the|store's)\s+(\w+)\s+books\b/gi,
        expected: [seedBooks()],
        stated: ['docs/deploy.md', 'docs/kubernetes.md'],
        numbersOnly: true,
      },
    ]);
  });

  it('processes npm start runs', () => {
    const plan = npmStartPlan();
    const source = 'planStack of npm start with no arguments (tools/devstack)';
    const catalogReplicas = plan.services.filter((s) => s.service === 'catalog' && s.role === 'replica');
    const orderReplicas = plan.services.filter((s) => s.service === 'order' && s.role === 'replica');
    assertClaims([
      {
        what: 'the fronts npm start runs, and the fronts a write invalidates',
        source,
        pattern: /it runs (\w+) fronts?, so\s+a write answers `X-Invalidated: (\d+)\/(\d+)`/g,
        expected: [plan.fronts.length, plan.fronts.length, plan.fronts.length],
        stated: ['README.md'],
      },
      ...(
        [
          ['--fronts N', plan.fronts.length],
          ['--catalog-replicas N', catalogReplicas.length],
          ['--order-replicas N', orderReplicas.length],
        ] as const
      ).map(([flag, n]): Claim => ({
        what: `the default of ${flag}`,
        source,
        pattern: new RegExp(`\\|\\s*\`${flag}\`\\s*\\|\\s*(\\d+)\\s*\\|`, 'g'),
        expected: [n],
        stated: ['README.md'],
      })),
    ]);
    // The names it lists are exactly the processes npm start runs.
    const listed = matches(/name processes:\s+((?:`[\w-]+`,?\s*)+);/g);
    assert.ok(listed.length > 0, 'README.md lists the processes npm start runs ("name processes: ...;")');
    const names = [...plan.fronts, ...plan.services].map((s) => s.name).sort();
    for (const m of listed) {
      const said = [...m.groups[0]!.matchAll(/`([\w-]+)`/g)].map((x) => x[1]!).sort();
      assert.deepEqual(
        said,
        names,
        `${m.file}:${m.line}: the processes of npm start are ${names.join(', ')}`,
      );
    }
    // "the loop alternates between the catalog origin and its replica": one replica.
    for (const m of matches(/the loop alternates between the catalog origin and its replica\b/g)) {
      assert.equal(
        catalogReplicas.length,
        1,
        `${m.file}:${m.line}: "${m.text}" means one catalog replica; npm start runs ${catalogReplicas.length} (${source})`,
      );
    }
  });

  it("the API-server tier's processes and watch-recovery scenarios", () => {
    const procs = apiServerTierProcesses();
    const total = [...procs.values()].reduce((a, b) => a + b, 0);
    const source = 'test/kubernetes/kubernetes.test.ts';
    assert.equal(procs.get('catalog-origin'), 1, 'the text says "catalog origin": one');
    assert.equal(procs.get('order'), 1, 'the text says "order": one');
    assertClaims([
      {
        what: 'the service processes the API-server tier starts',
        source,
        pattern: /Postgres and (\w+) processes/g,
        expected: [total],
        stated: ['docs/kubernetes.md'],
      },
      {
        what: 'the catalog replicas and fronts the API-server tier starts',
        source,
        pattern:
          /the real services as processes \(catalog\s+origin, (\w+) catalog replicas, order, (\w+) fronts\)/g,
        expected: [procs.get('catalog-replica') ?? 0, procs.get('front') ?? 0],
        stated: ['docs/kubernetes.md'],
      },
      {
        what: "the API-server tier's watch-recovery scenarios",
        source: `${source}, its tests named "watch recovery: ..."`,
        pattern: /the (\w+) watch-recovery scenarios/g,
        expected: [watchRecoveryScenarios()],
        stated: ['docs/kubernetes.md'],
      },
    ]);
  });

  it("the Kubernetes toolchain's first build time: stated once, in the README, and referred to elsewhere", () => {
    // A measurement, not something the repository computes, so it cannot be derived here: the
    // README's Tests section states it (in its prose and in its measured CI run) and those must agree;
    // a statement of any other doc that speaks of the toolchain (scripts/k8s-tools.sh) must not give
    // a duration of its own.
    const readme = [
      ...matches(/\b(\d[\d,]*) s the first time on\b/g, ['README.md']),
      ...matches(/\(the toolchain (\d[\d,]*) s;/g, ['README.md']),
    ];
    assert.ok(readme.length >= 2, "README.md states the toolchain's first build time in its Tests section");
    const figures = new Set(readme.map((m) => m.groups[0]));
    assert.equal(
      figures.size,
      1,
      `README.md gives the toolchain's first build time once: ${readme.map((m) => `line ${m.line}: ${m.groups[0]} s`).join('; ')}`,
    );
    const duration = /\b\d[\d,.]*(?:\s*[-–]\s*\d[\d,.]*)?\s*(?:s|seconds?|min|minutes?|h|hours?)\b/;
    const about = /k8s-tools\.sh|\bthe toolchain\b|Kubernetes toolchain/;
    const problems: string[] = [];
    for (const [file, original] of DOCS) {
      if (file === 'README.md') continue;
      for (const u of units(original)) {
        if (about.test(u.text) && duration.test(u.text)) {
          problems.push(
            `${file}:${u.line}: "${u.text}" times the toolchain build; refer to the README's figure`,
          );
        }
      }
    }
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  it("the lines that set RELEASE, NAMESPACE and NAME (the chart's name prefix) are the same in every doc", () => {
    // Written once per block so that each block pastes on its own; the copies must not drift apart.
    // (The cluster tier runs them against the chart's real names for two releases.)
    for (const [what, pattern] of [
      ['RELEASE and NAMESPACE', /^[ \t]*(RELEASE=\S+ NAMESPACE=\S+)/gm],
      ['NAME', /^[ \t]*(case \$RELEASE in .*)$/gm],
    ] as const) {
      const found = [...DOCS].flatMap(([file, text]) =>
        [...text.matchAll(pattern)].map((m) => ({
          file,
          line: text.slice(0, m.index).split('\n').length,
          text: m[1]!,
        })),
      );
      assert.ok(found.length >= 3, `README.md and docs/deploy.md set ${what}`);
      const first = found[0]!;
      for (const f of found) {
        assert.equal(
          f.text,
          first.text,
          `${f.file}:${f.line} sets ${what} unlike ${first.file}:${first.line}`,
        );
      }
    }
  });

  it('the checks are not blind: a changed figure is reported with its file and line', () => {
    const claim: Claim = {
      what: "the pods of a release with the chart's defaults",
      source: VALUES,
      pattern: /\b(\w+)\s+pods\s+Ready\b/g,
      expected: [chartPodCount(chart) + 1],
      stated: ['docs/kubernetes.md'],
      numbersOnly: true,
    };
    const problems = check(claim);
    assert.ok(problems.length > 0, 'a wrong expected figure is reported');
    assert.match(
      problems[0]!,
      /^docs\/kubernetes\.md:\d+: ".*pods Ready" says \d+; .* is \d+ \(charts\/bazar\/values\.yaml\)$/,
    );
    const gone = check({ ...claim, pattern: /no doc says this, ever (\d+)/g });
    assert.match(gone.join('\n'), /docs\/kubernetes\.md: no sentence matches/);
  });
});
