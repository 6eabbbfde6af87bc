/**
 * Exponential backoff with jitter ("equal jitter": half the step is fixed, half random), so that many
 * pods losing the API server at once do not come back in lock-step.
 */
export class Backoff {
  #attempt = 0;

  constructor(
    private readonly opts: { initialMs: number; maxMs: number; factor?: number; random?: () => number },
  ) {}

  /**
   * The delay before the next attempt; each call grows the step until `maxMs`. `capMs` bounds this one
   * delay (the step still grows), e.g. to retry sooner while a server does not answer at all.
   */
  next(capMs = this.opts.maxMs): number {
    const factor = this.opts.factor ?? 2;
    const grown = Math.min(this.opts.maxMs, this.opts.initialMs * factor ** this.#attempt);
    if (grown < this.opts.maxMs) this.#attempt++;
    const step = Math.min(grown, capMs);
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
