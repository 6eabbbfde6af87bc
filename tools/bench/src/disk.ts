/** fdatasync latency (ms, p50) of an 8 KiB write where the stacks keep their data: what a WAL flush costs. */
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { percentile, Samples } from './stats.js';

export async function diskSyncMs(): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bazar-bench-fsync-'));
  const file = await open(path.join(dir, 'probe'), 'w');
  const block = Buffer.alloc(8192, 1);
  const samples = new Samples();
  try {
    for (let i = 0; i < 40; i++) {
      await file.write(block, 0, block.length, 0);
      const started = process.hrtime.bigint();
      await file.datasync();
      samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    await file.close();
    await rm(dir, { recursive: true, force: true });
  }
  return percentile(samples.values(), 50);
}
