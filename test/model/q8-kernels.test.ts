// The int8 / float32 matrix-vector kernels (worker/model/kernels/q8): the committed binary is its source,
// the kernels compute what a plain JavaScript version of the same math computes, and int8 stays close to
// float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { assembleWat, kernelBuilds, kernelSources, wasmPathOf } from '../../scripts/build-kernels.mjs';
import {
  KernelArena,
  Q8_GROUP,
  dequantizeQ8,
  loadQ8Kernels,
  quantizeWeightsQ8,
  roundHalfEven,
  type Q8Kernels,
  type Q8Matrix,
} from '../../worker/model/kernels/q8/q8.js';
import { Q8Runner } from '../../worker/model/kernels/q8/runner.js';

/** Deterministic standard-normal-ish numbers (sum of uniforms), so failures reproduce. */
function randomNormal(length: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = (uniform() + uniform() + uniform() + uniform() - 2) * Math.sqrt(3);
  return out;
}

/** [outDim, inDim] → [inDim, outDim] */
function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
}

/** The same quantization as quantize_x, in JavaScript: one vector of n values. */
function quantizeReference(x: Float32Array): { q: Int8Array; s: Float32Array } {
  const m = quantizeWeightsQ8(x, x.length, 1, 'out-in');
  return { q: m.data, s: m.scales };
}

/** Σ_g ws·xs·(integer dot) (+ bias), in float64, and the sum of the terms' magnitudes (for tolerances). */
function q8Reference(w: Q8Matrix, xq: Int8Array, xs: Float32Array, bias: Float32Array | null, r: number, j: number) {
  const groups = w.inDim / Q8_GROUP;
  let sum = bias ? bias[r] : 0;
  let magnitude = Math.abs(sum);
  for (let g = 0; g < groups; g++) {
    let dot = 0;
    for (let k = 0; k < Q8_GROUP; k++) dot += w.data[r * w.inDim + g * Q8_GROUP + k] * xq[j * w.inDim + g * Q8_GROUP + k];
    const term = w.scales[r * groups + g] * xs[j * groups + g] * dot;
    sum += term;
    magnitude += Math.abs(term);
  }
  return { sum, magnitude };
}

function setup(bytes = 1 << 20): { kernels: Q8Kernels; arena: KernelArena } {
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) });
  return { kernels: loadQ8Kernels(memory), arena: new KernelArena(memory) };
}

/** One product's inputs in an arena: float32 and int8 weights, nX input vectors (quantized), a bias. */
function placeProduct(arena: KernelArena, kernels: Q8Kernels, inDim: number, outDim: number, nX: number, seed: number) {
  const weight = randomNormal(inDim * outDim, seed); // [outDim, inDim]
  const q = quantizeWeightsQ8(transpose(weight, outDim, inDim), inDim, outDim, 'in-out');
  const x = randomNormal(inDim * nX, seed + 1);
  const bias = randomNormal(outDim, seed + 2);
  const placed = {
    weight, q, x, bias,
    wF32: arena.putF32(weight),
    wQ8: arena.putQ8(q),
    biasPtr: arena.putF32(bias),
    input: arena.allocInput(inDim, nX),
    yPtr: arena.allocF32(outDim * nX),
  };
  arena.f32(placed.input.xPtr, inDim * nX).set(x);
  // The vectors are contiguous and inDim is a multiple of 32, so one call quantizes all of them.
  kernels.quantizeX(placed.input.xPtr, inDim * nX, placed.input.xqPtr, placed.input.xsPtr);
  return placed;
}

test('every committed kernel binary is exactly what its .wat source assembles to', async () => {
  const sources = kernelSources();
  assert.ok(sources.some((s) => s.endsWith('q8.wat')), `q8.wat not found among ${sources.join(', ')}`);
  const builds = kernelBuilds();
  assert.ok(builds.some((b) => b.shared && b.wasmPath === wasmPathOf(b.source, true)), 'the f32 kernels also have a shared-memory build');
  for (const { source, shared, wasmPath } of builds) {
    const assembled = await assembleWat(source, shared);
    const committed = readFileSync(wasmPath);
    assert.ok(Buffer.from(assembled).equals(committed), `${wasmPath} is stale: run node scripts/build-kernels.mjs`);
  }
});

