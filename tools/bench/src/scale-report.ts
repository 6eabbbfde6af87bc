/**
 * The output of the bench at scale (--books) and of fan-out at scale (--fanout): text tables, the
 * results JSON and the fan-out figures (pure: unit-tested).
 */
import type { Comparison } from './compare.js';
import { byTier } from './cpu.js';
import { p, type LoadResult } from './load.js';
import { plainComparison } from './output.js';
import { comparisonTable, cpuLines, num, textTable, type Table } from './report.js';
import type { ScaleFigures } from './scenarios/scale.js';
import type { FanoutScaleFigures } from './scenarios/fanout-scale.js';
import { p50p99 } from './scale-paths.js';
import { lineChart } from './svg.js';

const TIERS = ['front', 'catalog', 'order', 'pg primary', 'pg standby'];

/** CPU-seconds per 1,000 requests (= CPU ms per request) by tier, floor and Bazar, per comparison. */
export function cpuPerThousandTable(comparisons: Comparison[]): Table {
  const sides = comparisons.flatMap((c) => [
    { c, name: c.floorName, cpu: c.floor.cpu },
    { c, name: 'Bazar', cpu: c.bazar.cpu },
  ]);
  return {
    head: ['path', 'conns', 'system', ...TIERS, 'total'],
    right: [false, true, false, ...TIERS.map(() => true), true],
    rows: sides
      .filter((s) => s.cpu)
      .map((s) => {
        const tiers = byTier(s.cpu!);
        const total = [...tiers.values()].reduce((a, b) => a + b, 0);
        return [
          s.c.path,
          String(s.c.connections),
          s.name,
          ...TIERS.map((t) => num((tiers.get(t) ?? 0) / 1000, 3)),
          num(total / 1000, 3),
        ];
      }),
  };
}

export function renderScale(fig: ScaleFigures): string {
  return [
    `Bench at scale: ${fig.books.toLocaleString('en-US')} seeded books` +
      (fig.seedMs !== undefined ? ` (seeded in ${(fig.seedMs / 1000).toFixed(1)} s)` : ''),
    `books table ${fig.sizes.table}, its indexes ${fig.sizes.indexes}; shared_buffers ${fig.sizes.sharedBuffers}`,
    '',
    ...textTable(comparisonTable(fig.comparisons)),
    '',
    'CPU-seconds per 1,000 requests by tier (from /proc; Postgres = postmaster and its children)',
    ...textTable(cpuPerThousandTable(fig.comparisons)),
    '',
    ...cpuLines(fig.comparisons),
  ].join('\n');
}

export function scaleJson(fig: ScaleFigures, meta: object): object {
  return {
    ...meta,
    books: fig.books,
    seedMs: fig.seedMs,
    sizes: fig.sizes,
    comparisons: fig.comparisons.map(plainComparison),
  };
}

const meanMs = (h: { sum: number; count: number } | undefined) =>
  h?.count ? num((h.sum / h.count) * 1000, 2) : '–';
const ms = (r: LoadResult | undefined, q: number) => (r ? p(r, q) : undefined);
const tierUs = (r: LoadResult | undefined, tier: string) => (r?.cpu ? byTier(r.cpu).get(tier) : undefined);

/** The store's purchases by width: latency at one client, throughput at ten, the fan-out histogram. */
export function storeTable(fig: FanoutScaleFigures): Table {
  const base = fig.store[0]?.byClients.get(1);
  return {
    head: [
      'fronts',
      'c1 p50 ms',
      'c1 p99 ms',
      'c1 req/s',
      'c1 p50 / first',
      'c10 req/s',
      'c10 p50 ms',
      'c10 p99 ms',
      'c1 fan-out mean ms',
      'c10 fan-out mean ms',
      'c1 CPU µs/req',
      'of which order',
      'of which fronts',
      'c10 CPU µs/req',
      'errors',
    ],
    right: Array(15).fill(true) as boolean[],
    rows: fig.store.map((s) => {
      const c1 = s.byClients.get(1);
      const c10 = s.byClients.get(10);
      return [
        String(s.fronts),
        num(ms(c1, 50), 2),
        num(ms(c1, 99), 2),
        num(c1?.rps, 0),
        base && c1 ? `${(p(c1, 50) / p(base, 50)).toFixed(2)}x` : '–',
        num(c10?.rps, 0),
        num(ms(c10, 50), 2),
        num(ms(c10, 99), 2),
        meanMs(s.fanout.get(1)),
        meanMs(s.fanout.get(10)),
        num(c1?.cpuUsPerRequest, 0),
        num(tierUs(c1, 'order'), 0),
        num(tierUs(c1, 'front'), 0),
        num(c10?.cpuUsPerRequest, 0),
        String([c1, c10].reduce((a, r) => a + (r ? r.errors + r.timeouts + r.non2xx : 0), 0)),
      ];
    }),
  };
}

/** The chain's awaited push beside the NOTIFY writer, by width and clients. */
export function notifyTable(fig: FanoutScaleFigures): Table {
  return {
    head: [
      'fronts',
      'clients',
      'push p50 ms',
      'push p99 ms',
      'push req/s',
      'NOTIFY p50 ms',
      'NOTIFY p99 ms',
      'NOTIFY req/s',
      'p50 NOTIFY / push',
      'push CPU µs/req',
      'NOTIFY CPU µs/req',
    ],
    right: Array(11).fill(true) as boolean[],
    rows: fig.chains.flatMap((c) =>
      [...c.byClients].map(([n, cmp]) => [
        String(c.fronts),
        String(n),
        num(p(cmp.floor, 50), 2),
        num(p(cmp.floor, 99), 2),
        num(cmp.floor.rps, 0),
        num(p(cmp.bazar, 50), 2),
        num(p(cmp.bazar, 99), 2),
        num(cmp.bazar.rps, 0),
        `${cmp.ratios.p50.toFixed(2)}x`,
        num(cmp.floor.cpuUsPerRequest, 0),
        num(cmp.bazar.cpuUsPerRequest, 0),
      ]),
    ),
  };
}

