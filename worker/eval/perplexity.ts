/**
 * How well a model predicts a text: token count, mean loss (nats per token), perplexity, and bits per byte.
 *
 * Bits per byte = total loss in nats / ln 2 / UTF-8 bytes of the text. Unlike loss per token it does not
 * depend on the tokenizer, so models with different vocabularies can be compared on the same text.
 *
 * Every token of the text is scored once. The text is preceded by `<|endoftext|>` (as a document starts in
 * GPT-2's training data) so that its first token is scored too; a tokenizer without that token leaves the
 * first token unscored. Texts longer than the context are scored in windows of `contextLength` input tokens
 * that start `stride` tokens apart: each window scores only the targets no earlier window scored, so with
 * `stride = contextLength` these are non-overlapping blocks (context restarts at each block) and with a
 * smaller stride every target after the first window sees at least `contextLength - stride` tokens of
 * context (the sliding-window recipe; more accurate, costs contextLength / stride times as much).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { forwardLogits, type ParamMap } from '../train/forward.js';

export interface TextEvaluationOptions {
  /** Input tokens per window; default and maximum: the model's context (`nPositions`). */
  contextLength?: number;
  /** Tokens between window starts; default half the context (every scored token keeps half a window of context). */
  stride?: number;
  /** Windows per forward pass; default: as many as fit about 64 MB of logits. */
  batchSize?: number;
  /** Awaited between forward passes; returning false stops the evaluation (it then throws an AbortError). */
  between?: () => Promise<boolean>;
  onProgress?: (scoredTokens: number, totalTokens: number) => void;
}

export interface TextEvaluation {
  /** Tokens of the text. */
  tokens: number;
  /** Tokens scored (the text's tokens; one fewer when the tokenizer has no `<|endoftext|>`). */
  scoredTokens: number;
  bytes: number;
  /** Summed loss over the scored tokens, in nats. */
  totalLoss: number;
  /** Mean loss in nats per scored token. */
  meanLoss: number;
  perplexity: number;
  bitsPerByte: number;
  contextLength: number;
  stride: number;
  windows: number;
  /** Whether the first token was scored after `<|endoftext|>`. */
  scoredFirstToken: boolean;
}

/** A window: inputs `seq[start, start + length)`, scoring the targets `seq[from, start + length]`. */
export interface Window {
  start: number;
  length: number;
  from: number;
}

/** The windows of a sequence of `n` tokens (n ≥ 2): every target 1..n-1 is scored by exactly one window. */
export function scoringWindows(n: number, contextLength: number, stride: number): Array<Window> {
  const windows: Window[] = [];
  let next = 1; // the first target not scored yet
  for (let start = 0; next < n; start += stride) {
    const length = Math.min(contextLength, n - 1 - start);
    const end = start + length; // last target scored by this window
    if (end >= next) {
      windows.push({ start, length, from: next });
      next = end + 1;
    }
  }
  return windows;
}

const LOGITS_BUDGET = 16 * 2 ** 20; // floats: 64 MB

/** A text ready to score: its tokens after `<|endoftext|>` and the windows that score each once. */
export interface PreparedText {
  /** Tokens of the text itself. */
  tokens: number;
  bytes: number;
  /** `<|endoftext|>` (when scored) followed by the text's tokens. */
  seq: Int32Array;
  scoredFirstToken: boolean;
  scoredTokens: number;
  contextLength: number;
  stride: number;
  windows: Window[];
}

