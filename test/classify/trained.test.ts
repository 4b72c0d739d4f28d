// A classification head on the tiny fixture, trained on two topics: it beats the majority class on its
// held-out split (head only and with LoRA), and survives a save and load.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../../worker/model/load.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { paramMapOf } from '../../worker/train/params.js';
import { loadClassifier, saveClassifier, splitHeldOut, trainClassifier } from '../../worker/classify/index.js';
import { tempDir, tinyGpt2, useWasm, writeSkewedModel } from './helpers.js';
import { topicTexts } from './synthetic.js';

let model: GPT2Model;
before(async () => {
  await useWasm();
  model = await loadModel(tinyGpt2);
});
after(() => model.dispose());

// Unbalanced on purpose: always answering "cooking" is right 60 % of the time, the bar to beat.
const { train, heldOut } = splitHeldOut(topicTexts({ cooking: 60, space: 40 }), 0.25, 3);

test('the split is stratified and held out', () => {
  assert.equal(heldOut.length, 25);
  assert.equal(heldOut.filter((e) => e.label === 'cooking').length, 15);
  assert.equal(train.length, 75);
  const trainTexts = new Set(train);
  assert.ok(heldOut.every((e) => !trainTexts.has(e)));
});

test('a head trained on frozen features beats the majority class on the held-out split; save and load keep it', async () => {
  const before = tf.memory().numTensors;
  const params = paramMapOf(model.params);
  const epochs: number[] = [];
  const result = await trainClassifier({ config: model.config, params, tokenizer: gpt2Tokenizer(), train, heldOut, options: { method: 'head', epochs: 60, learningRate: 3e-2, seed: 1 }, onEpoch: (e) => epochs.push(e.trainLoss) });
  const ev = result.evaluation!;
  assert.equal(ev.majorityLabel, 'cooking');
  assert.ok(Math.abs(ev.majorityAccuracy - 0.6) < 1e-9);
  assert.ok(ev.accuracy > ev.majorityAccuracy + 0.15, `held-out accuracy ${ev.accuracy} vs majority ${ev.majorityAccuracy}`);
  assert.equal(ev.confusion.flat().reduce((a, b) => a + b, 0), heldOut.length);
  assert.equal(ev.confusion[0][0] + ev.confusion[1][1], Math.round(ev.accuracy * heldOut.length));
  assert.ok(epochs.at(-1)! < epochs[0], `training loss went down: ${epochs[0]} → ${epochs.at(-1)}`);

  const dir = tempDir('classifier');
  await saveClassifier(dir, result.classifier, tinyGpt2, ev);
  const json = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(json.labels, ['cooking', 'space']);
  assert.equal(json.baseModel.path, path.resolve(tinyGpt2));
  const loaded = await loadClassifier(dir);
  const texts = heldOut.slice(0, 6).map((e) => e.text);
  const a = await result.classifier.predict(texts);
  const b = await loaded.predict(texts);
  a.forEach((row, i) => row.forEach((p, j) => assert.ok(Math.abs(p - b[i][j]) < 1e-6)));
  const [first] = await loaded.classify(['the rocket and the moon and a comet.']);
  assert.equal(first.label, 'space');
  loaded.dispose();
  result.classifier.dispose();
  assert.equal(tf.memory().numTensors, before, 'training, saving and loading leak no tensors');
});

test('a head with LoRA adapters also beats the majority class, and loads back with them', async () => {
  const before = tf.memory().numTensors;
  const result = await trainClassifier({
    config: model.config,
    params: paramMapOf(model.params),
    tokenizer: gpt2Tokenizer(),
    train,
    heldOut,
    options: { method: 'lora', epochs: 8, learningRate: 1e-2, seed: 2, lora: { rank: 4, dropout: 0 } },
  });
  const ev = result.evaluation!;
  assert.ok(ev.accuracy > ev.majorityAccuracy + 0.15, `held-out accuracy ${ev.accuracy} vs majority ${ev.majorityAccuracy}`);
  assert.equal(result.classifier.adapters.size, 2 * model.config.nLayer);
  const dir = tempDir('classifier-lora');
  await saveClassifier(dir, result.classifier, tinyGpt2, ev);
  const loaded = await loadClassifier(dir);
  const texts = heldOut.slice(0, 4).map((e) => e.text);
  const a = await result.classifier.predict(texts);
  const b = await loaded.predict(texts);
  a.forEach((row, i) => row.forEach((p, j) => assert.ok(Math.abs(p - b[i][j]) < 1e-6)));
  loaded.dispose();
  result.classifier.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('loading refuses a different base model', async () => {
  const result = await trainClassifier({ config: model.config, params: paramMapOf(model.params), tokenizer: gpt2Tokenizer(), train: train.slice(0, 10), options: { epochs: 1 } });
  const dir = tempDir('classifier-other');
  await saveClassifier(dir, result.classifier, tinyGpt2);
  result.classifier.dispose();
  const other = await writeSkewedModel(198, null, 1);
  await assert.rejects(loadClassifier(dir, { modelDir: other }), /is not the model the classifier/);
  await assert.rejects(loadClassifier(tempDir('empty')), /not a classifier folder/);
});

test('a cancelled training stops with a clear error and leaks nothing', async () => {
  for (const method of ['head', 'lora'] as const) {
    const before = tf.memory().numTensors;
    const aborter = new AbortController();
    const run = trainClassifier({
      config: model.config,
      params: paramMapOf(model.params),
      tokenizer: gpt2Tokenizer(),
      train,
      options: { method, epochs: 50 },
      signal: aborter.signal,
      onEpoch: () => aborter.abort(),
    });
    await assert.rejects(run, /training was cancelled/);
    assert.equal(tf.memory().numTensors, before, method);
  }
});
