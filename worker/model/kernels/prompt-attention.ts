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
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from './backend-memory.js';
import { writeNewKeysValues, type DecodeAttentionShape } from './host-ops.js';
import { f32Kernels, f32ScratchFloats } from './f32/f32.js';

/**
 * qkv [batch·time, 3·C] as c_attn makes it; keys/values the cache buffers [batch, n_head, capacity, head_dim]
 * (the new positions are written into them here); out [batch·time, C], heads side by side. `memory.heap`
 * must be present (elsewhere the decode step's loops serve: host-ops.ts decodeAttention).
 */
export function promptAttention(
  memory: BackendMemory,
  qkv: tf.TensorInfo,
  keys: tf.TensorInfo,
  values: tf.TensorInfo,
  shape: DecodeAttentionShape,
  out: tf.TensorInfo,
): void {
  const heap = memory.heap!;
  writeNewKeysValues(memory.view(qkv), memory.view(keys), memory.view(values), shape);
  const { batch, nHead, headDim: D, capacity, position, time: T, scale } = shape;
  const C = nHead * D;
  const positions = position + T;
  const { gemmNN, gemmNT, softmaxRow } = f32Kernels(heap.memory);
  const scores = memory.alloc([Math.min(T, CAUSAL_BLOCK) * positions]);
  const scratch = memory.alloc([Math.max(f32ScratchFloats(D, positions), f32ScratchFloats(positions, D))]);
  try {
    // Byte offsets: they stay valid as the heap grows (only views are detached), and nothing here allocates.
    const [qkvAt, keysAt, valuesAt, outAt, scoresAt, scratchAt] = [qkv, keys, values, out, scores, scratch].map(heap.offset);
    const weights = memory.view(scores);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < nHead; h++) {
        const head = (b * nHead + h) * capacity * D * 4;
        for (let t0 = 0; t0 < T; t0 += CAUSAL_BLOCK) {
          const rows = Math.min(CAUSAL_BLOCK, T - t0);
          const seen = position + t0 + rows; // what the block's last row sees; earlier rows see less
          const row = b * T + t0;
          gemmNT(qkvAt + (row * 3 * C + h * D) * 4, rows, D, 3 * C, keysAt + head, seen, D, 0, scoresAt, seen, scratchAt);
          for (let r = 0; r < rows; r++) {
            const visible = position + t0 + r + 1;
            softmaxRow(scoresAt + r * seen * 4, visible, scale);
            weights.fill(0, r * seen + visible, (r + 1) * seen);
          }
          gemmNN(scoresAt, rows, seen, seen, valuesAt + head, D, D, 0, outAt + (row * C + h * D) * 4, C, scratchAt);
        }
      }
    }
  } finally {
    memory.free(scores);
    memory.free(scratch);
  }
}

/** New rows per causal block: ~35 % fewer multiply–adds than whole rows at 128 positions. */
const CAUSAL_BLOCK = 32;
