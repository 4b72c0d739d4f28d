import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { currentBackendMemory, readValues, type BackendMemory } from '../../worker/model/kernels/backend-memory.js';
import { activateInPlace, f32Kernels, f32ScratchFloats, layerNormInPlace } from '../../worker/model/kernels/f32/f32.js';
import { addLayerNormRows, geluTanhInPlace, layerNormRows } from '../../worker/model/kernels/host-ops.js';

await initBackend('wasm');
const memory = currentBackendMemory()!;

function filled(shape: number[], seed: number): tf.TensorInfo {
  const info = memory.alloc(shape);
  const v = memory.view(info);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.7391 + seed * 1.3) * (1 + (i % 7));
  return info;
}

/** Σ in float64: the reference the float32 kernels are held to. */
function reference(x: Float32Array, rows: number, k: number, w: Float32Array, n: number, transposed: boolean, bias: Float32Array | null): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let i = 0; i < k; i++) s += x[r * k + i] * (transposed ? w[j * k + i] : w[i * n + j]);
      out[r * n + j] = s;
    }
  }
  return out;
}

function relativeError(got: Float32Array, want: Float64Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}

// Rows 1 (decoding), 2–4 (several sequences), more (prompts; 4-row blocks and a ragged last block);
// widths off every vector and panel boundary.
const shapes = [
  [1, 768, 96], [1, 37, 45], [1, 5, 1], [2, 33, 19], [3, 64, 40], [3, 31, 19], [3, 2, 5], [4, 17, 8], [4, 96, 130],
  [5, 37, 45], [6, 8, 3], [9, 40, 24], [17, 129, 70], [128, 64, 64],
];

test('our products equal a float64 reference, with and without bias, as stored and transposed', () => {
  for (const [rows, k, n] of shapes) {
    for (const transposed of [false, true]) {
      for (const withBias of [false, true]) {
        const x = filled([1, rows, k], 1);
        const w = filled(transposed ? [1, n, k] : [1, k, n], 2);
        const bias = withBias ? filled([n], 3) : null;
        const want = reference(memory.view(x), rows, k, memory.view(w), n, transposed, bias ? memory.view(bias) : null);
        const y = memory.matMul(x, w, bias, transposed);
        assert.deepEqual(y.shape, [1, rows, n]);
        const err = relativeError(memory.view(y), want);
        assert.ok(err < 1e-5, `[${rows}, ${k}] · [${k}, ${n}]${transposed ? 'ᵀ' : ''}${withBias ? ' + bias' : ''}: relative error ${err}`);
        [x, w, y, ...(bias ? [bias] : [])].forEach((t) => memory.free(t));
      }
    }
  }
});

/** x·W + bias by the backend's own kernel (XNNPACK) and by ours, on the same numbers. */
function againstXnnpack(rows: number, k: number, n: number): { theirs: Float32Array; ours: Float32Array; want: Float64Array } {
  const values = (shape: number[], seed: number) => {
    const info = filled(shape, seed);
    const copy = memory.view(info).slice();
    memory.free(info);
    return copy;
  };
  const [xs, ws, bs] = [values([1, rows, k], 4), values([1, k, n], 5), values([n], 6)];
  const x = tf.tensor2d(xs, [rows, k]);
  const w = tf.tensor2d(ws, [k, n]);
  const b = tf.tensor1d(bs);
  const theirs = tf.fused.matMul({ a: x, b: w, bias: b });
  const [x3, w3] = [tf.reshape(x, [1, rows, k]), tf.reshape(w, [1, k, n])];
  const ours = memory.matMul(x3, w3, b, false);
  const result = { theirs: theirs.dataSync().slice() as Float32Array, ours: memory.view(ours).slice(), want: reference(xs, rows, k, ws, n, false, bs) };
  memory.free(ours);
  tf.dispose([x, w, b, theirs, x3, w3]);
  return result;
}

test('x·W + bias gives the same bits as the backend’s own kernel (XNNPACK) for up to 4 rows (decoding)', () => {
  for (const [rows, k, n] of [[1, 768, 256], [2, 97, 30], [3, 200, 72], [3, 31, 19], [4, 50, 12]]) {
    const { theirs, ours } = againstXnnpack(rows, k, n);
    assert.deepEqual(ours, theirs, `[${rows}, ${k}] · [${k}, ${n}]`);
  }
});

test('prompts use fused multiply–add here (relaxed SIMD switched on in Node), within float32 rounding of XNNPACK', () => {
  assert.equal(f32Kernels(memory.heap!.memory).fused, true, 'Node 20 takes f32-fma.wasm once its flag is set');
  // 40 columns: panels two and one at a time; 200: three passes of eight panels, then one.
  for (const [rows, k, n] of [[64, 96, 40], [37, 50, 200]]) {
    const { theirs, ours, want } = againstXnnpack(rows, k, n);
    const [oursErr, theirsErr] = [relativeError(ours, want), relativeError(theirs, want)];
    assert.ok(oursErr < 1e-6 && oursErr <= 2 * theirsErr + 1e-7, `[${rows}, ${k}] · [${k}, ${n}]: error ${oursErr}, XNNPACK's ${theirsErr}`);
    assert.ok(ours.some((v, i) => v !== theirs[i]), 'fused results round differently somewhere (else the fused module is not in use)');
  }
});

