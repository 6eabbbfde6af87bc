/**
 * `npm run dashboard-shot [-- --out docs/dashboard.png --minutes 4]`: the chart's Grafana dashboard in a
 * screenshot, from real data. It starts a store of its own (the processes of `npm start`, 2 fronts), a
 * real Prometheus (Debian's) scraping it with the labels the chart's ServiceMonitor gives (job = the
 * component, namespace, pod), drives a mixed workload through the fronts with a stretch in the middle
 * where the standby replays 2.5 s late (so the lag, the degraded writes and the fan-out show), then
 * runs every panel's queries over the window and draws them (render.ts: a stand-in for Grafana, which
 * is AGPL and not used here), and screenshots the page with Debian's Chromium (playwright-core).
 * Everything it started is stopped and its temporary directory removed, also on failure.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { StoreControl } from '../../devstack/src/control.js';
import { startStack, type Stack } from '../../devstack/src/stack.js';
import { startStorePrometheus } from './prometheus.js';
import { dashboardHtml, fillVariables, legendOf, type Dashboard, type PanelData } from './render.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const NAMESPACE = 'bazar';
const CHROMIUM = [process.env['BAZAR_CHROMIUM'], '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** Reads, keyed purchases, price changes and restocks through every front until `until` (epoch ms). */
async function workload(stack: Stack, until: number): Promise<number> {
  const admin = { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' };
  let n = 0;
  const client = async (c: number) => {
    for (let i = 0; Date.now() < until; i++) {
      const front = stack.fronts[(c + i) % stack.fronts.length]!.url;
      const book = 1 + ((c * 7 + i) % 7);
      const r = i % 10;
      const res =
        r < 6
          ? fetch(`${front}/info/${book}`, r < 2 ? { headers: { 'cache-control': 'no-cache' } } : {})
          : r < 8
            ? fetch(`${front}/purchase/${book}`, {
                method: 'POST',
                headers: { 'idempotency-key': `shot-${c}-${i}` },
              })
            : r < 9
              ? fetch(`${front}/books/${book}`, {
                  method: 'PATCH',
                  headers: admin,
                  body: JSON.stringify({ price: 10 + (i % 90) }),
                })
              : fetch(`${front}/books/${book}/restock`, {
                  method: 'POST',
                  headers: admin,
                  body: JSON.stringify({ quantity: 3 }),
                });
      await res.then((x) => x.arrayBuffer()).catch(() => undefined);
      n++;
      await sleep(40);
    }
  };
  await Promise.all([0, 1, 2, 3].map(client));
  return n;
}

async function panelData(
  api: string,
  dashboard: Dashboard,
  start: number,
  end: number,
): Promise<PanelData[]> {
  const out: PanelData[] = [];
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    const d: PanelData = { panel, series: [] };
    for (const target of panel.targets ?? []) {
      const query = fillVariables(target.expr, { namespace: NAMESPACE, rateInterval: '30s' });
      const url = `${api}/api/v1/query_range?${new URLSearchParams({ query, start: String(start / 1000), end: String(end / 1000), step: '5' })}`;
      const body = (await (await fetch(url)).json()) as {
        status: string;
        error?: string;
        data?: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
      };
      if (body.status !== 'success') {
        d.error = `${target.refId ?? ''} ${body.error ?? 'query failed'}`;
        continue;
      }
      for (const r of body.data?.result ?? []) {
        d.series.push({
          legend: legendOf(target.legendFormat, r.metric),
          points: r.values
            .map(([t, v]) => [t, Number(v)] as [number, number])
            .filter(([, v]) => Number.isFinite(v)),
        });
      }
    }
    out.push(d);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'docs/dashboard.png' },
      minutes: { type: 'string', default: '4' },
    },
  });
  const minutes = Number(values.minutes);
  if (!(minutes >= 1 && minutes <= 30)) throw new Error('--minutes must be a number from 1 to 30');
  const prometheusBin = onPath('prometheus');
  const chromiumBin = CHROMIUM.find((p): p is string => Boolean(p) && existsSync(p!));
  if (!prometheusBin || !chromiumBin) {
    throw new Error(
      'needs prometheus and Chromium on this machine: bash scripts/test-tools.sh installs both',
    );
  }
  const dashboard = JSON.parse(
    readFileSync(path.join(ROOT, 'charts/bazar/dashboards/bazar.json'), 'utf8'),
  ) as Dashboard;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-dashboard-'));
  let stack: Stack | undefined;
  let prometheus: ChildProcess | undefined;
  try {
    stack = await startStack({
      fronts: 2,
      dataDir: dir,
      fsync: false,
      logLevel: 'warn',
      logDir: path.join(dir, 'logs'),
      policyFile: path.join(dir, 'policy.json'),
    });
    const control = new StoreControl(stack, path.join(dir, 'policy.json'));
    const prom = await startStorePrometheus({
      bin: prometheusBin,
      dir,
      stack,
      namespace: NAMESPACE,
      interval: '2s',
    });
    prometheus = prom.proc;
    const start = Date.now();
    const total = minutes * 60_000;
    console.log(
      `store up, Prometheus at ${prom.api}; ${minutes} min of workload (the standby 2.5 s late in the middle third)`,
    );
    const load = workload(stack, start + total);
    await sleep(total / 3);
    await control.replay({ delayMs: 2500 });
    await sleep(total / 3);
    await control.replay({ delayMs: 0 });
    const requests = await load;
    await sleep(6000);
    const end = Date.now();
    const data = await panelData(prom.api, dashboard, start, end);
    const note =
      `Drawn by npm run dashboard-shot from a real Prometheus scraping npm start's processes (2 fronts) under ${requests} requests ` +
      `over ${minutes} min, the standby replaying 2.5 s late in the middle third; a stand-in for Grafana, which draws the same queries.`;
    const html = path.join(dir, 'dashboard.html');
    writeFileSync(html, dashboardHtml(dashboard, data, note));
    const browser = await chromium.launch({ executablePath: chromiumBin });
    try {
      const page = await browser.newPage({ viewport: { width: 24 * 64 + 24, height: 900 } });
      await page.goto(`file://${html}`);
      const out = path.resolve(values.out);
      await page.screenshot({ path: out, fullPage: true });
      console.log(
        `wrote ${out}: ${data.length} panels, ${data.reduce((n, d) => n + d.series.length, 0)} series`,
      );
    } finally {
      await browser.close();
    }
  } finally {
    prometheus?.kill('SIGTERM');
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
