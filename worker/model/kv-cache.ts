import * as tf from '@tensorflow/tfjs-core';
import type { LayerKv } from './gpt2.js';
import { currentBackendMemory } from './kernels/backend-memory.js';
import type { KvCache } from './types.js';

/**
 * A zero-filled buffer made where the backend keeps its numbers. tf.zeros would build it as a JavaScript array
 * first and copy it in: on wasm that is 14 MiB of arrays for one GPT-2-small sequence of 192 positions, which
 * the C allocator kept resident after they were collected.
 */
function zeros(shape: [number, number, number, number]): tf.Tensor4D {
  const memory = currentBackendMemory();
  if (!memory) return tf.zeros(shape);
  const info = memory.alloc(shape);
  memory.view(info).fill(0);
  return memory.toTensor(info) as tf.Tensor4D;
}

/**
 * New layer buffers [rows.length, n_head, capacity, head_dim]: row b holds the first `used` positions of
 * `source` row rows[b], and zeros after them. Copied where the backend keeps its numbers: tf.gather and tf.pad
 * go element by element on wasm, ~1 s to triple GPT-2 small's cache at 250 positions (the app's three
 * alternatives, every keystroke). Null where the backend's memory is out of reach.
 */
function copyPositions(source: LayerKv[], rows: readonly number[], used: number, capacity: number): LayerKv[] | null {
  const memory = currentBackendMemory();
  if (!memory || !source.every((l) => memory.holds(l.key) && memory.holds(l.value))) return null;
  const [, nHead, from, headDim] = source[0].key.shape;
  const made: tf.Tensor[] = [];
  const copy = (t: tf.Tensor4D): tf.Tensor4D => {
    const info = memory.alloc([rows.length, nHead, capacity, headDim]);
    // Views after the allocation, which may have grown (and so detached) the heap.
    const [src, dst] = [memory.view(t), memory.view(info)];
    for (let b = 0; b < rows.length; b++) {
      for (let h = 0; h < nHead; h++) {
        const at = (b * nHead + h) * capacity * headDim;
        const start = (rows[b] * nHead + h) * from * headDim;
        dst.set(src.subarray(start, start + used * headDim), at);
        dst.fill(0, at + used * headDim, at + capacity * headDim);
      }
    }
    const tensor = memory.toTensor(info) as tf.Tensor4D;
    made.push(tensor);
    return tensor;
  };
  try {
    return source.map(({ key, value }) => ({ key: copy(key), value: copy(value) }));
  } catch (error) {
    for (const t of made) t.dispose();
    throw error;
  }
}

/** Smallest room a growing cache makes, in positions (so short prompts do not regrow every few tokens). */
const MIN_CAPACITY = 32;

/**
 * Keys and values of every layer, held in buffers [batch, n_head, capacity, head_dim] of which the first
 * `length` positions are valid.
 *
 * Why a capacity: the decode step (decode.ts) writes each new position into the buffers in place, so a token
 * costs no copy of the cache; when they are full they grow by doubling (one copy per doubling, amortised).
 * The buffers are never shared with other tensors (every buffer is the fresh output of an op), which is what
 * makes the in-place writes safe. An empty cache holds no tensors at all.
 */
export class GPT2KvCache implements KvCache {
  private kv: LayerKv[] | null;
  private used: number;
  private disposed = false;