test('INKLING_FMA=off keeps prompts on multiply-and-add, with XNNPACK’s bits', () => {
  const script = fileURLToPath(new URL('./fixtures/f32-unfused.ts', import.meta.url));
  const output = execFileSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, INKLING_FMA: 'off' }, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(output.trim().split('\n').pop()!), { fused: false, sameBits: true });
});

test('the kernels take strides: a block of columns of a wider matrix, rows of wider inputs and outputs', () => {
  // 12 columns: one panel and 4 one at a time; 93: a pass of eight panels (64 columns), one of two, one of one, 5 left.
  for (const [rows, k, n, ldx, ldw, ldo] of [[3, 20, 12, 27, 40, 15], [3, 24, 93, 30, 110, 97]]) checkStrides(rows, k, n, ldx, ldw, ldo);
});

function checkStrides(rows: number, k: number, n: number, ldx: number, ldw: number, ldo: number): void {
  for (const r of [1, rows, 5, 6, 7, 9]) {
    const x = filled([r * ldx], 7);
    const w = filled([k * ldw], 8);
    const bias = filled([n], 9);
    const out = memory.alloc([r * ldo]);
    memory.view(out).fill(-1);
    const scratch = memory.alloc([f32ScratchFloats(k, n, r)]);
    const heap = memory.heap!;
    const colOffset = 9; // columns [9, 21) of w
    f32Kernels(heap.memory).gemmNN(heap.offset(x), r, k, ldx, heap.offset(w) + colOffset * 4, n, ldw, heap.offset(bias), heap.offset(out), ldo, heap.offset(scratch));
    const [xs, ws, bs, os] = [memory.view(x), memory.view(w), memory.view(bias), memory.view(out)];
    for (let row = 0; row < r; row++) {
      for (let j = 0; j < ldo; j++) {
        if (j >= n) {
          assert.equal(os[row * ldo + j], -1, 'nothing is written past n');
          continue;
        }
        let s = bs[j];
        for (let i = 0; i < k; i++) s += xs[row * ldx + i] * ws[i * ldw + colOffset + j];
        assert.ok(Math.abs(os[row * ldo + j] - s) < 1e-4 * (1 + Math.abs(s)), `row ${row} col ${j}: ${os[row * ldo + j]} vs ${s}`);
      }
    }
    [x, w, bias, out, scratch].forEach((t) => memory.free(t));
  }
}

test('a mismatched product is refused with the shapes in the message', () => {
  const x = memory.alloc([1, 2, 5]);
  const w = memory.alloc([1, 6, 3]);
  assert.throws(() => memory.matMul(x, w, null, false), /\[1,2,5\] · \[1,6,3\] do not fit/);
  memory.free(x);
  memory.free(w);
});

function heapBytes(m: BackendMemory): number {
  return m.heap!.memory.buffer.byteLength;
}

test('multiplying keeps no copy of the weights (XNNPACK would pack one as large as the matrix)', () => {
  const [k, n] = [1024, 4096]; // 16 MiB of weights
  const w = filled([1, k, n], 10);
  const x1 = filled([1, 1, k], 11);
  const x64 = filled([1, 64, k], 12);
  // The outputs and scratch are 1 MiB at most; a packed copy would be 16.
  const before = heapBytes(memory);
  for (let i = 0; i < 3; i++) {
    memory.free(memory.matMul(x1, w, null, false));
    memory.free(memory.matMul(x64, w, null, false));
  }
  const grown = heapBytes(memory) - before;
  assert.ok(grown < (k * n * 4) / 4, `the heap grew by ${grown} bytes`);
  [w, x1, x64].forEach((t) => memory.free(t));
});

test('matMulColumns multiplies a block of columns in place, as the whole product’s same columns', () => {
  assert.ok(memory.matMulColumns, 'the wasm backend multiplies columns in place');
  for (const rows of [1, 3, 7]) {
    const [k, n, from, count] = [24, 50, 13, 29];
    const x = filled([1, rows, k], 13);
    const w = filled([1, k, n], 14);
    const bias = filled([count], 15);
    const whole = memory.matMul(x, w, null, false);
    const part = memory.matMulColumns(x, w, from, count, bias);
    assert.deepEqual(part.shape, [1, rows, count]);
    const [all, got, b] = [memory.view(whole), memory.view(part), memory.view(bias)];
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < count; j++) {
        const want = all[r * n + from + j] + b[j];
        assert.ok(Math.abs(got[r * count + j] - want) < 1e-4 * (1 + Math.abs(want)), `rows ${rows}, [${r}, ${j}]`);
      }
    }
    assert.throws(() => memory.matMulColumns!(x, w, 40, 11, null), /columns 40\.\.50/);
    [x, w, bias, whole, part].forEach((t) => memory.free(t));
  }
});

