/** /proc parsing and CPU bookkeeping of the bench (cpu.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  byGroup,
  byTier,
  formatTierRatios,
  formatBreakdown,
  groupOf,
  parsePostmasterPid,
  parseStat,
  perRequest,
  poolSpent,
  processCpuMs,
  snapshot,
  spentBetween,
  tierOf,
  treeTicks,
  type ProcStat,
} from './cpu.js';

// A real line's shape: utime 1234, stime 56, cutime 7, cstime 8; the name holds spaces and a ')'.
const LINE =
  '4242 (postgres: bazar bazar 127.0.0.1(5432) idle) S 4000 4000 4000 0 -1 4194560 1069 0 0 0 ' +
  '1234 56 7 8 20 0 1 0 3141592 220000000 2400 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';

describe('bench: /proc', () => {
  it('parses a stat line whose command name has spaces and parentheses', () => {
    assert.deepEqual(parseStat(LINE), {
      pid: 4242,
      ppid: 4000,
      utime: 1234,
      stime: 56,
      cutime: 7,
      cstime: 8,
    });
    assert.equal(parseStat('garbage'), undefined);
    assert.equal(parseStat('1 (x) S'), undefined, 'too few fields');
  });

  it('reads the postmaster pid from the first line of postmaster.pid', () => {
    assert.equal(parsePostmasterPid('31337\n/tmp/pg/primary\n1700000000\n5432\n\n127.0.0.1\n'), 31337);
    assert.equal(parsePostmasterPid(''), undefined);
    assert.equal(parsePostmasterPid('-1\n'), undefined);
  });

  it("sums a process tree, exited children's time (cutime) included, other trees not", () => {
    const s = (pid: number, ppid: number, u: number, cu = 0): ProcStat => ({
      pid,
      ppid,
      utime: u,
      stime: 1,
      cutime: cu,
      cstime: 0,
    });
    const stats = [s(10, 1, 100, 40), s(11, 10, 5), s(12, 10, 6), s(13, 12, 7), s(20, 1, 1000), s(21, 20, 9)];
    assert.equal(treeTicks(stats, 10), 100 + 1 + 40 + (5 + 1) + (6 + 1) + (7 + 1));
    assert.equal(treeTicks(stats, 99), undefined);
  });

  it("reads this process's own CPU, and nothing for a pid that does not exist", () => {
    const mine = processCpuMs(process.pid);
    if (mine !== undefined) assert.ok(mine > 0);
    assert.equal(processCpuMs(2 ** 30), undefined);
    assert.equal(snapshot([{ name: 'none', pid: () => undefined }]).size, 0);
  });
});

describe('bench: CPU per request', () => {
  it('charges each process its CPU over the requests, leaving out one seen only once', () => {
    const before = new Map([
      ['front-0', 1000],
      ['pg primary', 50],
    ]);
    const after = new Map([
      ['front-0', 1480],
      ['pg primary', 140],
      ['catalog-origin-0', 70],
    ]);
    const spent = spentBetween(before, after);
    assert.deepEqual(
      [...perRequest(spent, 1000)],
      [
        ['front-0', 480],
        ['pg primary', 90],
      ],
    );
    assert.equal(perRequest(spent, 0).size, 0);
  });

  it('pools runs by CPU spent over requests, a run in which nothing completed included', () => {
    const pooled = poolSpent([
      { cpuSpentMs: new Map([['front-0', 30]]), requests: 300 },
      { cpuSpentMs: new Map([['front-0', 20]]), requests: 100 },
      { cpuSpentMs: new Map([['front-0', 10]]), requests: 0 },
    ]);
    assert.equal(pooled?.perRequest.get('front-0'), 150);
    assert.equal(pooled?.spent.get('front-0'), 60);
    assert.equal(poolSpent([{ requests: 10 }]), undefined);
  });

  it('groups instances and orders fronts first, Postgres last', () => {
    assert.equal(groupOf('front-1'), 'front');
    assert.equal(groupOf('catalog-replica-3'), 'catalog replica');
    assert.equal(groupOf('chain-front-0'), 'front');
    assert.equal(groupOf('chain-order'), 'order');
    assert.equal(groupOf('pg standby'), 'pg standby');
    assert.equal(tierOf('catalog origin'), 'catalog');
    const cpu = new Map([
      ['pg standby', 40],
      ['front-1', 0.2],
      ['catalog-origin-0', 130],
      ['front-0', 480],
      ['catalog-replica-0', 130],
      ['pg primary', 90],
    ]);
    assert.deepEqual(
      byGroup(cpu).map((g) => g.group),
      ['front', 'catalog origin', 'catalog replica', 'pg primary', 'pg standby'],
    );
    assert.equal(
      formatBreakdown(cpu),
      'front 480 · catalog origin 130 · catalog replica 130 · pg primary 90 · pg standby 40 · total 870 µs/req',
    );
    assert.equal(formatBreakdown(undefined), 'CPU not measured (no /proc)');
  });
});

describe('bench: CPU by tier', () => {
  it("sets Bazar's tiers against the floor's, both figures where the floor hardly uses one", () => {
    const floor = new Map([
      ['chain-front-0', 300],
      ['chain-front-1', 20],
      ['chain-catalog', 200],
      ['pg primary', 2],
      ['pg standby', 100],
    ]);
    const bazar = new Map([
      ['front-0', 600],
      ['front-1', 40],
      ['catalog-origin-0', 150],
      ['catalog-replica-0', 150],
      ['pg primary', 90],
      ['pg standby', 100],
    ]);
    assert.deepEqual(
      [...byTier(bazar)],
      [
        ['front', 640],
        ['catalog', 300],
        ['pg primary', 90],
        ['pg standby', 100],
      ],
    );
    assert.equal(
      formatTierRatios(floor, bazar),
      'front 2.00x · catalog 1.50x · pg primary 90 vs 2 µs · pg standby 1.00x',
    );
    assert.equal(formatTierRatios(undefined, bazar), '');
  });
});
