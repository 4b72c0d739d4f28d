import { test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { currentBackendMemory } from '../../worker/model/kernels/backend-memory.js';
import { DecodeProducts, wantedThreads } from '../../worker/model/parallel/decode-products.js';
import { createRandomModel } from '../../worker/model/random.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';

await initBackend('wasm');

// Wide enough that every product is split (see MIN_SPLIT_MACS), small enough to be quick.
const CONFIG = { nLayer: 2, nEmbd: 256, nHead: 4, vocabSize: 1500, nPositions: 320 };

function maxDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Prompt as one pass, then `steps` single tokens; the logits of every pass, concatenated. */
function run(model: GPT2Model, prompt: number[][], steps: number): Float32Array {
  const cache = model.createCache(prompt.length);
  const out: number[] = [];
  try {
    const first = model.forward(prompt, cache, { allPositions: true });
    out.push(...first.dataSync());
    first.dispose();
    for (let s = 0; s < steps; s++) {
      const logits = model.forward(prompt.map((_, b) => [(s * 31 + b * 7) % CONFIG.vocabSize]), cache);
      out.push(...logits.dataSync());
      logits.dispose();
    }
  } finally {
    cache.dispose();
  }
  return Float32Array.from(out);
}

test('two threads compute what one computes: prompt, single tokens, a batch of 3, the tied output layer', async () => {
  const one = createRandomModel(CONFIG, 11, { threads: 1 });
  const two = createRandomModel(CONFIG, 11, { threads: 2 });
  try {
    await two.threadsReady;
    assert.equal(two.threadsNote, null);
    assert.equal(two.threads, 2);
    assert.equal(one.threads, 1);
    const prompt = [Array.from({ length: 70 }, (_, i) => (i * 37) % CONFIG.vocabSize)];
    // Sums split in two halves round differently: float32 rounding, far below the fixtures' 1e-4.
    assert.ok(maxDifference(run(one, prompt, 12), run(two, prompt, 12)) < 1e-5);
    const batch = [0, 1, 2].map((b) => Array.from({ length: 9 }, (_, i) => (i * 13 + b * 101) % CONFIG.vocabSize));
    assert.ok(maxDifference(run(one, batch, 6), run(two, batch, 6)) < 1e-5);
  } finally {
    one.dispose();
    two.dispose();
  }
});

test('an untied output layer (lm_head used as stored) is split by its inputs', async () => {
  const config = { ...CONFIG, tieWordEmbeddings: false };
  const one = createRandomModel(config, 5, { threads: 1 });
  const two = createRandomModel(config, 5, { threads: 2 });
  try {
    await two.threadsReady;
    assert.ok(two.params.lmHead, 'the random model has its own output layer');
    const prompt = [[1, 2, 3, 4, 5, 6]];
    assert.ok(maxDifference(run(one, prompt, 4), run(two, prompt, 4)) < 1e-5);
  } finally {
    one.dispose();
    two.dispose();
  }
});

test('a step too large for the shared space runs on this thread alone, with the same numbers, and the partner stays', async () => {
  // 7 rows × 300 positions = 2,100 input rows: more than the partner's input/output space may grow to (2,048).
  const one = createRandomModel(CONFIG, 13, { threads: 1 });
  const two = createRandomModel(CONFIG, 13, { threads: 2 });
  try {
    await two.threadsReady;
    const batch = Array.from({ length: 7 }, (_, b) => Array.from({ length: 300 }, (_, i) => (i * 17 + b * 211) % CONFIG.vocabSize));
    const lastLogits = (model: GPT2Model) => {
      const cache = model.createCache(batch.length);
      try {
        const prompt = model.forward(batch, cache);
        const next = model.forward(batch.map((_, b) => [b]), cache);
        const values = Float32Array.from([...prompt.dataSync(), ...next.dataSync()]);
        tf.dispose([prompt, next]);
        return values;
      } finally {
        cache.dispose();
      }
    };
    assert.ok(maxDifference(lastLogits(one), lastLogits(two)) < 1e-5);
    assert.equal(two.threads, 2, 'the partner is still used for the steps that fit');
    assert.equal(two.threadsNote, null);
  } finally {
    one.dispose();
    two.dispose();
  }
});

test('with the backend’s own products (INKLING_MATMUL=xnnpack) this side’s c_fc columns are copied, and two threads still agree with one', async () => {
  const saved = process.env.INKLING_MATMUL;
  process.env.INKLING_MATMUL = 'xnnpack';
  // Without the output layer's screen, whose int8 copy needs our kernels (it would be one more difference).
  const one = createRandomModel(CONFIG, 17, { threads: 1, screen: false });
  const two = createRandomModel(CONFIG, 17, { threads: 2, screen: false });
  try {
    assert.equal(currentBackendMemory()!.matMulColumns, null);
    await two.threadsReady;
    assert.equal(two.threads, 2);
    const copied = CONFIG.nLayer * CONFIG.nEmbd * (2 * CONFIG.nEmbd) * 4; // each c_fc's first half of columns
    delete process.env.INKLING_MATMUL;
    const inPlace = createRandomModel(CONFIG, 17, { threads: 2, screen: false });
    await inPlace.threadsReady;
    const extra = inPlace.extraBytes;
    inPlace.dispose();
    process.env.INKLING_MATMUL = 'xnnpack';
    assert.equal(two.extraBytes, extra + copied, 'the copies are the only difference');
    const prompt = [Array.from({ length: 40 }, (_, i) => (i * 29) % CONFIG.vocabSize)];
    assert.ok(maxDifference(run(one, prompt, 6), run(two, prompt, 6)) < 1e-5);
  } finally {
    one.dispose();
    two.dispose();
    if (saved === undefined) delete process.env.INKLING_MATMUL;
    else process.env.INKLING_MATMUL = saved;
  }
});

test('no tensor or backend buffer is left behind per token, and dispose stops the thread', async () => {
  const model = createRandomModel(CONFIG, 3, { threads: 2 });
  await model.threadsReady;
  const cache = model.createCache(1);
  const stepTokens = (n: number) => {
    for (let i = 0; i < n; i++) model.forward([[i % CONFIG.vocabSize]], cache).dispose();
  };
  stepTokens(5);
  const tensors = tf.memory().numTensors;
  const heap = tf.memory().numBytes;
  stepTokens(25); // within the cache's first capacity (32 positions), so it does not grow

  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.memory().numBytes, heap);
  cache.dispose();
  model.dispose();
  assert.equal(model.threads, 1, 'a disposed model no longer uses its partner');
});

