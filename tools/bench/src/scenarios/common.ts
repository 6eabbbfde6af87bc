/** What the scenarios share: the seven books, restocking, warming a cache, and interleaved rounds. */
import type { Client } from '../client.js';
import { load, pool, type LoadResult, type LoadSpec } from '../load.js';
import type { BenchRun } from '../run.js';

export const BOOKS = [1, 2, 3, 4, 5, 6, 7];
export const BOOK_PATHS = (prefix: string) => BOOKS.map((id) => `${prefix}/${id}`);

/** Every book restocked by a million, so that no purchase round sells out. */
export async function restockAll(client: Client, frontUrl: string, adminToken: string): Promise<void> {
  for (const id of BOOKS) {
    await client.json(`${frontUrl}/books/${id}/restock`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ quantity: 1_000_000 }),
    });
  }
}

export async function warmCache(client: Client, frontUrl: string): Promise<void> {
  for (let i = 0; i < 2; i++) for (const id of BOOKS) await client.request(`${frontUrl}/info/${id}`);
}

/** One system's share of interleaved rounds: every round, and the rounds pooled. */
export interface Rounds {
  runs: LoadResult[];
  pooled: LoadResult;
}

/**
 * Runs each spec for `warmSeconds` (connections, JIT and query plans warm), then `rounds` rounds of
 * every spec in turn (a, b, a, b, …), so that drift on a shared machine hits every system alike.
 */
export async function interleaved(
  run: BenchRun,
  specs: LoadSpec[],
  opts: { rounds: number; seconds: number; warmSeconds: number },
): Promise<Rounds[]> {
  for (const spec of specs) {
    run.checkpoint();
    if (opts.warmSeconds > 0) await load({ ...spec, duration: opts.warmSeconds, watch: [] });
  }
  const runs: LoadResult[][] = specs.map(() => []);
  for (let r = 0; r < opts.rounds; r++) {
    for (const [i, spec] of specs.entries()) {
      run.checkpoint();
      runs[i]!.push(await load({ ...spec, duration: opts.seconds }));
    }
  }
  return runs.map((r) => ({ runs: r, pooled: pool(r) }));
}
