/**
 * Speed of the GPT-2 forward pass on a GPT-2-small-shaped model with random weights (no download needed).
 *
 *   node --import tsx bench/model-speed.ts [--backend wasm] [--prompt 128] [--new 64] [--profile]
 *
 * Writes the random checkpoint once to .bench/gpt2-small-random/ and loads it like a real model, then
 * measures a 128-token prefill, greedy decode with the KV cache at batch 1 and batch 3, and memory.
 * Single-threaded wasm is the reference setting (tfjs turns wasm threads off in Node).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../worker/backend.js';
import { loadModel } from '../worker/model/load.js';
import { ensureGpt2SmallRandom } from './random-checkpoint.js';
import type { KvCache, LanguageModel } from '../worker/model/types.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    prompt: { type: 'string', default: '128' },
    new: { type: 'string', default: '64' },
    profile: { type: 'boolean', default: false },
  },
});
const promptLength = Number(values.prompt);
const newTokens = Number(values.new);

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function argmaxRows(logits: tf.Tensor): number[] {
  const ids = tf.tidy(() => tf.argMax(logits, -1));
  const out = Array.from(ids.dataSync());
  ids.dispose();
  return out;
}

/** Wall-clock and CPU milliseconds of `f` (CPU time shows the cost when other processes share the cores). */
function measure(f: () => void): { wall: number; cpu: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wall = performance.now() - t0;
  const { user, system } = process.cpuUsage(cpu0);
  return { wall, cpu: (user + system) / 1000 };
}

/** Greedy decode of `steps` tokens from `next`. */
function decode(model: LanguageModel, cache: KvCache, next: number[], steps: number): { wall: number; cpu: number } {
  return measure(() => {
    for (let i = 0; i < steps; i++) {
      const logits = model.forward(next.map((id) => [id]), cache);
      next = argmaxRows(logits);
      logits.dispose();
    }
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const backend = await initBackend(values.backend);
console.log(`backend: ${backend.name} (${backend.reason})`);
const modelDir = await ensureGpt2SmallRandom();
let t = performance.now();
const model = await loadModel(modelDir);
console.log(`load (including a first token that prepares every weight): ${(performance.now() - t).toFixed(0)} ms, weights ${mib(model.weightBytes)}, RSS ${mib(process.memoryUsage().rss)}`);
console.log(`threads: ${model.threads}${model.threadsNote ? ` (${model.threadsNote})` : ''}, precision: ${model.precision}${model.precisionNote ? ` (${model.precisionNote})` : ''}, extra ${mib(model.extraBytes)}`);

let seed = 7;
const prompt = Array.from({ length: promptLength }, () => (seed = (seed * 48271) % 2147483647) % model.config.vocabSize);

// loadModel has already run one token (so XNNPACK has packed every weight); this warms the JIT for both paths.
{
  const cache = model.createCache(1);
  t = performance.now();
  model.forward([prompt.slice(0, 40)], cache).dispose();
  model.forward([[prompt[40]]], cache).dispose();
  cache.dispose();
  console.log(`warm-up: ${(performance.now() - t).toFixed(0)} ms`);
}

type Timing = { wall: number; cpu: number };
const prefills: Timing[] = [];
const decodes: Timing[] = [];
const decodes3: Timing[] = [];
for (let run = 0; run < 3; run++) {
  const cache = model.createCache(1);
  let first: number[] = [];
  prefills.push(
    measure(() => {
      const logits = model.forward([prompt], cache);
      first = argmaxRows(logits);
      logits.dispose();
    }),
  );
  const expanded = cache.expand(3);
  decodes.push(decode(model, cache, first, newTokens));
  decodes3.push(decode(model, expanded, [first[0], (first[0] + 1) % 50257, (first[0] + 2) % 50257], newTokens));
  cache.dispose();
  expanded.dispose();
}
const med = (ts: Timing[]) => ({ wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)) });
const p = med(prefills);
const d = med(decodes);
const d3 = med(decodes3);
const rate = (tokens: number, ms: number) => ((tokens / ms) * 1000).toFixed(1);
console.log('(wall clock; CPU time in brackets — they differ when other processes compete for the cores)');
console.log(`prefill ${promptLength} tokens: ${p.wall.toFixed(0)} ms [${p.cpu.toFixed(0)} ms]  runs: ${prefills.map((x) => x.wall.toFixed(0)).join(', ')}`);
console.log(`decode batch 1, ${newTokens} tokens: ${rate(newTokens, d.wall)} tokens/s [${rate(newTokens, d.cpu)}], ${(d.wall / newTokens).toFixed(1)} ms/token  runs: ${decodes.map((x) => rate(newTokens, x.wall)).join(', ')}`);
console.log(`decode batch 3: ${rate(3 * newTokens, d3.wall)} tokens/s [${rate(3 * newTokens, d3.cpu)}], ${(d3.wall / newTokens).toFixed(1)} ms/step`);
const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length;
console.log(`memory: RSS ${mib(process.memoryUsage().rss)}${heap ? `, wasm heap ${mib(heap)}` : ''}, tensors ${tf.memory().numTensors}`);

if (values.profile) {
  const cache = model.createCache(1);
  model.forward([prompt], cache).dispose();
  const info = await tf.profile(() => {
    model.forward([[prompt[0]]], cache).dispose();
  });
  const byKernel = new Map<string, { ms: number; count: number }>();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, count: 0 };
    entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    entry.count++;
    byKernel.set(k.name, entry);
  }
  console.log(`one decode step at ${promptLength} positions: ${info.kernels.length} kernels`);
  for (const [name, { ms, count }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`  ${name.padEnd(16)} ${String(count).padStart(4)}× ${ms.toFixed(2)} ms`);
  }
  cache.dispose();
}
model.dispose();