test('the SIMD GELU matches Math.tanh’s to ~1e-6, at the extremes too; odd lengths take the JavaScript loop', () => {
  const values = [0, -0, 1e-30, -1e-30, 0.5, -0.5, 3, -3, 5.5, -5.5, 10, -10, 40, -40, 100, -100, 3e38, -3e38];
  for (let i = 0; i < 2000; i++) values.push((i - 1000) / 97);
  const whole = values.length - (values.length % 4);
  for (const n of [whole, whole - 1]) {
    const info = memory.alloc([n]);
    memory.view(info).set(values.slice(0, n));
    const want = Float32Array.from(values.slice(0, n));
    geluTanhInPlace(want);
    activateInPlace(memory, info, 'gelu_new');
    const got = memory.view(info);
    for (let i = 0; i < n; i++) {
      const tolerance = n % 4 === 0 ? 2e-6 * Math.abs(want[i]) + 1e-12 : 0;
      assert.ok(Math.abs(got[i] - want[i]) <= tolerance, `gelu(${values[i]}) = ${got[i]}, want ${want[i]} (n = ${n})`);
    }
    memory.free(info);
  }
});

test('the SIMD softmax of a row matches the JavaScript one, for any length and far-apart scores', () => {
  for (const n of [1, 2, 3, 4, 5, 17, 300]) {
    const scores = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? -200 : Math.sin(i * 1.7) * 12 + (i === n - 1 ? 30 : 0)));
    const info = memory.alloc([n]);
    memory.view(info).set(scores);
    const scale = n % 2 === 0 ? 1 : 0.37;
    f32Kernels(memory.heap!.memory).softmaxRow(memory.heap!.offset(info), n, scale);
    // The softmax in float64, the reference.
    const max = Math.max(...scores.map((s) => s * scale));
    const exps = scores.map((s) => Math.exp(s * scale - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    const want = exps.map((e) => e / sum);
    const got = memory.view(info);
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += got[i];
      // s − max is rounded to float32 here (float64 in JavaScript): ~3e-6 relative on weights of e^-35.
      assert.ok(Math.abs(got[i] - want[i]) <= 5e-6 * want[i] + 1e-12, `n = ${n}, [${i}]: ${got[i]} vs ${want[i]}`);
    }
    assert.ok(Math.abs(total - 1) < 1e-5, `n = ${n}: the weights sum to ${total}`);
    memory.free(info);
  }
});

test('the SIMD layer norm matches the JavaScript one, with the residual added in place, and odd widths take the loops', () => {
  for (const [rows, c] of [[1, 768], [3, 16], [5, 4], [2, 6]]) {
    for (const withBranch of [false, true]) {
      const x = filled([rows, c], 1);
      const branch = withBranch ? filled([rows, c], 2) : null;
      const gamma = filled([c], 3);
      const beta = filled([c], 4);
      const out = memory.alloc([rows, c]);
      const wantX = memory.view(x).slice();
      const want = new Float32Array(rows * c);
      if (branch) addLayerNormRows(wantX, memory.view(branch).slice(), memory.view(gamma), memory.view(beta), 1e-5, want);
      else layerNormRows(wantX, memory.view(gamma), memory.view(beta), 1e-5, want);
      layerNormInPlace(memory, x, branch, gamma, beta, 1e-5, out);
      const what = `[${rows}, ${c}]${withBranch ? ' + branch' : ''}`;
      assert.deepEqual(memory.view(x), wantX, `${what}: x holds the residual sum`);
      const got = memory.view(out);
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 2e-6 * (1 + Math.abs(want[i])), `${what}, [${i}]: ${got[i]} vs ${want[i]}`);
      [x, gamma, beta, out, ...(branch ? [branch] : [])].forEach((t) => memory.free(t));
    }
  }
});

test('add sums one array into another, the last n % 4 too', () => {
  for (const n of [1, 4, 7, 768]) {
    const [dst, src] = [filled([n], 1), filled([n], 2)];
    const want = memory.view(dst).map((v, i) => v + memory.view(src)[i]);
    f32Kernels(memory.heap!.memory).add(memory.heap!.offset(dst), memory.heap!.offset(src), n);
    assert.deepEqual(memory.view(dst), want, `n = ${n}`);
    memory.free(dst);
    memory.free(src);
  }
});

test('readValues copies a tensor into the array it is given when that is large enough (no array per token)', async () => {
  const t = tf.tensor1d([1, 2, 3]);
  const reuse = new Float32Array(5);
  const first = await readValues(t, reuse);
  assert.equal(first.buffer, reuse.buffer, 'read into the array given');
  assert.deepEqual([...first], [1, 2, 3]);
  const fresh = await readValues(t, new Float32Array(2));
  assert.deepEqual([...fresh], [1, 2, 3], 'too small: a new array');
  assert.equal((await readValues(t, null)).length, 3);
  t.dispose();
});
