/** Everything a run measured, turned into the report: comparisons in order, the detail rows, targets. */
import { errorsOf, targets, type Comparison } from './compare.js';
import { p, type LoadResult } from './load.js';
import { quantile } from './prom.js';
import type { Meta, Report, Row } from './report.js';
import type { CachedFigures } from './scenarios/cached.js';
import type { ClientCost } from './scenarios/http-client.js';
import type { PurchaseFigures } from './scenarios/purchases.js';
import type { UncachedFigures } from './scenarios/uncached.js';
import { percentile, type Samples } from './stats.js';

export interface BenchFigures {
  clients: ClientCost[];
  cached: CachedFigures;
  uncached: UncachedFigures;
  replicas: Array<{ k: number; result: LoadResult }>;
  fanout: Array<{ n: number; samples: Samples }>;
  purchases: PurchaseFigures[];
  probeErrors: number;
}

export function loadRow(name: string, r: LoadResult, connections: number, note = ''): Row {
  return {
    name,
    connections,
    rps: r.rps,
    p50: p(r, 50),
    p99: p(r, 99),
    note,
    errors: errorsOf(r),
    cpuUs: r.cpuUsPerRequest,
  };
}

export function sampleRow(name: string, s: Samples, note = '', errors = 0): Row {
  return { name, p50: percentile(s.values(), 50), p99: percentile(s.values(), 99), note, errors };
}

export function comparisonsOf(fig: BenchFigures): Comparison[] {
  return [
    fig.cached.c50,
    fig.cached.c1,
    fig.uncached.c10,
    fig.uncached.c1,
    ...fig.purchases.flatMap((m) => [...m.byClients.values()]),
  ];
}

function clientRows(clients: ClientCost[]): Row[] {
  const rows: Row[] = [];
  for (const c of clients) {
    const plain = clients.find((o) => o.request === c.request && o.client === 'node:http');
    const extra =
      plain && plain !== c
        ? `; +${(c.cpuUsPerCall - plain.cpuUsPerCall).toFixed(0)} µs CPU, ` +
          `+${(c.wallUsPerCall - plain.wallUsPerCall).toFixed(0)} µs wall per call ` +
          `(${(c.cpuUsPerCall / plain.cpuUsPerCall).toFixed(2)}x node:http's CPU)`
        : '';
    const server =
      c.serverCpuUsPerCall === undefined ? '' : `; server ${c.serverCpuUsPerCall.toFixed(0)} µs CPU`;
    rows.push({
      name: `${c.client}, ${c.request}`,
      connections: 1,
      p50: percentile(c.latencies.values(), 50),
      p99: percentile(c.latencies.values(), 99),
      cpuUs: c.cpuUsPerCall,
      errors: 0,
      note: `${c.calls} calls; wall ${c.wallUsPerCall.toFixed(0)} µs/call${server}${extra}`,
    });
  }
  return rows;
}

export function detailRows(fig: BenchFigures): Row[] {
  const { cached, uncached } = fig;
  const rows: Row[] = [
    {
      section: `Cached GET /info/:id below saturation: paced ${cached.pacedRate}/s over 50 connections (open loop)`,
    },
    loadRow('bare node:http baseline, paced', cached.baselinePaced, 50),
    loadRow('front, cache hit, paced', cached.cachedPaced, 50),
    { section: 'Cache on vs off, one connection (Cache-Control: no-cache → front → catalog → Postgres)' },
    loadRow('front, cache hit', cached.c1.bazar, 1),
    loadRow(
      'front, cache off',
      uncached.c1.bazar,
      1,
      `p50 ${(p(uncached.c1.bazar, 50) / p(cached.c1.bazar, 50)).toFixed(1)}x the hit's`,
    ),
    {
      section:
        'The HTTP client between services: serial keep-alive calls on loopback from the bench process (CPU: the caller’s)',
    },
    ...clientRows(fig.clients),
    { section: 'The read after an invalidation (read → purchase → read → read, one client)' },
  ];
  for (const m of fig.purchases) {
    const mf = m.miss;
    const fresh = m.mode === 'eventual' ? `; ${mf.stale}/${mf.probes} first reads stale` : '';
    rows.push(
      {
        ...sampleRow(
          `${m.label}: first read (miss)`,
          mf.miss,
          `${mf.miss.length}/${mf.probes} missed${fresh}`,
          m.mode === 'eventual' ? 0 : mf.stale,
        ),
        connections: 1,
      },
      { ...sampleRow(`${m.label}: next read (hit)`, mf.hit), connections: 1 },
    );
  }
  rows.push({ section: 'Invalidation fan-out to N fronts' });
  for (const m of fig.purchases) {
    const h = m.fanout;
    rows.push({
      name: `${m.label}: order pods' histogram, 2 fronts`,
      p50: quantile(h, 0.5) * 1000,
      p99: quantile(h, 0.99) * 1000,
      note: `${h.count} pushes, mean ${h.count > 0 ? ((h.sum / h.count) * 1000).toFixed(2) : '–'} ms (bucketed; includes queueing at 10 and 50 clients)`,
      errors: 0,
    });
  }
  for (const f of fig.fanout) {
    rows.push(
      sampleRow(
        `timed by the bench, ${f.n} front${f.n > 1 ? 's' : ''}`,
        f.samples,
        'POST /internal/invalidate to all, awaited',
      ),
    );
  }
  rows.push({
    section: 'Uncached reads as catalog replicas go 1 → 2 → 4 (one front, 2 cores: mostly overhead)',
  });
  const r1 = fig.replicas[0]?.result.rps ?? NaN;
  for (const r of fig.replicas) {
    rows.push(
      loadRow(
        `${r.k} catalog replica${r.k > 1 ? 's' : ''}`,
        r.result,
        10,
        `${(r.result.rps / r1).toFixed(2)}x one replica`,
      ),
    );
  }
  return rows;
}

export function errorsIn(comparisons: Comparison[], rows: Row[], probeErrors: number): number {
  return (
    comparisons.reduce((a, c) => a + errorsOf(c.floor) + errorsOf(c.bazar), 0) +
    rows.reduce((a, r) => a + (r.errors ?? 0), 0) +
    probeErrors
  );
}

export function buildReport(fig: BenchFigures, meta: Meta): Report {
  const comparisons = comparisonsOf(fig);
  const rows = detailRows(fig);
  const byKey = new Map(comparisons.map((c) => [c.key, c]));
  return { meta, comparisons, rows, targets: targets(byKey, errorsIn(comparisons, rows, fig.probeErrors)) };
}
