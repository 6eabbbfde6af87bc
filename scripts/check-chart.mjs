#!/usr/bin/env node
// Quick chart check for humans and CI, without the test runner:
//   helm lint --strict and helm template for the defaults and every charts/bazar/ci/*-values.yaml,
//   then the k8s/ freshness check of scripts/render-k8s.mjs.
// The full suite (key properties of every rendered object, a strict server-side dry run against a
// local kube-apiserver, helm install/upgrade/uninstall, RBAC as the authorizer sees it, skaffold.yaml
// against its schema) is test/chart: `npm test -- chart`.
//
//   node scripts/check-chart.mjs        exit 0 when everything passes
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { CHART, findTool, renderK8s, run, staleFiles } from './render-k8s.mjs';

const helm = findTool('helm');
if (!helm) {
  console.error('check-chart: helm not found; run scripts/k8s-tools.sh (or set BAZAR_HELM)');
  process.exit(process.env.CI ? 1 : 2);
}

const ciDir = path.join(CHART, 'ci');
const matrix = [
  undefined,
  ...readdirSync(ciDir)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => path.join(ciDir, f)),
];
let failures = 0;
const step = (label, fn) => {
  try {
    const detail = fn();
    console.log(`ok    ${label}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    failures++;
    console.log(`FAIL  ${label}\n${String(err.message).replace(/^/gm, '      ')}`);
  }
};

for (const file of matrix) {
  const name = file ? path.relative(CHART, file) : 'defaults';
  const values = file ? ['--values', file] : [];
  step(`helm lint --strict ${name}`, () => {
    const out = run(helm, ['lint', '--strict', CHART, ...values]);
    if (/\[(WARNING|ERROR)\]/.test(out)) throw new Error(out);
  });
  step(`helm template ${name}`, () => {
    const out = run(helm, ['template', 'bazar', CHART, '--namespace', 'bazar', ...values]);
    return `${(out.match(/^kind: /gm) ?? []).length} objects`;
  });
}
step('k8s/ is up to date (scripts/render-k8s.mjs --check)', () => {
  const problems = staleFiles(renderK8s(helm));
  if (problems.length > 0) throw new Error(`${problems.join('\n')}\nrun: node scripts/render-k8s.mjs`);
});

if (failures > 0) {
  console.error(`check-chart: ${failures} check(s) failed`);
  process.exit(1);
}
console.log('check-chart: all checks passed');
