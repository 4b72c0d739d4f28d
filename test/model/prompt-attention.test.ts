// A prompt's attention split between two threads by heads gives the same bits as one thread alone, and a
// helper that fails on the way costs nothing but its heads done again here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { currentBackendMemory, type BackendMemory } from '../../worker/model/kernels/backend-memory.js';
import { f32Kernels } from '../../worker/model/kernels/f32/f32.js';
import { attendHeads, promptAttention, type AttentionHelper } from '../../worker/model/kernels/prompt-attention.js';
import { DecodeProducts } from '../../worker/model/parallel/decode-products.js';

await initBackend('wasm');

const shape = { batch: 2, nHead: 4, headDim: 16, capacity: 48, position: 5, time: 40, scale: 0.25 };
const C = shape.nHead * shape.headDim;

/** Attention of a fixed prompt (after 5 cached positions) with `helper`; its output. */
function attend(memory: BackendMemory, helper: AttentionHelper | null): Float32Array {
  const rows = shape.batch * shape.time;
  const qkv = tf.randomNormal([rows, 3 * C], 0, 1, 'float32', 1);
  const cacheShape = [shape.batch, shape.nHead, shape.capacity, shape.headDim];
  const [keys, values] = [2, 3].map((seed) => tf.randomNormal(cacheShape, 0, 1, 'float32', seed));
  const out = memory.alloc([rows, C]);
  try {
    promptAttention(memory, qkv, keys, values, shape, out, helper);
    return memory.view(out).slice();
  } finally {
    memory.free(out);
    tf.dispose([qkv, keys, values]);
  }
}

test('heads shared with a helper give the same bits as one thread; a failed helper’s heads are done again here', () => {
  const memory = currentBackendMemory()!;
  const heap = memory.heap!;
  const alone = attend(memory, null);
  const asked: number[] = [];
  const inline: AttentionHelper = {
    start(at, s, from) {
      asked.push(from);
      attendHeads(f32Kernels(heap.memory), heap.memory, at, s, from, s.nHead);
      return true;
    },
    finish: () => true,
  };
  assert.deepEqual(attend(memory, inline), alone);
  assert.deepEqual(asked, [2], 'the helper takes heads 2 and 3 of 4');

  // A helper that wrote nonsense into its heads' outputs, then failed.
  const failing: AttentionHelper = {
    start(at) {
      new Float32Array(heap.memory.buffer, at.out, shape.batch * shape.time * C).fill(Number.NaN);
      return true;
    },
    finish: () => false,
  };
  assert.deepEqual(attend(memory, failing), alone);
  const refusing: AttentionHelper = { start: () => false, finish: () => assert.fail('finish without a start') };
  assert.deepEqual(attend(memory, refusing), alone);
});

test('the partner thread attends its heads in place on the shared heap; with a copy of its weights it does not', async () => {
  const memory = currentBackendMemory()!;
  const alone = attend(memory, null);
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
        assert.deepEqual(attend(memory, helper), alone);
        assert.equal(products.lost, null);
      } finally {
        products.dispose();
      }
    }
  } finally {
    w.dispose();
  }
});
