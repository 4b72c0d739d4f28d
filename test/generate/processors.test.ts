import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MinNewTokensProcessor,
  NoRepeatNgramProcessor,
  RepetitionPenaltyProcessor,
  TemperatureProcessor,
  TopKProcessor,
  TopPProcessor,
  buildLogitsProcessors,
  resolveOptions,
  type SequenceState,
} from '../../worker/generate/index.js';
import { Xoshiro128 } from '../../worker/generate/sampling.js';

const NEG = -Infinity;

function state(tokens: number[], promptLength = 0): SequenceState {
  return { tokens: Int32Array.from(tokens), length: tokens.length, promptLength };
}

function row(values: number[]): Float32Array {
  return Float32Array.from(values);
}

test('repetition penalty divides positive and multiplies negative scores of seen tokens, once each', () => {
  const scores = row([2, -2, 0.5, 1, 0]);
  // Token 0 appears twice: Hugging Face gathers then scatters, so it is penalised once, not twice.
  new RepetitionPenaltyProcessor(2, 5).process(scores, state([0, 1, 0, 4]));
  assert.deepEqual([...scores], [1, -4, 0.5, 1, 0]);
  // A penalty below 1 rewards repetition by the same rule.
  const boosted = row([2, -2, 1]);
  new RepetitionPenaltyProcessor(0.5, 3).process(boosted, state([0, 1]));
  assert.deepEqual([...boosted], [4, -1, 1]);
});

test('repetition penalty is stable when reused across calls (no stale marks)', () => {
  const processor = new RepetitionPenaltyProcessor(2, 4);
  for (let i = 0; i < 3; i++) {
    const scores = row([2, 2, 2, 2]);
    processor.process(scores, state([i]));
    assert.deepEqual([...scores], [0, 1, 2, 3].map((t) => (t === i ? 1 : 2)));
  }
});

test('no-repeat n-gram bans exactly the tokens that would repeat an n-gram (HF _get_ngrams)', () => {
  // Bigrams: history 1 2 3 1 → the bigram "1 2" exists, so 2 is banned after the trailing 1.
  let scores = row([0, 0, 0, 0, 0]);
  new NoRepeatNgramProcessor(2).process(scores, state([1, 2, 3, 1]));
  assert.deepEqual([...scores], [0, 0, NEG, 0, 0]);
  // Trigrams: 1 2 3 4 1 2 → "1 2 3" exists, ban 3 only (not 4).
  scores = row([0, 0, 0, 0, 0]);
  new NoRepeatNgramProcessor(3).process(scores, state([1, 2, 3, 4, 1, 2]));
  assert.deepEqual([...scores], [0, 0, 0, NEG, 0]);
  // Two earlier continuations of the same prefix are both banned.
  scores = row([0, 0, 0, 0, 0]);
  new NoRepeatNgramProcessor(2).process(scores, state([1, 2, 1, 3, 1]));
  assert.deepEqual([...scores], [0, 0, NEG, NEG, 0]);
  // Unigrams: every token seen is banned.
  scores = row([0, 0, 0, 0, 0]);
  new NoRepeatNgramProcessor(1).process(scores, state([4, 0]));
  assert.deepEqual([...scores], [NEG, 0, 0, 0, NEG]);
  // Too short a history to hold an n-gram: nothing banned.
  scores = row([0, 0, 0]);
  new NoRepeatNgramProcessor(3).process(scores, state([1]));
  assert.deepEqual([...scores], [0, 0, 0]);
  // The prompt counts as history (HF looks at all input_ids).
  scores = row([0, 0, 0]);
  new NoRepeatNgramProcessor(2).process(scores, state([2, 1, 2], 2));
  assert.deepEqual([...scores], [0, NEG, 0]);
});

test('min-new-tokens bans end-of-text while fewer than min new tokens exist', () => {
  const processor = new MinNewTokensProcessor(2, 3);
  const banned = row([1, 1, 1, 1]);
  processor.process(banned, state([9, 9, 0], 2)); // one new token
  assert.deepEqual([...banned], [1, 1, 1, NEG]);
  const allowed = row([1, 1, 1, 1]);
  processor.process(allowed, state([9, 9, 0, 0], 2)); // two new tokens
  assert.deepEqual([...allowed], [1, 1, 1, 1]);
});

test('temperature divides every score', () => {
  const scores = row([1, -2, NEG, 0.5]);
  new TemperatureProcessor(0.5).process(scores);
  assert.deepEqual([...scores], [2, -4, NEG, 1]);
});

