/**
 * Purchases against their chains: POST /purchase/:id (books 1–7, restocked by a million so nothing
 * sells out) at 1, 10 and 50 clients, every mode's stack beside a chain on the same Postgres pair with
 * as many fronts (strict: the chain commits at remote_apply; session: at local, push awaited;
 * eventual: at local, push in the background). Rounds go chain, Bazar, chain, Bazar across every mode,
 * so drift hits all alike. Then each stack's fan-out histogram and the read after an invalidation.
 */
import { compare, type Comparison } from '../compare.js';
import { load, p, pool, type LoadSpec } from '../load.js';
import { diff, type Histogram } from '../prom.js';
import type { BenchRun } from '../run.js';
import type { BenchChain, BenchStack } from '../stacks.js';
import { percentile } from '../stats.js';
import { BOOK_PATHS, restockAll, type Rounds } from './common.js';
import { scrapeFanout } from './fanout.js';
import { missAfterInvalidation, type MissFigures } from './miss.js';

export const PURCHASE_CLIENTS = [1, 10, 50];

export interface PurchasePair {
  label: string;
  bazar: BenchStack;
  chain: BenchChain;
}

export interface PurchaseFigures {
  label: string;
  mode: BenchStack['mode'];
  /** By number of clients. */
  byClients: Map<number, Comparison>;
  fanout: Histogram;
  miss: MissFigures;
}

/** `chain, remote_apply` / `chain, local` / `chain, local, push not awaited`. */
export function chainName(chain: BenchChain): string {
  return `chain, ${chain.synchronousCommit}${chain.push === 'await' ? '' : ', push not awaited'}`;
}

export async function purchases(run: BenchRun, pairs: PurchasePair[]): Promise<PurchaseFigures[]> {
  const d = run.durations;
  const spec = (url: string, watch: LoadSpec['watch'], connections: number): LoadSpec => ({
    url,
    connections,
    duration: connections >= 50 ? d.purchase50Seconds : d.purchaseRoundSeconds,
    method: 'POST',
    paths: BOOK_PATHS('/purchase'),
    ...(watch ? { watch } : {}),
  });
  const systems = pairs.flatMap((pair) => [
    { pair, side: 'chain' as const, url: pair.chain.chain.fronts[0]!.url, watch: pair.chain.watch },
    { pair, side: 'bazar' as const, url: pair.bazar.stack.fronts[0]!.url, watch: pair.bazar.watch },
  ]);
  const before = new Map<string, Histogram>();
  for (const pair of pairs) {
    await restockAll(run.client, pair.bazar.stack.fronts[0]!.url, pair.bazar.stack.adminToken);
    before.set(pair.label, await scrapeFanout(run.client, pair.bazar));
  }
  for (const s of systems) await load({ ...spec(s.url, undefined, 1), duration: d.warmSeconds / 2 });
  const rounds = new Map(
    systems.map((s) => [s, new Map(PURCHASE_CLIENTS.map((c) => [c, [] as Rounds['runs']]))]),
  );
  for (const clients of PURCHASE_CLIENTS) {
    for (let r = 0; r < d.purchaseRounds; r++) {
      for (const s of systems) {
        run.checkpoint();
        rounds
          .get(s)!
          .get(clients)!
          .push(await load(spec(s.url, s.watch, clients)));
      }
    }
  }
  const pooledOf = (s: (typeof systems)[number], clients: number): Rounds => {
    const runs = rounds.get(s)!.get(clients)!;
    return { runs, pooled: pool(runs) };
  };
  const out: PurchaseFigures[] = [];
  for (const pair of pairs) {
    const [chainSide, bazarSide] = systems.filter((s) => s.pair === pair) as [
      (typeof systems)[number],
      (typeof systems)[number],
    ];
    const byClients = new Map(
      PURCHASE_CLIENTS.map((c) => [
        c,
        compare(
          `purchase ${pair.label}/${c}`,
          `${pair.label} purchase`,
          c,
          chainName(pair.chain),
          pooledOf(chainSide, c),
          pooledOf(bazarSide, c),
        ),
      ]),
    );
    const fanout = diff(await scrapeFanout(run.client, pair.bazar), before.get(pair.label)!);
    const miss = await missAfterInvalidation(run, pair.bazar.stack.fronts[0]!.url);
    const c1 = byClients.get(1)!;
    const c10 = byClients.get(10)!;
    run.log(
      `${pair.label} purchase: 1 client p50 ${p(c1.bazar, 50).toFixed(2)} ms vs chain ${p(c1.floor, 50).toFixed(2)} ms ` +
        `(${c1.ratios.p50.toFixed(2)}x); 10 clients ${c10.bazar.rps.toFixed(0)}/s vs ${c10.floor.rps.toFixed(0)}/s ` +
        `(${c10.ratios.rps.toFixed(2)}x); miss p50 ${percentile(miss.miss.values(), 50).toFixed(2)} ms`,
    );
    out.push({ label: pair.label, mode: pair.bazar.mode, byClients, fanout, miss });
  }
  return out;
}
