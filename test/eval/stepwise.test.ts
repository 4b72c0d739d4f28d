// Scoring through the model's own forward, a few tokens per call (what `eval --precision fast` uses): exact
// weights give the numbers of the whole-window pass, int8 weights numbers close to them but not the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateText, evaluateTextStepwise } from '../../worker/eval/index.js';
import { GPT2Model } from '../../worker/model/gpt2.js';
import { randomWeights } from '../../worker/model/random.js';
import { paramsFromWeights } from '../../worker/model/weights.js';
import type { Precision } from '../../worker/model/parallel/decode-products.js';
import { paramMapOf } from '../../worker/train/params.js';
import { evalCommand } from '../../main/cli/eval.js';
import { byteTokenizer, tempDir, tinyByteConfig, tinyGpt2, useWasm } from '../train/helpers.js';

// Width 64: the int8 kernels take inputs in groups of 32. Byte tokens keep the output layer small.
const config = tinyByteConfig({ nEmbd: 64, nHead: 4, nLayer: 2, nPositions: 64 });
const tokenizer = byteTokenizer();
const text = 'The quick brown fox jumps over the lazy dog; then it naps in the warm afternoon sun. '.repeat(3);
// 32-token windows 12 apart: every window after the first has 20 context-only tokens, and the chunks of 4
// start both before and inside the scored part.
const windows = { contextLength: 32, stride: 12 };

/**
 * GPT-2 initialisation with every matrix scaled up 8×: at the usual 0.02 a random model predicts nearly the
 * uniform distribution whatever its weights, so int8 errors would hardly move its loss. Sharper logits
 * make the loss depend on the weights, so the comparison below can tell good int8 weights from bad ones.
 */
function sharpModel(precision: Precision): GPT2Model {
  const weights = randomWeights(config, 5);
  for (const [name, tensor] of Object.entries(weights)) {
    if (/(wte|wpe|c_attn|c_proj|c_fc)\.weight$/.test(name)) {
      const { data } = tensor;
      for (let i = 0; i < data.length; i++) data[i] *= 8;
    }
  }
  const params = paramsFromWeights(config, (name) => weights[name].data);
  return new GPT2Model(config, params, { threads: 1, precision });
}

let exact: GPT2Model;
let fast: GPT2Model;

before(async () => {
  await useWasm();
  exact = sharpModel('exact');
  fast = sharpModel('fast');
  await fast.threadsReady;
});
after(() => {
  exact?.dispose();
  fast?.dispose();
});

test('exact weights: scoring 4 (or 3) tokens per call agrees with the whole-window pass to 1e-4', async () => {
  const whole = await evaluateText(paramMapOf(exact.params), config, tokenizer, text, windows);
  assert.ok(whole.windows > 3, `several windows (${whole.windows})`);
  const before = tf.memory().numTensors;
  for (const tokensPerCall of [4, 3]) {
    const stepwise = await evaluateTextStepwise(exact, tokenizer, text, { ...windows, tokensPerCall });
    assert.equal(stepwise.scoredTokens, whole.scoredTokens);
    assert.equal(stepwise.windows, whole.windows);
    assert.ok(Math.abs(stepwise.meanLoss - whole.meanLoss) < 1e-4, `mean loss ${stepwise.meanLoss} vs ${whole.meanLoss}`);
    assert.ok(Math.abs(stepwise.perplexity / whole.perplexity - 1) < 1e-4);
  }
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  // Not the uniform distribution's ln 257 ≈ 5.55 nats: the loss depends on the weights.
  assert.ok(Math.abs(whole.meanLoss - Math.log(257)) > 0.2, `mean loss ${whole.meanLoss}`);
});

test('int8 weights: within a few percent of exact in perplexity, and not the same numbers', async () => {
  assert.equal(fast.precision, 'fast', fast.precisionNote ?? '');
  const reference = await evaluateTextStepwise(exact, tokenizer, text, windows);
  const int8 = await evaluateTextStepwise(fast, tokenizer, text, windows);
  const ratio = int8.perplexity / reference.perplexity;
  assert.ok(Math.abs(ratio - 1) < 0.03, `fast perplexity ${int8.perplexity} vs exact ${reference.perplexity}`);
  assert.ok(Math.abs(int8.meanLoss - reference.meanLoss) > 1e-6, 'the int8 weights were used');
  // The whole-window pass runs the float32 weights, whatever the model decodes with: why fast eval steps.
  const whole = await evaluateText(paramMapOf(fast.params), config, tokenizer, text, windows);
  assert.ok(Math.abs(whole.meanLoss - reference.meanLoss) < 1e-4);
});

test('bad step sizes are refused', async () => {
  await assert.rejects(evaluateTextStepwise(exact, tokenizer, text, { tokensPerCall: 0 }), /tokensPerCall/);
  await assert.rejects(evaluateTextStepwise(exact, tokenizer, text, { contextLength: 65 }), /contextLength/);
});

test('eval --precision fast --json: the int8 numbers, named; exact stays as it was; bad values are usage errors', async () => {
  const file = path.join(tempDir('eval-precision'), 'text.txt');
  writeFileSync(file, 'It was a bright cold day in April, and the clocks were striking thirteen. '.repeat(4));
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
    const code = await evalCommand(['--model', tinyGpt2, '--file', file, '--backend', 'wasm', ...args], io);
    return { code, out: out.join(''), err: err.join('') };
  };
  const exactRun = await run('--json');
  assert.equal(exactRun.code, 0, exactRun.err);
  const exactJson = JSON.parse(exactRun.out);
  assert.equal(exactJson.precision, 'exact');
  assert.equal(exactJson.precisionNote, null);

  const fastRun = await run('--json', '--precision', 'fast', '--context', '32');
  assert.equal(fastRun.code, 0, fastRun.err);
  const fastJson = JSON.parse(fastRun.out);
  assert.equal(fastJson.precision, 'fast');
  assert.equal(fastJson.precisionNote, null);
  assert.equal(fastJson.scoredTokens, exactJson.scoredTokens);
  const exactShort = JSON.parse((await run('--json', '--context', '32')).out);
  assert.ok(Math.abs(fastJson.perplexity / exactShort.perplexity - 1) < 0.03, `${fastJson.perplexity} vs ${exactShort.perplexity}`);
  assert.notEqual(fastJson.meanLoss, exactShort.meanLoss);

  const text = await run('--precision', 'fast', '--context', '32');
  assert.match(text.out, /precision: {5}fast/);
  const bad = await run('--precision', 'int4');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--precision must be exact or fast, got "int4"/);
  const batch = await run('--precision', 'fast', '--batch-size', '2');
  assert.equal(batch.code, 2);
  assert.match(batch.err, /--batch-size applies to exact scoring only/);
});
