/**
 * The read after an invalidation, one client, step by step: read a book (a hit), buy it, read it
 * again (must miss in strict and session: the writer pushed before answering) and once more (a hit).
 */
import type { BenchRun } from '../run.js';
import { Samples } from '../stats.js';
import { BOOKS } from './common.js';

export interface MissFigures {
  miss: Samples;
  hit: Samples;
  probes: number;
  /** First reads after an acknowledged purchase that still showed the old version. */
  stale: number;
  /** First reads after a purchase answered from the cache (stale or not). */
  firstReadHits: number;
}

export async function missAfterInvalidation(run: BenchRun, frontUrl: string): Promise<MissFigures> {
  const { client } = run;
  const probes = run.durations.missProbes;
  const out: MissFigures = { miss: new Samples(), hit: new Samples(), probes, stale: 0, firstReadHits: 0 };
  for (let i = 0; i < probes; i++) {
    const id = BOOKS[i % BOOKS.length] as number;
    for (let k = 0; k < 3; k++) {
      const warm = await client.request(`${frontUrl}/info/${id}`);
      if (warm.headers['x-cache'] === 'hit') break;
    }
    const bought = await client.request(`${frontUrl}/purchase/${id}`, { method: 'POST' });
    if (bought.status !== 200) {
      run.probeErrors++;
      continue;
    }
    const version = (JSON.parse(bought.body) as { version: number }).version;
    const first = await client.request(`${frontUrl}/info/${id}`);
    const second = await client.request(`${frontUrl}/info/${id}`);
    if (first.status !== 200 || second.status !== 200) {
      run.probeErrors++;
      continue;
    }
    if ((JSON.parse(first.body) as { version: number }).version < version) out.stale++;
    if (first.headers['x-cache'] === 'hit') out.firstReadHits++;
    else out.miss.push(first.ms);
    if (second.headers['x-cache'] === 'hit') out.hit.push(second.ms);
  }
  return out;
}
