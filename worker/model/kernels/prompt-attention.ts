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
import { f32Kernels, f32ScratchFloats, type F32Kernels } from './f32/f32.js';

/** Byte offsets, in the memory the kernels work on, of what attention reads and writes. */
export interface AttentionPlaces {
  /** [batch·time, 3·C] as c_attn makes it. */
  qkv: number;
  /** The cache buffers [batch, n_head, capacity, head_dim], the new positions already written. */
  keys: number;
  values: number;
  /** [batch·time, C], heads side by side. */
  out: number;
  /** Room for `attentionWorkFloats(shape).scores` and `.scratch` floats, for one thread's use. */
  scores: number;
  scratch: number;
}

/** Floats of the scores and kernel scratch one thread needs for a prompt's attention. */
export function attentionWorkFloats(shape: DecodeAttentionShape): { scores: number; scratch: number } {
  const positions = shape.position + shape.time;
  const block = Math.min(shape.time, CAUSAL_BLOCK);
  return {
    scores: block * positions,
    scratch: Math.max(f32ScratchFloats(shape.headDim, positions, block), f32ScratchFloats(positions, shape.headDim, block)),
  };
}

/**
 * A second thread that attends heads [from, n_head) while this one does the first ones (parallel/
 * decode-products.ts): `start` false means it cannot (this thread does them all); `finish` false means it failed
 * on the way (this thread then does its heads again, and must not free its scores and scratch, which the lost
 * thread may still be writing).
 */
export interface AttentionHelper {
  start(at: AttentionPlaces, shape: DecodeAttentionShape, from: number): boolean;
  finish(): boolean;
}

/**
 * qkv [batch·time, 3·C] as c_attn makes it; keys/values the cache buffers [batch, n_head, capacity, head_dim]
 * (the new positions are written into them here); out [batch·time, C], heads side by side. `memory.heap`
 * must be present (elsewhere the decode step's loops serve: host-ops.ts decodeAttention). With a helper, it
 * takes the second half of the heads.
 */
export function promptAttention(
  memory: BackendMemory,
  qkv: tf.TensorInfo,
  keys: tf.TensorInfo,
  values: tf.TensorInfo,
  shape: DecodeAttentionShape,
  out: tf.TensorInfo,
  helper: AttentionHelper | null = null,
): void {
  const heap = memory.heap!;
  // Before a helper starts: it reads the new keys and values too.
  writeNewKeysValues(memory.view(qkv), memory.view(keys), memory.view(values), shape);
  const work = attentionWorkFloats(shape);
  const scores = memory.alloc([work.scores]);
  const scratch = memory.alloc([work.scratch]);
  const half = shape.nHead >= 2 && helper ? Math.ceil(shape.nHead / 2) : shape.nHead;
  const theirs = half < shape.nHead ? [memory.alloc([work.scores]), memory.alloc([work.scratch])] : [];
  let helperLost = false;
  try {
    // Byte offsets: they stay valid as the heap grows (only views are detached), and nothing below allocates.
    const [qkvAt, keysAt, valuesAt, outAt] = [qkv, keys, values, out].map(heap.offset);
    const ours = { qkv: qkvAt, keys: keysAt, values: valuesAt, out: outAt, scores: heap.offset(scores), scratch: heap.offset(scratch) };
    const kernels = f32Kernels(heap.memory);
    const shared = theirs.length > 0 && helper!.start({ ...ours, scores: heap.offset(theirs[0]), scratch: heap.offset(theirs[1]) }, shape, half);
    attendHeads(kernels, heap.memory, ours, shape, 0, shared ? half : shape.nHead);
    if (shared && !helper!.finish()) {
      helperLost = true;
      attendHeads(kernels, heap.memory, ours, shape, half, shape.nHead);
    }
  } finally {
    memory.free(scores);
    memory.free(scratch);
    if (!helperLost) for (const info of theirs) memory.free(info);
  }
}

/**
 * Heads [from, to) of every batch row: per head q·Kᵀ, the causal softmax and weights·V, in blocks of rows, all
 * on `memory` at the byte offsets of `at`. What both threads run (the partner on its heads).
 */
export function attendHeads(kernels: F32Kernels, memory: WebAssembly.Memory, at: AttentionPlaces, shape: DecodeAttentionShape, from: number, to: number): void {
  const { batch, nHead, headDim: D, capacity, position, time: T, scale } = shape;
  const C = nHead * D;
  const { gemmNN, gemmNT, softmaxRow } = kernels;
  const weights = new Float32Array(memory.buffer, at.scores, attentionWorkFloats(shape).scores);
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
