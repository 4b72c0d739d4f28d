/**
 * Feasibility spike for kernels of our own inside TensorFlow.js's WebAssembly memory (issue 7): a tiny
 * WebAssembly SIMD module, assembled below byte by byte (no compiler is installed here), imports the wasm
 * backend's `memory` and computes dot products of float32 vectors that live in tfjs tensors — no copies.
 * It is timed against the JavaScript loop the decode step's attention uses today.
 *
 *   node --import tsx bench/simd-dot-spike.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../worker/backend.js';
import { currentBackendMemory } from '../worker/model/kernels/backend-memory.js';

/** (func (param $a i32) (param $b i32) (param $bytes i32) (result f32)): Σ a[i]·b[i], 4 lanes at a time. */
function dotModuleBytes(): Uint8Array<ArrayBuffer> {
  const body = [
    0x02, 0x01, 0x7b, 0x01, 0x7f, // locals: $acc v128, $i i32
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0x04, 0x20, 0x02, 0x4f, 0x0d, 0x01, // if ($i >= $bytes) break
    0x20, 0x03, // $acc
    0x20, 0x00, 0x20, 0x04, 0x6a, 0xfd, 0x00, 0x02, 0x00, // v128.load($a + $i)
    0x20, 0x01, 0x20, 0x04, 0x6a, 0xfd, 0x00, 0x02, 0x00, // v128.load($b + $i)
    0xfd, 0xe6, 0x01, 0xfd, 0xe4, 0x01, 0x21, 0x03, // $acc = $acc + a·b  (f32x4.mul, f32x4.add)
    0x20, 0x04, 0x41, 0x10, 0x6a, 0x21, 0x04, // $i += 16
    0x0c, 0x00, 0x0b, 0x0b, // br loop; end; end
    0x20, 0x03, 0xfd, 0x1f, 0x00, // lane 0
    0x20, 0x03, 0xfd, 0x1f, 0x01, 0x92, // + lane 1
    0x20, 0x03, 0xfd, 0x1f, 0x02, 0x92, // + lane 2
    0x20, 0x03, 0xfd, 0x1f, 0x03, 0x92, // + lane 3
    0x0b,
  ];
  const section = (id: number, content: number[]) => [id, content.length, ...content];
  const name = (s: string) => [s.length, ...Buffer.from(s)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7d]),
    ...section(2, [0x01, ...name('env'), ...name('memory'), 0x02, 0x00, 0x01]),
    ...section(3, [0x01, 0x00]),
    ...section(7, [0x01, ...name('dot'), 0x00, 0x00]),
    ...section(10, [0x01, body.length, ...body]),
  ]);
}

function jsDot(a: Float32Array, i: number, b: Float32Array, j: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let k = 0; k < length; k += 4) {
    s0 += a[i + k] * b[j + k];
    s1 += a[i + k + 1] * b[j + k + 1];
    s2 += a[i + k + 2] * b[j + k + 2];
    s3 += a[i + k + 3] * b[j + k + 3];
  }
  return s0 + s1 + s2 + s3;
}

await initBackend('wasm');
const wasmModule = (tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory } } }).wasm;
const instance = await WebAssembly.instantiate(await WebAssembly.compile(dotModuleBytes()), { env: { memory: wasmModule.asm.memory } });
const simdDot = instance.exports.dot as (a: number, b: number, bytes: number) => number;

// Attention-shaped work: 12 heads × 200 positions × head_dim 64, as one layer of a decode step.
const D = 64;
const positions = 12 * 200;
const memory = currentBackendMemory()!;
const q = memory.alloc([D]);
const keys = memory.alloc([positions, D]);
memory.view(q).forEach((_, i, a) => (a[i] = Math.sin(i)));
memory.view(keys).forEach((_, i, a) => (a[i] = Math.cos(i * 0.37)));
const offset = (info: tf.TensorInfo) => memory.view(info).byteOffset;

const qv = memory.view(q);
const kv = memory.view(keys);
let maxDiff = 0;
for (let t = 0; t < positions; t++) {
  maxDiff = Math.max(maxDiff, Math.abs(simdDot(offset(q), offset(keys) + t * D * 4, D * 4) - jsDot(qv, 0, kv, t * D, D)));
}
console.log(`SIMD vs JS dot: max difference ${maxDiff.toExponential(2)} (float32 vs float64 sums)`);

function time(label: string, f: () => number): void {
  for (let round = 0; round < 3; round++) {
    const reps = 200;
    const cpu0 = process.cpuUsage();
    let sink = 0;
    for (let r = 0; r < reps; r++) sink += f();
    const { user, system } = process.cpuUsage(cpu0);
    const ns = ((user + system) * 1000) / (reps * positions * D);
    console.log(`${label.padEnd(24)} ${ns.toFixed(2)} ns per multiply-add (${sink.toFixed(0)})`);
  }
}
const qOffset = offset(q);
const kOffset = offset(keys);
time('JavaScript, 4 sums', () => {
  let s = 0;
  for (let t = 0; t < positions; t++) s += jsDot(qv, 0, kv, t * D, D);
  return s;
});
time('wasm SIMD f32x4', () => {
  let s = 0;
  for (let t = 0; t < positions; t++) s += simdDot(qOffset, kOffset + t * D * 4, D * 4);
  return s;
});
memory.free(q);
memory.free(keys);
