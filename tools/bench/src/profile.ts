/**
 * `npm run bench -- --profile <path>`: starts the store (or, with --system chain, the bare chain on the
 * store's Postgres pair) with every Node process under V8's sampling profiler (cpu-profile-preload.ts),
 * drives one path for --seconds, and prints per process its top self-time items and time by package,
 * beside its CPU from /proc (Postgres too, which has no V8 profile). The .cpuprofile files stay in the
 * results directory, for Chrome DevTools or speedscope.
 *
 * Paths: cached (GET /info/1, 50 connections), uncached (Cache-Control: no-cache, books 1–7, 10
 * connections), purchase (POST /purchase/:id, books 1–7, 10 clients).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { snapshot, spentBetween, type Watched } from './cpu.js';
import { load, p, type LoadSpec } from './load.js';
import type { ProfileOptions } from './options.js';
import { renderProfile, summarise, WALL_CLOCK_NOTE, type CpuProfile } from './profile-analysis.js';
import type { BenchRun } from './run.js';
import { BOOK_PATHS, restockAll, warmCache } from './scenarios/common.js';
import { serviceWatch, startBenchStack, startChainFor } from './stacks.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const PRELOAD = pathToFileURL(fileURLToPath(new URL('./cpu-profile-preload.js', import.meta.url))).href;
const DEFAULT_CONNECTIONS = { cached: 50, uncached: 10, purchase: 10 } as const;

/** A profiled process: what to signal and what its profile file is called. */
interface Profiled {
  name: string;
  pid: number | undefined;
}

function profilerEnv(dir: string): Record<string, string> {
  const inherited = process.env['NODE_OPTIONS'];
  return {
    NODE_OPTIONS: `${inherited ? `${inherited} ` : ''}--import=${PRELOAD}`,
    BAZAR_CPU_PROFILE_DIR: dir,
  };
}