  constructor(
    readonly batch: number,
    layers: LayerKv[] | null = null,
    length = layers ? layers[0].key.shape[2] : 0,
    /** Positions the caller expects to hold: the first buffers have room for them (LanguageModel.createCache). */
    private readonly expected = 0,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`KvCache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(expected) || expected < 0) throw new RangeError(`KvCache: positions must be a non-negative integer, got ${expected}`);
    this.kv = layers;
    this.used = length;
  }

  get length(): number {
    return this.used;
  }

  /** Positions the buffers have room for without growing. */
  get capacity(): number {
    return this.kv ? this.kv[0].key.shape[2] : 0;
  }

  /** Layers the buffers were made for (0 before the first forward pass). */
  get layerCount(): number {
    return this.kv ? this.kv.length : 0;
  }

  /**
   * The valid keys and values, exactly `length` positions long (null when empty), for the tf-op forward pass.
   * May create slices: call it inside tf.tidy.
   */
  pastTensors(): LayerKv[] | null {
    this.checkLive();
    const kv = this.kv;
    if (!kv || this.used === 0) return null;
    if (this.used === this.capacity) return kv;
    return kv.map(({ key, value }) => {
      const [b, h, , d] = key.shape;
      return { key: tf.slice(key, 0, [b, h, this.used, d]), value: tf.slice(value, 0, [b, h, this.used, d]) };
    });
  }

  /** The buffers themselves, for the decode step to read and write in place. */
  buffers(): LayerKv[] | null {
    this.checkLive();
    return this.kv;
  }

  /** Takes ownership of `presents` (the forward pass's output, every position) and frees the tensors they replace. */
  replaceLayers(presents: LayerKv[]): void {
    this.checkLive();
    const kept = new Set<tf.Tensor>(presents.flatMap((l) => [l.key, l.value]));
    for (const t of this.tensors()) if (!kept.has(t)) t.dispose();
    this.kv = presents;
    this.used = presents[0].key.shape[2];
  }

  /**
   * Makes room for `extra` more positions in the buffers (never past `maxPositions`), doubling the capacity
   * when it grows; an empty cache gets buffers of `layout`'s shape, with room for the positions expected.
   */
  reserve(extra: number, maxPositions: number, layout: { nLayer: number; nHead: number; headDim: number }): void {
    this.checkLive();
    const needed = this.used + extra;
    const capacity = this.capacity;
    if (needed <= capacity) return;
    if (needed > maxPositions) throw new RangeError(`KvCache.reserve: ${needed} positions exceed the context of ${maxPositions}`);
    const kv = this.kv;
    const grown = Math.min(maxPositions, Math.max(needed, 2 * this.used, MIN_CAPACITY, kv ? 0 : this.expected));
    if (!kv) {
      const shape: [number, number, number, number] = [this.batch, layout.nHead, grown, layout.headDim];
      this.kv = tf.tidy(() => Array.from({ length: layout.nLayer }, () => ({ key: zeros(shape), value: zeros(shape) })));
      return;
    }
    const pad: Array<[number, number]> = [[0, 0], [0, 0], [0, grown - capacity], [0, 0]];
    const rows = Array.from({ length: this.batch }, (_, b) => b);
    this.kv =
      copyPositions(kv, rows, this.used, grown) ??
      tf.tidy(() => kv.map(({ key, value }) => ({ key: tf.pad(key, pad), value: tf.pad(value, pad) })));
    for (const { key, value } of kv) {
      key.dispose();
      value.dispose();
    }
  }

  /** Counts `n` positions the decode step has just written into the buffers as valid. */
  advance(n: number): void {
    this.checkLive();
    if (this.used + n > this.capacity) throw new RangeError(`KvCache.advance: ${this.used + n} positions, room for ${this.capacity}`);
    this.used += n;
  }

  expand(k: number, positions = 0): GPT2KvCache {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`KvCache.expand: k must be a positive integer, got ${k}`);
    if (!Number.isInteger(positions) || positions < 0) throw new RangeError(`KvCache.expand: positions must be a non-negative integer, got ${positions}`);
    const rows = Array.from({ length: this.batch * k }, (_, i) => Math.floor(i / k));
    return this.gatherRows(rows, positions);
  }

  select(rows: number[]): GPT2KvCache {
    if (rows.length === 0) throw new RangeError('KvCache.select: no rows given');
    for (const row of rows) {
      if (!Number.isInteger(row) || row < 0 || row >= this.batch) {
        throw new RangeError(`KvCache.select: row ${row} is outside the batch of ${this.batch}`);
      }
    }
    return this.gatherRows(rows);
  }

  /** Positions from `n` on become free room: nothing is copied, the next tokens overwrite them. */
  truncate(n: number): void {
    this.checkLive();
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`KvCache.truncate: n must be a non-negative integer, got ${n}`);
    this.used = Math.min(this.used, n);
  }

  dispose(): void {
    for (const t of this.tensors()) t.dispose();
    this.kv = null;
    this.used = 0;
    this.disposed = true;
  }

  /** `positions`: room the new cache should have (more than this one's capacity only where it can copy itself). */
  private gatherRows(rows: number[], positions = 0): GPT2KvCache {
    this.checkLive();
    const source = this.kv;
    if (!source || this.used === 0) return new GPT2KvCache(rows.length, null, 0, positions);
    const layers =
      copyPositions(source, rows, this.used, Math.max(this.capacity, positions)) ??
      tf.tidy(() => {
        const indices = tf.tensor1d(rows, 'int32');
        return source.map(({ key, value }) => ({ key: tf.gather(key, indices), value: tf.gather(value, indices) }));
      });
    return new GPT2KvCache(rows.length, layers, this.used);
  }

  private tensors(): tf.Tensor[] {
    return this.kv ? this.kv.flatMap((l) => [l.key, l.value]) : [];
  }

  private checkLive(): void {
    if (this.disposed) throw new Error('KvCache: used after dispose()');
  }
}
