/**
 * What every step of a bench run shares: its durations, a log line with the elapsed time, the probe
 * client, the count of errors seen outside autocannon, and the clean-ups that stop everything started,
 * run on the way out whatever the way out is (done, failed, Ctrl-C, SIGTERM).
 */
import { Client } from './client.js';
import type { Durations } from './options.js';

export class BenchRun {
  readonly started = Date.now();
  readonly client = new Client();
  /** Errors seen by the bench's own probes (autocannon's are counted per run). */
  probeErrors = 0;
  interrupted = false;
  readonly #cleanups: Array<() => Promise<void>> = [];
  readonly #abort = new AbortController();
  readonly #pending = new Set<Promise<unknown>>();
  #cleaning: Promise<void> | undefined;

  constructor(readonly durations: Durations) {}

  log(msg: string): void {
    const s = ((Date.now() - this.started) / 1000).toFixed(0).padStart(3);
    process.stderr.write(`[bench ${s}s] ${msg}\n`);
  }

  /** Registers a clean-up; returns a function that runs it now (once) and forgets it. */
  onExit(stop: () => Promise<void>): () => Promise<void> {
    let done: Promise<void> | undefined;
    const once = () => (done ??= stop());
    this.#cleanups.push(once);
    return async () => {
      const i = this.#cleanups.indexOf(once);
      if (i >= 0) this.#cleanups.splice(i, 1);
      await once();
    };
  }

  /** Aborted when the run stops: start-ups in flight (startStack) give up and clean up after themselves. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** A start-up in flight, awaited by cleanup() before it stops what was registered. */
  track<T>(starting: Promise<T>): Promise<T> {
    this.#pending.add(starting);
    starting.then(
      () => this.#pending.delete(starting),
      () => this.#pending.delete(starting),
    );
    return starting;
  }

  /**
   * Aborts start-ups in flight and waits for them, then runs every registered clean-up, the latest
   * first; a failing one does not stop the others. Called twice (a signal while the run unwinds), both
   * callers wait for the one clean-up.
   */
  cleanup(): Promise<void> {
    return (this.#cleaning ??= this.#cleanup());
  }

  async #cleanup(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([...this.#pending]);
    this.client.close();
    while (this.#cleanups.length > 0) {
      await this.#cleanups
        .pop()?.()
        .catch((err: unknown) =>
          this.log(`clean-up failed: ${err instanceof Error ? err.message : String(err)}`),
        );
    }
  }

  /** Ctrl-C and SIGTERM stop everything and exit 130. */
  trapSignals(): void {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        this.interrupted = true;
        this.log(`${sig}: stopping`);
        void this.cleanup().then(() => process.exit(130));
      });
    }
  }

  /** Throws if a signal arrived: between steps, so that nothing new starts while stopping. */
  checkpoint(): void {
    if (this.interrupted) throw new Error('interrupted');
  }
}

/** Like Promise.all, but waits for every promise before throwing the first failure (nothing left starting). */
export async function allSettled<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
