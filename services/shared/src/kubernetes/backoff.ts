/**
 * Exponential backoff with jitter ("equal jitter": half the step is fixed, half random), so that many
 * pods losing the API server at once do not come back in lock-step.
 */
export class Backoff {
  #attempt = 0;

  constructor(
    private readonly opts: { initialMs: number; maxMs: number; factor?: number; random?: () => number },
  ) {}

  /** The delay before the next attempt; each call grows the step until `maxMs`. */
  next(): number {
    const factor = this.opts.factor ?? 2;
    const step = Math.min(this.opts.maxMs, this.opts.initialMs * factor ** this.#attempt);
    if (step < this.opts.maxMs) this.#attempt++;
    const random = this.opts.random ?? Math.random;
    return Math.round(step / 2 + random() * (step / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
