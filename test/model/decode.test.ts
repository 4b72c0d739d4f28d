// The single-token decode step (worker/model/decode.ts) must give what the tf-op forward pass gives for the
// whole sequence, on both backends it supports, through cache growth and truncation, leaving nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { decodePath } from '../../worker/model/decode.js';
import { GPT2Model, gpt2Forward } from '../../worker/model/gpt2.js';
import { completeGPT2Config } from '../../worker/model/config.js';
import { randomWeights } from '../../worker/model/random.js';
import type { GPT2Config } from '../../worker/model/types.js';
import { paramsFromWeights } from '../../worker/model/weights.js';
import { maxAbsDiff, useWasm } from './helpers.js';

const SAME = 1e-5;
const small: Partial<GPT2Config> = { vocabSize: 97, nPositions: 80, nEmbd: 32, nLayer: 3, nHead: 4 };

before(useWasm);
after(useWasm);

/**
 * A random GPT-2 whose activations are far from trivial: GPT-2's initialisation (std 0.02, zero biases, unit
 * LayerNorm) leaves attention almost uniform, which would hide a wrong scale or a missing bias.
 */
function createRandomModel(config: Partial<GPT2Config> & { tieWordEmbeddings?: boolean }, seed: number): GPT2Model {
  const full = completeGPT2Config(config);
  const weights = randomWeights(full, seed);
  let state = seed;
  const noise = () => ((state = (state * 48271) % 2147483647) / 2147483647) * 2 - 1;
  const params = paramsFromWeights(
    full,
    (name) => {
      const data = weights[name].data as Float32Array;
      if (/ln_\w+\.weight$/.test(name)) data.forEach((_, i) => (data[i] = 1 + 0.5 * noise()));
      else if (name.endsWith('.bias')) data.forEach((_, i) => (data[i] = 0.3 * noise()));
      else data.forEach((x, i) => (data[i] = x * 15));
      return data;
    },
    // An untied output layer of its own: wte's numbers reversed, so that it differs from wte.
    { lmHead: full.tieWordEmbeddings ? undefined : () => weights['wte.weight'].data.slice().reverse() as Float32Array },
  );
  return new GPT2Model(full, params);
}

/** Logits [time, vocab] of every position of `ids`, from one tf-op forward pass over the whole sequence. */
function wholeSequence(model: GPT2Model, ids: number[]): Float32Array {
  decodePath.enabled = false;
  try {
    const cache = model.createCache(1);
    const logits = model.forward([ids], cache, { allPositions: true });
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    cache.dispose();
    return data;
  } finally {
    decodePath.enabled = true;
  }
}

function token(i: number, row: number, vocab: number): number {
  return (i * 31 + row * 17 + 5) % vocab;
}

/**
 * Prefills a 3-token prompt for two rows, then decodes `steps` tokens one at a time (the cache grows past its
 * capacity more than once) and compares each step with the whole-sequence pass.
 */
function checkDecodeMatches(model: GPT2Model, steps: number): void {
  const vocab = model.config.vocabSize;
  const rows = [0, 1].map((row) => Array.from({ length: 3 + steps }, (_, i) => token(i, row, vocab)));
  const expected = rows.map((ids) => wholeSequence(model, ids));
  const cache = model.createCache(2);
  model.forward(rows.map((ids) => ids.slice(0, 3)), cache).dispose();
  const backendData = tf.backend().numDataIds();
  const tensors = tf.memory().numTensors;
  for (let i = 3; i < 3 + steps; i++) {
    const logits = model.forward(rows.map((ids) => [ids[i]]), cache);
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    rows.forEach((_, r) => {
      const got = data.subarray(r * vocab, (r + 1) * vocab);
      const want = expected[r].subarray(i * vocab, (i + 1) * vocab);
      assert.ok(maxAbsDiff(got, want) < SAME, `row ${r}, position ${i}: max difference ${maxAbsDiff(got, want)}`);
    });
  }
  assert.equal(cache.length, 3 + steps);
  assert.equal(tf.memory().numTensors, tensors, 'decode steps keep the tensor count');
  // The decode step allocates below the engine; nothing of it may stay in the backend either.
  assert.equal(tf.backend().numDataIds(), backendData, 'decode steps leave no backend buffers behind');
  cache.dispose();
}

