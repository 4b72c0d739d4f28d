/**
 * decodeAttention (host-ops.ts) with the dot products, the softmax and the weighted sums in SIMD kernels that
 * read the KV cache in place (the softmax's exponentials from kernels/f32). Same inputs, same layouts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from '../backend-memory.js';
import { writeNewKeysValues, type DecodeAttentionShape } from '../host-ops.js';
import { f32Kernels } from '../f32/f32.js';
import { attentionKernels } from './attention.js';

/**
 * `scores` is a scratch buffer of at least position + time floats. `memory.heap` must be present and the
 * head width a multiple of 8 (attentionKernelsFit).
 */
export function simdDecodeAttention(
  memory: BackendMemory,
  qkv: tf.TensorInfo,
  keys: tf.TensorInfo,
  values: tf.TensorInfo,
  shape: DecodeAttentionShape,
  out: tf.TensorInfo,
  scores: tf.TensorInfo,
): void {
  const heap = memory.heap!;
  const kernels = attentionKernels(heap.memory);
  const { softmaxRow } = f32Kernels(heap.memory);
  const { batch, nHead, headDim: D, capacity, position, time, scale } = shape;
  const C = nHead * D;
  writeNewKeysValues(memory.view(qkv), memory.view(keys), memory.view(values), shape);
  const qkvAt = heap.offset(qkv);
  const keysAt = heap.offset(keys);
  const valuesAt = heap.offset(values);
  const outAt = heap.offset(out);
  const scoresAt = heap.offset(scores);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nHead; h++) {
      const head = (b * nHead + h) * capacity * D * 4;
      for (let t = 0; t < time; t++) {
        const n = position + t + 1;
        kernels.scores(qkvAt + ((b * time + t) * 3 * C + h * D) * 4, keysAt + head, n, D, scale, scoresAt);
        softmaxRow(scoresAt, n, 1); // one row that sees all n positions; scaled already
        kernels.mix(scoresAt, valuesAt + head, n, D, outAt + ((b * time + t) * C + h * D) * 4);
      }
    }
  }
}
