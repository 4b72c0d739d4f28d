/**
 * decodeAttention (host-ops.ts) with the dot products, the softmax and the weighted sums in SIMD kernels that
 * read the KV cache in place (the softmax's exponentials from kernels/f32). Same inputs, same layouts; run
 * through heads.ts (attendSplit), which writes the new keys and values first.
 */
import type { DecodeAttentionShape } from '../host-ops.js';
import type { F32Kernels } from '../f32/f32.js';
import type { AttentionKernels } from './attention.js';
import type { AttentionPlaces } from './heads.js';

/** Heads [from, to), one new row at a time; `at.scores` holds position + time floats. Head width: attentionKernelsFit. */
export function decodeHeads(kernels: AttentionKernels, f32: F32Kernels, at: AttentionPlaces, shape: DecodeAttentionShape, from: number, to: number): void {
  const { batch, nHead, headDim: D, capacity, position, time, scale } = shape;
  const C = nHead * D;
  for (let b = 0; b < batch; b++) {
    for (let h = from; h < to; h++) {
      const head = (b * nHead + h) * capacity * D * 4;
      for (let t = 0; t < time; t++) {
        const n = position + t + 1;
        kernels.scores(at.qkv + ((b * time + t) * 3 * C + h * D) * 4, at.keys + head, n, D, scale, at.scores);
        f32.softmaxRow(at.scores, n, 1); // one row that sees all n positions; scaled already
        kernels.mix(at.scores, at.values + head, n, D, at.out + ((b * time + t) * C + h * D) * 4);
      }
    }
  }
}
