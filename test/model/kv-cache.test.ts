// Batches and the KV cache's expand/select/truncate must give exactly what separate runs give; no leaks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import type { GPT2KvCache } from '../../worker/model/kv-cache.js';
import { createRandomModel } from '../../worker/model/random.js';
import type { KvCache } from '../../worker/model/types.js';
import { maxAbsDiff, useWasm } from './helpers.js';

const SAME = 1e-5;
let model: GPT2Model;
let paramCount: number;

before(async () => {
  await useWasm();
  model = createRandomModel({ vocabSize: 101, nPositions: 24, nEmbd: 16, nLayer: 2, nHead: 2 }, 42);
  paramCount = tf.memory().numTensors;
});
after(() => model.dispose());

/** Runs `steps` (each a [batch][time] token array) through one cache; returns each step's logits. */
function run(cache: KvCache, ...steps: number[][][]): Float32Array[] {
  return steps.map((tokens) => {
    const logits = model.forward(tokens, cache, { allPositions: true });
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    return data;
  });
}

/** One sequence from scratch; logits of all its positions. */
function fresh(...steps: number[][]): Float32Array[] {
  const cache = model.createCache(1);
  const out = run(cache, ...steps.map((s) => [s]));
  cache.dispose();
  return out;
}

function rows(data: Float32Array, batch: number): Float32Array[] {
  const size = data.length / batch;
  return Array.from({ length: batch }, (_, b) => data.subarray(b * size, (b + 1) * size));
}

const promptA = [5, 17, 3, 99, 42];
const promptB = [7, 7, 0, 100, 64];

test('a batch of two prompts equals two separate runs', () => {
  const cache = model.createCache(2);
  const [prefill, step] = run(cache, [promptA, promptB], [[11], [12]]);
  const [a, b] = rows(prefill, 2);
  const [stepA, stepB] = rows(step, 2);
  const [aliceA, aliceStep] = fresh(promptA, [11]);
  const [bobB, bobStep] = fresh(promptB, [12]);
  assert.ok(maxAbsDiff(a, aliceA) < SAME && maxAbsDiff(b, bobB) < SAME);
  assert.ok(maxAbsDiff(stepA, aliceStep) < SAME && maxAbsDiff(stepB, bobStep) < SAME);
  // The two rows really differ, so the comparison above can fail.
  assert.ok(maxAbsDiff(stepA, stepB) > 1e-3);
  cache.dispose();
});

test('expand, then two different tokens, equals two separate runs; the original cache is untouched', () => {
  const cache = model.createCache(1);
  run(cache, [promptA]);
  const twice = cache.expand(2);
  assert.equal(twice.batch, 2);
  assert.equal(twice.length, promptA.length);
  const [both] = run(twice, [[1], [2]]);
  const [one, two] = rows(both, 2);
  assert.ok(maxAbsDiff(one, fresh(promptA, [1])[1]) < SAME);
  assert.ok(maxAbsDiff(two, fresh(promptA, [2])[1]) < SAME);
  const [original] = run(cache, [[3]]);
  assert.ok(maxAbsDiff(original, fresh(promptA, [3])[1]) < SAME);
  cache.dispose();
  twice.dispose();
});

test('expand repeats each sequence k times in a row', () => {
  const cache = model.createCache(2);
  run(cache, [promptA, promptB]);
  const expanded = cache.expand(3);
  const [next] = run(expanded, [[9], [9], [9], [9], [9], [9]]);
  const out = rows(next, 6);
  const a = fresh(promptA, [9])[1];
  const b = fresh(promptB, [9])[1];
  [a, a, a, b, b, b].forEach((expected, i) => assert.ok(maxAbsDiff(out[i], expected) < SAME, `row ${i}`));
  cache.dispose();
  expanded.dispose();
});

test('select keeps the given rows in the given order', () => {
  const cache = model.createCache(2);
  run(cache, [promptA, promptB]);
  const swapped = cache.select([1, 0]);
  const onlyB = cache.select([1]);
  const [s] = run(swapped, [[4], [4]]);
  const [o] = run(onlyB, [[4]]);
  const [first, second] = rows(s, 2);
  assert.ok(maxAbsDiff(first, fresh(promptB, [4])[1]) < SAME);
  assert.ok(maxAbsDiff(second, fresh(promptA, [4])[1]) < SAME);
  assert.ok(maxAbsDiff(o, fresh(promptB, [4])[1]) < SAME);
  assert.throws(() => cache.select([2]), RangeError);
  assert.throws(() => cache.select([]), RangeError);
  for (const c of [cache, swapped, onlyB]) c.dispose();
});

