// The training forward must compute exactly GPT-2 (the fixture's float64 reference) and its hand-written
// gradients must equal TensorFlow.js's own.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { batchLoss, crossEntropy, forwardLogits, frozenWeights } from '../../worker/train/forward.js';
import { registerGradients } from '../../worker/train/gradients.js';
import { initLoraTensors, loraSet } from '../../worker/train/lora.js';
import { loadTiny, maxAbsDiff, randomModel, tinyGpt2, useWasm, type TestModel } from './helpers.js';

interface ReferenceCase {
  prompt_ids: number[];
  logits_at_fixed_ids: number[][];
}
const reference = JSON.parse(readFileSync(path.join(tinyGpt2, 'reference.json'), 'utf8')) as {
  fixed_token_ids: number[];
  cases: ReferenceCase[];
};

let tiny: TestModel;
before(async () => {
  await useWasm();
  registerGradients();
  tiny = await loadTiny();
});
after(() => tiny.dispose());

test('logits at every position match the float64 reference within 1e-4', () => {
  for (const c of reference.cases) {
    const logits = forwardLogits(tiny.params, Int32Array.from(c.prompt_ids), 1, { config: tiny.config });
    const rows = logits.arraySync();
    logits.dispose();
    c.logits_at_fixed_ids.forEach((expected, t) => {
      const got = reference.fixed_token_ids.map((id) => rows[t][id]);
      assert.ok(maxAbsDiff(got, expected) < 1e-4, `position ${t}: ${maxAbsDiff(got, expected)}`);
    });
  }
});

test('rows of a batch are independent: a batch of two equals each row alone', () => {
  const a = [15496, 11, 616, 3290, 318];
  const b = [50256, 1, 2, 3, 4];
  const ctx = { config: tiny.config };
  const both = forwardLogits(tiny.params, Int32Array.from([...a, ...b]), 2, ctx);
  const alone = [a, b].map((row) => forwardLogits(tiny.params, Int32Array.from(row), 1, ctx));
  const joined = tf.concat(alone, 0);
  assert.ok(maxAbsDiff(both.dataSync(), joined.dataSync()) < 1e-5);
  tf.dispose([both, joined, ...alone]);
});

test('cross-entropy and its gradient equal the textbook formula', () => {
  const logits = tf.randomNormal([6, 11], 0, 2, 'float32', 7) as tf.Tensor2D;
  const targets = Int32Array.from([0, 3, 10, 3, 5, 1]);
  const reference = (x: tf.Tensor) =>
    tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(x), tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), 11), 'float32')), 1))) as tf.Scalar;
  const ours = tf.valueAndGrad((x: tf.Tensor) => crossEntropy(x as tf.Tensor2D, targets))(logits);
  const theirs = tf.valueAndGrad(reference)(logits);
  assert.ok(Math.abs(ours.value.dataSync()[0] - theirs.value.dataSync()[0]) < 1e-5);
  assert.ok(maxAbsDiff(ours.grad.dataSync(), theirs.grad.dataSync()) < 1e-6);
  tf.dispose([logits, ours.value, ours.grad, theirs.value, theirs.grad]);
});

test('gradients of every weight match finite differences (trained path, small model)', () => {
  const m = randomModel({ vocabSize: 23, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 }, 4);
  // Non-trivial LayerNorm and biases, so that their gradients are not degenerate.
  const params: Record<string, tf.Tensor> = {};
  let seed = 100;
  for (const [name, t] of Object.entries(m.params)) params[name] = tf.add(t, tf.randomNormal(t.shape, 0, 0.1, 'float32', seed++));
  const batch = { batch: 2, length: 4, inputs: Int32Array.from([3, 7, 3, 1, 5, 5, 0, 22]), targets: Int32Array.from([7, 3, 1, 9, 5, 0, 22, 4]) };
  const ctx = { config: m.config };
  const names = Object.keys(params);
  const grads = tf.grads((...xs: tf.Tensor[]) => batchLoss(Object.fromEntries(names.map((n, i) => [n, xs[i]])), batch, ctx))(
    names.map((n) => params[n]),
  );
  const lossWith = (name: string, index: number, delta: number) =>
    tf.tidy(() => {
      const values = params[name].dataSync().slice();
      values[index] += delta;
      return batchLoss({ ...params, [name]: tf.tensor(values, params[name].shape) }, batch, ctx).dataSync()[0];
    });
  const eps = 1e-2;
  for (const name of ['wte.weight', 'wpe.weight', 'h.0.ln_1.weight', 'h.0.attn.c_attn.weight', 'h.0.attn.c_attn.bias', 'h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.bias', 'ln_f.bias']) {
    const g = grads[names.indexOf(name)].dataSync();
    // The entry with the largest gradient, and one with a small one.
    let big = 0;
    for (let i = 0; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[big])) big = i;
    for (const index of [big, (big + 5) % g.length]) {
      const numeric = (lossWith(name, index, eps) - lossWith(name, index, -eps)) / (2 * eps);
      assert.ok(Math.abs(numeric - g[index]) < 2e-3 + 0.03 * Math.abs(numeric), `${name}[${index}]: ${g[index]} vs ${numeric}`);
    }
  }
  tf.dispose([...grads, ...Object.values(params)]);
  m.dispose();
});

test('frozen weights (LoRA), with or without transposed copies, give the adapters the same gradients as the trained path', () => {
  registerGradients();
  const m = randomModel({ vocabSize: 31, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 }, 5);
  const lora = { rank: 2, alpha: 4, dropout: 0, targets: ['attn.c_attn', 'mlp.c_proj'] as const };
  const adapters = initLoraTensors(m.config, { ...lora, targets: [...lora.targets] }, 9);
  // Non-zero B, so that A gets a gradient too.
  for (const [name, t] of adapters) if (name.endsWith('lora_b')) adapters.set(name, tf.randomNormal(t.shape, 0, 0.5, 'float32', 3));
  const names = [...adapters.keys()];
  const batch = { batch: 1, length: 6, inputs: Int32Array.from([1, 2, 3, 4, 5, 6]), targets: Int32Array.from([2, 3, 4, 5, 6, 7]) };
  const frozen = frozenWeights(m.params, true);
  const frozenNoCopies = frozenWeights(m.params, false);
  const run = (mode: 'transposes' | 'frozen' | 'trained') =>
    tf.grads((...xs: tf.Tensor[]) => {
      const set = loraSet(new Map(names.map((n, i) => [n, xs[i]])), { ...lora, targets: [...lora.targets] });
      const which = mode === 'transposes' ? frozen : mode === 'frozen' ? frozenNoCopies : undefined;
      return batchLoss(m.params, batch, { config: m.config, lora: set, frozen: which });
    })(names.map((n) => adapters.get(n)!));
  const fast = run('transposes');
  const noCopies = run('frozen');
  const plain = run('trained');
  fast.forEach((g, i) => {
    assert.ok(tf.max(tf.abs(g)).dataSync()[0] > 0, `${names[i]} gets a gradient`);
    assert.ok(maxAbsDiff(g.dataSync(), plain[i].dataSync()) < 1e-6, names[i]);
    assert.ok(maxAbsDiff(noCopies[i].dataSync(), plain[i].dataSync()) < 1e-6, names[i]);
  });
  tf.dispose([...fast, ...noCopies, ...plain, ...adapters.values(), ...[...frozen.values()].filter((t) => t !== null)]);
  m.dispose();
});
