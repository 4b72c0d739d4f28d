/**
 * Scoring a text the way suggestions run: through an inference model's `forward`, a few new tokens per call
 * with the KV cache carrying the context. `evaluateText` runs whole windows through the training forward
 * pass instead, which never reaches the decode step's own weights (e.g. the int8 copies of the fast
 * precision, used only for calls of at most 4 new positions); this is how their loss is measured.
 *
 * The windows and the accounting are `evaluateText`'s (perplexity.ts): every token scored once, each
 * window run from its start in a fresh cache of batch 1, so that each target sees the same context.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LanguageModel } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { prepareText, summarizeEvaluation, tokenLosses, type TextEvaluation, type TextEvaluationOptions } from './perplexity.js';

/** New positions per call by default: the most the decode step's int8 path takes (see decode-products.ts). */
export const STEPWISE_TOKENS_PER_CALL = 4;

export interface StepwiseEvaluationOptions extends Omit<TextEvaluationOptions, 'batchSize'> {
  /** New tokens per `forward` call (default 4). */
  tokensPerCall?: number;
}

export async function evaluateTextStepwise(
  model: LanguageModel,
  tokenizer: Tokenizer,
  text: string,
  options: StepwiseEvaluationOptions = {},
): Promise<TextEvaluation> {
  const step = options.tokensPerCall ?? STEPWISE_TOKENS_PER_CALL;
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`tokensPerCall must be a positive integer, got ${step}`);
  const prepared = prepareText(model.config, tokenizer, text, options);
  const { seq, windows, scoredTokens } = prepared;
  const vocab = model.config.vocabSize;
  let totalLoss = 0;
  let done = 0;
  for (const w of windows) {
    if (options.between && !(await options.between())) throw new DOMException('the evaluation was stopped', 'AbortError');
    const cache = model.createCache(1);
    try {
      const end = w.start + w.length;
      for (let at = w.start; at < end; at += step) {
        const n = Math.min(step, end - at);
        // Inputs seq[at, at + n) predict the targets seq[at + 1, at + n]; those before `w.from` are context only.
        const firstScored = Math.max(0, w.from - at - 1);
        const logits = model.forward([Array.from(seq.subarray(at, at + n))], cache, { allPositions: true });
        let losses: tf.Tensor1D;
        try {
          if (firstScored >= n) continue;
          const targets = seq.subarray(at + 1, at + 1 + n);
          losses = tf.tidy(() => tokenLosses(tf.reshape(logits, [n, vocab]) as tf.Tensor2D, targets));
        } finally {
          logits.dispose();
        }
        const values = await losses.data();
        losses.dispose();
        for (let t = firstScored; t < n; t++) totalLoss += values[t];
        done += n - firstScored;
      }
    } finally {
      cache.dispose();
    }
    options.onProgress?.(done, scoredTokens);
  }
  return summarizeEvaluation(prepared, totalLoss);
}
