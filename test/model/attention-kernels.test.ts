import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { currentBackendMemory } from '../../worker/model/kernels/backend-memory.js';
import { attentionKernelsFit } from '../../worker/model/kernels/attention/attention.js';
import { attendSplit } from '../../worker/model/kernels/attention/heads.js';
import { decodeAttention, type DecodeAttentionShape } from '../../worker/model/kernels/host-ops.js';

await initBackend('wasm');

test('the SIMD attention computes what the JavaScript loops compute, and writes the same cache', () => {
  const memory = currentBackendMemory()!;
  assert.ok(memory.heap, 'the wasm backend exposes its memory');
  const shape: DecodeAttentionShape = { batch: 2, nHead: 3, headDim: 16, capacity: 12, position: 5, time: 3, scale: 0.25 };
  const C = shape.nHead * shape.headDim;
  const cacheShape = [shape.batch, shape.nHead, shape.capacity, shape.headDim];
  const qkvValues = tf.randomNormal([shape.batch * shape.time, 3 * C], 0, 1, 'float32', 1);
  const pastValues = tf.randomNormal(cacheShape, 0, 1, 'float32', 2);
  const run = (simd: boolean) => {
    const qkv = tf.clone(qkvValues);
    const keys = tf.clone(pastValues);
    const values = tf.mul(pastValues, -0.5);
    const out = memory.alloc([shape.batch * shape.time, C]);
    if (simd) attendSplit(memory, qkv, keys, values, shape, out, 'decode', null);
    else decodeAttention(memory.view(qkv), memory.view(keys), memory.view(values), shape, memory.view(out), new Float64Array(64));
    const result = { out: memory.view(out).slice(), keys: keys.dataSync().slice(), values: values.dataSync().slice() };
    memory.free(out);
    tf.dispose([qkv, keys, values]);
    return result;
  };
  const [js, simd] = [run(false), run(true)];
  assert.deepEqual(simd.keys, js.keys);
  assert.deepEqual(simd.values, js.values);
  let max = 0;
  for (let i = 0; i < js.out.length; i++) max = Math.max(max, Math.abs(js.out[i] - simd.out[i]));
  assert.ok(max < 1e-5, `max difference ${max}`);
  assert.ok(js.out.some((v) => v !== 0));
  tf.dispose([qkvValues, pastValues]);
});

test('head widths the kernels take', () => {
  assert.equal(attentionKernelsFit(64), true);
  assert.equal(attentionKernelsFit(8), true);
  assert.equal(attentionKernelsFit(20), false);
  assert.equal(attentionKernelsFit(0), false);
});
