/**
 * Reads a V8 .cpuprofile (what cpu-profile-preload.ts writes) into self time per function and per
 * package (pure: unit-tested). Self time of a sample is the time to the next sample, as Chrome DevTools
 * counts it. Packages: a node_modules package by name, `node: internals` (node:* modules), `native`
 * (C++ bindings and builtins, no script), Bazar's own code by service, `GC`, `(program)` (V8 itself),
 * and `idle` (the event loop waiting). V8 samples wall-clock time on the main thread: a thread
 * blocked in a system call is counted under the native frame that made it, not as idle.
 */

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame; children?: number[] }>;
  startTime: number;
  endTime: number;
  samples: number[];
  /** µs since the previous sample (the first: since startTime). */
  timeDeltas: number[];
}

export interface SelfItem {
  functionName: string;
  location: string;
  category: string;
  ms: number;
}

export interface ProfileSummary {
  /** Sampled wall time, ms. */
  totalMs: number;
  idleMs: number;
  /** Everything not idle: the percentages below are of this. */
  busyMs: number;
  items: SelfItem[];
  byCategory: Array<{ category: string; ms: number }>;
}

const SPECIAL: Record<string, string> = {
  '(idle)': 'idle',
  '(garbage collector)': 'GC',
  '(program)': '(program)',
  '(root)': '(root)',
};

/** The package (or kind of code) a frame belongs to. */
export function categoryOf(frame: Pick<CallFrame, 'functionName' | 'url'>): string {
  const special = SPECIAL[frame.functionName];
  if (special && frame.url === '') return special;
  const url = frame.url;
  if (url === '') return 'native';
  if (url.startsWith('node:')) return 'node: internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? 'node_modules');
  }
  const services = /\/dist\/services\/([^/]+)\//.exec(url);
  if (services) return `bazar: ${services[1]}`;
  const tools = /\/dist\/tools\/([^/]+)\//.exec(url);
  if (tools) return `tools: ${tools[1]}`;
  return 'other';
}

/** A short place for a frame: `got/dist/source/core/index.js:123`, `services/front/src/app.js:40`. */
export function locationOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === '') return '(native)';
  const line = frame.lineNumber >= 0 ? `:${frame.lineNumber + 1}` : '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length) + line;
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length) + line;
  return url.replace(/^file:\/\//, '') + line;
}

export function summarise(profile: CpuProfile): ProfileSummary {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const n = profile.samples.length;
  const deltas = profile.timeDeltas;
  let at = profile.startTime;
  const stamps = deltas.map((d) => (at += d));
  const perNode = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const next = i + 1 < n ? (stamps[i + 1] as number) : profile.endTime;
    const us = Math.max(0, next - (stamps[i] as number));
    const id = profile.samples[i] as number;
    perNode.set(id, (perNode.get(id) ?? 0) + us);
  }
  const items = new Map<string, SelfItem>();
  const categories = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, us] of perNode) {
    const frame = frames.get(id);
    if (!frame) continue;
    const ms = us / 1000;
    const category = categoryOf(frame);
    totalMs += ms;
    if (category === 'idle') {
      idleMs += ms;
      continue;
    }
    if (category === '(root)') continue;
    categories.set(category, (categories.get(category) ?? 0) + ms);
    const location = locationOf(frame);
    const name = frame.functionName || '(anonymous)';
    const key = `${name} ${location}`;
    const item = items.get(key);
    if (item) item.ms += ms;
    else items.set(key, { functionName: name, location, category, ms });
  }
  const busyMs = [...categories.values()].reduce((a, v) => a + v, 0);
  return {
    totalMs,
    idleMs,
    busyMs,
    items: [...items.values()].sort((a, b) => b.ms - a.ms),
    byCategory: [...categories].map(([category, ms]) => ({ category, ms })).sort((a, b) => b.ms - a.ms),
  };
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '–');

/** One process's profile as text: time by package, then the top self-time items. */
export function renderProfile(
  name: string,
  s: ProfileSummary,
  opts: { top: number; cpuMs?: number | undefined; seconds: number; requests: number },
): string[] {
  const cpu =
    opts.cpuMs === undefined
      ? '/proc CPU not measured'
      : `/proc CPU ${opts.cpuMs.toFixed(0)} ms (${((opts.cpuMs / (opts.seconds * 1000)) * 100).toFixed(0)} % of a core` +
        (opts.requests > 0 ? `, ${((opts.cpuMs * 1000) / opts.requests).toFixed(0)} µs/req)` : ')');
  const out = [
    `${name}: ${cpu}; sampled ${s.busyMs.toFixed(0)} ms busy, ${s.idleMs.toFixed(0)} ms idle (main thread, wall clock)`,
    `  by package: ${s.byCategory
      .filter((c) => c.ms / s.busyMs >= 0.005)
      .map((c) => `${c.category} ${pct(c.ms, s.busyMs)}`)
      .join(' · ')}`,
    '  top self time:',
  ];
  for (const item of s.items.slice(0, opts.top)) {
    out.push(
      `    ${pct(item.ms, s.busyMs).padStart(7)}  ${item.ms.toFixed(0).padStart(6)} ms  ${item.functionName}  ${item.location}  [${item.category}]`,
    );
  }
  return out;
}

export const WALL_CLOCK_NOTE =
  "Note: V8's sampling profiler samples the main thread's wall clock. Time the thread spends blocked in a " +
  'system call (a socket write, say) is counted under the native frame that made the call (e.g. ' +
  'writeLatin1String, writev), not as idle, and work on other threads (GC helpers, libuv, TLS) is not ' +
  'in it. The /proc CPU beside each profile is what the whole process burnt; percentages are of the ' +
  'sampled busy time.';
