// Attention split between two threads by heads gives the same bits as one thread alone, the prompt's way and
// the decode step's, and a helper that fails on the way costs nothing but its heads done again here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { currentBackendMemory, type BackendMemory } from '../../worker/model/kernels/backend-memory.js';
import { attendHeads, attendSplit, type AttentionHelper, type AttentionMode } from '../../worker/model/kernels/attention/heads.js';
import { DecodeProducts } from '../../worker/model/parallel/decode-products.js';

await initBackend('wasm');

const shapes = {
  // A prompt of 40 after 5 cached positions; a decode step of 2 rows at 800 positions (enough to be shared).
  prompt: { batch: 2, nHead: 4, headDim: 16, capacity: 48, position: 5, time: 40, scale: 0.25 },
  decode: { batch: 2, nHead: 4, headDim: 64, capacity: 820, position: 800, time: 1, scale: 0.125 },
};
const modes: AttentionMode[] = ['prompt', 'decode'];

/** Attention of fixed inputs with `helper`: its output and the cache it leaves. */
function attend(memory: BackendMemory, mode: AttentionMode, helper: AttentionHelper | null): Float32Array[] {
  const shape = shapes[mode];
  const C = shape.nHead * shape.headDim;
  const rows = shape.batch * shape.time;
  const qkv = tf.randomNormal([rows, 3 * C], 0, 1, 'float32', 1);
  const cacheShape = [shape.batch, shape.nHead, shape.capacity, shape.headDim];
  const [keys, values] = [2, 3].map((seed) => tf.randomNormal(cacheShape, 0, 1, 'float32', seed));
  const out = memory.alloc([rows, C]);
  try {
    attendSplit(memory, qkv, keys, values, shape, out, mode, helper);
    return [memory.view(out).slice(), keys.dataSync() as Float32Array, values.dataSync() as Float32Array];
  } finally {
    memory.free(out);
    tf.dispose([qkv, keys, values]);
  }
}

test('heads shared with a helper give the same bits as one thread; a failed helper’s heads are done again here', () => {
  const memory = currentBackendMemory()!;
  const heap = memory.heap!;
  for (const mode of modes) {
    const shape = shapes[mode];
    const alone = attend(memory, mode, null);
    const asked: number[] = [];
    const inline: AttentionHelper = {
      minSplitMacs: 400_000,
      start(at, s, from, m) {
        asked.push(from);
        attendHeads(heap.memory, at, s, from, s.nHead, m);
        return true;
      },
      finish: () => true,
    };
    assert.deepEqual(attend(memory, mode, inline), alone, `${mode}: shared`);
    assert.deepEqual(asked, [2], `${mode}: the helper takes heads 2 and 3 of 4`);

    // A helper that wrote nonsense over every output, then failed.
    const failing: AttentionHelper = {
      minSplitMacs: 400_000,
      start(at) {
        new Float32Array(heap.memory.buffer, at.out, shape.batch * shape.time * shape.nHead * shape.headDim).fill(Number.NaN);
        return true;
      },
      finish: () => false,
    };
    assert.deepEqual(attend(memory, mode, failing), alone, `${mode}: failed helper`);
    const refusing: AttentionHelper = { minSplitMacs: 400_000, start: () => false, finish: () => assert.fail('finish without a start') };
    assert.deepEqual(attend(memory, mode, refusing), alone, `${mode}: refusing helper`);
  }
});

test('a decode step below the helper’s threshold is not worth a hand-off; at or above it, it is', () => {
  const memory = currentBackendMemory()!;
  // 2 rows × 11 positions × 4 heads × 64 × 2 = 11,264 multiply–adds.
  const small = { ...shapes.decode, position: 10 };
  const C = small.nHead * small.headDim;
  const qkv = tf.randomNormal([small.batch, 3 * C], 0, 1, 'float32', 1);
  const [keys, values] = [2, 3].map((seed) => tf.randomNormal([small.batch, small.nHead, small.capacity, small.headDim], 0, 1, 'float32', seed));
  const out = memory.alloc([small.batch, C]);
  let asked = 0;
  const helper = (minSplitMacs: number): AttentionHelper => ({ minSplitMacs, start: () => (asked++, false), finish: () => true });
  attendSplit(memory, qkv, keys, values, small, out, 'decode', helper(11_265));
  assert.equal(asked, 0);
  attendSplit(memory, qkv, keys, values, small, out, 'decode', helper(11_264));
  assert.equal(asked, 1);
  memory.free(out);
  tf.dispose([qkv, keys, values]);
});

test('the partner thread attends its heads in place on the shared heap; with a copy of its weights it does not', async () => {
  const memory = currentBackendMemory()!;
  const w = tf.randomNormal([512, 640], 0, 0.05, 'float32', 1);
  try {
    for (const inPlace of [true, false]) {
      const products = await DecodeProducts.start(memory, [{ weight: w, transposed: false, hasBias: false }], [], { threads: 2, precision: 'exact', inPlace });
      try {
        const helper = products.attentionHelper();
        if (!inPlace) {
          assert.equal(helper, null, 'an arena partner cannot see qkv or the cache');
          continue;
        }
        assert.ok(helper, 'in place, the partner helps');
        assert.equal(helper.minSplitMacs, 400_000, 'exact: from ~260 positions of GPT-2 small');
        for (const mode of modes) assert.deepEqual(attend(memory, mode, helper), attend(memory, mode, null), mode);
        assert.equal(products.lost, null);
      } finally {
        products.dispose();
      }
    }
  } finally {
    w.dispose();
  }
});

test('with int8 products the partner takes heads from far fewer positions', async () => {
  const memory = currentBackendMemory()!;
  const w = tf.randomNormal([512, 640], 0, 0.05, 'float32', 1);
  const products = await DecodeProducts.start(memory, [{ weight: w, transposed: false, hasBias: false }], [], { threads: 2, precision: 'fast', inPlace: true });
  try {
    assert.equal(products.precision, 'fast');
    assert.equal(products.attentionHelper()?.minSplitMacs, 48_000, 'fast: from ~32 positions of GPT-2 small');
  } finally {
    products.dispose();
    w.dispose();
  }
});