test('quantizeX matches the JavaScript quantization bit for bit, ties to even, zero groups to zero', () => {
  const { kernels, arena } = setup();
  const n = 6 * Q8_GROUP;
  const x = randomNormal(n, 7);
  // Group 1: max 127 makes the scale 1 and the multiplier exactly 1, so ±2.5 and 3.5 are exact ties.
  x.set([127, 2.5, -2.5, 3.5, -3.5, 0.5, -0.5, 1.5], Q8_GROUP);
  x.fill(0, 3 * Q8_GROUP, 4 * Q8_GROUP);
  // Group 4 is tiny but still quantizes; group 5 is denormal, where 127 / max would overflow: zero.
  x.fill(0, 4 * Q8_GROUP, 6 * Q8_GROUP);
  x[4 * Q8_GROUP + 3] = -1e-30;
  x[4 * Q8_GROUP + 5] = 3e-31;
  x[5 * Q8_GROUP + 1] = 1e-40;
  x[5 * Q8_GROUP + 2] = -5e-41;
  const xPtr = arena.putF32(x);
  const xqPtr = arena.allocI8(n);
  const xsPtr = arena.allocF32(n / Q8_GROUP);
  assert.equal(kernels.quantizeX(xPtr, n, xqPtr, xsPtr), false, 'finite values are not reported');
  const xq = arena.i8(xqPtr, n);
  const xs = arena.f32(xsPtr, n / Q8_GROUP);

  const reference = quantizeReference(x);
  assert.deepEqual(Array.from(xq), Array.from(reference.q));
  assert.deepEqual(Array.from(xs), Array.from(reference.s));
  assert.deepEqual(Array.from(xq.subarray(Q8_GROUP, Q8_GROUP + 8)), [127, 2, -2, 4, -4, 0, 0, 2]);
  assert.equal(xs[3], 0);
  assert.ok(xq.subarray(3 * Q8_GROUP, 4 * Q8_GROUP).every((v) => v === 0));
  assert.deepEqual([xq[4 * Q8_GROUP + 3], xq[4 * Q8_GROUP + 5]], [-127, 38]);
  assert.equal(xs[5], 0);
  assert.ok(xq.subarray(5 * Q8_GROUP).every((v) => v === 0));

  // Round trip: each value comes back within half a step (plus float32 rounding of the step itself).
  for (let i = 0; i < n; i++) {
    const scale = xs[Math.floor(i / Q8_GROUP)];
    const error = Math.abs(xq[i] * scale - x[i]);
    const allowed = scale > 0 ? scale * 0.5 * (1 + 1e-6) : 2 ** -120;
    assert.ok(error <= allowed, `value ${i}: ${x[i]} came back as ${xq[i] * scale}`);
    assert.ok(Math.abs(xq[i]) <= 127);
  }
  assert.ok(xq.some((v) => Math.abs(v) === 127), 'the largest value of a group maps to ±127');
});

test('roundHalfEven rounds like f32x4.nearest', () => {
  assert.deepEqual([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4, -2.6].map(roundHalfEven), [-4, -2, -2, -0, 0, 2, 2, 4, 2, -3]);
});

test('quantizeWeightsQ8 gives the same matrix from both layouts, within half a step of the weights', () => {
  const inDim = 64;
  const outDim = 5;
  const weight = randomNormal(inDim * outDim, 3); // [outDim, inDim]
  const fromOutIn = quantizeWeightsQ8(weight, inDim, outDim, 'out-in');
  const fromInOut = quantizeWeightsQ8(transpose(weight, outDim, inDim), inDim, outDim, 'in-out');
  assert.deepEqual(fromInOut.data, fromOutIn.data);
  assert.deepEqual(fromInOut.scales, fromOutIn.scales);
  assert.equal(fromOutIn.scales.length, outDim * (inDim / Q8_GROUP));
  const back = dequantizeQ8(fromOutIn);
  for (let i = 0; i < weight.length; i++) {
    const scale = fromOutIn.scales[Math.floor(i / Q8_GROUP)];
    assert.ok(Math.abs(back[i] - weight[i]) <= scale * 0.5 * (1 + 1e-6), `weight ${i}`);
  }
  assert.throws(() => quantizeWeightsQ8(weight, 40, 8, 'out-in'), /multiple of 32/);
  assert.throws(() => quantizeWeightsQ8(weight, inDim, outDim + 1, 'out-in'), /expected inDim × outDim/);
  const broken = weight.slice();
  broken[70] = Number.NaN;
  assert.throws(() => quantizeWeightsQ8(broken, inDim, outDim, 'out-in'), /non-finite weight in output row 1/);
});

