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
  /**
   * A new cache holding each sequence repeated `k` times in a row (batch b → b·k); this one is untouched.
   * `positions`: how many the new cache is expected to hold, as for `createCache`.
   */
  expand(k: number, positions?: number): KvCache;
  /** A new cache holding only the given batch rows, in that order; this one is untouched. */
  select(rows: number[]): KvCache;
  /** Forget every position from `n` on (prefix reuse after an edit). */
  truncate(n: number): void;
  dispose(): void;
}

/** What the caller will do with a row of logits, so the model can skip the ones that cannot matter. */
export interface LogitsScreen {
  /** How many of the highest processed scores the caller looks at: 1 for greedy decoding, k for top-k sampling. */
  readonly keep: number;
  /**
   * Names `keep` and the processing: two screens with the same key let the same logits of the same prompt
   * through, so a row screened once serves the other (worker/session.ts).
   */
  readonly key: string;
  /**
   * Applies to `scores` (a bound on row `row`'s logits) every change the caller makes to that row before it
   * takes the `keep` highest. Each change must be elementwise and non-decreasing in the score (a repetition
   * penalty, a temperature, a token banned to −∞), so that bounds stay bounds.
   */
  process(row: number, scores: Float32Array): void;
}

export interface ForwardOptions {
  /** Return logits for every new position `[batch, T, vocab]` instead of only the last `[batch, vocab]`. */
  allPositions?: boolean;
  /**
   * The caller looks only at each row's `keep` highest processed scores: the model may then return −∞ for any
   * token that cannot be among them (and must return the exact logit of every token that can). Ignored with
   * `allPositions`, and wherever the model has no cheaper way than computing every logit.
   */
  screen?: LogitsScreen;
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
