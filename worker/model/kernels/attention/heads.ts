/**
 * Attention split between two threads by heads. Each thread writes its heads' new keys and values into the
 * KV cache and attends them (heads never mix before c_proj), working on the backend's heap at byte offsets:
 * the model's thread runs `attendSplit`, the partner thread (parallel/partner-thread.ts) `attendHeads` on the
 * heads it is given. Both run the same kernels per head, so two threads give one thread's bits.
 *
 * Two ways per head: a prompt's (prompt-attention.ts: rows in causal blocks through the matrix kernels) and a
 * decode step's (decode-attention.ts: one row at a time through the attention kernels).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from '../backend-memory.js';
import { writeNewKeysValues, type DecodeAttentionShape } from '../host-ops.js';
import { f32Kernels } from '../f32/f32.js';
import { promptHeads, promptWorkFloats } from '../prompt-attention.js';
import { decodeHeads } from './decode-attention.js';
import { attentionKernels } from './attention.js';

export type AttentionMode = 'prompt' | 'decode';

/** Byte offsets, in the backend's heap, of what attention reads and writes. */
export interface AttentionPlaces {
  /** [batch·time, 3·C] as c_attn makes it. */
  qkv: number;
  /** The cache buffers [batch, n_head, capacity, head_dim]. */
  keys: number;
  values: number;
  /** [batch·time, C], heads side by side. */
  out: number;
  /** One thread's room for `attentionWorkFloats` floats of scores and of kernel scratch (16-byte aligned). */
  scores: number;
  scratch: number;
}

/**
 * A second thread that attends heads [from, n_head) while this one does the first ones: `start` false means it
 * cannot (this thread then does them all); `finish` false means it failed on the way (this thread does its
 * heads again, and must not free its places, which the lost thread may still be writing).
 */
export interface AttentionHelper {
  /** Multiply–adds of attention a layer (q·Kᵀ and weights·V over every head) from which sharing pays. */
  readonly minSplitMacs: number;
  start(at: AttentionPlaces, shape: DecodeAttentionShape, from: number, mode: AttentionMode): boolean;
  finish(): boolean;
}

/** Floats of scores and kernel scratch one thread needs. */
export function attentionWorkFloats(shape: DecodeAttentionShape, mode: AttentionMode): { scores: number; scratch: number } {
  return mode === 'prompt' ? promptWorkFloats(shape) : { scores: shape.position + shape.time, scratch: 0 };
}

/** Heads [from, to): their new keys and values into the cache, then their attention into `out`. */
export function attendHeads(memory: WebAssembly.Memory, at: AttentionPlaces, shape: DecodeAttentionShape, from: number, to: number, mode: AttentionMode): void {
  const { batch, nHead, headDim, capacity, time } = shape;
  const cache = batch * nHead * capacity * headDim;
  const f32 = (offset: number, floats: number) => new Float32Array(memory.buffer, offset, floats);
  writeNewKeysValues(f32(at.qkv, batch * time * 3 * nHead * headDim), f32(at.keys, cache), f32(at.values, cache), shape, from, to);
  if (mode === 'prompt') promptHeads(f32Kernels(memory), memory, at, shape, from, to);
  else decodeHeads(attentionKernels(memory), f32Kernels(memory), at, shape, from, to);
}

/**
 * qkv [batch·time, 3·C] as c_attn makes it; keys/values the cache buffers [batch, n_head, capacity, head_dim]
 * (the new positions are written into them here); out [batch·time, C]. `memory.heap` must be present. With a
 * helper, it takes the second half of the heads.
 */
export function attendSplit(
  memory: BackendMemory,
  qkv: tf.TensorInfo,
  keys: tf.TensorInfo,
  values: tf.TensorInfo,
  shape: DecodeAttentionShape,
  out: tf.TensorInfo,
  mode: AttentionMode,
  helper: AttentionHelper | null,
): void {
  const heap = memory.heap!;
  const work = attentionWorkFloats(shape, mode);
  // One buffer a thread: its scores, then its scratch on a 16-byte boundary.
  const scoresFloats = Math.ceil(work.scores / 4) * 4;
  const place = () => memory.alloc([scoresFloats + Math.max(1, work.scratch)]);
  const placesAt = (info: tf.TensorInfo) => ({ scores: heap.offset(info), scratch: heap.offset(info) + 4 * scoresFloats });
  const { batch, nHead, headDim, position, time } = shape;
  const worth = helper !== null && batch * time * (position + time) * nHead * headDim * 2 >= helper.minSplitMacs;
  const half = nHead >= 2 && helper && worth ? Math.ceil(nHead / 2) : nHead;
  const ours = place();
  const theirs = half < nHead ? place() : null;
  let helperLost = false;
  try {
    // Byte offsets: they stay valid as the heap grows (only views are detached), and nothing below allocates.
    const [qkvAt, keysAt, valuesAt, outAt] = [qkv, keys, values, out].map(heap.offset);
    const at = { qkv: qkvAt, keys: keysAt, values: valuesAt, out: outAt, ...placesAt(ours) };
    const shared = theirs !== null && helper!.start({ ...at, ...placesAt(theirs) }, shape, half, mode);
    attendHeads(heap.memory, at, shape, 0, shared ? half : nHead, mode);
    if (shared && !helper!.finish()) {
      helperLost = true;
      attendHeads(heap.memory, at, shape, half, nHead, mode);
    }
  } finally {
    memory.free(ours);
    if (theirs && !helperLost) memory.free(theirs);
  }
}
