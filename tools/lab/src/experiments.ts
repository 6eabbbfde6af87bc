/**
 * The lab's experiments (docs/lab.md has them as exercises). The first four are the original
 * report's; the others are what this store adds. Each restores what it changed, so that they run in
 * any order against one store.
 */
import pg from 'pg';
import { kindsFor, measureStaleness, type ConsistencyMode } from '../../checker/src/check.js';
import { checkedRun } from '../../checker/src/run.js';
import type { ClientReply } from '../../checker/src/client.js';
import type { Stack } from '../../devstack/src/stack.js';
import { metric } from '../../bench/src/prom.js';
import {
  check,
  mean,
  ms,
  quantile,
  type Check,
  type Experiment,
  type Lab,
  type Outcome,
  type Row,
} from './lab.js';

interface BookBody {
  version: number;
  stock: number;
  price: number;
}
interface PurchaseBody {
  orderId: string;
  version: number;
  remainingStock: number;
}

const NO_CACHE = { 'Cache-Control': 'no-cache' };
/** The modes experiment runs each mode until this many price changes were acknowledged. */
const MIN_PRICE_CHANGES = 5;
const DEFAULT_POLICY = {
  consistencyMode: 'strict',
  loadBalancing: 'round-robin',
  cache: { maxEntries: 10_000, ttlMs: 60_000 },
};

const header = (r: ClientReply, name: string): string => String(r.headers[name] ?? '');
const body = <T>(r: ClientReply): T => r.body as T;
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Enough stock that the lab's purchases never sell a book out. */
async function restock(lab: Lab, id: number, quantity = 1000): Promise<void> {
  const r = await lab.timed('POST', `/books/${id}/restock`, { headers: lab.admin(), json: { quantity } });
  if (r.status !== 200) throw new Error(`restock of book ${id} answered ${r.status}`);
}

async function withPolicy<T>(lab: Lab, change: object, work: () => Promise<T>): Promise<T> {
  const { control } = lab.knobs();
  await control.setPolicy(change);
  try {
    return await work();
  } finally {
    await control.setPolicy(DEFAULT_POLICY);
  }
}

/** Commits whose standby confirmation timed out, over the store's writers (their own counters). */
async function syncCommitTimeouts(stack: Stack): Promise<number> {
  let total = 0;
  for (const p of [...stack.catalogs, ...stack.orders]) {
    total += metric(await (await fetch(`${p.url}/metrics`)).text(), 'bazar_sync_commit_timeouts_total');
  }
  return total;
}

/**
 * Until both writers take writes again (after the primary came back): a purchase (an order pod) and a
 * restock (the catalog origin). Each finds the primary back on its own: one taking writes says nothing
 * of the other, and the next experiment needs both.
 */
async function untilWritable(lab: Lab, id: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  const writes: Array<[string, () => Promise<ClientReply>]> = [
    ['a purchase', () => lab.timed('POST', `/purchase/${id}`)],
    [
      'a restock',
      () => lab.timed('POST', `/books/${id}/restock`, { headers: lab.admin(), json: { quantity: 1 } }),
    ],
  ];
  for (const [what, write] of writes) {
    for (;;) {
      const r = await write();
      if (r.status === 200) break;
      if (Date.now() > deadline) throw new Error(`the store did not take ${what} again (last: ${r.status})`);
      await sleep(200);
    }
  }
}