/** Checks the window options against the model and tokenizes the text (shared by every way of scoring it). */
export function prepareText(
  config: GPT2Config,
  tokenizer: Tokenizer,
  text: string,
  options: Pick<TextEvaluationOptions, 'contextLength' | 'stride'> = {},
): PreparedText {
  const contextLength = options.contextLength ?? config.nPositions;
  if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > config.nPositions) {
    throw new RangeError(`contextLength must be an integer in 1..${config.nPositions} (the model's context), got ${contextLength}`);
  }
  const stride = options.stride ?? Math.max(1, Math.floor(contextLength / 2));
  if (!Number.isInteger(stride) || stride < 1 || stride > contextLength) {
    throw new RangeError(`stride must be an integer in 1..${contextLength} (the context length), got ${stride}`);
  }
  const ids = tokenizer.encode(text);
  const bytes = Buffer.byteLength(text, 'utf8');
  const eos = tokenizer.eosTokenId;
  const scoredFirstToken = eos !== null && eos < config.vocabSize;
  const seq = Int32Array.from(scoredFirstToken ? [eos, ...ids] : ids);
  const bad = seq.find((id) => id >= config.vocabSize);
  if (bad !== undefined) throw new RangeError(`the tokenizer gives id ${bad}, outside the model's vocabulary of ${config.vocabSize}`);

  const windows = seq.length >= 2 ? scoringWindows(seq.length, contextLength, stride) : [];
  const scoredTokens = seq.length - 1 > 0 ? seq.length - 1 : 0;
  return { tokens: ids.length, bytes, seq, scoredFirstToken, scoredTokens, contextLength, stride, windows };
}

/** The numbers of a scored text from its summed loss. */
export function summarizeEvaluation(prepared: PreparedText, totalLoss: number): TextEvaluation {
  const { scoredTokens, bytes } = prepared;
  const meanLoss = scoredTokens > 0 ? totalLoss / scoredTokens : NaN;
  return {
    tokens: prepared.tokens,
    scoredTokens,
    bytes,
    totalLoss,
    meanLoss,
    perplexity: Math.exp(meanLoss),
    bitsPerByte: bytes > 0 ? totalLoss / Math.LN2 / bytes : NaN,
    contextLength: prepared.contextLength,
    stride: prepared.stride,
    windows: prepared.windows.length,
    scoredFirstToken: prepared.scoredFirstToken,
  };
}

export async function evaluateText(
  params: ParamMap,
  config: GPT2Config,
  tokenizer: Tokenizer,
  text: string,
  options: TextEvaluationOptions = {},
): Promise<TextEvaluation> {
  const prepared = prepareText(config, tokenizer, text, options);
  const { seq, windows, scoredTokens, contextLength } = prepared;
  const batchSize = options.batchSize ?? Math.max(1, Math.floor(LOGITS_BUDGET / (contextLength * config.vocabSize)));
  let totalLoss = 0;
  let done = 0;
  for (const group of groupByLength(windows, batchSize)) {
    if (options.between && !(await options.between())) throw new DOMException('the evaluation was stopped', 'AbortError');
    const T = group[0].length;
    const inputs = new Int32Array(group.length * T);
    const targets = new Int32Array(group.length * T);
    group.forEach((w, row) => {
      inputs.set(seq.subarray(w.start, w.start + T), row * T);
      targets.set(seq.subarray(w.start + 1, w.start + 1 + T), row * T);
    });
    const losses = tf.tidy(() => tokenLosses(forwardLogits(params, inputs, group.length, { config }), targets));
    const values = await losses.data();
    losses.dispose();
    group.forEach((w, row) => {
      // Targets seq[w.start + 1 + t] for t in [0, T); only those from `w.from` on are this window's.
      for (let t = w.from - w.start - 1; t < T; t++) totalLoss += values[row * T + t];
      done += w.start + T - w.from + 1;
    });
    options.onProgress?.(done, scoredTokens);
  }
  return summarizeEvaluation(prepared, totalLoss);
}

/** Cross-entropy of each row of `logits` [N, V] against its target, in nats. */
export function tokenLosses(logits: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  const [n, v] = logits.shape;
  const shifted = tf.sub(logits, tf.max(logits, 1, true));
  const logSumExp = tf.log(tf.sum(tf.exp(shifted), 1));
  const flat = Int32Array.from(targets, (target, row) => row * v + target);
  const picked = tf.gather(tf.reshape(shifted, [n * v]), tf.tensor1d(flat, 'int32'));
  return tf.sub(logSumExp, picked) as tf.Tensor1D;
}

/** Consecutive windows of equal length, at most `size` at a time (only the last window is shorter). */
function groupByLength(windows: readonly Window[], size: number): Window[][] {
  const groups: Window[][] = [];
  for (const w of windows) {
    const last = groups[groups.length - 1];
    if (last && last.length < size && last[0].length === w.length) last.push(w);
    else groups.push([w]);
  }
  return groups;
}