test('a disposed model lets go of the memory it shared with its partner', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const model = createRandomModel(CONFIG, 19, { threads: 2 });
  await model.threadsReady;
  // Only a weak reference here: a strong one in this scope would keep the products alive itself.
  const held = (() => {
    const products = (model as unknown as { decoder: { products: object | null } }).decoder.products;
    assert.ok(products, 'the model has its products');
    return new WeakRef(products);
  })();
  model.dispose();
  // The partner thread holds the shared memory too, until it has exited.
  for (let i = 0; i < 50 && held.deref(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
  }
  assert.equal(held.deref(), undefined, 'the products (and their shared memory) were collected');
});

test('the partner reads its share in place on the shared heap, or works on a copy in an arena: the same numbers (prompts split by columns in place)', async () => {
  const memory = currentBackendMemory()!;
  const [width, hidden] = [256, 1024]; // one row is just enough to be split (MIN_SPLIT_MACS)
  const w = tf.randomNormal([512, 640], 0, 0.05, 'float32', 1);
  const bias = tf.randomNormal([640], 0, 0.05, 'float32', 2);
  const mlp = {
    fc: tf.randomNormal([width, hidden], 0, 0.1, 'float32', 4),
    fcBias: tf.randomNormal([hidden], 0, 0.1, 'float32', 5),
    proj: tf.randomNormal([hidden, width], 0, 0.1, 'float32', 6),
    projBias: tf.randomNormal([width], 0, 0.1, 'float32', 7),
    activation: 'gelu_new' as const,
  };
  const results: Float32Array[][] = [];
  const extras: number[] = [];
  for (const inPlace of [true, false]) {
    const products = await DecodeProducts.start(memory, [{ weight: w, transposed: false, hasBias: true }], [mlp], { threads: 2, precision: 'exact', inPlace });
    try {
      assert.equal(products.threads, 2);
      extras.push(products.extraBytes);
      const out: Float32Array[] = [];
      for (const rows of [1, 3, 40]) {
        const x = tf.randomNormal([1, rows, 512], 0, 1, 'float32', rows);
        const h = tf.randomNormal([1, rows, width], 0, 1, 'float32', rows + 1);
        const y = products.matMul(x, 0, bias);
        const m = products.mlp(h, 0)!;
        out.push(memory.view(y).slice(), memory.view(m).slice());
        memory.free(y);
        memory.free(m);
        tf.dispose([x, h]);
      }
      results.push(out);
    } finally {
      products.dispose();
    }
  }
  assert.equal(extras[0], 0, 'in place: no weights copied');
  assert.equal(extras[1], 4 * (256 * 640 + width * (hidden / 2) + hidden / 2 + (hidden / 2) * width), 'the arena: a copy of the partner’s share');
  // Decoding (1 and 3 rows) splits the same way in both: the same bits. A prompt (40 rows) in place is split
  // by output columns instead of inputs (Job.columns): the same numbers to float32 rounding.
  results[0].forEach((values, i) => {
    if (i < 4) assert.deepEqual(values, results[1][i], `result ${i}`);
    else assert.ok(maxDifference(values, results[1][i]) < 1e-5, `result ${i}: ${maxDifference(values, results[1][i])}`);
  });
  tf.dispose([w, bias, mlp.fc, mlp.fcBias, mlp.proj, mlp.projBias]);
});