const cache: Experiment = {
  id: 'cache',
  title: 'Cache off / on: GET /info/5 through the front',
  needs: 'front',
  async run(lab) {
    const n = lab.reps(200, 30);
    await lab.timed('GET', '/info/5');
    const uncached: number[] = [];
    const cached: number[] = [];
    const wrongPath: string[] = [];
    // Interleaved, so that whatever else the machine does weighs on both alike.
    for (let i = 0; i < n; i++) {
      const miss = await lab.timed('GET', '/info/5', { headers: NO_CACHE });
      const hit = await lab.timed('GET', '/info/5');
      uncached.push(miss.ms);
      cached.push(hit.ms);
      if (header(miss, 'x-cache') !== 'miss')
        wrongPath.push(`no-cache read answered X-Cache ${header(miss, 'x-cache')}`);
      if (header(hit, 'x-cache') !== 'hit')
        wrongPath.push(`cached read answered X-Cache ${header(hit, 'x-cache')}`);
    }
    const ratio = quantile(cached, 0.5) / quantile(uncached, 0.5);
    return {
      table: [
        ['uncached (Cache-Control: no-cache), mean', '14 ms', ms(mean(uncached))],
        ['uncached, median', '', ms(quantile(uncached, 0.5))],
        ['cached, mean', '5 ms', ms(mean(cached))],
        ['cached, median', '', ms(quantile(cached, 0.5))],
        ['cached / uncached (medians)', '≈ 1/3', ratio.toFixed(2)],
      ],
      notes: [
        `${n} reads of each, interleaved. The original ran on three VMs; here every hop is loopback, so an`,
        'uncached read costs a catalog hop and a PostgreSQL query but no network: both figures are smaller.',
      ],
      checks: [
        check(
          'every no-cache read is a miss, every other read a hit (X-Cache)',
          wrongPath.length === 0,
          wrongPath[0],
        ),
        check(
          'a cached read is faster than an uncached one (medians)',
          ratio < 1,
          `ratio ${ratio.toFixed(2)}`,
        ),
      ],
    };
  },
};

const invalidation: Experiment = {
  id: 'invalidation',
  title: 'A purchase with awaited invalidation (strict) and without (eventual)',
  needs: 'store',
  async run(lab) {
    const n = lab.reps(60, 10);
    await restock(lab, 4);
    const fronts = lab.fronts.length;
    const lat: Record<'strict' | 'eventual', number[]> = { strict: [], eventual: [] };
    const invalidated: Record<'strict' | 'eventual', Set<string>> = {
      strict: new Set(),
      eventual: new Set(),
    };
    let failed = 0;
    try {
      // Blocks of each mode, alternated, so that drift on the machine weighs on both.
      for (let round = 0; round < 4; round++) {
        for (const mode of ['strict', 'eventual'] as const) {
          await lab.knobs().control.setPolicy({ consistencyMode: mode });
          for (let i = 0; i < Math.ceil(n / 4); i++) {
            const r = await lab.timed('POST', '/purchase/4');
            if (r.status !== 200) failed++;
            lat[mode].push(r.ms);
            invalidated[mode].add(header(r, 'x-invalidated'));
          }
        }
      }
    } finally {
      await lab.knobs().control.setPolicy(DEFAULT_POLICY);
    }
    const show = (s: Set<string>): string => [...s].join(', ');
    return {
      table: [
        ['with invalidation awaited (strict), mean', '66 ms', ms(mean(lat.strict))],
        ['  median', '', ms(quantile(lat.strict, 0.5))],
        ['  X-Invalidated', '', show(invalidated.strict)],
        ['without (eventual), mean', '38 ms', ms(mean(lat.eventual))],
        ['  median', '', ms(quantile(lat.eventual, 0.5))],
        ['  X-Invalidated', '', show(invalidated.eventual)],
      ],
      notes: [
        `${lat.strict.length} purchases in each mode, ${fronts} fronts. Strict also waits for the standby to apply`,
        'the commit (remote_apply) and announces the write to every front before it commits.',
      ],
      checks: [
        check('every purchase succeeds', failed === 0, `${failed} failed`),
        check(
          `strict: every front acknowledged before the answer (X-Invalidated ${fronts}/${fronts})`,
          invalidated.strict.size === 1 && invalidated.strict.has(`${fronts}/${fronts}`),
          show(invalidated.strict),
        ),
        check(
          `eventual: the answer does not wait for any front (X-Invalidated 0/${fronts})`,
          invalidated.eventual.size === 1 && invalidated.eventual.has(`0/${fronts}`),
          show(invalidated.eventual),
        ),
      ],
    };
  },
};

