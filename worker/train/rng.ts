/**
 * The training run's random numbers: data order, dropout seeds, adapter initialisation.
 *
 * A splitmix32 counter: one 32-bit word of state, so a checkpoint stores it as a plain number and a
 * resumed run draws exactly the numbers the uninterrupted run would have drawn. (The sampler's xoshiro in
 * worker/generate keeps its state private; training needs it saved.)
 */
export class TrainingRng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The whole state, for a checkpoint. */
  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }

  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A seed for a TensorFlow.js random op (which wants a number it hashes itself). */
  nextSeed(): number {
    return this.nextUint32();
  }
}

/** A seed derived from several integers, so streams for (seed, epoch) and (seed, purpose) do not overlap. */
export function deriveSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x01000193) >>> 0;
    h = new TrainingRng(h).nextUint32();
  }
  return h;
}

/** A Fisher–Yates shuffle of 0..n-1 drawn from `rng`. */
export function permutation(n: number, rng: TrainingRng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