for (const nX of [1, 2, 3, 4]) {
  for (const withBias of [false, true]) {
    test(`q8Matvec, ${nX} vector(s), ${withBias ? 'with' : 'no'} bias: same quantized math as JavaScript; close to float32`, () => {
      const { kernels, arena } = setup();
      const inDim = 160; // 5 groups: an odd count
      const outDim = 37;
      const p = placeProduct(arena, kernels, inDim, outDim, nX, 100 * nX + (withBias ? 1 : 0));
      const biasPtr = withBias ? p.biasPtr : 0;
      kernels.q8Matvec(p.wQ8.wPtr, p.wQ8.wsPtr, p.input.xqPtr, p.input.xsPtr, p.yPtr, biasPtr, inDim, 0, outDim, nX, outDim);
      const y = arena.f32(p.yPtr, outDim * nX).slice();
      const xq = arena.i8(p.input.xqPtr, inDim * nX).slice();
      const xs = arena.f32(p.input.xsPtr, (inDim / Q8_GROUP) * nX).slice();
      const bias = withBias ? p.bias : null;

      let squaredError = 0;
      let squaredExact = 0;
      for (let j = 0; j < nX; j++) {
        for (let r = 0; r < outDim; r++) {
          const got = y[j * outDim + r];
          // Same math, float32 sums in another order: a few float32 roundings of the terms' magnitude.
          const { sum, magnitude } = q8Reference(p.q, xq, xs, bias, r, j);
          assert.ok(Math.abs(got - sum) <= 1e-6 * magnitude + 1e-30, `y[${j}][${r}] = ${got}, reference ${sum}`);

          // Against the float32 product: each weight is off by at most half its step sw/2, each input value by
          // xs/2, so |Δy| ≤ Σ_i |x_i|·sw/2 + |w_i|·xs/2 + sw·xs/4 — a bound from the rounding alone.
          let exact = bias ? bias[r] : 0;
          let bound = 0;
          for (let i = 0; i < inDim; i++) {
            const w = p.weight[r * inDim + i];
            const x = p.x[j * inDim + i];
            const sw = p.q.scales[r * (inDim / Q8_GROUP) + Math.floor(i / Q8_GROUP)];
            const sx = xs[j * (inDim / Q8_GROUP) + Math.floor(i / Q8_GROUP)];
            exact += w * x;
            bound += (Math.abs(x) * sw) / 2 + (Math.abs(w) * sx) / 2 + (sw * sx) / 4;
          }
          assert.ok(Math.abs(got - exact) <= bound * 1.001, `y[${j}][${r}] = ${got}, float32 ${exact}, bound ${bound}`);
          squaredError += (got - exact) ** 2;
          squaredExact += exact ** 2;
        }
      }
      // The worst-case bound is loose; typical error of 8-bit rounding on both sides is well under 2%.
      const relative = Math.sqrt(squaredError / squaredExact);
      assert.ok(relative < 0.02, `relative RMS error ${relative}`);
    });
  }
}

test('q8Matvec over row ranges split as threads would gives exactly the single call, and writes only its rows', () => {
  const { kernels, arena } = setup();
  const inDim = 96;
  const outDim = 37;
  const nX = 3;
  const p = placeProduct(arena, kernels, inDim, outDim, nX, 11);
  const run = (ranges: Array<[number, number]>) => {
    arena.f32(p.yPtr, outDim * nX).fill(Number.NaN);
    for (const [start, end] of ranges) {
      kernels.q8Matvec(p.wQ8.wPtr, p.wQ8.wsPtr, p.input.xqPtr, p.input.xsPtr, p.yPtr, p.biasPtr, inDim, start, end, nX, outDim);
    }
    return arena.f32(p.yPtr, outDim * nX).slice();
  };
  const whole = run([[0, outDim]]);
  assert.ok(whole.every(Number.isFinite));
  assert.deepEqual(run([[0, 5], [5, 6], [6, 23], [23, 23], [23, 37]]), whole);
  assert.deepEqual(run([[23, 37], [0, 23]]), whole);
  const part = run([[5, 6]]);
  for (let j = 0; j < nX; j++) {
    for (let r = 0; r < outDim; r++) {
      if (r === 5) assert.equal(part[j * outDim + r], whole[j * outDim + r]);
      else assert.ok(Number.isNaN(part[j * outDim + r]), `row ${r} of vector ${j} was written`);
    }
  }
});