const roundRobin: Experiment = {
  id: 'round-robin',
  title: 'Round robin: which catalog pod served each uncached read',
  needs: 'front',
  async run(lab) {
    const n = lab.reps(12, 6);
    const servedBy: string[] = [];
    for (let i = 0; i < n; i++) {
      servedBy.push(header(await lab.timed('GET', '/info/1', { headers: NO_CACHE }), 'x-served-by'));
    }
    const counts = new Map<string, number>();
    for (const s of servedBy) counts.set(s, (counts.get(s) ?? 0) + 1);
    const spread = Math.max(...counts.values()) - Math.min(...counts.values());
    const rows: Row[] = servedBy.map((s, i) => [
      `read ${i + 1}`,
      i === 0 ? 'from origin' : i === 1 ? 'from first replica' : '',
      s,
    ]);
    return {
      table: rows,
      notes: [`X-Served-By of ${n} reads of book 1 with Cache-Control: no-cache through one front.`],
      checks: [
        check('more than one catalog pod serves', counts.size > 1, [...counts.keys()].join(', ')),
        check(
          'each pod serves its turn (counts differ by at most one)',
          spread <= 1,
          JSON.stringify(Object.fromEntries(counts)),
        ),
      ],
    };
  },
};

const lru: Experiment = {
  id: 'lru',
  title: 'An LRU cache of 3 entries: book 5 evicted after three other books',
  needs: 'store',
  async run(lab) {
    return withPolicy(lab, { cache: { maxEntries: 3 } }, async () => {
      const steps: Array<[number, string]> = [];
      const read = async (id: number): Promise<string> => {
        const r = await lab.timed('GET', `/info/${id}`);
        const x = header(r, 'x-cache');
        steps.push([id, x]);
        return x;
      };
      // Fill the cache with other books first, so that book 5 starts out of it.
      for (const id of [1, 2, 3, 4]) await read(id);
      steps.length = 0;
      const first = await read(5);
      const again = await read(5);
      for (const id of [1, 2, 3]) await read(id);
      const after = await read(5);
      const original = ['miss', 'hit', 'miss', 'miss', 'miss', 'miss (evicted)'];
      return {
        table: steps.map(([id, x], i) => [`GET /info/${id}`, original[i] ?? '', x]),
        notes: ['X-Cache of each read through one front, cache.maxEntries = 3 (then set back).'],
        checks: [
          check('book 5: a miss, then a hit', first === 'miss' && again === 'hit', `${first}, ${again}`),
          check(
            'after three other books, book 5 is a miss again (least recently used, evicted)',
            after === 'miss',
            after,
          ),
        ],
      };
    });
  },
};

