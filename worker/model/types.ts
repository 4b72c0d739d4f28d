import type * as tf from '@tensorflow/tfjs-core';

/** The fields of a Hugging Face GPT-2 `config.json` that the engine uses (after validation and defaults). */
export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** Width of the MLP's hidden layer: `n_inner` or 4 × n_embd. */
  nInner: number;
  layerNormEpsilon: number;
  activation: 'gelu_new' | 'gelu' | 'relu' | 'gelu_pytorch_tanh';
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

/**
 * Keys and values of every layer for `batch` sequences that all hold `length` positions.
 * Owned by whoever created it; `dispose()` frees its tensors.
 */
export interface KvCache {
  readonly batch: number;
  /** Positions already held (the position id of the next token). */
  readonly length: number;
  /** A new cache holding each sequence repeated `k` times in a row (batch b → b·k); this one is untouched. */
  expand(k: number): KvCache;
  /** A new cache holding only the given batch rows, in that order; this one is untouched. */
  select(rows: number[]): KvCache;
  /** Forget every position from `n` on (prefix reuse after an edit). */
  truncate(n: number): void;
  dispose(): void;
}

export interface ForwardOptions {
  /** Return logits for every new position `[batch, T, vocab]` instead of only the last `[batch, vocab]`. */
  allPositions?: boolean;
}

/** An autoregressive language model the generation loop, the CLI and the worker drive. */
export interface LanguageModel {
  readonly config: GPT2Config;
  /** Bytes of weights the model holds (for memory reports). */
  readonly weightBytes: number;
  /**
   * An empty cache for `batch` sequences. `positions`: how many the caller expects it to hold; room for them
   * is made at the first forward pass, so that decoding up to there never copies the cache to grow it (it
   * still grows past them).
   */
  createCache(batch: number, positions?: number): KvCache;
  /**
   * Runs `tokens` (one row per sequence, all rows the same length) after the positions the cache holds and
   * appends their keys/values to the cache. Returns float32 logits; the caller disposes them.
   * Throws a RangeError when the cache would grow past `nPositions`.
   */
  forward(tokens: number[][], cache: KvCache, options?: ForwardOptions): tf.Tensor;
  dispose(): void;
}
