/**
 * The chart's alert rules seen to fire, and to resolve, in a real Prometheus (Debian's `prometheus`,
 * scripts/test-tools.sh) scraping a real store (the processes of `npm start`, labelled as the chart's
 * ServiceMonitor labels its targets: job = the component, namespace, pod): nothing fires while the
 * store is healthy; the primary stopped under purchases fires BazarErrorBudgetBurnFast; the standby
 * stopped fires BazarStandbyNotStreaming and BazarStrictWritesDegraded, which resolve once it is back.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { byKind, CI, findTool, renderChart } from '../chart/tools.js';
import { StoreControl } from '../../tools/devstack/src/control.js';
import { startStack, type Stack } from '../../tools/devstack/src/stack.js';

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

const NAMESPACE = 'shop';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

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
    });
    control = new StoreControl(stack, path.join(dir, 'policy.json'));
    const render = renderChart(tools.helm, {
      release: NAMESPACE,
      namespace: NAMESPACE,
      set: ['prometheusRule.enabled=true'],
    });
    const groups = (byKind(render.objects, 'PrometheusRule')[0] as unknown as { spec: { groups: unknown[] } })
      .spec.groups;
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
    writeFileSync(
      path.join(dir, 'prometheus.yaml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [path.join(dir, 'rules.yaml')],
        scrape_configs: [
          {
            job_name: 'bazar',
            static_configs: stack.all.map((p) => ({
              targets: [new URL(p.url).host],
              labels: { job: p.service, namespace: NAMESPACE, pod: p.name },
            })),
          },
        ],
      }),
    );
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      tools.prometheus,
      [
        `--config.file=${path.join(dir, 'prometheus.yaml')}`,
        `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; ; i++) {
      const ready = await fetch(`${api}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (i > 300) throw new Error('Prometheus did not get ready');
      await sleep(100);
    }
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

  async function alerts(): Promise<Alert[]> {
    const res = (await (await fetch(`${api}/api/v1/alerts`)).json()) as { data: { alerts: Alert[] } };
    return res.data.alerts;
  }

  async function until(
    what: string,
    cond: (a: Alert[]) => boolean,
    timeoutMs: number,
    during?: () => Promise<unknown>,
  ) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await alerts();
      if (cond(now)) return now;
      if (Date.now() > deadline) {
        throw new Error(
          `${what} within ${timeoutMs} ms; alerts: ${JSON.stringify(now.map((a) => [a.labels['alertname'], a.state]))}`,
        );
      }
      await (during?.() ?? sleep(500));
    }
  }

  const firing = (a: Alert[], name: string) =>
    a.some((x) => x.labels['alertname'] === name && x.state === 'firing');
  const present = (a: Alert[], name: string) => a.some((x) => x.labels['alertname'] === name);
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
      now.map((a) => a.labels['alertname']),
      [],
      'no alert pending or firing',
    );
  });

  it('the primary stopped under purchases: BazarErrorBudgetBurnFast fires', async (t) => {
    if (skip) return t.skip('no helm or prometheus');
    await control.postgres('primary', 'stop');
    try {
      await until(
        'BazarErrorBudgetBurnFast firing',
        (a) => firing(a, 'BazarErrorBudgetBurnFast'),
        60_000,
        async () => {
          assert.equal(await purchase(2), 503);
          await sleep(100);
        },
      );
    } finally {
      await control.postgres('primary', 'start');
    }
    for (let i = 0; (await purchase(2)) !== 200; i++) {
      if (i > 100) throw new Error('purchases did not come back');
      await sleep(200);
    }
  });

  it('the standby stopped: BazarStandbyNotStreaming and BazarStrictWritesDegraded fire, and resolve once it is back', async (t) => {
    if (skip) return t.skip('no helm or prometheus');
    await control.postgres('standby', 'stop');
    try {
      // A strict purchase waits for the standby, then degrades its writer.
      assert.equal(await purchase(3), 200);
      await until(
        'BazarStandbyNotStreaming and BazarStrictWritesDegraded firing',
        (a) => firing(a, 'BazarStandbyNotStreaming') && firing(a, 'BazarStrictWritesDegraded'),
        150_000,
      );
    } finally {
      await control.postgres('standby', 'start');
    }
    await until(
      'both resolved',
      (a) => !present(a, 'BazarStandbyNotStreaming') && !present(a, 'BazarStrictWritesDegraded'),
      90_000,
      async () => {
        // Writers find the standby back on their next commits.
        await purchase(3);
        await sleep(500);
      },
    );
  });
});
