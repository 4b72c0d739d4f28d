/**
 * Scoring: the log-probability a language model gives a continuation after a context, token by token and in
 * total, for many candidate continuations of one context at once. The primitive under zero-shot
 * classification, ranking of suggestions and evaluation.
 *
 * The context runs once; its KV cache is then expanded to one row per candidate, and all candidates run as
 * one batch on top of it. Candidates of different lengths are right-padded: attention is causal, so a pad
 * placed after a candidate's last real token cannot change the logits of any real position, and the pads'
 * own predictions are simply not read. No attention mask is needed for that reason.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KvCache, LanguageModel } from '../model/types.js';

export interface ContinuationScore {
  /** The candidate's token ids, as scored. */
  tokens: number[];
  /** log P(token_i | context, tokens_<i), natural log, one per token. */
  tokenLogProbs: number[];
  /** Sum of `tokenLogProbs`: log P(candidate | context). */
  logProb: number;
}

export interface ScoreResult {
  /** One score per candidate, in the order given. */
  scores: ContinuationScore[];
  /** Context tokens actually used (after cutting the start to fit the model's context window). */
  contextTokens: number;
  /** Context tokens dropped from the start so that the longest candidate fits. */
  truncatedContextTokens: number;
}

export interface ScoreOptions {
  /**
   * Candidates run on the context's cache at most this many at a time, which bounds the memory of their
   * logits (rows × positions × vocabulary floats). Default 16.
   */
  batchSize?: number;
  /** Token used to pad shorter candidates (its value never matters: see the module comment). Default 0. */
  padTokenId?: number;
}

export class ScoreError extends Error {
  override name = 'ScoreError';
}

/**
 * Scores every candidate (token ids) as a continuation of `context` (token ids). The context must hold at
 * least one token: the model predicts a candidate's first token from the context's last position.
 */
export async function scoreContinuations(
  model: LanguageModel,
  context: readonly number[],
  candidates: readonly (readonly number[])[],
  options: ScoreOptions = {},
): Promise<ScoreResult> {
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ScoreError(`batchSize must be a positive integer, got ${batchSize}`);
  const pad = options.padTokenId ?? 0;
  const { vocabSize, nPositions } = model.config;
  checkIds('context', context, vocabSize);
  if (context.length === 0) throw new ScoreError('the context is empty: scoring needs at least one context token');
  if (candidates.length === 0) throw new ScoreError('no candidates to score');
  candidates.forEach((c, i) => {
    if (c.length === 0) throw new ScoreError(`candidate ${i} is empty`);
    checkIds(`candidate ${i}`, c, vocabSize);
  });
  if (!Number.isInteger(pad) || pad < 0 || pad >= vocabSize) throw new ScoreError(`padTokenId ${pad} is outside the vocabulary`);

  const longest = Math.max(...candidates.map((c) => c.length));
  if (longest >= nPositions) {
    throw new ScoreError(`a candidate of ${longest} tokens leaves no room for the context in the model's ${nPositions} positions`);
  }
  // The last candidate token is predicted, never fed, so a context of nPositions − longest + 1 tokens fits.
  const room = nPositions - longest + 1;
  const kept = context.length > room ? context.slice(context.length - room) : [...context];

  const cache = model.createCache(1);
  try {
    const lastLogits = model.forward([kept], cache);
    let firstLogProbs: number[];
    try {
      firstLogProbs = await readLogProbsOfLast(lastLogits, candidates.map((c) => c[0]));
    } finally {
      lastLogits.dispose();
    }

    const scores: ContinuationScore[] = candidates.map((c, i) => ({ tokens: [...c], tokenLogProbs: [firstLogProbs[i]], logProb: 0 }));
    // Longest first, so each batch pads as little as it can.
    const longer = candidates.map((c, i) => i).filter((i) => candidates[i].length > 1);
    longer.sort((a, b) => candidates[b].length - candidates[a].length);
    for (let start = 0; start < longer.length; start += batchSize) {
      const rows = longer.slice(start, start + batchSize);
      const rest = await scoreRest(model, cache, rows.map((i) => candidates[i]), pad);
      rows.forEach((i, r) => scores[i].tokenLogProbs.push(...rest[r]));
    }
    for (const s of scores) s.logProb = s.tokenLogProbs.reduce((a, b) => a + b, 0);
    return { scores, contextTokens: kept.length, truncatedContextTokens: context.length - kept.length };
  } finally {
    cache.dispose();
  }
}

/**
 * Log-probabilities of tokens 1..n−1 of each candidate: the candidates minus their last token run on copies
 * of the context's cache; position t predicts token t+1.
 */
async function scoreRest(model: LanguageModel, contextCache: KvCache, candidates: readonly (readonly number[])[], pad: number): Promise<number[][]> {
  const width = Math.max(...candidates.map((c) => c.length)) - 1;
  const inputs = candidates.map((c) => {
    const row = c.slice(0, -1);
    while (row.length < width) row.push(pad);
    return row;
  });
  const cache = contextCache.expand(candidates.length);
  try {
    const logits = model.forward(inputs, cache, { allPositions: true });
    const vocab = model.config.vocabSize;
    // Flat indices into [rows·width, vocab] of every real target; padded positions are never gathered.
    const rowIndex: number[] = [];
    const flatIndex: number[] = [];
    candidates.forEach((c, r) => {
      for (let t = 0; t < c.length - 1; t++) {
        rowIndex.push(r * width + t);
        flatIndex.push((r * width + t) * vocab + c[t + 1]);
      }
    });
    let values: Float32Array;
    try {
      const picked = tf.tidy(() => {
        const flat = tf.reshape(logits, [candidates.length * width, vocab]);
        const rows = tf.gather(flat, tf.tensor1d(rowIndex, 'int32'));
        const logSumExp = tf.logSumExp(rows, 1);
        const chosen = tf.gather(tf.reshape(flat, [-1]), tf.tensor1d(flatIndex, 'int32'));
        return tf.sub(chosen, logSumExp);
      });
      values = (await picked.data()) as Float32Array;
      picked.dispose();
    } finally {
      logits.dispose();
    }
    const out: number[][] = [];
    let k = 0;
    for (const c of candidates) {
      out.push(Array.from(values.subarray(k, k + c.length - 1)));
      k += c.length - 1;
    }
    return out;
  } finally {
    cache.dispose();
  }
}

/** log-softmax of a [1, vocab] row, read at `ids`. */
async function readLogProbsOfLast(logits: tf.Tensor, ids: number[]): Promise<number[]> {
  const picked = tf.tidy(() => {
    const row = tf.reshape(logits, [-1]);
    return tf.sub(tf.gather(row, tf.tensor1d(ids, 'int32')), tf.logSumExp(row));
  });
  const values = Array.from(await picked.data());
  picked.dispose();
  return values;
}

function checkIds(what: string, ids: readonly number[], vocabSize: number): void {
  if (!Array.isArray(ids)) throw new ScoreError(`${what} must be an array of token ids`);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new ScoreError(`${what}: ${String(id)} is not a token id of this model (vocabulary of ${vocabSize})`);
    }
  }
}
