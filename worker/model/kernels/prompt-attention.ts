/**
 * Causal self-attention for many new positions at once (a prompt), head by head through our matrix kernels
 * (kernels/f32): scores = q·Kᵀ and out = softmax(scores)·V, with K and V read in place from the KV cache.
 *
 * Why not decodeAttention's loops: they cost ~1 ns per multiply–add in JavaScript, and a 128-token prompt
 * on GPT-2 small needs 150 million of them (a few hundred ms); the kernel does them in a few ms. For one new
 * token the loops win (no kernel call per head), which is why the decode step takes this path only for
 * prompts.
 *
 * The kernels are called on the wasm heap directly, with strides: each head's queries are read inside qkv,
 * its keys and values inside the cache, its output written inside `out`, so nothing is copied or allocated
 * per head. And causally in blocks of rows: a block multiplies only the positions its last row may see.
 */
import type { DecodeAttentionShape } from './host-ops.js';
import { f32ScratchFloats, type F32Kernels } from './f32/f32.js';
import type { AttentionPlaces } from './attention/heads.js';

/** Floats of the scores and kernel scratch one thread needs for a prompt's attention. */
export function promptWorkFloats(shape: DecodeAttentionShape): { scores: number; scratch: number } {
  const positions = shape.position + shape.time;
  const block = Math.min(shape.time, CAUSAL_BLOCK);
  return {
    scores: block * positions,
    scratch: Math.max(f32ScratchFloats(shape.headDim, positions, block), f32ScratchFloats(positions, shape.headDim, block)),
  };
}

/**
 * Heads [from, to) of every batch row, their new keys and values already in the cache: per head q·Kᵀ, the
 * causal softmax and weights·V, in blocks of rows, all on `memory` at the byte offsets of `at`.
 */
export function promptHeads(kernels: F32Kernels, memory: WebAssembly.Memory, at: AttentionPlaces, shape: DecodeAttentionShape, from: number, to: number): void {
  const { batch, nHead, headDim: D, capacity, position, time: T, scale } = shape;
  const C = nHead * D;
  const { gemmNN, gemmNT, softmaxRow } = kernels;
  const weights = new Float32Array(memory.buffer, at.scores, promptWorkFloats(shape).scores);
  for (let b = 0; b < batch; b++) {
    for (let h = from; h < to; h++) {
      const head = (b * nHead + h) * capacity * D * 4;
      for (let t0 = 0; t0 < T; t0 += CAUSAL_BLOCK) {
        const rows = Math.min(CAUSAL_BLOCK, T - t0);
        const seen = position + t0 + rows; // what the block's last row sees; earlier rows see less
        const row = b * T + t0;
        gemmNT(at.qkv + (row * 3 * C + h * D) * 4, rows, D, 3 * C, at.keys + head, seen, D, 0, at.scores, seen, at.scratch);
        for (let r = 0; r < rows; r++) {
          const visible = position + t0 + r + 1;
          softmaxRow(at.scores + r * seen * 4, visible, scale);
          weights.fill(0, r * seen + visible, (r + 1) * seen);
        }
        gemmNN(at.scores, rows, seen, seen, at.values + head, D, D, 0, at.out + (row * C + h * D) * 4, C, at.scratch);
      }
    }
  }
}

/** New rows per causal block: ~35 % fewer multiply–adds than whole rows at 128 positions. */
const CAUSAL_BLOCK = 32;
