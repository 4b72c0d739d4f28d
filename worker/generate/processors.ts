/**
 * Logits processors with the exact semantics of Hugging Face's, applied in place to one sequence's row of
 * float32 scores. They run once per token per sequence on a 50257-wide row, so each keeps the scratch
 * buffers it needs and allocates nothing per call.
 */
import type { ResolvedOptions } from './options.js';
import { kthLargest } from '../kth-largest.js';

/** What a processor may know about the sequence whose row it edits. */
export interface SequenceState {
  /** Prompt ids followed by generated ids; only the first `length` entries are valid. */
  readonly tokens: Int32Array;
  readonly length: number;
  readonly promptLength: number;
}

export interface LogitsProcessor {
  readonly name: string;
  /**
   * Changes each score on its own and never puts a lower score above a higher one (a penalty, a temperature, a
   * ban to −∞): applied to bounds on the logits, it gives bounds on the processed scores (model/output-screen.ts).
   */
  readonly elementwise: boolean;
  process(scores: Float32Array, sequence: SequenceState): void;
}

/**
 * CTRL's repetition penalty as Hugging Face applies it: every token seen in prompt or output has a positive
 * score divided by the penalty and a negative one multiplied, once however often it occurred.
 */
export class RepetitionPenaltyProcessor implements LogitsProcessor {
  readonly name = 'repetitionPenalty';
  readonly elementwise = true;
  // Marks tokens already penalised in this call; a fresh stamp per call avoids clearing the array.
  private readonly seen: Uint32Array;
  private stamp = 0;

  constructor(
    readonly penalty: number,
    vocabSize: number,
  ) {
    this.seen = new Uint32Array(vocabSize);
  }

  process(scores: Float32Array, sequence: SequenceState): void {
    this.stamp = (this.stamp + 1) >>> 0;
    if (this.stamp === 0) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    const { tokens, length } = sequence;
    for (let i = 0; i < length; i++) {
      const id = tokens[i];
      if (id >= scores.length || this.seen[id] === this.stamp) continue;
      this.seen[id] = this.stamp;
      const s = scores[id];
      scores[id] = s < 0 ? s * this.penalty : s / this.penalty;
    }
  }
}

/**
 * Bans every token that would complete an n-gram already present in prompt + output. A linear scan of the
 * history per step: at most n_positions × n comparisons, cheaper than maintaining an n-gram table.
 */
export class NoRepeatNgramProcessor implements LogitsProcessor {
  readonly name = 'noRepeatNgramSize';
  readonly elementwise = true;

  constructor(readonly n: number) {}

  process(scores: Float32Array, sequence: SequenceState): void {
    const { tokens, length } = sequence;
    const n = this.n;
    if (length + 1 < n) return;
    const prefixStart = length - n + 1; // the last n − 1 tokens, which the next token would extend
    for (let start = 0; start + n <= length; start++) {
      let same = true;
      for (let j = 0; j < n - 1; j++) {
        if (tokens[start + j] !== tokens[prefixStart + j]) {
          same = false;
          break;
        }
      }
      if (same) {
        const banned = tokens[start + n - 1];
        if (banned < scores.length) scores[banned] = -Infinity;
      }
    }
  }
}

/** Forbids end-of-text until the sequence holds `minNewTokens` new tokens. */
export class MinNewTokensProcessor implements LogitsProcessor {
  readonly name = 'minNewTokens';
  readonly elementwise = true;

  constructor(
    readonly minNewTokens: number,
    readonly eosTokenId: number,
  ) {}

  process(scores: Float32Array, sequence: SequenceState): void {
    if (sequence.length - sequence.promptLength < this.minNewTokens) scores[this.eosTokenId] = -Infinity;
  }
}

export class TemperatureProcessor implements LogitsProcessor {
  readonly name = 'temperature';
  readonly elementwise = true;

  constructor(readonly temperature: number) {}

  process(scores: Float32Array): void {
    const t = this.temperature;
    for (let i = 0; i < scores.length; i++) scores[i] /= t;
  }
}

/**
 * Keeps the `k` highest scores (and any tied with the k-th) and sets the rest to −∞, like Hugging Face's
 * `scores < topk(scores, k)[-1]`. The k-th value comes from a size-k min-heap in one pass: O(V log k) at
 * worst and close to O(V) in practice, instead of sorting the whole vocabulary each token.
 */
