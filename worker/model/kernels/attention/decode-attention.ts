/**
 * decodeAttention (host-ops.ts) with the dot products and the weighted sums in SIMD kernels that read the
 * KV cache in place; the softmax between them stays in JavaScript. Same inputs, same layouts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from '../backend-memory.js';
import { writeNewKeysValues, type DecodeAttentionShape } from '../host-ops.js';
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
  const { batch, nHead, headDim: D, capacity, position, time, scale } = shape;
  const C = nHead * D;
  writeNewKeysValues(memory.view(qkv), memory.view(keys), memory.view(values), shape);
  const [qkvAt, keysAt, valuesAt, outAt, scoresAt] = [qkv, keys, values, out, scores].map((t) => heap.offset(t));
  const weights = memory.view(scores);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nHead; h++) {
      const head = (b * nHead + h) * capacity * D * 4;
      for (let t = 0; t < time; t++) {
        const n = position + t + 1;
        kernels.scores(qkvAt + ((b * time + t) * 3 * C + h * D) * 4, keysAt + head, n, D, scale, scoresAt);
        softmaxInPlace(weights, n);
        kernels.mix(scoresAt, valuesAt + head, n, D, outAt + ((b * time + t) * C + h * D) * 4);
      }
    }
  }
}

function softmaxInPlace(x: Float32Array, n: number): void {
  let max = -Infinity;
  for (let j = 0; j < n; j++) if (x[j] > max) max = x[j];
  let total = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp(x[j] - max);
    x[j] = e;
    total += e;
  }
  const inverse = 1 / total;
  for (let j = 0; j < n; j++) x[j] *= inverse;
}
