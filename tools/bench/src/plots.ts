/** The bench's figures (docs/perf/*.svg), drawn from one run's figures. */
import { THRESHOLDS, type Comparison } from './compare.js';
import { byGroup, tierOf } from './cpu.js';
import { p } from './load.js';
import type { BenchFigures } from './summary.js';
import { percentile } from './stats.js';
import { barChart, lineChart, stackedBarChart } from './svg.js';

const short = (c: Comparison) => `${c.path.replace(/ purchase$/, '').replace(/ read$/, '')} ${c.connections}`;

/** Bazar as a fraction of its floor, throughput and (inverted) p50: 1 = as fast as the floor. */
function vsFloor(comparisons: Comparison[]): string {
  return barChart({
    title: 'Bazar against its floor, same run (1.0 = as fast as the floor)',
    subtitle:
      'per path and connections; floors: bare node:http (cached), bare chains of node:http + pg (uncached, purchases)',
    yLabel: 'Bazar / floor',
    width: Math.max(760, 70 * comparisons.length + 90),
    categories: comparisons.map(
      (c) => `${c.path.replace(/ purchase$/, ' buy')}, ${c.connections} conn${c.connections > 1 ? 's' : ''}`,
    ),
    series: [
      { name: 'throughput: Bazar / floor', values: comparisons.map((c) => c.ratios.rps) },
      { name: 'latency: floor p50 / Bazar p50', values: comparisons.map((c) => 1 / c.ratios.p50) },
    ],
    refLines: [
      { value: 1, label: 'the floor' },
      { value: THRESHOLDS.cachedRps, label: 'target, cached 50: throughput' },
      { value: THRESHOLDS.uncachedRps, label: 'target, uncached 10 and strict 1 / 10 clients' },
    ],
  });
}

const TIERS = ['baseline', 'front', 'catalog', 'order', 'pg primary', 'pg standby', 'other'];

/** CPU per request by tier, floor beside Bazar, for the paths a reader compares most. */
function cpuPerRequest(comparisons: Comparison[]): string {
  const wanted = comparisons.filter((c) =>
    [
      'cached/50',
      'uncached/10',
      'uncached/1',
      'purchase strict/1',
      'purchase strict/10',
      'purchase strict/50',
    ]
      .concat(['purchase session/10', 'purchase eventual/10'])
      .includes(c.key),
  );
  const bars = wanted.flatMap((c) => [
    { label: 'floor', cpu: c.floor.cpu },
    { label: 'Bazar', cpu: c.bazar.cpu },
  ]);
  const tierSums = bars.map((b) => {
    const sums = new Map<string, number>();
    for (const g of byGroup(b.cpu ?? new Map()))
      sums.set(tierOf(g.group), (sums.get(tierOf(g.group)) ?? 0) + g.us);
    return sums;
  });
  const tiers = TIERS.filter((t) => tierSums.some((s) => (s.get(t) ?? 0) >= 0.5));
  return stackedBarChart({
    title: 'CPU per request by process, floor beside Bazar',
    subtitle: 'µs of CPU per request from /proc, every process on the path; Postgres = postmaster + children',
    yLabel: 'CPU µs per request',
    width: Math.max(760, 50 * bars.length + 90),
    groupSize: 2,
    groupLabels: wanted.map((c) => `${short(c)} conn${c.connections > 1 ? 's' : ''}`),
    categories: bars.map((b) => b.label),
    series: tiers.map((t) => ({ name: t, values: tierSums.map((s) => s.get(t)) })),
  });
}

export function plots(fig: BenchFigures, comparisons: Comparison[]): Record<string, string> {
  const strict = fig.purchases[0];
  const modes = fig.purchases;
  return {
    'vs-floor.svg': vsFloor(comparisons),
    'cpu-per-request.svg': cpuPerRequest(comparisons),
    'latency.svg': barChart({
      title: 'Read latency, one client',
      subtitle:
        'p50 and p99 (strict mode). Autocannon, except miss and hit after an invalidation: a node:http client, timed per step',
      yLabel: 'milliseconds',
      categories: [
        'bare node:http',
        'cache hit',
        'chain, uncached',
        'Bazar, cache off',
        'miss after invalidation',
        'hit after the miss',
      ],
      series: [50, 99].map((q) => ({
        name: `p${q}`,
        values: [
          p(fig.cached.c1.floor, q),
          p(fig.cached.c1.bazar, q),
          p(fig.uncached.c1.floor, q),
          p(fig.uncached.c1.bazar, q),
          strict ? percentile(strict.miss.miss.values(), q) : undefined,
          strict ? percentile(strict.miss.hit.values(), q) : undefined,
        ],
      })),
    }),
    'purchases.svg': lineChart({
      title: 'Purchase throughput by clients, Bazar and its chain per mode',
      subtitle:
        'POST /purchase/:id, books 1-7, rounds interleaved; chains: strict at remote_apply, others at local',
      xLabel: 'clients',
      yLabel: 'purchases per second',
      xs: [...(strict?.byClients.keys() ?? [])],
      series: modes.flatMap((m, i) => [
        { name: `${m.label}`, color: i, values: [...m.byClients.values()].map((c) => c.bazar.rps) },
        {
          name: `${m.label} chain`,
          color: i,
          dashed: true,
          values: [...m.byClients.values()].map((c) => c.floor.rps),
        },
      ]),
    }),
    'consistency.svg': barChart({
      title: 'Purchase latency by consistency mode, one client',
      subtitle: 'p50, Bazar beside its chain (strict waits for the standby to apply the commit)',
      yLabel: 'milliseconds',
      categories: modes.map((m) => m.label),
      series: [
        { name: 'chain p50', values: modes.map((m) => p(m.byClients.get(1)!.floor, 50)) },
        { name: 'Bazar p50', values: modes.map((m) => p(m.byClients.get(1)!.bazar, 50)) },
        { name: 'Bazar p99', values: modes.map((m) => p(m.byClients.get(1)!.bazar, 99)) },
      ],
    }),
    'fanout.svg': lineChart({
      title: 'Invalidation fan-out to N fronts',
      subtitle: 'POST /internal/invalidate to every front, awaited (timed by the bench)',
      xLabel: 'fronts',
      yLabel: 'milliseconds',
      xs: fig.fanout.map((f) => f.n),
      series: [50, 99].map((q) => ({
        name: `p${q}`,
        values: fig.fanout.map((f) => percentile(f.samples.values(), q)),
      })),
    }),
    'replicas.svg': lineChart({
      title: 'Uncached reads vs catalog replicas, 10 connections',
      subtitle: 'one front; on 2 cores more replicas add processes, not capacity',
      xLabel: 'catalog replicas',
      yLabel: 'requests per second',
      xs: fig.replicas.map((r) => r.k),
      series: [{ name: 'req/s', values: fig.replicas.map((r) => r.result.rps) }],
    }),
  };
}
