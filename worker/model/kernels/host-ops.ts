/**
 * The small per-token operations of a GPT-2 decode step, on plain Float32Arrays (views of backend memory).
 *
 * Why hand-written rather than tf ops: in a decode step each of these touches a few thousand numbers, a few
 * microseconds of arithmetic, while one tf op costs 15–50 µs of engine bookkeeping. Written as loops they
 * also fuse (residual add + layer norm; attention with the KV-cache write) without intermediate tensors.
 * Sums run in float64, so results match the tf-op formulation to float32 rounding.
 */

/** out = LayerNorm(x) row by row (biased variance, ε inside the square root, as PyTorch). x is [rows, C]. */
export function layerNormRows(x: Float32Array, gamma: Float32Array, beta: Float32Array, epsilon: number, out: Float32Array): void {
  const C = gamma.length;
  for (let row = 0; row * C < x.length; row++) {
    const o = row * C;
    let sum = 0;
    for (let i = 0; i < C; i++) sum += x[o + i];
    const mean = sum / C;
    let squares = 0;
    for (let i = 0; i < C; i++) {
      const d = x[o + i] - mean;
      squares += d * d;
    }
    const rstd = 1 / Math.sqrt(squares / C + epsilon);
    for (let i = 0; i < C; i++) out[o + i] = (x[o + i] - mean) * rstd * gamma[i] + beta[i];
  }
}

/** residual += branch (in place), then out = LayerNorm(residual): the seam between two sub-layers. */
export function addLayerNormRows(
  residual: Float32Array,
  branch: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
  out: Float32Array,
): void {
  for (let i = 0; i < residual.length; i++) residual[i] += branch[i];
  layerNormRows(residual, gamma, beta, epsilon, out);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GPT-2's tanh-approximated GELU, in place. */
export function geluTanhInPlace(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
  }
}

export function reluInPlace(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0;
}

/** out[b·T + t] = wte[ids[b][t]] + wpe[position + t]: the input rows of T new positions for each batch row. */
export function embedRows(wte: Float32Array, wpe: Float32Array, ids: readonly (readonly number[])[], position: number, out: Float32Array): void {
  const time = ids[0].length;
  const C = out.length / (ids.length * time);
  ids.forEach((row, b) =>
    row.forEach((id, t) => {
      const o = (b * time + t) * C;
      const e = id * C;
      const p = (position + t) * C;
      for (let i = 0; i < C; i++) out[o + i] = wte[e + i] + wpe[p + i];
    }),
  );
}

export interface DecodeAttentionShape {
  batch: number;
  nHead: number;
  headDim: number;
  /** Positions the key/value buffers have room for (their third dimension). */
  capacity: number;
  /** Index of the first new position: keys/values before it are already in the buffers. */
  position: number;
  /** New positions per batch row. */
  time: number;
  scale: number;
}

/**
 * Causal self-attention for `time` new positions of every batch row and head.
 *
 * qkv is [batch·time, 3·C] (query | key | value, head h in columns h·D…h·D+D of each third), as c_attn produces
 * it. The new keys and values are written into keys/values ([batch, n_head, capacity, head_dim]) at
 * position…position+time-1, then each new row t attends over positions 0…position+t: out [batch·time, C] =
 * softmax(q·Kᵀ·scale)·V, heads side by side — the layout c_proj takes, so no head split or merge is needed.
 * `scratch` holds capacity + head_dim numbers.
 */
export function decodeAttention(
  qkv: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  shape: DecodeAttentionShape,
  out: Float32Array,
  scratch: Float64Array,
): void {
  const { batch, nHead, headDim: D, capacity, position, time, scale } = shape;
  const C = nHead * D;
  writeNewKeysValues(qkv, keys, values, shape);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nHead; h++) {
      const head = (b * nHead + h) * capacity * D;
      for (let t = 0; t < time; t++) {
        const q = (b * time + t) * 3 * C + h * D;
        const n = position + t + 1;
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          const s = dot(qkv, q, keys, head + j * D, D) * scale;
          scratch[j] = s;
          if (s > max) max = s;
        }
        let total = 0;
        for (let j = 0; j < n; j++) {
          const e = Math.exp(scratch[j] - max);
          scratch[j] = e;
          total += e;
        }
        // Accumulated position by position (the D-wide inner loop stays contiguous) in float64 after the scores.
        const acc = capacity;
        for (let d = 0; d < D; d++) scratch[acc + d] = 0;
        for (let j = 0; j < n; j++) axpy(scratch[j] / total, values, head + j * D, scratch, acc, D);
        const o = (b * time + t) * C + h * D;
        for (let d = 0; d < D; d++) out[o + d] = scratch[acc + d];
      }
    }
  }
}

/**
 * Copies the new positions' keys and values of heads [from, to) from qkv ([batch·time, 3·C]) into the cache
 * buffers.
 */
export function writeNewKeysValues(
  qkv: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  shape: DecodeAttentionShape,
  from = 0,
  to = shape.nHead,
): void {
  const { batch, nHead, headDim: D, capacity, position, time } = shape;
  const C = nHead * D;
  for (let b = 0; b < batch; b++) {
    for (let h = from; h < to; h++) {
      const head = (b * nHead + h) * capacity * D;
      for (let t = 0; t < time; t++) {
        const k = (b * time + t) * 3 * C + C + h * D;
        const at = head + (position + t) * D;
        // A plain loop: subarray + set costs two array objects per 64 numbers (measured ~4× slower on prompts).
        for (let d = 0; d < D; d++) {
          keys[at + d] = qkv[k + d];
          values[at + d] = qkv[k + C + d];
        }
      }
    }
  }
}

/**
 * Σ a[i]·b[j] over `length` numbers from offsets i, j. Four independent sums: a single running sum waits on
 * the previous addition every step (measured 2.5 ns per multiply–add vs ~1 ns).
 */
function dot(a: Float32Array, i: number, b: Float32Array, j: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < length; k += 4) {
    s0 += a[i + k] * b[j + k];
    s1 += a[i + k + 1] * b[j + k + 1];
    s2 += a[i + k + 2] * b[j + k + 2];
    s3 += a[i + k + 3] * b[j + k + 3];
  }
  for (; k < length; k++) s0 += a[i + k] * b[j + k];
  return s0 + s1 + s2 + s3;
}

/** y[j…j+length) += w · x[i…i+length), unrolled like `dot`. */
function axpy(w: number, x: Float32Array, i: number, y: Float64Array, j: number, length: number): void {
  let k = 0;
  for (; k + 3 < length; k += 4) {
    y[j + k] += w * x[i + k];
    y[j + k + 1] += w * x[i + k + 1];
    y[j + k + 2] += w * x[i + k + 2];
    y[j + k + 3] += w * x[i + k + 3];
  }
  for (; k < length; k++) y[j + k] += w * x[i + k];
}
