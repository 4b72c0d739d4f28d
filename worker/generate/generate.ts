/**
 * The generation loop: prefill the prompt once, then decode all sequences of a request as one batch per
 * step, choosing each token on the host from one read-back of the last position's logits.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { readValues } from '../model/kernels/backend-memory.js';
import type { ForwardOptions, KvCache, LanguageModel, LogitsScreen } from '../model/types.js';
import { StreamingDecoder } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { GenerationOptionsError, resolveOptions, type ResolvedOptions } from './options.js';
import { buildLogitsProcessors, type LogitsProcessor, type SequenceState } from './processors.js';
import { Xoshiro128, argmax, sampleFromScores } from './sampling.js';
import { SequenceText } from './stop.js';
import type { FinishReason, GeneratedSequence, GenerationOptions, GenerationResult, TokenEvent } from './types.js';

const now = (): number => performance.now();

/** Lets the event loop run (a worker thread's cancel message, timers) between decode steps. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof setImmediate === 'function') setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}

/** One sequence being generated: its ids, its streamed text and its random stream. */
class Sequence implements SequenceState {
  readonly tokens: Int32Array;
  length: number;
  readonly promptLength: number;
  readonly ids: number[] = [];
  finishReason: FinishReason | null = null;

  constructor(
    prompt: readonly number[],
    maxNewTokens: number,
    readonly text: SequenceText,
    readonly random: Xoshiro128 | null,
  ) {
    this.tokens = new Int32Array(prompt.length + maxNewTokens);
    this.tokens.set(prompt);
    this.length = prompt.length;
    this.promptLength = prompt.length;
  }

  append(id: number): void {
    this.tokens[this.length++] = id;
    this.ids.push(id);
  }

  get lastToken(): number {
    return this.tokens[this.length - 1];
  }
}

function validatePrompt(promptIds: readonly number[], vocabSize: number): void {
  if (!Array.isArray(promptIds)) throw new TypeError('promptIds must be an array of token ids');
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`promptIds: ${String(id)} is not a token id of this model (vocabulary of ${vocabSize})`);
    }
  }
}

/**
 * Keeps the most recent prompt tokens that fit in the context window together with the new tokens.
 * Returns the kept tokens and how many were dropped from the start.
 */
export function fitPromptToContext(
  prompt: readonly number[],
  maxNewTokens: number,
  nPositions: number,
  lengthOption: 'maxNewTokens' | 'maxLength',
): { kept: number[]; dropped: number } {
  if (maxNewTokens >= nPositions) {
    throw new GenerationOptionsError(
      lengthOption,
      `asks for ${maxNewTokens} new tokens, which leaves no room for the prompt in the model's context of ` +
        `${nPositions} tokens`,
    );
  }
  const room = nPositions - maxNewTokens;
  const dropped = Math.max(0, prompt.length - room);
  return { kept: prompt.slice(dropped), dropped };
}

/**
 * Reads a logits tensor back to the host once and frees it: into `reuse` where it can (readValues), since a
 * step's logits are only read until the next step's arrive.
 */
async function readLogits(logits: tf.Tensor, rows: number, vocabSize: number, reuse: Float32Array | null): Promise<Float32Array> {
  try {
    if (logits.size !== rows * vocabSize) {
      throw new Error(
        `the model returned logits of shape [${logits.shape.join(', ')}], expected [${rows}, ${vocabSize}]`,
      );
    }
    return await readValues(logits, reuse);
  } finally {
    logits.dispose();
  }
}

/**
 * Generates continuations of `promptIds` with Hugging Face `generate` semantics (see `GenerationOptions`).
 * Streams each new token of each sequence to `onToken`. Resolves (never rejects) with finish reason
 * 'aborted' when `options.signal` fires; rejects on invalid options or a model error. Frees every tensor
 * it causes to be allocated.
 */