test('top-k keeps the k best and anything tied with the k-th', () => {
  let scores = row([1, 3, 2, 3]);
  new TopKProcessor(2).process(scores);
  assert.deepEqual([...scores], [NEG, 3, NEG, 3]);
  scores = row([1, 3, 2, 3, 2]);
  new TopKProcessor(3).process(scores);
  assert.deepEqual([...scores], [NEG, 3, 2, 3, 2]); // the tie at the 3rd place survives, as with HF's `<`
  scores = row([5, 4]);
  new TopKProcessor(5).process(scores);
  assert.deepEqual([...scores], [5, 4]);
});

test('top-k matches a full sort on random rows', () => {
  const random = new Xoshiro128(7);
  for (let trial = 0; trial < 50; trial++) {
    const n = 200 + trial * 13;
    const k = 1 + (trial * 7) % 60;
    const values = Float32Array.from({ length: n }, () => Math.round(random.nextFloat() * 1000) / 100);
    const kth = [...values].sort((a, b) => b - a)[k - 1];
    const expected = [...values].map((v) => (v < kth ? NEG : v));
    const scores = values.slice();
    new TopKProcessor(k).process(scores);
    assert.deepEqual([...scores], expected, `n=${n} k=${k}`);
  }
});

test('top-p keeps the smallest head whose mass reaches p (hand-computed)', () => {
  const logits = () => row([0.5, 0.3, 0.15, 0.05].map(Math.log));
  // HF: ascending cumsum [0.05, 0.2, 0.5, 1]; remove where ≤ 1 − p.
  let scores = logits();
  new TopPProcessor(0.75, 4).process(scores);
  assert.deepEqual([...scores].map((s) => s === NEG), [false, false, true, true]);
  scores = logits();
  new TopPProcessor(0.85, 4).process(scores);
  assert.deepEqual([...scores].map((s) => s === NEG), [false, false, false, true]);
  scores = logits();
  new TopPProcessor(0.4, 4).process(scores);
  assert.deepEqual([...scores].map((s) => s === NEG), [false, true, true, true]);
  // p = 0 still keeps the best token (min_tokens_to_keep = 1).
  scores = logits();
  new TopPProcessor(0, 4).process(scores);
  assert.deepEqual([...scores].map((s) => s === NEG), [false, true, true, true]);
});

/** Hugging Face's TopPLogitsWarper, transcribed literally (float64). */
function hfTopPMask(values: number[], p: number): boolean[] | null {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const max = order[order.length - 1][0];
  const exps = order.map(([v]) => (v === NEG ? 0 : Math.exp(v - max)));
  const total = exps.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  const removed = new Array<boolean>(values.length).fill(false);
  for (let j = 0; j < order.length; j++) {
    cumulative += exps[j] / total;
    if (Math.abs(cumulative - (1 - p)) < 1e-6) return null; // too close to call in float32
    removed[order[j][1]] = cumulative <= 1 - p && j !== order.length - 1;
  }
  return removed;
}

test('top-p matches a literal transcription of Hugging Face on random rows, after top-k too', () => {
  const random = new Xoshiro128(11);
  let compared = 0;
  for (let trial = 0; trial < 60; trial++) {
    const n = trial === 0 ? 50257 : 50 + trial * 17;
    const values = Array.from({ length: n }, () => random.nextFloat() * 6 - 3);
    const p = random.nextFloat();
    const scores = Float32Array.from(values);
    if (trial % 2 === 1) new TopKProcessor(20).process(scores);
    const expected = hfTopPMask([...scores], p);
    if (expected === null) continue;
    new TopPProcessor(p, n).process(scores);
    assert.deepEqual([...scores].map((s) => s === NEG), expected, `trial ${trial}`);
    compared++;
  }
  assert.ok(compared > 50);
});

test('processors come in Hugging Face order, and warpers only when sampling', () => {
  const all = resolveOptions(
    { doSample: true, temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.2, noRepeatNgramSize: 3, minNewTokens: 2, seed: 1 },
    3,
    9,
    10_000,
  );
  assert.deepEqual(
    buildLogitsProcessors(all, 10_000).map((p) => p.name),
    ['repetitionPenalty', 'noRepeatNgramSize', 'minNewTokens', 'temperature', 'topK', 'topP'],
  );
  const greedy = resolveOptions({ temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.2 }, 3, 9, 10_000);
  assert.deepEqual(buildLogitsProcessors(greedy, 10_000).map((p) => p.name), ['repetitionPenalty']);
  // HF's defaults when sampling: top-k 50 on, temperature 1 and top-p 1 are no-ops.
  const defaults = resolveOptions({ doSample: true, seed: 1 }, 3, 9, 10_000);
  assert.deepEqual(buildLogitsProcessors(defaults, 10_000).map((p) => p.name), ['topK']);
});
