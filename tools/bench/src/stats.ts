/** Small statistics helpers for latency samples (milliseconds). */

/** The p-th percentile (0-100) of unsorted samples, nearest-rank on a sorted copy. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  const n = samples.length;
  if (n === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[rank] as number;
}

export function mean(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] as number;
  return samples.length === 0 ? NaN : sum / samples.length;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** A growable Float64 buffer: latency samples without boxing a number per request. */
export class Samples {
  #buf = new Float64Array(1 << 16);
  #n = 0;

  push(v: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = v;
  }

  get length(): number {
    return this.#n;
  }

  values(): Float64Array {
    return this.#buf.subarray(0, this.#n);
  }

  concat(other: Samples): Samples {
    const out = new Samples();
    for (const v of this.values()) out.push(v);
    for (const v of other.values()) out.push(v);
    return out;
  }
}