test('truncate forgets the positions from n on (prefix reuse after an edit)', () => {
  const cache = model.createCache(1);
  run(cache, [promptA]);
  cache.truncate(3);
  assert.equal(cache.length, 3);
  const [after] = run(cache, [[8, 9]]);
  assert.ok(maxAbsDiff(after, fresh([...promptA.slice(0, 3), 8, 9])[0].subarray(3 * 101)) < SAME);
  cache.truncate(10); // nothing to forget
  assert.equal(cache.length, 5);
  cache.truncate(0);
  assert.equal(cache.length, 0);
  const [again] = run(cache, [promptB]);
  assert.ok(maxAbsDiff(again, fresh(promptB)[0]) < SAME);
  assert.throws(() => cache.truncate(-1), RangeError);
  cache.dispose();
});

test('an empty cache can be expanded and selected', () => {
  const empty = model.createCache(1);
  const three = empty.expand(3);
  assert.equal(three.batch, 3);
  assert.equal(three.length, 0);
  const [out] = run(three, [promptA, promptA, promptB]);
  const [, a, b] = rows(out, 3);
  assert.ok(maxAbsDiff(a, fresh(promptA)[0]) < SAME);
  assert.ok(maxAbsDiff(b, fresh(promptB)[0]) < SAME);
  empty.dispose();
  three.dispose();
});

test('logits have the documented shapes', () => {
  const cache = model.createCache(2);
  const all = model.forward([promptA, promptB], cache, { allPositions: true });
  const last = model.forward([[1], [2]], cache);
  assert.deepEqual(all.shape, [2, 5, 101]);
  assert.deepEqual(last.shape, [2, 101]);
  assert.equal(last.dtype, 'float32');
  all.dispose();
  last.dispose();
  cache.dispose();
});

test('growing past n_positions is a RangeError and leaves the cache as it was', () => {
  const cache = model.createCache(1);
  run(cache, [Array.from({ length: 20 }, (_, i) => i)]);
  assert.throws(() => model.forward([[1, 2, 3, 4, 5]], cache), RangeError);
  assert.equal(cache.length, 20);
  run(cache, [[1, 2, 3, 4]]);
  assert.equal(cache.length, 24);
  assert.throws(() => model.forward([[1]], cache), RangeError);
  cache.dispose();
});

test('a cache made for the positions expected does not grow up to them (no copy), gives the same logits, and grows past them', () => {
  const roomy = createRandomModel({ vocabSize: 101, nPositions: 128, nEmbd: 16, nLayer: 2, nHead: 2 }, 3);
  const hinted = roomy.createCache(1, 70);
  const plain = roomy.createCache(1);
  const step = (cache: GPT2KvCache, tokens: number[]) => {
    const logits = roomy.forward([tokens], cache);
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    return data;
  };
  step(hinted, promptA);
  step(plain, promptA);
  assert.equal(hinted.capacity, 70);
  const buffers = hinted.buffers();
  for (let t = hinted.length; t < 70; t++) {
    const token = (t * 13) % 101;
    assert.ok(maxAbsDiff(step(hinted, [token]), step(plain, [token])) < SAME);
  }
  assert.equal(hinted.buffers(), buffers, 'the same buffers all along');
  step(hinted, [1]);
  assert.equal(hinted.capacity, 128, 'past them it doubles, up to n_positions');
  assert.throws(() => roomy.createCache(1, -1), /positions must be a non-negative integer/);
  hinted.dispose();
  plain.dispose();
  roomy.dispose();
});

test('new buffers are made in the backend zero-filled, even over memory that held other numbers', () => {
  const shape = [1, 2, 40, 8];
  // Freed memory of the same size, full of non-zeros, that the new buffers may be placed on.
  for (let i = 0; i < 4; i++) tf.fill(shape, 7).dispose();
  const cache = model.createCache(1, 40);
  cache.reserve(1, 128, { nLayer: 2, nHead: 2, headDim: 8 });
  const before = tf.memory().numBytes;
  for (const { key, value } of cache.buffers()!) {
    assert.deepEqual(key.shape, shape);
    assert.ok((key.dataSync() as Float32Array).every((x) => x === 0), 'keys start at zero');
    assert.ok((value.dataSync() as Float32Array).every((x) => x === 0), 'values start at zero');
  }
  assert.equal(tf.memory().numBytes, before);
  cache.dispose();
});

