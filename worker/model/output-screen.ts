/**
 * The output layer screened by an int8 copy of it: exact float32 logits only for the tokens that can matter.
 *
 * Why: a GPT-2-small decode step reads 154 MB of its ~500 MB for the output layer (wte, 50257 × 768 float32),
 * yet greedy decoding and top-k sampling look only at the k highest scores. The int8 product (kernels/q8, 43 MB
 * with its scales) gives every logit to within a bound proven below. A token can be among the k highest only if
 * its upper bound reaches the k-th highest lower bound; those few (1–100 on a trained model, a few hundred on a
 * random one) get their exact logit from the float32 kernel, the very sum the full product makes, so the
 * tokens chosen are the ones the full layer gives, bit for bit.
 *
 * The bound, for a row w of the output layer and an input h (float32), ŵ the row in int8 (a scale s_g per group
 * of 32: |ŵ_i| ≤ 127·s_g and |w_i − ŵ_i| ≤ s_g/2) and ĥ the kernel's int8 form of h:
 *
 *   |w·h − ŵ·ĥ| ≤ Σ|w_i − ŵ_i|·|h_i| + Σ|ŵ_i|·|h_i − ĥ_i| ≤ S·(½·Σ|h_i| + 127·Σ|h_i − ĥ_i|),   S = max_g s_g,
 *
 * where ĥ is recomputed here by the kernel's own rule (quantizeGroup), so Σ|h_i − ĥ_i| is the actual error, not
 * a worst case. Both products also round in float32 (the exact one sums up to width terms, the int8 one
 * width/32 groups): the bound's margins cover that, with room to spare.
 */
import { Q8_GROUP, quantizeGroup } from './kernels/q8/q8.js';
import { kthLargest } from '../kth-largest.js';

/**
 * Beyond this share of the vocabulary, the exact logits cost about what the full product does: the layer runs
 * whole instead (never seen on trained models; it takes logits spread within the bound's width).
 */
const MAX_CANDIDATE_SHARE = 1 / 8;

export class OutputScreen {
  /** S per row: the largest of its groups' int8 scales, which is fround(max|w| / 127). */
  private readonly rowScale: Float32Array;
  private readonly lower: Float32Array;
  private readonly upper: Float32Array;
  private heap = new Float32Array(0);
  private readonly codes: Int8Array;
  private readonly picked: Int32Array;
  /** The coefficients of Σ|h_i| and Σ|h_i − ĥ_i| in the bound, rounding included. */
  private readonly halfStep: number;
  private readonly fullStep: number;

  /** `weight`: the output layer [vocab, width], row-major (wte as GPT-2 ties it). */
  constructor(
    weight: Float32Array,
    readonly vocab: number,
    readonly width: number,
  ) {
    if (width % Q8_GROUP !== 0) throw new Error(`OutputScreen: the width ${width} is not a multiple of ${Q8_GROUP}`);
    if (weight.length < vocab * width) throw new Error(`OutputScreen: ${weight.length} weights for a [${vocab}, ${width}] layer`);
    this.rowScale = new Float32Array(vocab);
    for (let r = 0; r < vocab; r++) {
      let max = 0;
      const end = (r + 1) * width;
      for (let i = r * width; i < end; i++) {
        const a = Math.abs(weight[i]);
        if (a > max) max = a;
      }
      this.rowScale[r] = Math.fround(max / 127);
    }
    // A float32 sum of n products rounds by at most (n + 1) units of 2^-24 of Σ|w_i·h_i| ≤ 127·S·Σ|h_i|, in any
    // order (our kernel's lanes sum width/4 each): for both products, the int8 one's width/32 groups, and more.
    const rounding = 127 * (width + width / Q8_GROUP + 16) * 2 ** -23;
    this.halfStep = 0.5 + 1e-4 + rounding;
    this.fullStep = 127 * (1 + 1e-4);
    this.lower = new Float32Array(vocab);
    this.upper = new Float32Array(vocab);
    this.codes = new Int8Array(width);
    this.picked = new Int32Array(Math.floor(vocab * MAX_CANDIDATE_SHARE));
  }

  /** The bound's factor for input h: |logit_r − approx_r| ≤ S_r times this. Not finite when h is not. */
  bound(h: Float32Array): number {
    const { width, codes } = this;
    let sum = 0;
    let error = 0;
    for (let g = 0; g < width; g += Q8_GROUP) {
      const scale = quantizeGroup(h, g, 1, codes, g);
      if (!Number.isFinite(scale)) return NaN;
      for (let i = g; i < g + Q8_GROUP; i++) {
        sum += Math.abs(h[i]);
        error += Math.abs(h[i] - codes[i] * scale);
      }
    }
    // Plus a hair for float32 underflow at the scale of the smallest normal numbers.
    return this.halfStep * sum + this.fullStep * error + 1e-30;
  }

  /**
   * The tokens that can be among the `keep` highest scores once `process` has run, given `approx`, the int8
   * product of h, and `bound(h)`. Ascending indices in a view that the next call overwrites; null when the
   * screen would not save work (too many tokens, a bound that is not finite) and the full layer should run.
   */
  select(approx: Float32Array, bound: number, keep: number, process: (scores: Float32Array) => void): Int32Array | null {
    const { vocab, lower, upper, rowScale, picked } = this;
    if (!Number.isFinite(bound) || !(keep >= 1 && keep < vocab)) return null;
    for (let r = 0; r < vocab; r++) {
      const q = approx[r];
      if (Number.isNaN(q)) return null;
      const b = rowScale[r] * bound;
      // Rounded outward: storing into float32 moves a value by at most half a unit, 2^-24 of it.
      const slack = Math.abs(q) * 2 ** -22 + b * 2 ** -22;
      lower[r] = q - b - slack;
      upper[r] = q + b + slack;
    }
    process(lower);
    process(upper);
    if (this.heap.length < keep) this.heap = new Float32Array(keep);
    const threshold = kthLargest(lower, keep, this.heap);
    if (threshold === -Infinity) return null;
    let count = 0;
    for (let r = 0; r < vocab; r++) {
      if (upper[r] >= threshold) {
        if (count === picked.length) return null;
        picked[count++] = r;
      }
    }
    return picked.subarray(0, count);
  }
}
