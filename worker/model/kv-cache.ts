import * as tf from '@tensorflow/tfjs-core';
import type { LayerKv } from './gpt2.js';
import type { KvCache } from './types.js';

/**
 * Keys and values of every layer, [batch, n_head, positions, head_dim] each. Growing concatenates (one copy
 * of the cache per step, small next to reading the weights); an empty cache holds no tensors at all.
 */
export class GPT2KvCache implements KvCache {
  private kv: LayerKv[] | null;
  private disposed = false;

  constructor(
    readonly batch: number,
    layers: LayerKv[] | null = null,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`KvCache: batch must be a positive integer, got ${batch}`);
    this.kv = layers;
  }

  get length(): number {
    return this.kv ? this.kv[0].key.shape[2] : 0;
  }

  /** The per-layer tensors (null when empty), for the forward pass. */
  get layers(): LayerKv[] | null {
    this.checkLive();
    return this.kv;
  }

  /** Takes ownership of `presents` (the forward pass's output) and frees the tensors they replace. */
  replaceLayers(presents: LayerKv[]): void {
    this.checkLive();
    const kept = new Set<tf.Tensor>(presents.flatMap((l) => [l.key, l.value]));
    for (const t of this.tensors()) if (!kept.has(t)) t.dispose();
    this.kv = presents;
  }

  expand(k: number): GPT2KvCache {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`KvCache.expand: k must be a positive integer, got ${k}`);
    const rows = Array.from({ length: this.batch * k }, (_, i) => Math.floor(i / k));
    return this.gatherRows(rows);
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

  truncate(n: number): void {
    this.checkLive();
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`KvCache.truncate: n must be a non-negative integer, got ${n}`);
    if (!this.kv || n >= this.length) return;
    const old = this.kv;
    this.kv =
      n === 0
        ? null
        : tf.tidy(() =>
            old.map(({ key, value }) => {
              const [b, h, , d] = key.shape;
              return { key: tf.slice(key, 0, [b, h, n, d]), value: tf.slice(value, 0, [b, h, n, d]) };
            }),
          );
    for (const { key, value } of old) {
      key.dispose();
      value.dispose();
    }
  }

  dispose(): void {
    for (const t of this.tensors()) t.dispose();
    this.kv = null;
    this.disposed = true;
  }

  private gatherRows(rows: number[]): GPT2KvCache {
    this.checkLive();
    const source = this.kv;
    if (!source) return new GPT2KvCache(rows.length);
    const layers = tf.tidy(() => {
      const indices = tf.tensor1d(rows, 'int32');
      return source.map(({ key, value }) => ({ key: tf.gather(key, indices), value: tf.gather(value, indices) }));
    });
    return new GPT2KvCache(rows.length, layers);
  }

  private tensors(): tf.Tensor[] {
    return this.kv ? this.kv.flatMap((l) => [l.key, l.value]) : [];
  }

  private checkLive(): void {
    if (this.disposed) throw new Error('KvCache: used after dispose()');
  }
}