/** Kernels the engine runs for one decode step: none when the decode path is taken, ~40 per layer when not. */
async function engineKernelsPerStep(model: GPT2Model): Promise<number> {
  const cache = model.createCache(1);
  model.forward([[1, 2, 3]], cache).dispose();
  model.forward([[4]], cache).dispose(); // grows the cache, so the step below only decodes
  const info = await tf.profile(() => model.forward([[4]], cache).dispose());
  cache.dispose();
  return info.kernels.length;
}

test('decoding token by token equals the whole-sequence pass (wasm), through cache growth', async () => {
  const model = createRandomModel(small, 3);
  checkDecodeMatches(model, 70);
  assert.ok((await engineKernelsPerStep(model)) < 5, 'the decode step runs below the engine');
  model.dispose();
});

test('ReLU, attention scaled by 1/layer and an unscaled variant decode exactly too', () => {
  const model = createRandomModel({ ...small, activation: 'relu', scaleAttnByInverseLayerIdx: true, scaleAttnWeights: false }, 4);
  checkDecodeMatches(model, 12);
  model.dispose();
});

test('an output layer tied to wte decodes exactly without a transposed copy, and with one', () => {
  const model = createRandomModel(small, 5);
  assert.equal(model.params.lmHead, undefined, 'our kernels read wte transposed in place');
  checkDecodeMatches(model, 6);
  const copied = new GPT2Model(model.config, { ...model.params, lmHead: tf.transpose(model.params.wte) as tf.Tensor2D });
  checkDecodeMatches(copied, 6);
  copied.params.lmHead!.dispose();
  model.dispose(); // frees the shared tensors; `copied` is dropped without its own dispose
});

test('the tf-op pass multiplies a tied output layer through our kernel, with tf.matMul’s numbers', async () => {
  const model = createRandomModel(small, 7);
  const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
  const run = (inference: boolean) =>
    tf.tidy(() => gpt2Forward(model.params, model.config, ids, null, { allPositions: true, inference }).logits.dataSync().slice() as Float32Array);
  assert.ok(maxAbsDiff(run(true), run(false)) < SAME);
  const products = async (inference: boolean) =>
    (await tf.profile(() => void run(inference))).kernels.filter((k) => /MatMul/.test(k.name)).length;
  assert.equal(await products(true), (await products(false)) - 1, 'the output layer is not an engine kernel for inference');
  ids.dispose();
  model.dispose();
});

test('an untied output layer (its own lm_head) decodes exactly', () => {
  const model = createRandomModel({ ...small, tieWordEmbeddings: false }, 6);
  assert.ok(model.params.lmHead);
  checkDecodeMatches(model, 6);
  model.dispose();
});

test('a few tokens after a cached prefix (typing) equal the tf-op pass, every position or the last', () => {
  const model = createRandomModel(small, 9);
  const rows = [
    [4, 8, 15, 16, 23, 42, 1, 2, 3],
    [2, 7, 1, 8, 2, 8, 1, 8, 2],
  ];
  const expected = rows.map((ids) => wholeSequence(model, ids));
  const cache = model.createCache(2);
  const prefix = model.forward(rows.map((ids) => ids.slice(0, 5)), cache, { allPositions: true });
  const more = cache.expand(1);
  const typed = model.forward(rows.map((ids) => ids.slice(5)), cache, { allPositions: true });
  const lastOnly = model.forward(rows.map((ids) => ids.slice(5)), more);
  assert.deepEqual(typed.shape, [2, 4, 97]);
  assert.deepEqual(lastOnly.shape, [2, 97]);
  const [p, t, l] = [prefix, typed, lastOnly].map((x) => x.dataSync() as Float32Array);
  rows.forEach((_, r) => {
    assert.ok(maxAbsDiff(p.subarray(r * 5 * 97, (r + 1) * 5 * 97), expected[r].subarray(0, 5 * 97)) < SAME, `prefix row ${r}`);
    assert.ok(maxAbsDiff(t.subarray(r * 4 * 97, (r + 1) * 4 * 97), expected[r].subarray(5 * 97)) < SAME, `typed row ${r}`);
    assert.ok(maxAbsDiff(l.subarray(r * 97, (r + 1) * 97), expected[r].subarray(8 * 97)) < SAME, `last row ${r}`);
  });
  for (const x of [prefix, typed, lastOnly, cache, more]) x.dispose();
  model.dispose();
});

