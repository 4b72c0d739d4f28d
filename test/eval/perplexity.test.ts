// evaluateText against a naive computation on the tiny fixture: one full forward pass per scored token,
// float64 log-softmax in JavaScript.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateText, scoringWindows } from '../../worker/eval/index.js';
import { loadModel } from '../../worker/model/load.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { paramMapOf } from '../../worker/train/params.js';
import { evalCommand } from '../../main/cli/eval.js';
import { tempDir, tinyGpt2, useWasm } from '../train/helpers.js';

let model: GPT2Model;
const tokenizer = gpt2Tokenizer();
const longText = 'It was a bright cold day in April, and the clocks were striking thirteen. '.repeat(9); // > 64 tokens

before(async () => {
  await useWasm();
  model = await loadModel(tinyGpt2);
});
after(() => model.dispose());

/** Loss of target seq[j] (nats) given the inputs seq[from, j), by a full forward pass. */
function naiveLoss(seq: number[], from: number, j: number): number {
  const cache = model.createCache(1);
  const logits = model.forward([seq.slice(from, j)], cache, { allPositions: true });
  const all = logits.dataSync();
  logits.dispose();
  cache.dispose();
  const V = model.config.vocabSize;
  const row = all.subarray((j - from - 1) * V, (j - from) * V);
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return Math.log(sum) + max - row[seq[j]];
}

test('windows score every target exactly once, with the promised context', () => {
  for (const [n, W, S] of [[2, 4, 2], [10, 4, 4], [10, 4, 1], [100, 16, 5], [17, 16, 16], [5, 64, 32]]) {
    const seen = new Array(n).fill(0);
    for (const w of scoringWindows(n, W, S)) {
      assert.ok(w.length <= W && w.start + w.length <= n - 1);
      for (let j = w.from; j <= w.start + w.length; j++) {
        seen[j]++;
        if (w.start > 0) assert.ok(j - w.start >= W - S, `target ${j} has only ${j - w.start} tokens of context`);
      }
    }
    assert.deepEqual(seen.slice(1), new Array(n - 1).fill(1), `n ${n} W ${W} S ${S}`);
  }
});

test('a short text matches the naive sum, the first token scored after <|endoftext|>', async () => {
  const text = 'Hello, my dog is a good boy.';
  const ids = tokenizer.encode(text);
  const seq = [tokenizer.eosTokenId!, ...ids];
  let total = 0;
  for (let j = 1; j < seq.length; j++) total += naiveLoss(seq, 0, j);
  const before = tf.memory().numTensors;
  const r = await evaluateText(paramMapOf(model.params), model.config, tokenizer, text);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.tokens, ids.length);
  assert.equal(r.scoredTokens, ids.length);
  assert.equal(r.bytes, Buffer.byteLength(text));
  assert.ok(Math.abs(r.totalLoss - total) < 1e-3 * ids.length, `${r.totalLoss} vs ${total}`);
  assert.ok(Math.abs(r.meanLoss - total / ids.length) < 1e-3);
  assert.ok(Math.abs(r.perplexity - Math.exp(total / ids.length)) < 1e-2 * r.perplexity);
  assert.ok(Math.abs(r.bitsPerByte - total / Math.LN2 / r.bytes) < 1e-3);
  assert.equal(r.windows, 1);
});

for (const [label, W, S] of [['non-overlapping blocks', 16, 16], ['a sliding window', 16, 5]] as const) {
  test(`a long text in ${label} matches the naive sum with the same contexts, batched or not`, async () => {
    const seq = [tokenizer.eosTokenId!, ...tokenizer.encode(longText)];
    assert.ok(seq.length > 64);
    let total = 0;
    for (const w of scoringWindows(seq.length, W, S)) {
      for (let j = w.from; j <= w.start + w.length; j++) total += naiveLoss(seq, w.start, j);
    }
    const params = paramMapOf(model.params);
    const one = await evaluateText(params, model.config, tokenizer, longText, { contextLength: W, stride: S, batchSize: 1 });
    const many = await evaluateText(params, model.config, tokenizer, longText, { contextLength: W, stride: S, batchSize: 7 });
    assert.equal(one.scoredTokens, seq.length - 1);
    assert.ok(Math.abs(one.totalLoss - total) < 1e-3 * seq.length, `${one.totalLoss} vs ${total}`);
    assert.ok(Math.abs(many.totalLoss - one.totalLoss) < 1e-3 * seq.length);
  });
}

test('bad window settings are refused', async () => {
  const params = paramMapOf(model.params);
  await assert.rejects(evaluateText(params, model.config, tokenizer, 'x', { contextLength: 65 }), /contextLength/);
  await assert.rejects(evaluateText(params, model.config, tokenizer, 'x', { contextLength: 8, stride: 9 }), /stride/);
});

test('inkling eval prints the same numbers as JSON, and names a missing file', async () => {
  const file = path.join(tempDir('eval'), 'text.txt');
  writeFileSync(file, longText);
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
  assert.equal(await evalCommand(['--model', tinyGpt2, '--file', file, '--json', '--backend', 'wasm'], io), 0, err.join(''));
  const json = JSON.parse(out.join(''));
  const direct = await evaluateText(paramMapOf(model.params), model.config, tokenizer, longText);
  assert.equal(json.tokens, direct.tokens);
  assert.ok(Math.abs(json.bitsPerByte - direct.bitsPerByte) < 1e-6);
  assert.equal(json.stride, 32);
  assert.equal(await evalCommand(['--model', tinyGpt2, '--file', file + '.missing'], io), 2);
  assert.match(err.join(''), /no such file/);
});
