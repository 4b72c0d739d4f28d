/**
 * Our float32 kernels (worker/model/kernels/f32) against the wasm backend's own matrix kernel (XNNPACK) on
 * GPT-2 small's shapes: one row (decoding), 3 and 4 rows (several sequences), 128 rows (a prompt), and the
 * tied output layer (transposed). Same run, alternating, ms per product; "maxdiff" is the largest difference
 * relative to the largest value (0 for x·W: both add in the same order).
 *
 *   node --import tsx bench/f32-kernels.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../worker/backend.js';
import { currentBackendMemory } from '../worker/model/kernels/backend-memory.js';
import { f32Kernels, f32ScratchFloats } from '../worker/model/kernels/f32/f32.js';

await initBackend('wasm');
const memory = currentBackendMemory()!;
const heap = memory.heap!;
const kernels = f32Kernels(heap.memory);
// The backend's own fused kernel, called as BackendMemory did before our kernels (INKLING_MATMUL=xnnpack).
const backend = tf.findBackend('wasm')!;
const fused = tf.getKernel('_FusedMatMul', 'wasm')!;
const xnnpack = (a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | null, transposeB: boolean) =>
  fused.kernelFunc({
    inputs: bias ? { a, b, bias } : { a, b },
    backend,
    attrs: { transposeA: false, transposeB, activation: 'linear', leakyreluAlpha: 0 },
  }) as tf.TensorInfo;

function fill(info: tf.TensorInfo, seed: number): void {
  const v = memory.view(info);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.731 + seed) * 0.05;
}
function bench(label: string, R: number, k: number, n: number, nt: boolean): void {
  const x = memory.alloc([1, R, k]);
  const w = memory.alloc(nt ? [1, n, k] : [1, k, n]);
  const bias = memory.alloc([n]);
  fill(x, 1); fill(w, 2); fill(bias, 3);
  const out = memory.alloc([1, R, n]);
  const panel = memory.alloc([f32ScratchFloats(k, n, R)]);
  const useBias = !nt;
  const ref = xnnpack(x, w, useBias ? bias : null, nt);
  const ours = () =>
    nt
      ? kernels.gemmNT(heap.offset(x), R, k, k, heap.offset(w), n, k, 0, heap.offset(out), n, heap.offset(panel))
      : kernels.gemmNN(heap.offset(x), R, k, k, heap.offset(w), n, n, useBias ? heap.offset(bias) : 0, heap.offset(out), n, heap.offset(panel));
  ours();
  const a = memory.view(ref), b = memory.view(out);
  let maxd = 0, maxa = 0;
  for (let i = 0; i < a.length; i++) { maxd = Math.max(maxd, Math.abs(a[i] - b[i])); maxa = Math.max(maxa, Math.abs(a[i])); }
  memory.free(ref);
  const reps = Math.max(3, Math.round(2e8 / (R * k * n)));
  const time = (f: () => void) => { const t0 = performance.now(); for (let i = 0; i < reps; i++) f(); return (performance.now() - t0) / reps; };
  const results: string[] = [];
  for (let round = 0; round < 3; round++) {
    const tx = time(() => memory.free(xnnpack(x, w, useBias ? bias : null, nt)));
    const to = time(ours);
    results.push(`xnn ${tx.toFixed(3)} ours ${to.toFixed(3)}`);
  }
  const gflop = (2 * R * k * n) / 1e9;
  console.log(`${label.padEnd(22)} R=${R} ${k}x${n}${nt ? ' nt' : ''}  maxdiff ${(maxd / maxa).toExponential(1)}  ${results.join(' | ')} ms  (${gflop.toFixed(3)} GFLOP)`);
  [x, w, bias, out, panel].forEach((t) => memory.free(t));
}
for (const R of [1, 3, 4]) {
  bench('c_attn', R, 768, 2304, false);
  bench('c_fc', R, 768, 3072, false);
  bench('mlp c_proj', R, 3072, 768, false);
  bench('lm head', R, 768, 50257, true);
}
bench('c_attn prompt', 128, 768, 2304, false);
bench('c_fc prompt', 128, 768, 3072, false);
bench('mlp proj prompt', 128, 3072, 768, false);
bench('odd', 5, 37, 45, false);
bench('odd1', 1, 37, 45, false);
bench('odd3', 3, 37, 45, false);
bench('odd nt', 5, 37, 45, true);
