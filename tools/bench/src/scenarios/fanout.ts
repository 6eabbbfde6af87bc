/**
 * Invalidation fan-out: the order pods' own histogram (commit → every front acknowledged), scraped
 * around the purchase rounds, and the push itself timed by the bench: POST /internal/invalidate to 1,
 * 2 and 4 fronts in parallel, awaited, as an order pod sends it.
 */
import type { Client } from '../client.js';
import { parseHistogram, type Histogram } from '../prom.js';
import type { BenchRun } from '../run.js';
import type { BenchStack } from '../stacks.js';
import { Samples } from '../stats.js';

export const FANOUT_WIDTHS = [1, 2, 4];

/** The order pods' bazar_invalidation_fanout_seconds for `mode`, summed over pods. */
export async function scrapeFanout(client: Client, target: BenchStack): Promise<Histogram> {
  const parts = await Promise.all(
    target.stack.orders.map(async (o) =>
      parseHistogram((await client.request(`${o.url}/metrics`)).body, 'bazar_invalidation_fanout_seconds', {
        mode: target.mode,
      }),
    ),
  );
  return {
    buckets: (parts[0]?.buckets ?? []).map(([le], i) => [
      le,
      parts.reduce((a, h) => a + (h.buckets[i]?.[1] ?? 0), 0),
    ]),
    count: parts.reduce((a, h) => a + h.count, 0),
    sum: parts.reduce((a, h) => a + h.sum, 0),
  };
}

/** Pushes to the first n of `frontUrls` (at least 4 fronts of one internal token), timed per push. */
export async function timedFanout(
  run: BenchRun,
  target: BenchStack,
  frontUrls: string[],
): Promise<Array<{ n: number; samples: Samples }>> {
  const { client } = run;
  const current = await client.json<{ version: number }>(`${target.stack.fronts[0]!.url}/info/7`, {
    headers: { 'cache-control': 'no-cache' },
  });
  const push = JSON.stringify({ items: [{ bookId: 7, version: current.data.version }], origin: 'bench' });
  const out: Array<{ n: number; samples: Samples }> = [];
  for (const n of FANOUT_WIDTHS.filter((w) => w <= frontUrls.length)) {
    run.checkpoint();
    const samples = new Samples();
    for (let i = 0; i < run.durations.fanoutProbes; i++) {
      const started = process.hrtime.bigint();
      const replies = await Promise.all(
        frontUrls.slice(0, n).map((u) =>
          client.request(`${u}/internal/invalidate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${target.stack.internalToken}` },
            body: push,
          }),
        ),
      );
      if (replies.some((r) => r.status !== 200)) run.probeErrors++;
      if (i >= 5) samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    out.push({ n, samples });
  }
  return out;
}
