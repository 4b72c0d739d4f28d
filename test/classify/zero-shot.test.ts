// Zero-shot classification on the tiny fixture and on a copy of it with a strong prior for " negative":
// calibration removes the prior, so it changes the decisions the prior alone made.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../../worker/model/load.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { classifyZeroShot, createZeroShotClassifier, renderZeroShotPrompt } from '../../worker/classify/index.js';
import { tinyGpt2, useWasm, writeSkewedModel } from './helpers.js';

const tokenizer = gpt2Tokenizer();
const LABELS = ['positive', 'negative'];
const TEXTS = [
  'I loved every minute of it.',
  'The plot was dull and the acting worse.',
  'A warm, funny and clever film.',
  'I want my money back.',
  'Best thing I have seen this year!',
  'Boring. I fell asleep twice.',
  'The soundtrack alone is worth it.',
  'Terrible pacing, flat characters.',
];

let base: GPT2Model;
let skewed: GPT2Model;
before(async () => {
  await useWasm();
  const [positive] = tokenizer.encode(' positive');
  const [negative] = tokenizer.encode(' negative');
  assert.equal(tokenizer.encode(' positive').length, 1);
  base = await loadModel(tinyGpt2);
  skewed = await loadModel(await writeSkewedModel(negative, positive, 8));
});
after(() => {
  base.dispose();
  skewed.dispose();
});

test('with a strong prior, the uncalibrated model says "negative" to everything; calibration removes the prior', async () => {
  const raw = await classifyZeroShot(skewed, tokenizer, TEXTS, { labels: LABELS, calibrate: false });
  assert.deepEqual(raw.map((r) => r.label), TEXTS.map(() => 'negative'), 'the prior wins every text');
  for (const r of raw) assert.ok(r.scores[1].probability > 0.99);

  const classifier = await createZeroShotClassifier(skewed, tokenizer, { labels: LABELS });
  assert.ok(classifier.prior![1] > 0.99, `the content-free prompt shows the prior: ${classifier.prior}`);
  const calibrated = await Promise.all(TEXTS.map((t) => classifier.classify(t)));
  assert.ok(calibrated.some((r) => r.label === 'positive'), 'calibration changes decisions the prior made');
  for (const r of calibrated) {
    assert.equal(r.uncalibratedLabel, 'negative');
    assert.ok(Math.abs(r.scores[0].calibratedProbability + r.scores[1].calibratedProbability - 1) < 1e-9);
  }

  // The skew moves every prompt's label log-odds by the same amount, so once calibrated the skewed model
  // decides exactly as the fixture it was made from: what is left is what the text does to the prediction.
  const fromBase = await classifyZeroShot(base, tokenizer, TEXTS, { labels: LABELS });
  assert.deepEqual(calibrated.map((r) => r.label), fromBase.map((r) => r.label));
  calibrated.forEach((r, i) => assert.ok(Math.abs(r.scores[0].calibratedProbability - fromBase[i].scores[0].calibratedProbability) < 1e-3));
});

test('label probabilities come from the scored log-probabilities, renormalised over the labels', async () => {
  const [r] = await classifyZeroShot(base, tokenizer, ['Fine.'], { labels: ['good', 'bad', 'so-so'], calibrate: false, template: 'Text: {text}\nVerdict:' });
  const sum = r.scores.reduce((s, x) => s + x.probability, 0);
  assert.ok(Math.abs(sum - 1) < 1e-9);
  const odds = Math.exp(r.scores[0].logProb - r.scores[1].logProb);
  assert.ok(Math.abs(r.scores[0].probability / r.scores[1].probability - odds) < 1e-6);
  assert.equal(r.scores.length, 3);
});

test('no tensors leak, and bad options are refused clearly', async () => {
  await classifyZeroShot(base, tokenizer, ['warm-up'], { labels: LABELS });
  const before = tf.memory().numTensors;
  await classifyZeroShot(base, tokenizer, TEXTS.slice(0, 2), { labels: LABELS, contentFree: ['', 'N/A'] });
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(classifyZeroShot(base, tokenizer, ['x'], { labels: ['only'] }), /at least two labels/);
  await assert.rejects(classifyZeroShot(base, tokenizer, ['x'], { labels: LABELS, template: 'no slot' }), /no \{text\} slot/);
  assert.equal(renderZeroShotPrompt('A {text} B {text}', 'x'), 'A x B x');
});