test('bad input is refused with a clear error', () => {
  const cache = model.createCache(2);
  assert.throws(() => model.forward([[1, 2], [3]], cache), /row 1 has 1 tokens/);
  assert.throws(() => model.forward([[1], [101]], cache), /outside the vocabulary/);
  assert.throws(() => model.forward([[1], [-1]], cache), RangeError);
  assert.throws(() => model.forward([[1]], cache), /batch 2/);
  assert.throws(() => model.forward([[], []], cache), /no tokens/);
  assert.throws(() => model.createCache(0), RangeError);
  const other = createRandomModel({ vocabSize: 101, nPositions: 24, nEmbd: 16, nLayer: 1, nHead: 2 }, 1);
  const otherCache = other.createCache(1);
  other.forward([[1]], otherCache).dispose();
  assert.throws(() => model.forward([[1]], otherCache), /cache holds 1 layers, the model has 2/);
  otherCache.dispose();
  other.dispose();
  cache.dispose();
  assert.throws(() => model.forward([[1], [2]], cache), /after dispose/);
});

test('no tensors leak: many decode steps hold as many tensors as a few; disposal frees all', () => {
  const cache = model.createCache(1);
  const step = () => model.forward([[7]], cache).dispose();
  run(cache, [promptA]);
  step();
  step();
  const afterFew = tf.memory().numTensors;
  for (let i = 0; i < 12; i++) step();
  assert.equal(tf.memory().numTensors, afterFew);

  const expanded = cache.expand(2);
  const selected = expanded.select([1]);
  selected.truncate(2);
  model.forward([[1]], selected).dispose();
  expanded.dispose();
  selected.dispose();
  assert.equal(tf.memory().numTensors, afterFew);
  cache.dispose();
  assert.equal(tf.memory().numTensors, paramCount);

  const failing = model.createCache(1);
  assert.throws(() => model.forward([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]], failing));
  failing.dispose();
  assert.equal(tf.memory().numTensors, paramCount);
});

test('expand copies the valid positions in backend memory: tf.gather’s values, zeros after them, the room asked for', () => {
  const long = createRandomModel({ vocabSize: 101, nPositions: 128, nEmbd: 16, nLayer: 2, nHead: 2 }, 42);
  const cache = long.createCache(2) as GPT2KvCache;
  long.forward([promptA, promptB], cache).dispose();
  const used = cache.length;
  assert.equal(cache.capacity, 32);
  const source = cache.buffers()!;
  const expanded = cache.expand(2, 100) as GPT2KvCache;
  assert.equal(expanded.capacity, 100, 'room for the positions asked for, so decoding up to them copies nothing');
  assert.equal(expanded.length, used);
  const rowsOf = [0, 0, 1, 1];
  expanded.buffers()!.forEach((layer, i) => {
    for (const part of ['key', 'value'] as const) {
      const got = layer[part].arraySync() as number[][][][];
      const want = tf.tidy(() => tf.gather(source[i][part], tf.tensor1d(rowsOf, 'int32')).arraySync()) as number[][][][];
      got.forEach((row, b) =>
        row.forEach((head, h) => {
          assert.deepEqual(head.slice(0, used), want[b][h].slice(0, used), `layer ${i} ${part} row ${b} head ${h}`);
          assert.ok(head.slice(used).every((position) => position.every((v) => v === 0)), 'zeros after the valid positions');
        }),
      );
    }
  });
  // Its positions carry on as a separate run's would.
  const tail = Array.from({ length: 60 }, (_, t) => (t * 13) % 101);
  const next = long.forward([tail, tail, tail, tail], expanded);
  const alone = long.createCache(1);
  long.forward([promptB], alone).dispose();
  const single = long.forward([tail], alone);
  assert.ok(maxAbsDiff((next.dataSync() as Float32Array).subarray(3 * 101), single.dataSync() as Float32Array) < SAME);
  assert.equal(expanded.capacity, 100, 'no copy to grow');
  for (const t of [next, single]) t.dispose();
  for (const c of [cache, expanded, alone]) c.dispose();
  long.dispose();
});
