/**
 * Causal self-attention for many new positions at once (a prompt), head by head through the backend's
 * matrix kernel: scores = q·Kᵀ and out = softmax(scores)·V, with K and V read in place from the KV cache.
 *
 * Why not decodeAttention's loops: they cost ~1 ns per multiply–add in JavaScript, and a 128-token prompt
 * on GPT-2 small needs 150 million of them (a few hundred ms); the kernel does them in a few ms. For one new
 * token the loops win (no kernel call per head), which is why the decode step takes this path only for
 * prompts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from './backend-memory.js';
import { causalSoftmaxRows, writeNewKeysValues, type DecodeAttentionShape } from './host-ops.js';
import { f32Kernels } from './f32/f32.js';

/**
 * qkv [batch·time, 3·C] as c_attn makes it; keys/values the cache buffers [batch, n_head, capacity, head_dim]
 * (the new positions are written into them here); out [batch·time, C], heads side by side.
 */
export function promptAttention(
  memory: BackendMemory,
  qkv: tf.TensorInfo,
  keys: tf.TensorInfo,
  values: tf.TensorInfo,
  shape: DecodeAttentionShape,
  out: tf.TensorInfo,
): void {
  const { batch, nHead, headDim: D, capacity, position, time: T, scale } = shape;
  const C = nHead * D;
  const positions = position + T;
  writeNewKeysValues(memory.view(qkv), memory.view(keys), memory.view(values), shape);
  const q = memory.alloc([1, T, D]);
  try {
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < nHead; h++) {
        // Views are taken afresh after every allocation: the wasm heap may have grown and moved.
        const [from, to] = [memory.view(qkv), memory.view(q)];
        for (let t = 0; t < T; t++) {
          const o = (b * T + t) * 3 * C + h * D;
          to.set(from.subarray(o, o + D), t * D);
        }
        const head = (b * nHead + h) * capacity * D;
        const scores = product(memory, q, keys, head, [1, positions, D], true);
        causalSoftmax(memory, scores, T, positions, position, scale);
        let mixed: tf.TensorInfo;
        try {
          mixed = product(memory, scores, values, head, [1, positions, D], false);
        } finally {
          memory.free(scores);
        }
        const [result, all] = [memory.view(mixed), memory.view(out)];
        for (let t = 0; t < T; t++) all.set(result.subarray(t * D, (t + 1) * D), (b * T + t) * C + h * D);
        memory.free(mixed);
      }
    }
  } finally {
    memory.free(q);
  }
}

/**
 * causalSoftmaxRows (host-ops.ts) on scores in backend memory: each row's seen positions through the SIMD
 * softmax where the memory is a wasm heap, the rest of the row zeroed.
 */
function causalSoftmax(memory: BackendMemory, scores: tf.TensorInfo, time: number, positions: number, position: number, scale: number): void {
  if (!memory.heap) {
    causalSoftmaxRows(memory.view(scores), time, positions, position, scale);
    return;
  }
  const { softmaxRow } = f32Kernels(memory.heap.memory);
  const at = memory.heap.offset(scores);
  const view = memory.view(scores);
  for (let t = 0; t < time; t++) {
    const seen = position + t + 1;
    softmaxRow(at + t * positions * 4, seen, scale);
    view.fill(0, t * positions + seen, (t + 1) * positions);
  }
}

/** x times the block of `cache` at `offset` (one head's positions), without copying the block. */
function product(memory: BackendMemory, x: tf.TensorInfo, cache: tf.TensorInfo, offset: number, shape: number[], transposed: boolean): tf.TensorInfo {
  const block = memory.alias(cache, offset, shape);
  try {
    return memory.matMul(x, block, null, transposed);
  } finally {
    memory.releaseAlias(block);
  }
}