async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await stat(file);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`no ${path.basename(file)} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** SIGUSR2 to each: it writes what it sampled since the last signal and starts afresh. */
async function cut(procs: Profiled[], dir: string): Promise<void> {
  for (const proc of procs) await rm(path.join(dir, `${proc.name}.cpuprofile`), { force: true });
  for (const proc of procs) if (proc.pid !== undefined) process.kill(proc.pid, 'SIGUSR2');
  await Promise.all(procs.map((proc) => waitForFile(path.join(dir, `${proc.name}.cpuprofile`), 30_000)));
}

export async function runProfile(
  run: BenchRun,
  opts: ProfileOptions,
  out: string | undefined,
): Promise<void> {
  if (opts.system === 'chain' && opts.path === 'cached')
    throw new Error('the bare chain has no cache: profile it on uncached or purchase');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bazar-profile-'));
  run.onExit(() => rm(dir, { recursive: true, force: true }));
  const env = profilerEnv(dir);
  // --fronts: the fan-out shape, and only the order, the first front (purchases come through it)
  // and the second (it only receives the pushes) under the profiler: each profiled process pays for
  // its sampler, and a dozen of them would crowd two cores.
  const profiledName = (name: string) =>
    opts.fronts === undefined || name === 'front-0' || name === 'front-1' || name.startsWith('order');
  const bazar = await startBenchStack(run, {
    label: opts.mode,
    mode: opts.mode,
    fsync: true,
    ...(opts.fronts === undefined
      ? { fronts: 2, catalogReplicas: 1, orderReplicas: 1 }
      : { fronts: opts.fronts, catalogReplicas: 0, orderReplicas: 0 }),
    ...(opts.system === 'bazar'
      ? opts.fronts === undefined
        ? { env }
        : { envFor: (proc: { name: string }) => (profiledName(proc.name) ? env : {}) }
      : {}),
  });
  const chain = opts.system === 'chain' ? await startChainFor(run, bazar, env) : undefined;
  const procs: Profiled[] = chain
    ? chain.chain.all.map((s) => ({ name: s.name, pid: s.pid }))
    : bazar.stack.all.filter((s) => profiledName(s.name)).map((s) => ({ name: s.name, pid: s.pid() }));
  const watch: Watched[] = [
    ...(chain ? chain.chain.all.map((s) => ({ name: s.name, pid: () => s.pid })) : serviceWatch(bazar.stack)),
    ...bazar.pair.watch,
  ];

  const front = chain ? chain.chain.fronts[0]!.url : bazar.stack.fronts[0]!.url;
  const connections = opts.connections ?? DEFAULT_CONNECTIONS[opts.path];
  const spec: LoadSpec = {
    url: opts.path === 'cached' ? `${front}/info/1` : front,
    connections,
    ...(opts.path === 'uncached'
      ? { paths: BOOK_PATHS('/info'), ...(chain ? {} : { headers: { 'cache-control': 'no-cache' } }) }
      : {}),
    ...(opts.path === 'purchase' ? { method: 'POST' as const, paths: BOOK_PATHS('/purchase') } : {}),
  };
  await restockAll(run.client, bazar.stack.fronts[0]!.url, bazar.stack.adminToken);
  await warmCache(run.client, bazar.stack.fronts[0]!.url);
  run.log(`warming up: ${opts.path} on the ${opts.system === 'chain' ? 'bare chain' : `${opts.mode} stack`}`);
  await load({ ...spec, duration: 3 });
  await cut(procs, dir); // drops what start-up and warm-up sampled

  run.log(`profiling ${opts.path} for ${opts.seconds} s at ${connections} connections`);
  const before = snapshot(watch);
  const result = await load({ ...spec, duration: opts.seconds });
  const after = snapshot(watch);
  await cut(procs, dir);

  const cpuMs = spentBetween(before, after);
  const outDir = path.resolve(
    out ??
      path.join(
        ROOT,
        'bench-results',
        `profile-${opts.system}-${opts.path}-${new Date().toISOString().replace(/[:.]/g, '-')}`,
      ),
  );
  await mkdir(outDir, { recursive: true });
  const lines = [
    '',
    `Profile of ${opts.path} on the ${opts.system === 'chain' ? `bare chain (${chain?.synchronousCommit})` : `${opts.mode} stack`}` +
      `${opts.fronts === undefined ? '' : ` of ${opts.fronts} fronts`}: ` +
      `${result.requests} requests in ${result.seconds.toFixed(1)} s (${result.rps.toFixed(0)}/s, p50 ${p(result, 50).toFixed(2)} ms, ` +
      `${result.errors + result.timeouts + result.non2xx} errors) at ${connections} connections; ` +
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' / ')}`,
    WALL_CLOCK_NOTE,
    '',
  ];
  for (const proc of procs) {
    const file = path.join(dir, `${proc.name}.cpuprofile`);
    const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
    await copyFile(file, path.join(outDir, `${proc.name}.cpuprofile`));
    lines.push(
      ...renderProfile(proc.name, summarise(profile), {
        top: opts.top,
        cpuMs: cpuMs.get(proc.name),
        seconds: result.seconds,
        requests: result.requests,
      }),
      '',
    );
  }
  const rates = procs.map((proc) => (cpuMs.get(proc.name) ?? NaN) / result.seconds).filter(Number.isFinite);
  if (rates.length > 0) {
    lines.push(
      `The sampler itself costs each profiled process CPU on a thread of its own: the least busy one here ` +
        `burnt ${Math.min(...rates).toFixed(0)} ms/s, which is in every /proc figure above.`,
      '',
    );
  }
  const unprofiled = chain ? [] : bazar.stack.all.filter((s) => !profiledName(s.name));
  if (unprofiled.length > 0) {
    const ms = unprofiled.reduce((a, s) => a + (cpuMs.get(s.name) ?? 0), 0);
    lines.push(
      `${unprofiled.length} processes not profiled (${unprofiled.map((s) => s.name).join(', ')}): /proc CPU ` +
        `${ms.toFixed(0)} ms in all, ${((ms * 1000) / Math.max(1, result.requests)).toFixed(0)} µs/req`,
    );
  }
  for (const pg of bazar.pair.watch) {
    const ms = cpuMs.get(pg.name);
    if (ms === undefined) continue;
    lines.push(
      `${pg.name} (no V8 profile): /proc CPU ${ms.toFixed(0)} ms, ` +
        `${((ms * 1000) / Math.max(1, result.requests)).toFixed(0)} µs/req (postmaster + all its children)`,
    );
  }
  lines.push(
    '',
    `profiles (.cpuprofile, for Chrome DevTools or speedscope) in ${path.relative(process.cwd(), outDir)}/`,
  );
  process.stdout.write(lines.join('\n') + '\n');
}
