/** generate() with the real GPT-2 implementation: the tiny fixture, and a long run for leaks. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { generate, type TokenEvent } from '../../worker/generate/index.js';
import { loadModel } from '../../worker/model/load.js';
import { createRandomModel } from '../../worker/model/random.js';
import type { LanguageModel } from '../../worker/model/types.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { FakeTokenizer, scriptedModel, useWasmBackend } from './fakes.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'tiny-gpt2');

interface ReferenceCase {
  name: string;
  prompt_ids: number[];
  greedy_continuation: number[];
}
const reference = JSON.parse(readFileSync(path.join(fixture, 'reference.json'), 'utf8')) as { cases: ReferenceCase[] };

let model: LanguageModel;
before(async () => {
  await useWasmBackend();
  model = await loadModel(fixture);
});

test('greedy generate reproduces the reference continuation of the tiny fixture', async () => {
  const tokenizer = gpt2Tokenizer();
  assert.equal(reference.cases.length, 3);
  for (const c of reference.cases) {
    const events: TokenEvent[] = [];
    const result = await generate(model, tokenizer, c.prompt_ids, { maxNewTokens: c.greedy_continuation.length, eosTokenId: null }, (e) => events.push(e));
    const [seq] = result.sequences;
    assert.deepEqual(seq.ids, c.greedy_continuation, c.name);
    assert.equal(seq.text, tokenizer.decode(c.greedy_continuation), c.name);
    assert.equal(events.map((e) => e.textDelta).join(''), seq.text, c.name);
    assert.equal(result.promptTokens, c.prompt_ids.length);
  }
});

test('three sampled sequences in one batch equal three single runs with seeds s, s+1, s+2', async () => {
  const tokenizer = gpt2Tokenizer();
  const prompt = reference.cases[0].prompt_ids;
  const options = { maxNewTokens: 8, doSample: true, topK: 8, eosTokenId: null, seed: 2024 };
  const before = tf.memory().numTensors;
  const batched = await generate(model, tokenizer, prompt, { ...options, numReturnSequences: 3 });
  assert.equal(batched.sequences.length, 3);
  const again = await generate(model, tokenizer, prompt, { ...options, numReturnSequences: 3 });
  assert.deepEqual(again.sequences, batched.sequences);
  for (let j = 0; j < 3; j++) {
    const single = await generate(model, tokenizer, prompt, { ...options, seed: options.seed + j });
    assert.deepEqual(single.sequences[0], batched.sequences[j], `sequence ${j}`);
  }
  assert.ok(new Set(batched.sequences.map((s) => s.ids.join())).size > 1);
  assert.equal(tf.memory().numTensors, before);
});

test('no tensor leaks over 1,010 decode steps of the real model, and none after an abort', async () => {
  const tokenizer = new FakeTokenizer();
  const small = createRandomModel({ vocabSize: tokenizer.vocabSize, nPositions: 1100, nEmbd: 8, nLayer: 1, nHead: 2, nInner: 16 }, 7);
  try {
    const start = tf.memory().numTensors;
    const counts: number[] = [];
    const result = await generate(small, tokenizer, [104, 105], { maxNewTokens: 1010, eosTokenId: null, doSample: true, seed: 3 }, () => {
      counts.push(tf.memory().numTensors);
    });
    assert.equal(result.sequences[0].ids.length, 1010);
    assert.equal(counts[1009], counts[9], 'tensors held at token 1010 vs token 10');
    assert.equal(tf.memory().numTensors, start);

    const controller = new AbortController();
    let tokensOfSecond = 0;
    const aborted = await generate(small, tokenizer, [104], { maxNewTokens: 50, doSample: true, seed: 1, numReturnSequences: 2, signal: controller.signal }, (e) => {
      if (e.sequence === 1 && ++tokensOfSecond === 5) controller.abort();
    });
    assert.deepEqual(aborted.sequences.map((s) => [s.finishReason, s.ids.length]), [['aborted', 5], ['aborted', 5]]);
    assert.equal(tf.memory().numTensors, start);
  } finally {
    small.dispose();
  }
});

test('streaming the GPT-2 tokenizer\'s byte-split Chinese and emoji never shows half a character', async () => {
  const tokenizer = gpt2Tokenizer();
  const text = '你好，世界！😀👍🏽 🇯🇵 家族👨‍👩‍👧';
  const ids = tokenizer.encode(text);
  const prompt = tokenizer.encode('Say:');
  const fake = scriptedModel(50257, 128, 50256, prompt.length, ids);
  const events: TokenEvent[] = [];
  const result = await generate(fake, tokenizer, prompt, { maxNewTokens: ids.length + 1 }, (e) => events.push(e));
  assert.equal(result.sequences[0].text, text);
  assert.equal(result.sequences[0].finishReason, 'eos');
  assert.equal(events.map((e) => e.textDelta).join(''), text);
  assert.ok(events.some((e) => e.textDelta === ''), 'some characters should span tokens');
  for (const e of events) {
    assert.ok(!e.textDelta.includes('\uFFFD'), JSON.stringify(e.textDelta));
    assert.ok(!/[\uD800-\uDBFF]$/.test(e.textDelta), `half a surrogate pair in ${JSON.stringify(e.textDelta)}`);
  }
});