const modes: Experiment = {
  id: 'modes',
  title: 'The three modes against a lagging standby (stale reads counted by the checker)',
  needs: 'store',
  async run(lab) {
    const { stack, control } = lab.knobs();
    const lagMs = 500;
    const runMs = lab.reps(4000, 2000);
    const db = new pg.Pool({ connectionString: stack.primaryUrl, max: 2 });
    // An idle client told 57P01 by a server being stopped is the pool's 'error', fatal unheard.
    db.on('error', () => undefined);
    const rows: Row[] = [];
    const checks: Check[] = [];
    try {
      await control.replay({ delayMs: lagMs });
      for (const mode of ['strict', 'session', 'eventual'] as const satisfies readonly ConsistencyMode[]) {
        await control.setPolicy({ consistencyMode: mode });
        const timeoutsBefore = await syncCommitTimeouts(stack);
        const run = await checkedRun(
          {
            db,
            mode,
            workload: {
              fronts: lab.fronts,
              clients: 4,
              // Four books for four clients: strict writes of one book queue behind each other's lag.
              books: [4, 5, 6, 7],
              // A price change in four operations: a strict one takes the lag, and each mode needs a few.
              mix: { read: 3, setPrice: 1 },
              adminToken: stack.adminToken,
              timeoutMs: 10_000,
            },
          },
          // At least runMs, and on until 5 price changes were acknowledged (strict ones take the lag each,
          // and reads wait behind them): every mode gets figures to compare (at most 20 s).
          async (w) => {
            const t0 = Date.now();
            const priceChanges = () =>
              w.history.filter((o) => o.kind === 'set-price' && o.status === 200).length;
            while (
              Date.now() - t0 < runMs ||
              (priceChanges() < MIN_PRICE_CHANGES && Date.now() - t0 < 20_000)
            ) {
              await sleep(100);
            }
          },
        );
        const ok = run.history.filter((o) => o.status === 200);
        const writes = ok.filter((o) => o.kind === 'set-price').map((o) => o.complete - o.invoke);
        const reads = ok.filter((o) => o.kind === 'read').map((o) => o.complete - o.invoke);
        const stale = measureStaleness(run.history);
        // A strict commit the standby did not confirm within SYNC_COMMIT_TIMEOUT_MS is refused (503
        // commit_outcome_unknown, docs/guarantees.md G6): a busy machine can get there under the lag.
        const timedOut = (await syncCommitTimeouts(stack)) - timeoutsBefore;
        rows.push(
          [`${mode}: price changes, median`, '', `${ms(quantile(writes, 0.5))} (${writes.length})`],
          [`${mode}: reads, median`, '', `${ms(quantile(reads, 0.5))} (${reads.length})`],
          [
            `${mode}: stale reads`,
            '',
            `${stale.length} (${((100 * stale.length) / Math.max(1, reads.length)).toFixed(1)} %), longest ${ms(Math.max(0, ...stale.map((s) => s.staleForMs)))} behind`,
          ],
          [`${mode}: violations of its rules`, '', String(run.report.violations.length)],
          ...(timedOut > 0
            ? [
                [
                  `${mode}: commits the standby did not confirm in time`,
                  '',
                  `${timedOut} (refused: 503 commit_outcome_unknown)`,
                ] as Row,
              ]
            : []),
        );
        checks.push(
          check(
            `${mode}: at least ${MIN_PRICE_CHANGES} price changes to measure`,
            writes.length >= MIN_PRICE_CHANGES,
            String(writes.length),
          ),
          check(
            `${mode}: the checker finds no violation of ${kindsFor(mode).length} rules of the mode`,
            run.report.violations.length === 0,
            run.report.violations.map((v) => v.kind).join(', '),
          ),
        );
        if (mode === 'strict') {
          checks.push(check('strict: no stale read', stale.length === 0, `${stale.length}`));
          const quick = writes.filter((w) => w < lagMs * 0.95).length;
          checks.push(
            check(
              `strict: every acknowledged price change waited for the standby (≥ ${lagMs} ms)`,
              quick === 0,
              `${quick} of ${writes.length} took less`,
            ),
          );
        }
        if (mode === 'eventual') {
          checks.push(check('eventual: stale reads happen', stale.length > 0, '0'));
          checks.push(
            check(
              `eventual: a write does not wait (median < ${lagMs / 2} ms)`,
              quantile(writes, 0.5) < lagMs / 2,
              ms(quantile(writes, 0.5)),
            ),
          );
        }
      }
    } finally {
      await db.end();
      await control.replay({ delayMs: 0 });
      await control.setPolicy(DEFAULT_POLICY);
    }
    return {
      table: rows,
      notes: [
        `The standby applies each commit ${lagMs} ms late (npm run ctl -- lag ${lagMs}); 4 clients read and change (one operation in four) the`,
        `prices of books 4 to 7 for at least ${runMs / 1000} s in each mode (and ${MIN_PRICE_CHANGES} price changes), a quarter of the reads with no-cache. A read is stale`,
        'when it shows a version older than one already acknowledged to anyone (tools/checker).',
      ],
      checks,
    };
  },
};

