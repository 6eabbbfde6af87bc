/**
 * `npm run bench -- --ladder`: where a cached read's CPU goes, beyond what bare node:http spends.
 *
 * Each rung is a server answering GET /info/1 with the same bytes as the bare baseline, with one piece
 * of a real front more than the rung below (ladder-server.ts), and last a real front of a running
 * stack. Up to front-process the bare handler still serves: those rungs are what any Node front that
 * calls its upstreams with got pays before its own hit path runs.
 * A rung and the baseline are pinned to the same CPU and loaded at once by two wrk processes on the
 * other CPUs, so both see the same machine at the same moment: the ratio of their CPU time per request
 * (from /proc) then drifts by a few per cent where a throughput round on this shared machine drifts by
 * ±25 %. wrk, not autocannon: at these rates autocannon needs about as much CPU as the server it loads.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { processCpuMs } from './cpu.js';
import { forkServer, startBaseline, type Spawned } from './processes.js';
import type { LadderOptions } from './options.js';
import type { BenchRun } from './run.js';
import { CACHED_CONNECTIONS } from './scenarios/cached.js';
import { warmCache } from './scenarios/common.js';
import { startBenchStack } from './stacks.js';
import { RUNGS, type ServerRung } from './ladder-rungs.js';
import { percentile } from './stats.js';

/** A ladder server's rung, or the real front of a running stack on top. */
export type LadderRung = ServerRung | 'real-front';

const ADDS: Record<LadderRung, string> = {
  bare: 'nothing: another bare server (the method itself)',
  'got-loaded': 'got and its dependencies loaded',
  'got-used': '200 got GETs and JSON POSTs made before serving (as misses and reconciliation do)',
  'front-process': "a front's whole app built in the process (the bare handler still serving)",
  'hit-path': "the front's app serving the hits (fast path, cache lookup, headers, metric)",
  'real-front': 'a real front of a running stack (reconciliation every 2 s, discovery, probes)',
};

/** The request count of a wrk run, from its summary line ("123456 requests in 3.00s, ..."). */
export function wrkRequests(output: string): number | undefined {
  const m = /(\d+) requests in /.exec(output);
  return m ? Number(m[1]) : undefined;
}

/** Failed requests in a wrk run: non-2xx/3xx answers and socket errors of every kind. */
export function wrkFailures(output: string): number {
  let n = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  if (socket) n += socket.slice(1).reduce((a, v) => a + Number(v), 0);
  return n;
}

export interface RoundCpu {
  baseline: { cpuMs: number; requests: number };
  rung: { cpuMs: number; requests: number };
}

/** The rung's CPU per request over the baseline's, in one round on the same CPU. */
export function cpuRatio(round: RoundCpu): number {
  const per = (s: { cpuMs: number; requests: number }) => (s.requests > 0 ? s.cpuMs / s.requests : NaN);
  return per(round.rung) / per(round.baseline);
}

export interface RungResult {
  rung: LadderRung;
  adds: string;
  ratio: number;
  lo: number;
  hi: number;
  rungUs: number;
  baselineUs: number;
  rssMiB: number | undefined;
  failures: number;
}

/** Median and range of a rung's rounds; CPU µs per request are medians too. */
export function summarise(
  rung: LadderRung,
  rounds: RoundCpu[],
  failures: number,
  rssMiB?: number,
): RungResult {
  const ratios = Float64Array.from(rounds.map(cpuRatio).filter(Number.isFinite));
  const us = (pick: (r: RoundCpu) => { cpuMs: number; requests: number }) =>
    percentile(Float64Array.from(rounds.map((r) => (pick(r).cpuMs * 1000) / pick(r).requests)), 50);
  return {
    rung,
    adds: ADDS[rung],
    ratio: percentile(ratios, 50),
    lo: Math.min(...ratios),
    hi: Math.max(...ratios),
    rungUs: us((r) => r.rung),
    baselineUs: us((r) => r.baseline),
    rssMiB,
    failures,
  };
}

export function renderLadder(results: RungResult[]): string {
  const lines = [
    '| rung | adds to the rung above | CPU per hit / bare (range) | step | µs per hit | bare µs | RSS MiB |',
    '|---|---|---|---|---|---|---|',
  ];
  let previous: number | undefined;
  for (const r of results) {
    const step =
      previous === undefined ? '' : `${r.ratio - previous >= 0 ? '+' : ''}${(r.ratio - previous).toFixed(2)}`;
    lines.push(
      `| ${r.rung} | ${r.adds} | ${r.ratio.toFixed(2)}x (${r.lo.toFixed(2)}–${r.hi.toFixed(2)}) | ${step} | ` +
        `${r.rungUs.toFixed(1)} | ${r.baselineUs.toFixed(1)} | ${r.rssMiB?.toFixed(0) ?? '–'} |`,
    );
    previous = r.ratio;
  }
  const failures = results.reduce((a, r) => a + r.failures, 0);
  lines.push('', `failed requests: ${failures}`);
  return lines.join('\n');
}