test('f32Matvec matches a float64 product, for row ranges, 1..4 vectors, with and without bias', () => {
  const { kernels, arena } = setup();
  const inDim = 96;
  const outDim = 21;
  for (const nX of [1, 2, 3, 4]) {
    const p = placeProduct(arena, kernels, inDim, outDim, nX, 50 + nX);
    for (const withBias of [false, true]) {
      arena.f32(p.yPtr, outDim * nX).fill(Number.NaN);
      const biasPtr = withBias ? p.biasPtr : 0;
      kernels.f32Matvec(p.wF32, p.yPtr, p.input.xPtr, biasPtr, inDim, 0, 7, nX, outDim);
      kernels.f32Matvec(p.wF32, p.yPtr, p.input.xPtr, biasPtr, inDim, 7, outDim, nX, outDim);
      const y = arena.f32(p.yPtr, outDim * nX);
      for (let j = 0; j < nX; j++) {
        for (let r = 0; r < outDim; r++) {
          let exact = withBias ? p.bias[r] : 0;
          let magnitude = Math.abs(exact);
          for (let i = 0; i < inDim; i++) {
            exact += p.weight[r * inDim + i] * p.x[j * inDim + i];
            magnitude += Math.abs(p.weight[r * inDim + i] * p.x[j * inDim + i]);
          }
          assert.ok(Math.abs(y[j * outDim + r] - exact) <= 1e-6 * magnitude, `nX ${nX}, y[${j}][${r}] = ${y[j * outDim + r]}, float64 ${exact}`);
        }
      }
    }
  }
});

test('the kernel wrappers reject what the kernels would silently get wrong', () => {
  const { kernels } = setup();
  assert.throws(() => kernels.q8Matvec(16, 16, 16, 16, 16, 0, 96, 0, 4, 5, 4), /nX must be 1..4/);
  assert.throws(() => kernels.q8Matvec(16, 16, 16, 16, 16, 0, 100, 0, 4, 1, 4), /multiple of 32/);
  assert.throws(() => kernels.f32Matvec(16, 16, 16, 0, 96, 3, 5, 1, 4), /row range \[3, 5\) is not within \[0, 4\)/);
  assert.throws(() => kernels.f32Matvec(16, 16, 16, 0, 96, 3, 2, 1, 4), /row range/);
  assert.throws(() => kernels.quantizeX(16, 33, 16, 16), /multiple of 32/);
});

test('KernelArena hands out 16-byte-aligned, non-zero, non-overlapping blocks and grows the memory', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const arena = new KernelArena(memory);
  const a = arena.alloc(3);
  const b = arena.allocF32(5);
  assert.ok(a > 0, 'pointer 0 means "no bias" to the kernels');
  assert.equal(a % 16, 0);
  assert.equal(b % 16, 0);
  assert.ok(b >= a + 3);
  arena.f32(b, 5).set([1, 2, 3, 4, 5]);
  const big = arena.alloc(200_000);
  assert.ok(memory.buffer.byteLength >= big + 200_000, 'memory grew');
  assert.deepEqual(Array.from(arena.f32(b, 5)), [1, 2, 3, 4, 5], 'contents survive growth');
  assert.equal(arena.usedBytes % 16, 0);
  const limited = new KernelArena(new WebAssembly.Memory({ initial: 1, maximum: 1 }));
  assert.throws(() => limited.alloc(70_000), /cannot grow the memory/);
});

test('Q8Runner quantizes with the kernels (out-in by quantize_x, in-out by quantize_cols) to exactly quantizeWeightsQ8’s matrix', () => {
  const runner = new Q8Runner();
  // Several of the runner's blocks of rows and a short last one; columns not a multiple of 4 (the JavaScript
  // path); a zero group, values below 2^-120, big values and exact halves to round.
  const hostile = (n: number, seed: number) =>
    randomNormal(n, seed).map((v, i) => (i % 1000 < 32 ? 0 : i % 777 === 0 ? v * 1e3 : i % 555 === 0 ? v * 1e-37 : i % 97 === 0 ? Math.round(v * 8) / 8 : v));
  // out-in [outDim, inDim]: several of the runner's blocks of rows and a short last one.
  for (const [outDim, inDim] of [[300, 96], [5, 64]]) {
    const w = hostile(outDim * inDim, outDim);
    assert.deepEqual(runner.matrix(runner.place(w, inDim, outDim, 'out-in')), quantizeWeightsQ8(w, inDim, outDim, 'out-in'), `out-in ${outDim}×${inDim}`);
  }
  // in-out [inDim, outDim]: columns in fours, and 130 (not a multiple of 4: the JavaScript path).
  for (const [inDim, outDim] of [[96, 300], [32, 4], [64, 130]]) {
    const w = hostile(inDim * outDim, outDim + 1);
    assert.deepEqual(runner.matrix(runner.place(w, inDim, outDim, 'in-out')), quantizeWeightsQ8(w, inDim, outDim, 'in-out'), `in-out ${inDim}×${outDim}`);
  }
  for (const bad of [NaN, Infinity, -Infinity]) {
    const w = randomNormal(96 * 64, 3);
    w[5 * 64 + 3] = bad;
    assert.throws(() => runner.place(w, 64, 96, 'out-in'), /non-finite weight in output row 5/);
    assert.throws(() => runner.place(w, 96, 64, 'in-out'), /non-finite weight in output row 3/);
  }
});