/** When the listening fronts had each probe write's notification. */
export function deliveryTable(fig: FanoutScaleFigures): Table {
  return {
    head: [
      'listeners',
      'probes',
      'writer p50 ms',
      'all had it, after ack p50 ms',
      'p99 ms',
      'each, after ack p50 ms',
      'all had it, after send p50 ms',
      'p99 ms',
      'missing',
    ],
    right: Array(9).fill(true) as boolean[],
    rows: fig.chains.map((c) => {
      const d = c.delivery;
      const all = p50p99(d.allAfterAck);
      const sent = p50p99(d.allAfterSend);
      return [
        String(c.fronts),
        String(d.probes),
        num(p50p99(d.writer).p50, 3),
        num(all.p50, 3),
        num(all.p99, 3),
        num(p50p99(d.eachAfterAck).p50, 3),
        num(sent.p50, 3),
        num(sent.p99, 3),
        String(d.missing),
      ];
    }),
  };
}

export function renderFanout(fig: FanoutScaleFigures): string {
  return [
    'Fan-out: strict purchases through one of F fronts (POST /purchase/:id, books 1-7), widths interleaved',
    ...textTable(storeTable(fig)),
    '',
    'NOTIFY prototype: bare chain, remote_apply; push = POST to every front, awaited; NOTIFY = pg_notify in the UPDATE, nothing awaited',
    ...textTable(notifyTable(fig)),
    '',
    'NOTIFY delivery: serial probe writes (remote_apply) by the bench; CLOCK_MONOTONIC across processes',
    ...textTable(deliveryTable(fig)),
  ].join('\n');
}

export function fanoutJson(fig: FanoutScaleFigures, meta: object): object {
  const side = (r: LoadResult | undefined) =>
    r && {
      requests: r.requests,
      rps: r.rps,
      p50: p(r, 50),
      p99: p(r, 99),
      errors: r.errors + r.timeouts + r.non2xx,
      cpuUsPerRequest: r.cpuUsPerRequest,
      cpuByProcess: r.cpu ? Object.fromEntries(r.cpu) : undefined,
    };
  return {
    ...meta,
    widths: fig.widths,
    store: fig.store.map((s) => ({
      fronts: s.fronts,
      byClients: Object.fromEntries([...s.byClients].map(([c, r]) => [c, side(r)])),
      fanoutHistogram: Object.fromEntries(s.fanout),
    })),
    notify: fig.chains.map((c) => ({
      fronts: c.fronts,
      byClients: Object.fromEntries(
        [...c.byClients].map(([n, cmp]) => [n, { push: side(cmp.floor), notify: side(cmp.bazar) }]),
      ),
      delivery: {
        probes: c.delivery.probes,
        missing: c.delivery.missing,
        writer: p50p99(c.delivery.writer),
        allAfterAck: p50p99(c.delivery.allAfterAck),
        eachAfterAck: p50p99(c.delivery.eachAfterAck),
        allAfterSend: p50p99(c.delivery.allAfterSend),
      },
    })),
  };
}

/** docs/perf/fanout-scale.svg (latency at one client) and fanout-throughput-scale.svg (ten clients). */
export function fanoutPlots(fig: FanoutScaleFigures): Record<string, string> {
  const xs = fig.widths;
  const store1 = fig.store.map((s) => s.byClients.get(1));
  const chain1 = fig.chains.map((c) => c.byClients.get(1));
  const chain10 = fig.chains.map((c) => c.byClients.get(10));
  return {
    'fanout-scale.svg': lineChart({
      title: 'Purchase latency by number of fronts, one client (strict)',
      subtitle:
        'store: F-1 announcements awaited; chain: F pushes awaited, or NOTIFY in the UPDATE (not awaited)',
      xLabel: 'fronts (invalidation targets / listeners)',
      yLabel: 'milliseconds',
      xs,
      series: [
        { name: 'store p50', color: 0, values: store1.map((r) => ms(r, 50)) },
        { name: 'store p99', color: 0, dashed: true, values: store1.map((r) => ms(r, 99)) },
        { name: 'chain push p50', color: 1, values: chain1.map((c) => c && p(c.floor, 50)) },
        { name: 'chain NOTIFY p50', color: 3, values: chain1.map((c) => c && p(c.bazar, 50)) },
        {
          name: 'NOTIFY: all listeners had it, p50 after send',
          color: 2,
          dashed: true,
          values: fig.chains.map((c) => p50p99(c.delivery.allAfterSend).p50),
        },
      ],
    }),
    'fanout-throughput-scale.svg': lineChart({
      title: 'Purchase throughput by number of fronts, ten clients (strict)',
      subtitle: 'POST /purchase/:id, books 1-7, through one front; widths interleaved in one run',
      xLabel: 'fronts (invalidation targets / listeners)',
      yLabel: 'purchases per second',
      xs,
      series: [
        { name: 'store', color: 0, values: fig.store.map((s) => s.byClients.get(10)?.rps) },
        { name: 'chain push', color: 1, values: chain10.map((c) => c?.floor.rps) },
        { name: 'chain NOTIFY', color: 3, values: chain10.map((c) => c?.bazar.rps) },
      ],
    }),
  };
}