export class TopKProcessor implements LogitsProcessor {
  readonly name = 'topK';
  readonly elementwise = false;
  private readonly heap: Float32Array;

  constructor(readonly k: number) {
    this.heap = new Float32Array(k);
  }

  process(scores: Float32Array): void {
    const k = this.k;
    if (k >= scores.length) return;
    const kth = kthLargest(scores, k, this.heap);
    for (let i = 0; i < scores.length; i++) if (scores[i] < kth) scores[i] = -Infinity;
  }
}

/**
 * Nucleus filtering as in Hugging Face: a token survives when the probability mass of the tokens scoring
 * above it is below `p` (so the top token always survives). Instead of sorting the whole row, one pass
 * spreads the probability mass over a histogram of score values; walking it from the top finds the one
 * bucket where the mass crosses `p`, and only that bucket's scores are sorted. Same answer as a full
 * sort, in O(V) plus a small sort, which matters when top-k is off and all 50257 scores take part.
 */
export class TopPProcessor implements LogitsProcessor {
  readonly name = 'topP';
  readonly elementwise = false;
  private static readonly BUCKETS = 1024;
  private readonly mass = new Float64Array(TopPProcessor.BUCKETS);
  private readonly bucketScores: Float32Array;

  constructor(
    readonly p: number,
    vocabSize: number,
  ) {
    this.bucketScores = new Float32Array(vocabSize);
  }

  process(scores: Float32Array): void {
    let max = -Infinity;
    let min = Infinity;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i];
      if (s === -Infinity) continue;
      if (s > max) max = s;
      if (s < min) min = s;
    }
    if (max === -Infinity || max === min) return; // nothing, or all tied with the best: all kept

    const buckets = TopPProcessor.BUCKETS;
    const scale = buckets / (max - min);
    const bucketOf = (s: number): number => Math.min(buckets - 1, Math.floor((s - min) * scale));
    const mass = this.mass.fill(0);
    let total = 0;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i];
      if (s === -Infinity) continue;
      const w = Math.exp(s - max);
      mass[bucketOf(s)] += w;
      total += w;
    }

    // The bucket where the mass above crosses p: everything higher survives, everything lower goes.
    const target = this.p * total;
    let above = 0;
    let crossing = 0;
    for (let b = buckets - 1; b >= 0; b--) {
      if (mass[b] === 0) continue;
      crossing = b;
      if (above + mass[b] >= target) break;
      above += mass[b];
    }

    let count = 0;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i];
      if (s !== -Infinity && bucketOf(s) === crossing) this.bucketScores[count++] = s;
    }
    const sorted = this.bucketScores.subarray(0, count).sort();
    // The first score of the crossing bucket always survives: the mass above it is below p by construction
    // (or p is 0, and Hugging Face keeps one token).
    let threshold = sorted[count - 1];
    above += Math.exp(threshold - max);
    for (let i = count - 2; i >= 0 && above < target; i--) {
      threshold = sorted[i];
      above += Math.exp(threshold - max);
    }
    for (let i = 0; i < scores.length; i++) if (scores[i] < threshold) scores[i] = -Infinity;
  }
}

/**
 * The processors `options` ask for, in Hugging Face's order: the ones that shape the distribution
 * (repetition penalty, no-repeat n-gram, minimum length), then — only when sampling — the warpers
 * temperature, top-k and top-p.
 */
export function buildLogitsProcessors(options: ResolvedOptions, vocabSize: number): LogitsProcessor[] {
  const processors: LogitsProcessor[] = [];
  if (options.repetitionPenalty !== 1) processors.push(new RepetitionPenaltyProcessor(options.repetitionPenalty, vocabSize));
  if (options.noRepeatNgramSize > 0) processors.push(new NoRepeatNgramProcessor(options.noRepeatNgramSize));
  if (options.minNewTokens > 0 && options.eosTokenId !== null && options.eosTokenId < vocabSize) {
    processors.push(new MinNewTokensProcessor(options.minNewTokens, options.eosTokenId));
  }
  if (options.doSample) {
    if (options.temperature !== 1) processors.push(new TemperatureProcessor(options.temperature));
    if (options.topK > 0 && options.topK < vocabSize) processors.push(new TopKProcessor(options.topK));
    if (options.topP < 1) processors.push(new TopPProcessor(options.topP, vocabSize));
  }
  return processors;
}
