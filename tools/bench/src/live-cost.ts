/**
 * `npm run bench -- --live-cost`: what the fronts' live page (GET /live) costs the requests. One store,
 * two fronts on the same catalog and order pods: front-0 with the page (LIVE_PAGE, the default), front-1
 * without it (LIVE_PAGE=false). Each path is driven through one front, then the other, in alternating
 * rounds (drift on a shared machine hits both alike), first with nobody watching, then with a page
 * connected to front-0 (what watching costs, for information). Figures are the front's own CPU per
 * request (read from /proc around each run, the steadiest figure here) and throughput, as ratios of the
 * page's front to the other, pooled and per round.
 */
import { compare, formatRatio, type Comparison } from './compare.js';
import type { LadderOptions } from './options.js';
import type { LoadSpec } from './load.js';
import type { BenchRun } from './run.js';
import { interleaved, BOOK_PATHS, warmCache } from './scenarios/common.js';
import { startBenchStack } from './stacks.js';

const CONNECTIONS = { cached: 50, uncached: 10 } as const;

export async function runLiveCost(run: BenchRun, opts: LadderOptions): Promise<void> {
  const target = await startBenchStack(run, {
    label: 'live page A/B',
    mode: 'strict',
    fsync: false,
    fronts: 2,
    catalogReplicas: 1,
    orderReplicas: 1,
    envFor: (p): Record<string, string> => (p.name === 'front-1' ? { LIVE_PAGE: 'false' } : {}),
  });
  const [withPage, without] = target.stack.fronts as [
    (typeof target.stack.fronts)[0],
    (typeof target.stack.fronts)[0],
  ];
  const pageAnswers = await fetch(`${withPage.url}/live/config`);
  const noPage = await fetch(`${without.url}/live/config`);
  if (pageAnswers.status !== 200 || noPage.status !== 404) {
    throw new Error(`expected the page on ${withPage.name} only (${pageAnswers.status}, ${noPage.status})`);
  }
  for (const f of [withPage, without]) await warmCache(run.client, f.url);
  const durations = { rounds: opts.rounds, seconds: opts.seconds, warmSeconds: 1 };
  const spec = (front: typeof withPage, path: 'cached' | 'uncached'): LoadSpec => ({
    url: `${front.url}/info/1`,
    paths: BOOK_PATHS('/info'),
    connections: CONNECTIONS[path],
    ...(path === 'uncached' ? { headers: { 'cache-control': 'no-cache' } } : {}),
    watch: [{ name: front.name, pid: () => front.pid() }],
  });
  const results: Comparison[] = [];
  for (const watched of [false, true]) {
    const watcher = watched ? watch(`${withPage.url}/live/events`) : undefined;
    try {
      for (const path of ['cached', 'uncached'] as const) {
        const [a, b] = await interleaved(run, [spec(without, path), spec(withPage, path)], durations);
        const key = `${path}/${CONNECTIONS[path]}${watched ? ', page watched' : ''}`;
        const c = compare(key, `${path} read`, CONNECTIONS[path], 'front without the page', a!, b!);
        results.push(c);
        run.log(
          `${key}: CPU/request ${c.ratios.cpu?.toFixed(3) ?? '–'}x, throughput ${formatRatio(c.ratios.rps, c.ratios.roundRps)}`,
        );
      }
    } finally {
      watcher?.abort();
    }
  }
  process.stdout.write(render(results, opts));
}

/** A page's event stream, read and dropped until aborted (a watcher that keeps up). */
function watch(url: string): AbortController {
  const controller = new AbortController();
  void (async () => {
    const res = await fetch(url, { signal: controller.signal });
    const reader = res.body!.getReader();
    for (;;) if ((await reader.read()).done) return;
  })().catch(() => undefined);
  return controller;
}

function render(results: Comparison[], opts: LadderOptions): string {
  const rows = results.map((c) => {
    const cpu = c.ratios.cpu;
    return `| ${c.key.padEnd(30)} | ${(c.floor.cpuUsPerRequest?.toFixed(1) ?? '–').padStart(8)} µs | ${(c.bazar.cpuUsPerRequest?.toFixed(1) ?? '–').padStart(8)} µs | ${(cpu?.toFixed(3) ?? '–').padStart(6)}x | ${formatRatio(c.ratios.rps, c.ratios.roundRps).padEnd(24)} |`;
  });
  return [
    '',
    `The live page's cost: front-0 (page on) against front-1 (LIVE_PAGE=false), ${opts.rounds} alternating rounds of ${opts.seconds} s`,
    '',
    '| path, connections              | CPU/req without | CPU/req with | ratio   | throughput with/without  |',
    '| ------------------------------ | --------------- | ------------ | ------- | ------------------------ |',
    ...rows,
    '',
  ].join('\n');
}
