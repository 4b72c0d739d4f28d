/**
 * Feasibility spike for decoding on both cores (issue 7): a second TensorFlow.js wasm instance in a
 * worker_thread holds the right half of every weight matrix's output columns; per matrix product the main
 * thread hands it the input vector through a SharedArrayBuffer, both halves run at once, and the worker's
 * half comes back the same way (Atomics.wait/notify as the barrier).
 *
 *   node --import tsx bench/two-core-spike.ts [--tokens 16]
 *
 * Measures, on GPT-2 small's decode-shaped products (12 × [768→2304, 768→768, 768→3072, 3072→768] plus the
 * 768→50257 output layer, random weights): one thread doing whole products vs two threads doing halves, and
 * the bare hand-off cost (a round trip with no work). Wall and CPU time; the machine is shared, so compare
 * the two rows of one run.
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../worker/backend.js';
import { currentBackendMemory, type BackendMemory } from '../worker/model/kernels/backend-memory.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '16' } } });
const tokens = Number(values.tokens);

const C = 768;
const shapes: Array<[number, number]> = [];
for (let layer = 0; layer < 12; layer++) shapes.push([C, 3 * C], [C, C], [C, 4 * C], [4 * C, C]);
shapes.push([C, 50257]);
const half = (n: number) => Math.ceil(n / 2);

// The worker is plain JavaScript run with `eval`, so it needs no TypeScript loader in its thread.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-wasm');
(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  const backend = tf.backend();
  const kernel = tf.getKernel('_FusedMatMul', 'wasm');
  const attrs = { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 };
  const { shapes, control, io, outOffset } = workerData;
  const flags = new Int32Array(control);
  const shared = new Float32Array(io);
  const weights = shapes.map(([k, n], i) => ({ w: tf.randomNormal([1, k, n], 0, 0.02, 'float32', 1000 + i), b: tf.zeros([n]), k, n }));
  const run = (i) => {
    const { w, b, k } = weights[i];
    const x = backend.makeOutput([1, 1, k], 'float32');
    backend.typedArrayFromHeap(x).set(shared.subarray(0, k));
    const y = kernel.kernelFunc({ inputs: { a: x, b: w, bias: b }, backend, attrs });
    shared.set(backend.typedArrayFromHeap(y), outOffset);
    backend.disposeData(x.dataId);
    backend.disposeData(y.dataId);
  };
  weights.forEach((_, i) => run(i)); // XNNPACK packs each matrix on first use
  parentPort.postMessage('ready');
  let seq = 0;
  for (;;) {
    Atomics.wait(flags, 0, seq);
    seq = Atomics.load(flags, 0);
    if (seq < 0) break;
    const i = flags[1];
    if (i >= 0) run(i);
    Atomics.store(flags, 2, seq);
    Atomics.notify(flags, 2);
  }
  parentPort.postMessage('done');
})();
`;

interface Matrix {
  w: tf.Tensor3D;
  b: tf.Tensor1D;
  k: number;
}

function makeMatrices(columns: (n: number) => number, seed: number): Matrix[] {
  return shapes.map(([k, n], i) => ({
    w: tf.randomNormal([1, k, columns(n)], 0, 0.02, 'float32', seed + i) as tf.Tensor3D,
    b: tf.zeros([columns(n)]) as tf.Tensor1D,
    k,
  }));
}

function product(memory: BackendMemory, m: Matrix, input: Float32Array): Float32Array {
  const x = memory.alloc([1, 1, m.k]);
  memory.view(x).set(input.subarray(0, m.k));
  const y = memory.matMul(x, m.w, m.b, false);
  const out = memory.view(y).slice();
  memory.free(x);
  memory.free(y);
  return out;
}

function measure(label: string, f: () => void): void {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let t = 0; t < tokens; t++) f();
  const wall = (performance.now() - t0) / tokens;
  const { user, system } = process.cpuUsage(cpu0);
  const cpu = (user + system) / 1000 / tokens;
  console.log(`${label.padEnd(44)} ${wall.toFixed(1).padStart(6)} ms wall/token  ${cpu.toFixed(1).padStart(6)} ms CPU/token (both threads)`);
}

await initBackend('wasm');
const memory = currentBackendMemory()!;
const input = Float32Array.from({ length: 4 * C }, (_, i) => Math.sin(i));

const whole = makeMatrices((n) => n, 0);
const left = makeMatrices(half, 500);
for (const m of [...whole, ...left]) product(memory, m, input); // pack

const control = new SharedArrayBuffer(3 * 4);
const io = new SharedArrayBuffer((4 * C + half(50257)) * 4);
const outOffset = 4 * C;
const flags = new Int32Array(control);
const shared = new Float32Array(io);
const worker = new Worker(workerSource, { eval: true, workerData: { shapes: shapes.map(([k, n]) => [k, n - half(n)]), control, io, outOffset } });
await new Promise<void>((resolve, reject) => {
  worker.once('message', () => resolve());
  worker.once('error', reject);
});

let seq = 0;
/** Starts matrix `i` (or an empty round trip, -1) on the worker; returns a function that waits for it. */
function handOff(i: number): () => void {
  if (i >= 0) shared.set(input.subarray(0, shapes[i][0]), 0);
  flags[1] = i;
  const mine = ++seq;
  Atomics.store(flags, 0, mine);
  Atomics.notify(flags, 0);
  return () => {
    for (let seen = Atomics.load(flags, 2); seen !== mine; seen = Atomics.load(flags, 2)) Atomics.wait(flags, 2, seen);
  };
}

console.log(`load average: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (let round = 0; round < 2; round++) {
  measure('one thread, whole products', () => whole.forEach((m) => product(memory, m, input)));
  measure('two threads, half the columns each', () =>
    left.forEach((m, i) => {
      const wait = handOff(i);
      product(memory, m, input);
      wait();
    }),
  );
  measure(`hand-off only (${shapes.length} empty round trips)`, () => shapes.forEach(() => handOff(-1)()));
}

Atomics.store(flags, 0, -1);
Atomics.notify(flags, 0);
await new Promise((resolve) => worker.once('message', resolve));
await worker.terminate();
