/**
 * Fan-out at scale (`npm run bench -- --fanout [--widths 1,2,4,8,16]`), in two parts on one Postgres pair.
 *
 * 1. The store: one strict stack per width F (F fronts, a catalog origin, an order origin; the first
 *    owns the pair, the rest run on it), so F fronts are every writer's invalidation targets. Purchases
 *    (POST /purchase/:id, books 1–7 restocked) go through the first front at 1 and at 10 clients; rounds
 *    go F = 1, 2, 4, … in turn so that drift hits every width alike. A strict purchase announces the
 *    write to the F − 1 other fronts (the front it came through fences itself) and waits for them
 *    before it commits. Each width's order pod's own bazar_invalidation_fanout_seconds is scraped
 *    around the rounds: how long the announcements and settlements took.
 *
 * 2. The NOTIFY prototype (not a product change): per width, a bare chain (bare-chain.ts) with F
 *    fronts, each LISTENing on a connection to the primary on that chain's channel. Its order answers
 *    `POST /purchase/:id` after its commit at remote_apply and its push to the F fronts, awaited (the
 *    chain's strict floor), and `POST /purchase/:id?notify` after committing the same UPDATE with a
 *    pg_notify in it, without waiting for any front. Both are driven at 1 and 10 clients, interleaved.
 *    Then the delivery delay: the bench commits probe writes itself (serial, remote_apply, NOTIFY in
 *    the statement) and each listening front reports when it got each one (process.hrtime: the
 *    machine's CLOCK_MONOTONIC, shared by its processes).
 */
import pg from 'pg';
import { compare, type Comparison } from '../compare.js';
import { load, p, pool, type LoadResult, type LoadSpec } from '../load.js';
import { chainChannel, NOTIFY_PURCHASE } from '../notify-sql.js';
import { diff, type Histogram } from '../prom.js';
import { allSettled, type BenchRun } from '../run.js';
import { deliveryDelays, type DeliveryFigures, type DeliveryProbe } from '../scale-paths.js';
import { percentile } from '../stats.js';
import { startBenchStack, startChainFor, type BenchChain, type BenchStack } from '../stacks.js';
import { BOOK_PATHS, BOOKS, restockAll } from './common.js';
import { scrapeFanout } from './fanout.js';

export const FANOUT_CLIENTS = [1, 10];

export interface StoreWidth {
  fronts: number;
  /** By clients: the pooled purchases through the first front. */
  byClients: Map<number, LoadResult>;
  /** By clients: the order pod's fan-out histogram over those rounds (announcements and settlements). */
  fanout: Map<number, Histogram>;
}

export interface ChainWidth {
  fronts: number;
  /** By clients: the chain's awaited push (floor) beside the NOTIFY writer (as "bazar"). */
  byClients: Map<number, Comparison>;
  delivery: DeliveryFigures;
}

export interface FanoutScaleFigures {
  widths: number[];
  store: StoreWidth[];
  chains: ChainWidth[];
}

type Rounds = { rounds: number; seconds: number };

/** Rounds of every spec in turn, at each number of clients; the warm-up first. */
async function rotate(
  run: BenchRun,
  specs: LoadSpec[],
  clients: number[],
  opts: Rounds,
): Promise<Array<Map<number, LoadResult[]>>> {
  for (const s of specs) await load({ ...s, connections: 1, duration: 1, watch: [] });
  const out = specs.map(() => new Map(clients.map((c) => [c, [] as LoadResult[]])));
  for (const c of clients) {
    for (let r = 0; r < opts.rounds; r++) {
      for (const [i, s] of specs.entries()) {
        run.checkpoint();
        out[i]!.get(c)!.push(await load({ ...s, connections: c, duration: opts.seconds }));
      }
    }
  }
  return out;
}

async function storePart(run: BenchRun, widths: number[], opts: Rounds) {
  const shape = { mode: 'strict' as const, fsync: true, catalogReplicas: 0, orderReplicas: 0 };
  const owner = await startBenchStack(run, { label: `fronts ${widths[0]}`, fronts: widths[0]!, ...shape });
  const stacks: BenchStack[] = [owner];
  for (const f of widths.slice(1)) {
    stacks.push(await startBenchStack(run, { label: `fronts ${f}`, fronts: f, pair: owner.pair, ...shape }));
  }
  await restockAll(run.client, owner.stack.fronts[0]!.url, owner.stack.adminToken);
  const specs = stacks.map((s): LoadSpec => ({
    url: s.stack.fronts[0]!.url,
    connections: 1,
    method: 'POST',
    paths: BOOK_PATHS('/purchase'),
    watch: s.watch,
  }));
  // Each number of clients on its own, the order pods' histograms scraped around it.
  const rounds = specs.map(() => new Map<number, LoadResult[]>());
  const fanouts = specs.map(() => new Map<number, Histogram>());
  for (const c of FANOUT_CLIENTS) {
    const before = await allSettled(stacks.map((s) => scrapeFanout(run.client, s)));
    const got = await rotate(run, specs, [c], opts);
    for (const [i, s] of stacks.entries()) {
      rounds[i]!.set(c, got[i]!.get(c)!);
      fanouts[i]!.set(c, diff(await scrapeFanout(run.client, s), before[i]!));
    }
  }
  const store: StoreWidth[] = [];
  for (const [i, s] of stacks.entries()) {
    const fanout = fanouts[i]!;
    const byClients = new Map(FANOUT_CLIENTS.map((c) => [c, pool(rounds[i]!.get(c)!)]));
    const mean = (h: Histogram | undefined) =>
      h?.count ? `${((h.sum / h.count) * 1000).toFixed(2)} ms over ${h.count}` : '–';
    const c1 = byClients.get(1)!;
    const c10 = byClients.get(10)!;
    run.log(
      `store, ${s.stack.fronts.length} fronts: 1 client p50 ${p(c1, 50).toFixed(2)} ms p99 ${p(c1, 99).toFixed(2)} ms; ` +
        `10 clients ${c10.rps.toFixed(0)}/s p50 ${p(c10, 50).toFixed(2)} ms; fan-out mean at 1 client ` +
        `${mean(fanout.get(1))}, at 10 ${mean(fanout.get(10))}`,
    );
    store.push({ fronts: s.stack.fronts.length, byClients, fanout });
  }
  // Only the owner (and its pair) stays, for the chains.
  for (const s of stacks.slice(1)) await s.stop();
  return { owner, store };
}