const fences: Experiment = {
  id: 'fences',
  title: 'The stale-set race: a slow cache fill overtaken by a write, fences off and on',
  needs: 'store',
  async run(lab) {
    const { stack } = lab.knobs();
    const hooks = async (hook: object): Promise<void> => {
      const r = await lab.timed('POST', '/internal/test-hooks', {
        headers: { Authorization: `Bearer ${stack.internalToken}` },
        json: hook,
      });
      if (r.status !== 200) throw new Error(`test hooks answered ${r.status}`);
    };
    const race = async (id: number): Promise<{ written: number; cached: number; x: string }> => {
      await restock(lab, id);
      // Front-0's next fill of the book is held 600 ms after the catalog answered it…
      await hooks({ fillDelay: { bookId: id, ms: 600 } });
      const slowRead = lab.timed('GET', `/info/${id}`, { headers: NO_CACHE });
      await sleep(200);
      // … while a purchase through front-1 commits and invalidates.
      const write = await lab.timed('POST', `/purchase/${id}`, { front: 1 });
      await slowRead;
      const after = await lab.timed('GET', `/info/${id}`);
      return {
        written: body<PurchaseBody>(write).version,
        cached: body<BookBody>(after).version,
        x: header(after, 'x-cache'),
      };
    };
    let off;
    try {
      await hooks({ fencing: false });
      off = await race(3);
    } finally {
      await hooks({ fencing: true });
    }
    const on = await race(2);
    return {
      table: [
        ['fences off: version written / then read', '', `${off.written} / ${off.cached} (X-Cache ${off.x})`],
        ['fences on:  version written / then read', '', `${on.written} / ${on.cached} (X-Cache ${on.x})`],
      ],
      notes: [
        'A read that missed fetches the book, then (a test hook) waits 600 ms before storing it; meanwhile a',
        'purchase through the other front commits and invalidates. Without fences the old copy is stored after',
        'the invalidation and served as a hit; with them (the product) the fill is refused.',
      ],
      checks: [
        check(
          'fences off: the old version is back in the cache (the race happened)',
          off.cached < off.written && off.x === 'hit',
          JSON.stringify(off),
        ),
        check(
          'fences on: the cache never holds a version older than the write',
          on.cached >= on.written,
          JSON.stringify(on),
        ),
      ],
    };
  },
};

const primaryDown: Experiment = {
  id: 'primary-down',
  title: 'The primary stopped: what still works, in strict and in eventual mode',
  needs: 'store',
  async run(lab) {
    const { control } = lab.knobs();
    await restock(lab, 1);
    const order = await lab.timed('POST', '/purchase/1');
    const orderId = body<PurchaseBody>(order).orderId;
    await lab.timed('GET', '/info/2'); // cached on front-0
    await lab.timed('GET', '/info/5'); // a version of it known to front-0 (read again below, bypassing the cache)
    const rows: Row[] = [];
    const checks: Check[] = [];
    await control.postgres('primary', 'stop');
    try {
      // The standby notices within a moment that its primary is gone; measure after that.
      await until(
        async () => !(await control.status()).postgres?.receiving,
        15_000,
        'the standby to stop receiving',
      );
      for (const mode of ['strict', 'eventual'] as const) {
        await control.setPolicy({ consistencyMode: mode });
        const cachedRead = await lab.timed('GET', '/info/2');
        const uncached = await lab.timed('GET', '/info/5', { headers: NO_CACHE });
        const purchase = await lab.timed('POST', '/purchase/1');
        const lookup = await lab.timed('GET', `/orders/${orderId}`);
        const said = (r: ClientReply & { ms: number }): string =>
          `${r.status}${r.status === 200 ? '' : ` ${(r.body as { error?: { code?: string } }).error?.code ?? ''}`} (${ms(r.ms)})`;
        rows.push(
          [`${mode}: cached read`, '', `${said(cachedRead)} X-Cache ${header(cachedRead, 'x-cache')}`],
          [`${mode}: uncached read`, '', said(uncached)],
          [`${mode}: purchase`, '', said(purchase)],
          [`${mode}: order lookup`, '', said(lookup)],
        );
        checks.push(
          check(
            `${mode}: a purchase fails fast with 503 primary_unavailable`,
            purchase.status === 503 && purchase.ms < 3000,
            said(purchase),
          ),
          check(
            `${mode}: an order made before is still readable (from the standby)`,
            lookup.status === 200,
            said(lookup),
          ),
          check(
            `${mode}: a book the front has cached is still served`,
            cachedRead.status === 200,
            said(cachedRead),
          ),
        );
        if (mode === 'eventual') {
          checks.push(
            check(
              'eventual: an uncached read is served from the standby',
              uncached.status === 200,
              said(uncached),
            ),
          );
        } else {
          checks.push(
            check(
              'strict: an uncached read of a book the front has seen is served from the standby (at least the version the front knows)',
              uncached.status === 200,
              said(uncached),
            ),
          );
        }
      }
    } finally {
      await control.setPolicy(DEFAULT_POLICY);
      await control.postgres('primary', 'start');
      await untilWritable(lab, 1);
    }
    return {
      table: rows,
      notes: ['npm run ctl -- stop primary; each request once; then npm run ctl -- start primary.'],
      checks,
    };
  },
};

