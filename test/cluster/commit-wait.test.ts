import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  longestCommitWait,
  longestSyncGap,
  parseLsn,
  parseWalSamples,
  type WalSample,
} from './commit-wait.js';

/** Samples 100 ms apart: [WAL end, sync replay or null]. */
const series = (rows: [number, number | null][]): WalSample[] =>
  rows.map(([lsn, replay], i) => ({
    at: 1000 + i * 100,
    lsn: BigInt(lsn),
    syncReplay: replay === null ? null : BigInt(replay),
  }));

describe('the commit waits measured on the primary', () => {
  it('parses LSNs and the sampling NOTICEs', () => {
    assert.equal(parseLsn('0/10'), 16n);
    assert.equal(parseLsn('1/0'), 1n << 32n);
    assert.throws(() => parseLsn('16'), /not an LSN/);
    const text =
      'psql:<stdin>:12: NOTICE:  walsample 1700000000123|0/3000060|0/3000028\n' +
      'psql:<stdin>:12: NOTICE:  walsample 1700000000175|0/3000090|-\n';
    assert.deepEqual(parseWalSamples(text), [
      { at: 1700000000123, lsn: 0x3000060n, syncReplay: 0x3000028n },
      { at: 1700000000175, lsn: 0x3000090n, syncReplay: null },
    ]);
  });

  it('a standby keeping up: waits within one sample', () => {
    const s = series([
      [10, 10],
      [20, 20],
      [30, 25],
      [40, 40],
    ]);
    assert.deepEqual(longestCommitWait(s), { lower: 0, upper: 200 });
    assert.equal(longestSyncGap(s), 0);
  });

  it('listed again before it has replayed what it missed: the wait outlasts the gap in the list', () => {
    // Not listed for 200 ms (samples 1-2), then listed but replaying the backlog for 500 ms more.
    const s = series([
      [10, 10],
      [20, null],
      [30, null],
      [40, 12],
      [50, 15],
      [60, 18],
      [70, 25],
      [80, 40],
      [90, 90],
    ]);
    assert.equal(longestSyncGap(s), 200);
    const wait = longestCommitWait(s);
    // WAL flushed between samples 1 and 2 (past 20, at most 30) is unapplied while the replay is at
    // most 20 (to sample 5, at 1500): it waited at least 300 ms; the replay passed 30 by sample 7
    // (1700): less than 600 ms.
    assert.equal(wait.lower, 300);
    assert.equal(wait.upper, 600);
    assert.ok(wait.lower > longestSyncGap(s));
  });

  it('never applied by the last sample: no upper bound', () => {
    const s = series([
      [10, 10],
      [20, 10],
      [30, 10],
    ]);
    assert.deepEqual(longestCommitWait(s), { lower: 100, upper: Infinity });
  });

  it('no WAL written: nothing waited, whatever the standby did', () => {
    const s = series([
      [10, 10],
      [10, null],
      [10, null],
      [10, 10],
    ]);
    assert.equal(longestCommitWait(s).lower, 0);
  });
});
