// Scoring on the tiny fixture: the cached, batched, padded path against a naive full-sequence computation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { loadModel } from '../../worker/model/load.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { scoreContinuations, scoreTexts, ScoreError } from '../../worker/score/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tinyGpt2 = path.join(repoRoot, '..', 'shared', 'fixtures', 'tiny-gpt2');

let model: GPT2Model;
before(async () => {
  await initBackend('wasm');
  model = await loadModel(tinyGpt2);
});
after(() => model.dispose());

/** log P(candidate | context) by running context + candidate from scratch, one sequence at a time. */
async function naive(context: number[], candidate: number[]): Promise<number[]> {
  const cache = model.createCache(1);
  // The last candidate token is only predicted, so it is not fed (that keeps a full window in range).
  const logits = model.forward([[...context, ...candidate.slice(0, -1)]], cache, { allPositions: true });
  const logProbs = tf.tidy(() => tf.logSoftmax(tf.squeeze(logits, [0])));
  const values = (await logProbs.array()) as number[][];
  logits.dispose();
  logProbs.dispose();
  cache.dispose();
  return candidate.map((id, i) => values[context.length - 1 + i][id]);
}

const CONTEXT = [15496, 11, 616, 3290, 318];
const CANDIDATES = [[257], [3621, 290, 1310], [50256, 13], [1000, 2000, 3000, 4000, 5000], [198]];

test('per-token and total log-probabilities match the naive full-sequence computation within 1e-4', async () => {
  const result = await scoreContinuations(model, CONTEXT, CANDIDATES);
  assert.equal(result.scores.length, CANDIDATES.length);
  assert.equal(result.truncatedContextTokens, 0);
  for (const [i, candidate] of CANDIDATES.entries()) {
    const expected = await naive(CONTEXT, candidate);
    const got = result.scores[i];
    assert.deepEqual(got.tokens, candidate);
    assert.equal(got.tokenLogProbs.length, candidate.length);
    got.tokenLogProbs.forEach((lp, t) => assert.ok(Math.abs(lp - expected[t]) < 1e-4, `candidate ${i} token ${t}: ${lp} vs ${expected[t]}`));
    const total = expected.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(got.logProb - total) < 1e-4, `candidate ${i} total: ${got.logProb} vs ${total}`);
    assert.ok(got.logProb < 0);
  }
});

test('small batches, another pad token and candidate order give the same scores', async () => {
  const a = await scoreContinuations(model, CONTEXT, CANDIDATES);
  const b = await scoreContinuations(model, CONTEXT, [...CANDIDATES].reverse(), { batchSize: 2, padTokenId: 40000 });
  const reversed = [...b.scores].reverse();
  a.scores.forEach((s, i) => s.tokenLogProbs.forEach((lp, t) => assert.ok(Math.abs(lp - reversed[i].tokenLogProbs[t]) < 1e-5)));
});

test('the context runs once: one forward for it, one per batch of longer candidates', async () => {
  let calls = 0;
  const counting = new Proxy(model, {
    get(target, prop, receiver) {
      if (prop === 'forward') return (...args: Parameters<GPT2Model['forward']>) => (calls++, target.forward(...args));
      return Reflect.get(target, prop, receiver);
    },
  });
  await scoreContinuations(counting, CONTEXT, CANDIDATES);
  assert.equal(calls, 2, 'the context once, then all multi-token candidates as one batch');
  calls = 0;
  await scoreContinuations(counting, CONTEXT, [[1], [2], [3]]);
  assert.equal(calls, 1, 'single-token candidates need only the context');
});

test('scoring leaks no tensors', async () => {
  await scoreContinuations(model, CONTEXT, CANDIDATES); // warm-up allocations
  const before = tf.memory().numTensors;
  await scoreContinuations(model, CONTEXT, CANDIDATES, { batchSize: 2 });
  await scoreTexts(model, gpt2Tokenizer(), 'Review: fine.\nSentiment:', [' positive', ' negative']);
  await assert.rejects(scoreContinuations(model, CONTEXT, [[1], []]), ScoreError);
  assert.equal(tf.memory().numTensors, before);
});

test('a context too long for the window is cut from the start, and the result says so', async () => {
  const long = Array.from({ length: 70 }, (_, i) => (i * 37) % 50000);
  const candidate = [11, 12, 13];
  const result = await scoreContinuations(model, long, [candidate]);
  assert.equal(result.contextTokens, 62);
  assert.equal(result.truncatedContextTokens, 8);
  const expected = await naive(long.slice(8), candidate);
  result.scores[0].tokenLogProbs.forEach((lp, t) => assert.ok(Math.abs(lp - expected[t]) < 1e-4));
});

test('bad input is refused with a clear error', async () => {
  await assert.rejects(scoreContinuations(model, [], [[1]]), /context is empty/);
  await assert.rejects(scoreContinuations(model, [1], []), /no candidates/);
  await assert.rejects(scoreContinuations(model, [1], [[60000]]), /candidate 0: 60000 is not a token id/);
  await assert.rejects(scoreContinuations(model, [1], [Array(64).fill(1)]), /leaves no room/);
});