const standbyDown: Experiment = {
  id: 'standby-down',
  title: 'The standby stopped: strict writes are refused, not acknowledged, and take effect once it is back',
  needs: 'store',
  async run(lab) {
    const { stack, control } = lab.knobs();
    await restock(lab, 1);
    const orders = stack.orders;
    const report = async (): Promise<string[]> =>
      Promise.all(
        orders.map(async (o) => {
          const r = (await (await fetch(`${o.url}/readyz`)).json()) as {
            consistency?: { mode: string; degraded?: string };
          };
          return r.consistency?.degraded
            ? `${o.name}: degraded (${r.consistency.degraded})`
            : `${o.name}: ${r.consistency?.mode ?? '?'}`;
        }),
      );
    const run = Date.now();
    const keys = Array.from({ length: orders.length + 1 }, (_, i) => `lab-standby-down-${run}-${i}`);
    const purchase = (key: string) =>
      lab.timed('POST', '/purchase/1', { headers: { 'idempotency-key': key } });
    const refused: Array<ClientReply & { ms: number }> = [];
    let during: string[];
    await control.postgres('standby', 'stop');
    try {
      for (const key of keys) refused.push(await purchase(key));
      during = await report();
    } finally {
      await control.postgres('standby', 'start');
    }
    // The refused commits waited on the primary; once the standby streams they take effect. A retry
    // under each key says what became of its first attempt.
    const t0 = performance.now();
    let retried = await Promise.all(keys.map(purchase));
    while (retried.some((r) => r.status !== 200) && performance.now() - t0 < 30_000) {
      await sleep(200);
      retried = await Promise.all(keys.map(purchase));
    }
    const backMs = performance.now() - t0;
    const replayed = retried.filter((r) => r.headers['idempotent-replayed'] === 'true').length;
    const code = (r: ClientReply) => (r.body as { error?: { code?: string } } | undefined)?.error?.code;
    return {
      table: [
        ...refused.map((p, i): Row => [
          `purchase ${i + 1}`,
          '',
          `${p.status} ${code(p) ?? ''} in ${ms(p.ms)}`,
        ]),
        ['the order pods say (/readyz)', '', during.join('; ')],
        [
          'each purchase again under its key, once the standby is back',
          '',
          `${retried.map((r) => r.status).join(',')}: ${replayed} replayed (the first attempt had committed), after ${ms(backMs)}`,
        ],
      ],
      notes: [
        'npm run ctl -- stop standby. Each purchase waits SYNC_COMMIT_TIMEOUT_MS (2 s) for a confirmation that',
        'cannot come, then is answered 503 commit_outcome_unknown: not acknowledged. Its commit waits on the',
        'primary, invisible, and takes effect once the standby streams again (STRICT_STANDBY_LOSS=refuse; degrade',
        'would acknowledge it on the primary alone instead).',
      ],
      checks: [
        check(
          'every purchase without a standby is refused: 503 commit_outcome_unknown after waiting for it (≥ 1.5 s)',
          refused.every((p) => p.status === 503 && code(p) === 'commit_outcome_unknown' && p.ms >= 1500),
          refused.map((p) => `${p.status} ${code(p)} ${ms(p.ms)}`).join(', '),
        ),
        check(
          'no order pod degrades: each stays strict',
          during.every((s) => !s.includes('degraded')),
          during.join('; '),
        ),
        // The first one waited for the standby and committed once it was back; the others queued on the
        // book's row behind it, and some may have given up at the statement timeout (nothing written).
        check(
          'once the standby is back, every purchase succeeds under its key, the first one replayed (it had committed)',
          retried.every((r) => r.status === 200) && retried[0]!.headers['idempotent-replayed'] === 'true',
          `${retried.map((r) => r.status).join(',')}, ${replayed} replayed`,
        ),
      ],
    };
  },
};

