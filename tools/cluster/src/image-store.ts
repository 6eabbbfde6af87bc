/**
 * The node's image store outlives the cluster (layout.ts: imageCacheDir), and with it containerd's
 * metadata of the last cluster's sandboxes and containers. Before the real containerd starts, a
 * containerd without its CRI plugin deletes those records, so the CRI plugin never recovers pods of a
 * cluster that no longer exists. If the store is unusable, it is emptied and the images imported again.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { containerdSpec, ctrArgv, removeCriDirs } from './containerd.js';
import { deathNotice, startDaemon, stopDaemon, type DaemonContext } from './daemons.js';
import { runIn, waitFor } from './exec.js';
import type { ClusterLayout } from './layout.js';

/** Polls `ctr version` until the node's containerd answers. */
export function containerdAnswers(
  l: ClusterLayout,
  timeoutMs: number,
  abort: () => string | undefined,
): Promise<true> {
  return waitFor(
    'containerd to answer',
    async () =>
      (await runIn(l.ns, ctrArgv(l, ['version']), { allowFailure: true, timeoutMs: 5000 })).code === 0 ||
      undefined,
    timeoutMs,
    { abort, everyMs: 150 },
  );
}

export async function cleanImageStore(
  l: ClusterLayout,
  dctx: DaemonContext,
  maintenanceConfig: string,
  log: (line: string) => void,
): Promise<void> {
  const d = startDaemon(dctx, containerdSpec(maintenanceConfig, 'containerd-maintenance'));
  try {
    await containerdAnswers(l, 30_000, () => deathNotice(d));
    const listed = await runIn(l.ns, ctrArgv(l, ['containers', 'list', '--quiet']));
    const ids = listed.stdout.split('\n').filter(Boolean);
    if (ids.length > 0)
      await runIn(l.ns, ctrArgv(l, ['containers', 'delete', ...ids]), { timeoutMs: 60_000 });
    log(`image store: removed ${ids.length} container record(s) of the last cluster`);
  } catch (err) {
    log(
      `image store unusable (${err instanceof Error ? err.message : String(err)}): starting from an empty one`,
    );
    await stopDaemon(d);
    rmSync(l.containerdRoot, { recursive: true, force: true });
    mkdirSync(l.containerdRoot, { recursive: true });
    return;
  }
  await stopDaemon(d);
  removeCriDirs(l);
}