test('a partner that dies mid-job costs one timeout, then the model goes on alone with the same numbers', async () => {
  const memory = currentBackendMemory()!;
  const w = tf.randomNormal([512, 640], 0, 0.05, 'float32', 1);
  const bias = tf.randomNormal([640], 0, 0.05, 'float32', 2);
  const x = tf.randomNormal([1, 3, 512], 0, 1, 'float32', 3);
  const products = await DecodeProducts.start(memory, [{ weight: w, transposed: false, hasBias: true }], [], {
    threads: 2,
    precision: 'exact',
    entry: new URL('./fixtures/partner-dies.mjs', import.meta.url),
    jobTimeoutMs: 300,
  });
  try {
    const expected = tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [3, 512]), w), bias).dataSync());
    const first = products.matMul(x, 0, bias);
    assert.match(products.lost ?? '', /did not answer within 0.3 s/);
    assert.ok(maxDifference(memory.view(first).slice(), Float32Array.from(expected)) < 1e-5);
    memory.free(first);
    const second = products.matMul(x, 0, bias);
    assert.ok(maxDifference(memory.view(second).slice(), Float32Array.from(expected)) < 1e-5);
    memory.free(second);
  } finally {
    products.dispose();
    tf.dispose([w, bias, x]);
  }
});

test('a partner that cannot start is reported, not thrown at the first token', async () => {
  const model = createRandomModel(CONFIG, 3, { threads: 2 });
  try {
    await model.threadsReady;
    assert.equal(model.threads, 2);
  } finally {
    model.dispose();
  }
  const memory = currentBackendMemory()!;
  const w = tf.zeros([4, 4]);
  await assert.rejects(
    DecodeProducts.start(memory, [{ weight: w, transposed: false, hasBias: false }], [], {
      threads: 2,
      precision: 'exact',
      entry: new URL('./fixtures/no-such-partner.mjs', import.meta.url),
    }),
    /second engine thread did not start/,
  );
  w.dispose();
});

