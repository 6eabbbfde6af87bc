/**
 * The chart's alert rules seen to fire, and to resolve, in a real Prometheus (Debian's `prometheus`,
 * scripts/test-tools.sh) scraping a real store (the processes of `npm start`, labelled as the chart's
 * ServiceMonitor labels its targets: job = the component, namespace, pod): nothing fires while the
 * store is healthy; the primary stopped under purchases fires BazarErrorBudgetBurnFast, then
 * BazarPrimaryUnreachable, which resolves once it is back; the standby
 * stopped fires BazarStandbyNotStreaming and BazarStrictWritesDegraded, which resolve once it is back.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { CI, findTool, renderedRuleGroups } from '../chart/tools.js';
import { StoreControl } from '../../tools/devstack/src/control.js';
import { startStack, type Stack } from '../../tools/devstack/src/stack.js';
import { startStorePrometheus } from '../../tools/dashboard/src/prometheus.js';
import { activeAlerts, isActive, isFiring, untilAlerts, type ActiveAlert } from './alerts.js';

const NAMESPACE = 'shop';
const FOR = { primaryUnreachable: '20s', standbyNotStreaming: '20s', strictWritesDegraded: '20s' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('alert rules in a real Prometheus against a real store', { timeout: 600_000 }, () => {
  let dir: string;
  let stack: Stack;
  let control: StoreControl;
  let prometheus: ChildProcess | undefined;
  let api: string;
  let skip = false;

  before(async () => {
    const tools = { helm: findTool('helm'), prometheus: findTool('prometheus') };
    if (!tools.helm || !tools.prometheus) {
      const message = 'helm (scripts/k8s-tools.sh) and prometheus (bash scripts/test-tools.sh) are needed';
      if (CI) throw new Error(`${message} (CI is set, so this is a failure, not a skip)`);
      console.warn(`\n*** SKIPPED the alerts-fire tests: ${message}\n`);
      skip = true;
      return;
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-prometheus-'));
    stack = await startStack({
      dataDir: dir,
      fsync: false,
      logLevel: 'warn',
      logDir: path.join(dir, 'logs'),
      policyFile: path.join(dir, 'policy.json'),
      // The degraded-writes alert needs writers that degrade (the default refuses instead: no gauge).
      env: { STRICT_STANDBY_LOSS: 'degrade' },
    });
    control = new StoreControl(stack, path.join(dir, 'policy.json'));
    // The alerts this file waits for hold for 20 s rather than their default minute (chart values: each
    // rule's `for`), which the promtool unit tests (test/chart/alerts.test.ts) cover.
    const groups = renderedRuleGroups(tools.helm, {
      release: NAMESPACE,
      namespace: NAMESPACE,
      set: Object.entries(FOR).map(([alert, d]) => `prometheusRule.for.${alert}=${d}`),
    });
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
    const prom = await startStorePrometheus({
      bin: tools.prometheus,
      dir,
      stack,
      namespace: NAMESPACE,
      interval: '1s',
      ruleFiles: [path.join(dir, 'rules.yaml')],
    });
    prometheus = prom.proc;
    api = prom.api;
    // Every target scraped.
    for (let i = 0; ; i++) {
      const targets = (await (await fetch(`${api}/api/v1/targets`)).json()) as {
        data: { activeTargets: Array<{ health: string }> };
      };
      if (
        targets.data.activeTargets.length === stack.all.length &&
        targets.data.activeTargets.every((x) => x.health === 'up')
      )
        break;
      if (i > 300) throw new Error('the targets were not all up');
      await sleep(100);
    }
  });

  after(async () => {
    prometheus?.kill('SIGKILL');
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const alerts = async (): Promise<ActiveAlert[]> =>
    activeAlerts(await (await fetch(`${api}/api/v1/alerts`)).json());
  const until = (
    what: string,
    cond: (a: ActiveAlert[]) => boolean,
    timeoutMs: number,
    between: () => Promise<unknown> = () => sleep(500),
  ) => untilAlerts(alerts, what, cond, timeoutMs, between);
  const purchase = (id: number) =>
    fetch(`${stack.fronts[0]!.url}/purchase/${id}`, { method: 'POST' }).then((r) => r.status);

  it('a healthy store fires nothing', async (t) => {
    if (skip) return t.skip('no helm or prometheus');
    for (let i = 0; i < 50; i++) {
      await fetch(`${stack.fronts[0]!.url}/info/${1 + (i % 7)}`);
      if (i % 10 === 0) assert.equal(await purchase(1 + (i % 7)), 200);
      await sleep(100);
    }
    const now = await alerts();
    assert.deepEqual(
      now.map((a) => a.name),
      [],
      'no alert pending or firing',
    );
  });

  it('the primary stopped under purchases: BazarErrorBudgetBurnFast fires, then BazarPrimaryUnreachable (its for: 20s here) for every writer, which resolves once it is back', async (t) => {
    if (skip) return t.skip('no helm or prometheus');
    await control.postgres('primary', 'stop');
    let firing: ActiveAlert[];
    try {
      const refuse = async () => {
        assert.equal(await purchase(2), 503);
        await sleep(100);
      };
      await until(
        'BazarErrorBudgetBurnFast firing',
        (a) => isFiring(a, 'BazarErrorBudgetBurnFast'),
        60_000,
        refuse,
      );
      firing = await until(
        'BazarPrimaryUnreachable firing',
        (a) => isFiring(a, 'BazarPrimaryUnreachable'),
        120_000,
        refuse,
      );
    } finally {
      await control.postgres('primary', 'start');
    }
    // Every writer polls the primary (the catalog origin and the order processes), no reader does.
    const writers = stack.all
      .filter((p) => p.service === 'order' || (p.service === 'catalog' && p.role === 'origin'))
      .map((p) => p.name);
    assert.deepEqual(
      firing
        .filter((a) => a.name === 'BazarPrimaryUnreachable')
        .map((a) => a.labels.pod)
        .sort(),
      writers.sort(),
    );
    for (let i = 0; (await purchase(2)) !== 200; i++) {
      if (i > 100) throw new Error('purchases did not come back');
      await sleep(200);
    }
    await until('BazarPrimaryUnreachable resolved', (a) => !isActive(a, 'BazarPrimaryUnreachable'), 30_000);
  });

  it('the standby stopped: BazarStandbyNotStreaming and BazarStrictWritesDegraded fire, and resolve once it is back', async (t) => {
    if (skip) return t.skip('no helm or prometheus');
    await control.postgres('standby', 'stop');
    try {
      // A strict purchase waits for the standby, then degrades its writer.
      assert.equal(await purchase(3), 200);
      await until(
        'BazarStandbyNotStreaming and BazarStrictWritesDegraded firing',
        (a) => isFiring(a, 'BazarStandbyNotStreaming') && isFiring(a, 'BazarStrictWritesDegraded'),
        150_000,
      );
    } finally {
      await control.postgres('standby', 'start');
    }
    await until(
      'both resolved',
      (a) => !isActive(a, 'BazarStandbyNotStreaming') && !isActive(a, 'BazarStrictWritesDegraded'),
      90_000,
      async () => {
        // Writers find the standby back on their next commits.
        await purchase(3);
        await sleep(500);
      },
    );
  });
});