test('a prompt without allPositions (its last block carries only the last positions) gives the last logits and a cache that decodes on exactly', () => {
  const model = createRandomModel(small, 12);
  const vocab = model.config.vocabSize;
  // 20 positions: long enough for the prompt attention kernels (16 and more).
  const rows = [0, 1].map((row) => Array.from({ length: 21 }, (_, i) => token(i, row, vocab)));
  const expected = rows.map((ids) => wholeSequence(model, ids));
  const cache = model.createCache(2);
  const prompt = model.forward(rows.map((ids) => ids.slice(0, 20)), cache);
  const next = model.forward(rows.map((ids) => [ids[20]]), cache);
  assert.deepEqual(prompt.shape, [2, vocab]);
  const [p, n] = [prompt, next].map((x) => x.dataSync() as Float32Array);
  rows.forEach((_, r) => {
    const at = (i: number) => expected[r].subarray(i * vocab, (i + 1) * vocab);
    assert.ok(maxAbsDiff(p.subarray(r * vocab, (r + 1) * vocab), at(19)) < SAME, `prompt row ${r}`);
    // Every position's keys and values of the last block were written: the next token reads them all.
    assert.ok(maxAbsDiff(n.subarray(r * vocab, (r + 1) * vocab), at(20)) < SAME, `next token row ${r}`);
  });
  for (const x of [prompt, next, cache]) x.dispose();
  model.dispose();
});

test('after truncate, the next tokens overwrite the forgotten positions', () => {
  const model = createRandomModel(small, 6);
  const cache = model.createCache(1);
  const prompt = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
  model.forward([prompt], cache).dispose();
  for (const id of [5, 8, 9]) model.forward([[id]], cache).dispose();
  cache.truncate(8);
  const edited = [...prompt.slice(0, 8), 7, 7, 1];
  let last: ArrayLike<number> = [];
  for (const id of edited.slice(8)) {
    const logits = model.forward([[id]], cache);
    last = logits.dataSync() as Float32Array;
    logits.dispose();
  }
  const whole = wholeSequence(model, edited);
  assert.ok(maxAbsDiff(last, whole.subarray(10 * 97)) < SAME);
  cache.dispose();
  model.dispose();
});

test('the plain JavaScript backend takes the decode path and matches too', async () => {
  await initBackend('cpu');
  try {
    const model = createRandomModel(small, 7);
    checkDecodeMatches(model, 8);
    assert.ok((await engineKernelsPerStep(model)) < 5, 'the decode step runs below the engine');
    model.dispose();
  } finally {
    await useWasm();
  }
});

test('a cache filled under another backend falls back to the tf-op path and stays exact', async () => {
  await initBackend('cpu');
  const model = createRandomModel(small, 8);
  const ids = [9, 8, 7, 6];
  const cache = model.createCache(1);
  try {
    model.forward([ids.slice(0, 3)], cache).dispose();
  } finally {
    await useWasm();
  }
  const logits = model.forward([[ids[3]]], cache);
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  assert.ok(maxAbsDiff(data, wholeSequence(model, ids).subarray(3 * 97)) < SAME);
  cache.dispose();
  model.dispose();
});