/** Largest |a − b| relative to the largest |b|. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  return maxDifference(a, b) / scale;
}

test('fast precision: int8 decoding stays close to float32, prompts stay exact, one or two threads agree', async () => {
  const exact = createRandomModel(CONFIG, 21, { threads: 1 });
  const fast1 = createRandomModel(CONFIG, 21, { threads: 1, precision: 'fast' });
  const fast2 = createRandomModel(CONFIG, 21, { threads: 2, precision: 'fast' });
  try {
    await Promise.all([fast1.threadsReady, fast2.threadsReady]);
    assert.deepEqual([fast1.precision, fast1.threads, fast1.precisionNote], ['fast', 1, null]);
    assert.deepEqual([fast2.precision, fast2.threads, fast2.precisionNote], ['fast', 2, null]);
    assert.ok(fast1.extraBytes > 0.2 * fast1.weightBytes, 'the int8 copies are held');

    // A 20-token prompt is above the int8 path's 4 rows: float32, the same numbers as exact.
    const prompt = [Array.from({ length: 20 }, (_, i) => (i * 53) % CONFIG.vocabSize)];
    const promptOnly = (m: GPT2Model) => {
      const cache = m.createCache(1);
      try {
        const logits = m.forward(prompt, cache, { allPositions: true });
        const values = Float32Array.from(logits.dataSync());
        logits.dispose();
        return values;
      } finally {
        cache.dispose();
      }
    };
    assert.ok(maxDifference(promptOnly(fast1), promptOnly(exact)) < 1e-5);

    const [e, f1, f2] = [exact, fast1, fast2].map((m) => run(m, prompt, 10));
    const decodedPart = (a: Float32Array) => a.subarray(20 * CONFIG.vocabSize);
    const error = relativeError(decodedPart(f1), decodedPart(e));
    // int8 with a scale per 32 weights and per 32 inputs: ~1 % of the logits' range on random weights,
    // and not nothing (the int8 path really ran).
    assert.ok(error < 0.03 && error > 1e-5, `relative error ${error}`);
    // The halves quantize in the same groups as the whole, so two threads add the same numbers.
    assert.ok(maxDifference(f1, f2) < 1e-4);
  } finally {
    for (const m of [exact, fast1, fast2]) m.dispose();
  }
});

test('fast precision on a width that is not a multiple of 32 keeps the two threads asked for, in exact', async () => {
  const model = createRandomModel({ ...CONFIG, nEmbd: 40, nHead: 4 }, 1, { threads: 2, precision: 'fast' });
  try {
    await model.threadsReady;
    assert.deepEqual([model.threads, model.precision, model.threadsNote], [2, 'exact', null]);
    assert.match(model.precisionNote ?? '', /multiple of 32/);
  } finally {
    model.dispose();
  }
});

test('fast precision on a width that is not a multiple of 32 falls back to exact and says why', async () => {
  const model = createRandomModel({ ...CONFIG, nEmbd: 40, nHead: 4 }, 1, { threads: 1, precision: 'fast' });
  try {
    await model.threadsReady;
    assert.equal(model.precision, 'exact');
    assert.match(model.precisionNote ?? '', /multiple of 32/);
    const cache = model.createCache(1);
    model.forward([[1, 2]], cache).dispose();
    cache.dispose();
  } finally {
    model.dispose();
  }
});

test('INKLING_THREADS chooses one or two threads and rejects nonsense', () => {
  assert.equal(wantedThreads({ INKLING_THREADS: '1' }), 1);
  assert.equal(wantedThreads({ INKLING_THREADS: '8' }), 2);
  assert.throws(() => wantedThreads({ INKLING_THREADS: 'two' }), /INKLING_THREADS must be a positive integer/);
});