/** Probe writes committed by the bench with a NOTIFY on `channel`; numbered from `first`. */
async function probeWrites(primaryUrl: string, channel: string, first: number, count: number) {
  const client = new pg.Client({
    connectionString: primaryUrl,
    options: '-c synchronous_commit=remote_apply',
  });
  await client.connect();
  const probes: DeliveryProbe[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const w = first + i;
      const sentNs = Number(process.hrtime.bigint());
      await client.query(NOTIFY_PURCHASE, [BOOKS[i % BOOKS.length], w, channel]);
      const ackNs = Number(process.hrtime.bigint());
      probes.push({ w, sentNs, ackNs });
      // Apart, so that each probe is a write on its own, as a one-client purchase is.
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await client.end();
  }
  return probes;
}

async function chainPart(run: BenchRun, owner: BenchStack, widths: number[], opts: Rounds, probes: number) {
  const chains: BenchChain[] = [];
  for (const f of widths) {
    chains.push(
      await startChainFor(run, owner, undefined, { fronts: f, listen: true, channel: chainChannel(f) }),
    );
  }
  run.log(`${chains.length} bare chains up, fronts listening (${widths.join(', ')})`);
  const specs = chains.flatMap((c): LoadSpec[] => {
    const base = { url: c.chain.fronts[0]!.url, connections: 1, method: 'POST' as const, watch: c.watch };
    return [
      { ...base, paths: BOOK_PATHS('/purchase') },
      { ...base, paths: BOOK_PATHS('/purchase').map((u) => `${u}?notify`) },
    ];
  });
  const rounds = await rotate(run, specs, FANOUT_CLIENTS, opts);
  const out: ChainWidth[] = [];
  let next = 1;
  for (const [i, c] of chains.entries()) {
    const f = widths[i]!;
    const byClients = new Map(
      FANOUT_CLIENTS.map((n) => {
        const push = rounds[2 * i]!.get(n)!;
        const notify = rounds[2 * i + 1]!.get(n)!;
        return [
          n,
          compare(
            `notify ${f}/${n}`,
            `chain purchase, NOTIFY, ${f} listening fronts`,
            n,
            `chain, remote_apply, push to ${f} fronts awaited`,
            { runs: push, pooled: pool(push) },
            { runs: notify, pooled: pool(notify) },
          ),
        ];
      }),
    );
    // Let the load's last notifications arrive and clear what the fronts kept.
    await new Promise((r) => setTimeout(r, 200));
    for (const fr of c.chain.fronts) await run.client.request(`${fr.url}/notified`);
    const written = await probeWrites(owner.pair.primaryUrl, chainChannel(f), next, probes);
    next += probes;
    await new Promise((r) => setTimeout(r, 200));
    const received = await Promise.all(
      c.chain.fronts.map(async (fr) => {
        const body = JSON.parse((await run.client.request(`${fr.url}/notified`)).body) as {
          probes: Array<[number, number]>;
        };
        return body.probes;
      }),
    );
    const delivery = deliveryDelays(written, received);
    const pct = (xs: number[], q: number) => percentile(xs, q);
    const c1 = byClients.get(1)!;
    run.log(
      `chain, ${f} fronts: 1 client push p50 ${p(c1.floor, 50).toFixed(2)} ms, NOTIFY p50 ${p(c1.bazar, 50).toFixed(2)} ms; ` +
        `delivery to all after the ack p50 ${pct(delivery.allAfterAck, 50).toFixed(3)} ms p99 ${pct(delivery.allAfterAck, 99).toFixed(3)} ms` +
        (delivery.missing ? `, ${delivery.missing} missing` : ''),
    );
    out.push({ fronts: f, byClients, delivery });
  }
  for (const c of chains) await c.stop();
  return out;
}

export async function runFanoutScale(run: BenchRun, widths: number[]): Promise<FanoutScaleFigures> {
  const d = run.durations;
  const opts = { rounds: d.purchaseRounds, seconds: d.seconds };
  const { owner, store } = await storePart(run, widths, opts);
  const chains = await chainPart(run, owner, widths, opts, d.fanoutProbes);
  await owner.stop();
  return { widths, store, chains };
}