const frontKilled: Experiment = {
  id: 'front-killed',
  title: 'A front killed mid-load: the clients fail over, then it comes back cold',
  needs: 'store',
  async run(lab) {
    const { stack, control } = lab.knobs();
    const victim = stack.fronts[1]!;
    const runMs = lab.reps(3000, 1200);
    let stop = false;
    const statuses = new Map<number, number>();
    let connFailures = 0;
    let ops = 0;
    // Two clients, one at home on each front; a client whose front is gone resends to the other.
    // Book 6 in the victim's cache before the kill; the load reads books 1-5 only.
    await lab.timed('GET', '/info/6', { front: 1 });
    const warm = await lab.timed('GET', '/info/6', { front: 1 });
    const clients = [0, 1].map(async (home) => {
      for (let i = 0; !stop; i++) {
        const r = await lab.timed('GET', `/info/${1 + (i % 5)}`, { front: home });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        connFailures += r.connFailures.length;
        ops++;
      }
    });
    await sleep(runMs / 3);
    await control.process(victim.name, 'kill');
    await sleep(runMs / 3);
    await control.process(victim.name, 'start');
    await sleep(runMs / 3);
    stop = true;
    await Promise.all(clients);
    lab.closeClients(); // the next experiments start with fresh connections
    const cold = await lab.timed('GET', '/info/6', { front: 1 });
    return {
      table: [
        ['reads', '', String(ops)],
        ['answers', '', JSON.stringify(Object.fromEntries(statuses))],
        ['connection failures the clients failed over from', '', String(connFailures)],
        [
          `book 6 on ${victim.name}: before the kill / after the restart`,
          '',
          `X-Cache ${header(warm, 'x-cache')} / ${header(cold, 'x-cache')}`,
        ],
      ],
      notes: [
        `npm run ctl -- kill ${victim.name} after ${runMs / 3000} s of reads, start again ${runMs / 3000} s later.`,
      ],
      checks: [
        check(
          'every read is answered 200 (the client resends to the other front)',
          [...statuses.keys()].every((s) => s === 200),
          JSON.stringify(Object.fromEntries(statuses)),
        ),
        check('the kill was felt: connections failed and were failed over', connFailures > 0, '0'),
        check(
          'the restarted front starts with an empty cache',
          header(cold, 'x-cache') === 'miss',
          header(cold, 'x-cache'),
        ),
      ],
    };
  },
};

const fanOut: Experiment = {
  id: 'fan-out',
  title: 'Invalidation fan-out: a strict purchase with 1, 2 and 4 fronts (--short: 1 and 2)',
  needs: 'store',
  async run(lab) {
    const counts = lab.short ? [1, 2] : [1, 2, 4];
    const n = lab.reps(40, 8);
    const rows: Row[] = [];
    const checks: Check[] = [];
    for (const fronts of counts) {
      const { stack, lab: other } = await lab.extraStore(`fan-out-${fronts}`, fronts);
      try {
        await restock(other, 4);
        const lat: number[] = [];
        const said = new Set<string>();
        for (let i = 0; i < n; i++) {
          const r = await other.timed('POST', '/purchase/4');
          lat.push(r.ms);
          said.add(header(r, 'x-invalidated'));
        }
        rows.push([
          `${fronts} front${fronts > 1 ? 's' : ''}: purchase median`,
          '',
          `${ms(quantile(lat, 0.5))}  X-Invalidated ${[...said].join(', ')}`,
        ]);
        checks.push(
          check(
            `${fronts} fronts: every purchase acknowledged by all (X-Invalidated ${fronts}/${fronts})`,
            said.size === 1 && said.has(`${fronts}/${fronts}`),
            [...said].join(', '),
          ),
        );
      } finally {
        other.closeClients();
        await lab.stopExtra(stack);
      }
    }
    return {
      table: rows,
      notes: [
        `A store of its own for each count; ${n} strict purchases each. The front a purchase came through fences itself, so it needs no push.`,
      ],
      checks,
    };
  },
};

/** Every experiment, in the order of docs/lab.md. */
export const EXPERIMENTS: readonly Experiment[] = [
  cache,
  invalidation,
  roundRobin,
  lru,
  modes,
  fences,
  primaryDown,
  standbyDown,
  frontKilled,
  fanOut,
];

export type { Outcome };