function rssMiB(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function requireTool(cmd: string, args: string[], hint: string): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.error) throw new Error(`the ladder needs ${cmd} (${hint}): ${r.error.message}`);
}

/** Every thread of `pid` onto `cpu` (taskset -a). */
function pin(pid: number, cpu: number): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset could not pin ${pid} to CPU ${cpu}: ${r.stderr.trim()}`);
}

function wrk(url: string, seconds: number, cpus: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['-c', cpus, 'wrk', '-t1', `-c${CACHED_CONNECTIONS}`, `-d${seconds}s`, url];
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    // 'close', not 'exit': the output may still be in the pipe when the process has exited.
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}: ${out}`)),
    );
  });
}

async function measureRung(
  run: BenchRun,
  target: { rung: LadderRung; url: string; pid: number },
  baseline: Spawned & { pid: number },
  opts: LadderOptions & { serverCpu: number; loadCpus: string },
): Promise<RungResult> {
  pin(target.pid, opts.serverCpu);
  pin(baseline.pid, opts.serverCpu);
  const both = () =>
    Promise.all([
      wrk(`${baseline.url}/info/1`, opts.seconds, opts.loadCpus),
      wrk(`${target.url}/info/1`, opts.seconds, opts.loadCpus),
    ]);
  await both(); // warm-up: both optimised before the first round
  const rounds: RoundCpu[] = [];
  let failures = 0;
  for (let i = 0; i < opts.rounds; i++) {
    run.checkpoint();
    const b0 = processCpuMs(baseline.pid);
    const t0 = processCpuMs(target.pid);
    const [bOut, tOut] = await both();
    const b1 = processCpuMs(baseline.pid);
    const t1 = processCpuMs(target.pid);
    const bReq = wrkRequests(bOut);
    const tReq = wrkRequests(tOut);
    if (b0 === undefined || b1 === undefined || t0 === undefined || t1 === undefined)
      throw new Error('the ladder needs /proc to read CPU time');
    if (bReq === undefined || tReq === undefined) throw new Error(`unreadable wrk output: ${bOut}\n${tOut}`);
    failures += wrkFailures(bOut) + wrkFailures(tOut);
    rounds.push({ baseline: { cpuMs: b1 - b0, requests: bReq }, rung: { cpuMs: t1 - t0, requests: tReq } });
  }
  const result = summarise(target.rung, rounds, failures, rssMiB(target.pid));
  run.log(
    `ladder ${target.rung}: ${result.ratio.toFixed(2)}x (${result.lo.toFixed(2)}–${result.hi.toFixed(2)}), ` +
      `${result.rungUs.toFixed(1)} vs ${result.baselineUs.toFixed(1)} µs per hit`,
  );
  return result;
}

export async function runLadder(run: BenchRun, opts: LadderOptions): Promise<void> {
  const cpus = os.availableParallelism();
  if (cpus < 2) throw new Error('the ladder needs 2 CPUs: one for the servers, the rest for wrk');
  requireTool('wrk', ['--version'], 'apt-get install wrk');
  requireTool('taskset', ['-V'], 'util-linux');
  const serverCpu = cpus - 1;
  const loadCpus = cpus === 2 ? '0' : `0-${cpus - 2}`;
  run.log(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')} on ${cpus} CPUs`,
  );
  const bazar = await startBenchStack(run, {
    label: 'ladder',
    mode: 'strict',
    fsync: false,
    fronts: 1,
    catalogReplicas: 1,
    orderReplicas: 1,
  });
  const front = bazar.stack.fronts[0]!;
  await warmCache(run.client, front.url);
  const body = (await run.client.request(`${front.url}/info/1`)).body;
  const baseline = await startBaseline(body);
  const stopBaseline = run.onExit(() => baseline.stop());
  const results: RungResult[] = [];
  try {
    if (baseline.pid === undefined) throw new Error('the baseline server has no pid');
    const base = { ...baseline, pid: baseline.pid };
    const settings = { ...opts, serverCpu, loadCpus };
    for (const rung of RUNGS) {
      const server = await forkServer(`ladder ${rung}`, './ladder-server.js', {
        LADDER_RUNG: rung,
        LADDER_BODY: body,
      });
      const stop = run.onExit(() => server.stop());
      try {
        if (server.pid === undefined) throw new Error(`the ${rung} server has no pid`);
        results.push(await measureRung(run, { rung, url: server.url, pid: server.pid }, base, settings));
      } finally {
        await stop();
      }
    }
    const frontPid = front.pid();
    if (frontPid === undefined) throw new Error('the front is not running');
    results.push(
      await measureRung(run, { rung: 'real-front', url: front.url, pid: frontPid }, base, settings),
    );
  } finally {
    await stopBaseline();
    await bazar.stop();
  }
  process.stdout.write(
    `\nCached read, CPU per hit against bare node:http on the same CPU at the same time ` +
      `(${opts.rounds} rounds of ${opts.seconds} s, ${CACHED_CONNECTIONS} connections each):\n\n` +
      renderLadder(results) +
      '\n',
  );
}
