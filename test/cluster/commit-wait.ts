/**
 * How long strict commits waited for the synchronous standby, measured on the primary (not by the
 * writers, whose degradation is what the chaos scenarios check against it).
 *
 * "No synchronous standby listed in pg_stat_replication" is not the wait a commit lives through: under
 * `synchronous_commit = remote_apply` a commit waits until the standby has *applied* it, so after the
 * standby is listed again it still has to receive and replay all that was written while it was away
 * (the cluster tier saw a 1.2 s gap in the list while commits waited 2.2 s; a standby whose replay is
 * paused is listed all along while commits wait for ever, test/faults fault (c)). What decides whether a
 * writer's commit wait runs out is the time between a commit's flush on the primary and the standby's
 * replay passing its LSN: sampled here from the primary's own clock and WAL positions.
 */

/** One sample of the primary. */
export interface WalSample {
  /** The primary's clock_timestamp(), ms since the epoch. */
  at: number;
  /** pg_current_wal_lsn(): where the primary's WAL ends. */
  lsn: bigint;
  /** replay_lsn of the standby streaming in sync (pg_stat_replication); null when none is. */
  syncReplay: bigint | null;
}

/** A PostgreSQL LSN (`16/B374D848`) as a number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/** The longest stretch (ms) in which no sample saw a synchronous standby streaming. */
export function longestSyncGap(samples: WalSample[]): number {
  let longest = 0;
  let lastInSync: number | undefined;
  for (const s of samples) {
    if (s.syncReplay !== null) lastInSync = s.at;
    else longest = Math.max(longest, s.at - (lastInSync ?? samples[0]!.at));
  }
  return longest;
}

/**
 * The longest wait of a commit for the synchronous standby's replay, bracketed (ms):
 * - `upper`: a commit flushed after sample i-1 has an LSN at most sample i's, so it was applied by the
 *   first sample from i on whose sync replay reached that LSN; it waited less than that sample's time
 *   minus sample i-1's. Infinity if some sample's WAL was never applied by the last sample.
 * - `lower`: when the WAL grew between samples i-1 and i, a record was flushed there with an LSN past
 *   sample i-1's (under the workload, a commit: it writes several a second); it was not yet applied at
 *   any sample from i on whose sync replay had not passed sample i-1's LSN (or that had no sync
 *   standby); it waited at least the last such sample's time minus sample i's.
 * The gaps between samples widen the bracket; both bounds are exact at the samples' own times.
 */
export function longestCommitWait(samples: WalSample[]): { lower: number; upper: number } {
  let lower = 0;
  let upper = 0;
  const reaches = (s: WalSample, lsn: bigint) => s.syncReplay !== null && s.syncReplay >= lsn;
  const passes = (s: WalSample, lsn: bigint) => s.syncReplay !== null && s.syncReplay > lsn;
  for (let i = 1; i < samples.length; i++) {
    const prev = samples[i - 1]!;
    const cur = samples[i]!;
    let j = i;
    while (j < samples.length && !reaches(samples[j]!, cur.lsn)) j++;
    upper = Math.max(upper, j < samples.length ? samples[j]!.at - prev.at : Infinity);
    if (cur.lsn > prev.lsn) {
      let k = i;
      while (k < samples.length && !passes(samples[k]!, prev.lsn)) k++;
      if (k > i) lower = Math.max(lower, samples[k - 1]!.at - cur.at);
    }
  }
  return { lower, upper };
}

/**
 * The SQL of one sampling run: `count` samples `intervalMs` apart, each a NOTICE (psql prints them on
 * stderr; parseWalSamples reads them). One DO block, so one backend and no WAL of its own.
 */
export function walSamplingSql(count: number, intervalMs: number): string {
  return `DO $$
DECLARE r record;
BEGIN
  FOR n IN 1..${count} LOOP
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS at,
           pg_current_wal_lsn() AS lsn,
           (SELECT max(replay_lsn) FROM pg_stat_replication
             WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')) AS replay
      INTO r;
    RAISE NOTICE 'walsample %|%|%', r.at, r.lsn, coalesce(r.replay::text, '-');
    PERFORM pg_sleep(${intervalMs / 1000});
  END LOOP;
END $$;`;
}

export function parseWalSamples(text: string): WalSample[] {
  return [...text.matchAll(/walsample (\d+)\|([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\|([0-9A-Fa-f/]+|-)/g)].map((m) => ({
    at: Number(m[1]),
    lsn: parseLsn(m[2]!),
    syncReplay: m[3] === '-' ? null : parseLsn(m[3]!),
  }));
}
