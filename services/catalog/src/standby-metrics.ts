import { Gauge } from 'prom-client';
import type { Metrics } from '../../shared/src/metrics.js';
import { standbyReplay, type Queryable, type StandbyReplay } from './books.js';

/**
 * A catalog replica's view of its standby, read at scrape time (one query per scrape, shared by the
 * gauges): whether it streams, how far its replay is behind, in seconds and bytes, paused or delayed.
 * A standby that does not answer shows as not streaming, its lag unknown (NaN).
 */
export function registerStandbyMetrics(metrics: Metrics, standby: Queryable): void {
  // The gauges of one scrape share one query: the one in flight, or one answered within 50 ms.
  let last: { at: number; replay: Promise<StandbyReplay | undefined> } | undefined;
  const read = (): Promise<StandbyReplay | undefined> => {
    if (last && Date.now() - last.at < 50) return last.replay;
    const replay = standbyReplay(standby).catch(() => undefined);
    const entry = { at: Number.POSITIVE_INFINITY, replay };
    last = entry;
    void replay.then(() => (entry.at = Date.now()));
    return replay;
  };
  const define = (name: string, help: string, value: (r: StandbyReplay | undefined) => number): void => {
    new Gauge({
      name,
      help,
      registers: [metrics.registry],
      async collect() {
        this.set(value(await read()));
      },
    });
  };
  define('bazar_standby_streaming', 'Whether the standby streams WAL from a primary (1) or not (0)', (r) =>
    r?.receiving ? 1 : 0,
  );
  define(
    'bazar_standby_replay_lag_seconds',
    "How far the standby's replay is behind: 0 when it applied all it received, else the age of the last commit it applied",
    (r) => r?.replayLagSeconds ?? NaN,
  );
  define('bazar_standby_unapplied_wal_bytes', 'WAL the standby received and has not applied yet', (r) =>
    r === undefined ? NaN : r.unappliedBytes,
  );
  define(
    'bazar_standby_replay_paused',
    "Whether the standby's replay is paused (pg_wal_replay_pause)",
    (r) => (r?.paused ? 1 : 0),
  );
  define('bazar_standby_apply_delay_seconds', "The standby's recovery_min_apply_delay", (r) =>
    r === undefined ? NaN : r.applyDelayMs / 1000,
  );
}