export async function generate(
  model: LanguageModel,
  tokenizer: Tokenizer,
  promptIds: number[],
  options: GenerationOptions = {},
  onToken?: (event: TokenEvent) => void,
): Promise<GenerationResult> {
  const started = now();
  const { vocabSize, nPositions } = model.config;
  validatePrompt(promptIds, vocabSize);
  const defaultEos = model.config.eosTokenId ?? tokenizer.eosTokenId;
  let prompt = promptIds;
  if (prompt.length === 0) {
    // As in Hugging Face, an empty prompt starts from the beginning-of-text token.
    const bos = model.config.bosTokenId ?? defaultEos;
    if (bos === null) throw new RangeError('promptIds is empty and the model has no beginning-of-text token to start from');
    prompt = [bos];
  }
  const resolved = resolveOptions(options, prompt.length, defaultEos, vocabSize);
  const lengthOption = options.maxNewTokens !== undefined ? 'maxNewTokens' : 'maxLength';
  const { kept, dropped } = fitPromptToContext(prompt, resolved.maxNewTokens, nPositions, lengthOption);

  const sequences: Sequence[] = [];
  for (let j = 0; j < resolved.numReturnSequences; j++) {
    const text = new SequenceText(new StreamingDecoder(tokenizer), resolved.stop);
    // Sequence j draws from seed + j, so it matches a single-sequence run with that seed.
    const random = resolved.doSample ? new Xoshiro128((resolved.seed + j) >>> 0) : null;
    sequences.push(new Sequence(kept, resolved.maxNewTokens, text, random));
  }
  const result = (prefillMs: number, decodeMs: number): GenerationResult =>
    buildResult(sequences, kept.length, dropped, prefillMs, decodeMs, now() - started);

  const signal = resolved.signal;
  if (signal?.aborted) {
    for (const s of sequences) s.finishReason = 'aborted';
    return result(0, 0);
  }

  const decoder = new StepDecoder(model, resolved, sequences, vocabSize, onToken);
  // Room for every token asked for, up front: no copy of the caches to grow them while decoding.
  let cache: KvCache = model.createCache(1, kept.length + resolved.maxNewTokens);
  try {
    const prefillStart = now();
    let logits = await readLogits(model.forward([kept], cache, decoder.forwardOptions([0])), 1, vocabSize, null);
    const prefillMs = now() - prefillStart;
    const decodeStart = now();
    if (sequences.length > 1) {
      const expanded = cache.expand(sequences.length, kept.length + resolved.maxNewTokens);
      cache.dispose();
      cache = expanded;
    }
    // Which sequence each batch row holds. The prefill's single row of logits serves every sequence.
    let rows = sequences.map((_, j) => j);
    let sharedRow = true;
    for (;;) {
      if (signal?.aborted) break;
      for (let r = 0; r < rows.length; r++) decoder.step(rows[r], logits, sharedRow ? 0 : r);
      if (sequences.every((s) => s.finishReason !== null)) break;
      await yieldToEventLoop();
      if (signal?.aborted) break;
      const compacted = decoder.compact(rows, cache);
      if (compacted !== null) {
        cache.dispose();
        cache = compacted.cache;
        rows = compacted.rows;
      }
      const next = rows.map((j) => [sequences[j].finishReason === null ? sequences[j].lastToken : decoder.padToken]);
      // The previous step's array is done with: the next logits are read into it.
      logits = await readLogits(model.forward(next, cache, decoder.forwardOptions(rows)), rows.length, vocabSize, logits);
      sharedRow = false;
    }
    for (const s of sequences) if (s.finishReason === null) s.finishReason = 'aborted';
    return result(prefillMs, now() - decodeStart);
  } finally {
    cache.dispose();
  }
}

/**
 * What the model may skip computing: every logit but those that can be among the `keep` highest once the
 * elementwise processors have run (greedy: keep 1; top-k sampling: keep k). Made once per generation; `rows`
 * maps the next forward pass's batch rows to sequences.
 */
class SequenceScreen implements LogitsScreen {
  rows: readonly number[] = [0];

  constructor(
    readonly keep: number,
    readonly key: string,
    private readonly processors: readonly LogitsProcessor[],
    private readonly sequences: readonly SequenceState[],
  ) {}

  process(row: number, scores: Float32Array): void {
    const sequence = this.sequences[this.rows[row]];
    for (const processor of this.processors) processor.process(scores, sequence);
  }
}

/** Chooses, records and streams one token for one sequence at a time, reusing one scores buffer. */
class StepDecoder {
  private readonly processors: LogitsProcessor[];
  private readonly scores: Float32Array;
  private readonly screen: SequenceScreen | null;
  private readonly forward: ForwardOptions;
  readonly padToken: number;

  constructor(
    model: LanguageModel,
    private readonly options: ResolvedOptions,
    private readonly sequences: Sequence[],
    private readonly vocabSize: number,
    private readonly onToken: ((event: TokenEvent) => void) | undefined,
  ) {
    this.processors = buildLogitsProcessors(options, vocabSize);
    this.scores = new Float32Array(vocabSize);
    this.screen = screenFor(this.processors, options, vocabSize, sequences);
    this.forward = this.screen ? { screen: this.screen } : {};
    // Rows of finished sequences still ride along in the batch; what they are fed is never looked at.
    this.padToken = options.eosTokenId ?? model.config.eosTokenId ?? 0;
  }

  /** The options of the forward pass whose batch rows hold `rows` (sequence indices). */
  forwardOptions(rows: readonly number[]): ForwardOptions {
    if (this.screen === null) return {};
    this.screen.rows = rows;
    return this.forward;
  }

