/**
 * Token choice from a processed row of scores, and the seeded random numbers sampling draws on.
 *
 * The generator is xoshiro128** seeded through splitmix32: a few lines, fast, with a 2^128 period and
 * reproducible on every platform — which `Math.random` is not (it cannot be seeded). A library would add a
 * dependency for twenty lines.
 */

export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      // splitmix32 spreads a small seed over the four state words, none of them zero.
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Index of the highest score; the first one on ties (as `argmax` in PyTorch). */
export function argmax(scores: Float32Array): number {
  let best = 0;
  let bestScore = scores[0];
  for (let i = 1; i < scores.length; i++) {
    if (scores[i] > bestScore) {
      bestScore = scores[i];
      best = i;
    }
  }
  return best;
}

/**
 * Draws one index with probability softmax(scores), like `torch.multinomial(softmax(scores), 1)`. Writes
 * the unnormalised probabilities into `scores` (it is scratch by now) to avoid a second exp pass.
 */
export function sampleFromScores(scores: Float32Array, random: Xoshiro128): number {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  if (max === -Infinity) throw new Error('every token was filtered out: no token can be sampled');
  let total = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s === -Infinity) {
      scores[i] = 0; // after top-k nearly every entry: skip the exp
      continue;
    }
    scores[i] = Math.exp(s - max);
    total += scores[i]; // the stored float32 value, so the walk below sums exactly the same numbers
  }
  const target = random.nextFloat() * total;
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < scores.length; i++) {
    const w = scores[i];
    if (w === 0) continue;
    cumulative += w;
    last = i;
    if (cumulative > target) return i;
  }
  return last; // rounding left `target` a hair above the sum
}