  step(index: number, logits: Float32Array, logitsRow: number): void {
    const sequence = this.sequences[index];
    if (sequence.finishReason !== null) return;
    const scores = this.scores;
    scores.set(logits.subarray(logitsRow * this.vocabSize, (logitsRow + 1) * this.vocabSize));
    for (const processor of this.processors) processor.process(scores, sequence);
    const id = sequence.random === null ? argmax(scores) : sampleFromScores(scores, sequence.random);
    sequence.append(id);

    const { options } = this;
    const count = sequence.ids.length;
    // Stop strings count once the sequence holds minNewTokens tokens, the completing one included.
    const stopsCount = count >= options.minNewTokens;
    let finish: FinishReason | null = null;
    if (id === options.eosTokenId) {
      finish = sequence.text.finish(stopsCount) ? 'stop' : 'eos';
    } else if (sequence.text.push(id, stopsCount)) {
      finish = 'stop';
    } else if (count >= options.maxNewTokens) {
      finish = sequence.text.finish(stopsCount) ? 'stop' : 'length';
    }
    sequence.finishReason = finish;
    const textDelta = sequence.text.takeDelta(finish !== null);
    this.onToken?.({ sequence: index, tokenId: id, textDelta, text: sequence.text.shownText });
  }

  /**
   * Drops finished rows from the batch once they are at least half of it. A finished row still costs its
   * share of every decode step, while `select` copies the cache once: for the small batches of
   * suggestions, halving the rows is when the copy starts to pay.
   */
  compact(rows: number[], cache: KvCache): { cache: KvCache; rows: number[] } | null {
    const keep: number[] = [];
    for (let r = 0; r < rows.length; r++) if (this.sequences[rows[r]].finishReason === null) keep.push(r);
    if (keep.length === 0 || (rows.length - keep.length) * 2 < rows.length) return null;
    return { cache: cache.select(keep), rows: keep.map((r) => rows[r]) };
  }
}

/**
 * The screen for a generation: greedy decoding looks at the highest score, top-k sampling at the k highest
 * after the elementwise processors (all of which come before top-k). Sampling without top-k weighs every token.
 */
function screenFor(processors: LogitsProcessor[], options: ResolvedOptions, vocabSize: number, sequences: SequenceState[]): SequenceScreen | null {
  const keep = !options.doSample ? 1 : options.topK > 0 && options.topK < vocabSize ? options.topK : 0;
  if (keep === 0) return null;
  const first = processors.findIndex((p) => !p.elementwise);
  if (first >= 0 && (options.doSample ? processors[first].name !== 'topK' : true)) return null;
  const o = options;
  // Everything the elementwise processors and `keep` depend on, besides the sequence itself.
  const key = [keep, o.repetitionPenalty, o.noRepeatNgramSize, o.minNewTokens, o.eosTokenId, o.doSample ? o.temperature : 1].join(' ');
  return new SequenceScreen(keep, key, processors.slice(0, first < 0 ? processors.length : first), sequences);
}

/**
 * The screen `generate(model, tokenizer, promptIds, options)` will pass with its first forward pass, for a
 * caller that runs the prompt before it (worker/session.ts): undefined where generate asks for every logit.
 */
export function promptScreen(model: LanguageModel, tokenizer: Tokenizer, promptIds: readonly number[], options: GenerationOptions = {}): LogitsScreen | undefined {
  const { vocabSize } = model.config;
  const resolved = resolveOptions(options, promptIds.length, model.config.eosTokenId ?? tokenizer.eosTokenId, vocabSize);
  const prompt: SequenceState = { tokens: Int32Array.from(promptIds), length: promptIds.length, promptLength: promptIds.length };
  return screenFor(buildLogitsProcessors(resolved, vocabSize), resolved, vocabSize, [prompt]) ?? undefined;
}

function buildResult(
  sequences: Sequence[],
  promptTokens: number,
  truncatedPromptTokens: number,
  prefillMs: number,
  decodeMs: number,
  totalMs: number,
): GenerationResult {
  const out: GeneratedSequence[] = sequences.map((s) => ({
    ids: s.ids,
    text: s.text.text,
    finishReason: s.finishReason ?? 'aborted',
  }));
  // The first token of each sequence comes from the prefill's logits; the rest cost decode time.
  const decodedTokens = sequences.reduce((n, s) => n + Math.max(0, s.ids.length - 1), 0);
  return {
    sequences: out,
    promptTokens,
    truncatedPromptTokens,
    timings: {
      prefillMs,
      decodeMs,
      decodeTokensPerS: decodeMs > 0 ? (decodedTokens * 1000) / decodeMs : 0,
      totalMs,
    },
  };
}
