/**
 * The decode step (worker/model/decode.ts) against the tf-op path, in one process, alternating, so that the
 * load of a shared machine hits both alike. GPT-2 small shape, random weights (the checkpoint that
 * bench/model-speed.ts writes to .bench/gpt2-small-random; run that once first).
 *
 *   node --import tsx bench/decode-ab.ts [--prompt 128] [--tokens 32] [--rounds 3] [--batch 1] [--typed 4]
 *
 * Also times the typing case: `typed` new tokens after a cached prompt (prefix reuse), in one forward pass.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../worker/backend.js';
import { decodePath } from '../worker/model/decode.js';
import { loadModel } from '../worker/model/load.js';

const { values } = parseArgs({
  options: {
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '1' },
    typed: { type: 'string', default: '4' },
  },
});
const [promptLength, tokens, rounds, batch, typed] = [values.prompt, values.tokens, values.rounds, values.batch, values.typed].map(Number);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await initBackend('wasm');
const model = await loadModel(path.join(repoRoot, '.bench', 'gpt2-small-random'));
const prompt = Array.from({ length: promptLength }, (_, i) => (i * 7919 + 11) % model.config.vocabSize);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Greedy decoding of `tokens` tokens after the prompt; ms per step (wall, CPU) and the tokens chosen. */
function decode(): { wall: number; cpu: number; ids: number[] } {
  const cache = model.createCache(batch);
  const first = model.forward(Array.from({ length: batch }, () => prompt), cache);
  let next = Array.from(tf.tidy(() => tf.argMax(first, -1)).dataSync());
  first.dispose();
  const ids: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < tokens; i++) {
    const logits = model.forward(next.map((id) => [id]), cache);
    const chosen = tf.tidy(() => tf.argMax(logits, -1));
    next = Array.from(chosen.dataSync());
    chosen.dispose();
    logits.dispose();
    ids.push(next[0]);
  }
  const wall = (performance.now() - t0) / tokens;
  const { user, system } = process.cpuUsage(cpu0);
  cache.dispose();
  return { wall, cpu: (user + system) / 1000 / tokens, ids };
}

/** ms (wall, CPU) of one forward pass over the last `typed` prompt tokens, the rest of the prompt cached. */
function extend(): { wall: number; cpu: number; ids: number[] } {
  const cache = model.createCache(batch);
  const rows = Array.from({ length: batch }, () => prompt);
  model.forward(rows.map((r) => r.slice(0, promptLength - typed)), cache).dispose();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const logits = model.forward(rows.map((r) => r.slice(promptLength - typed)), cache);
  const chosen = tf.tidy(() => tf.argMax(logits, -1));
  const ids = Array.from(chosen.dataSync());
  const wall = performance.now() - t0;
  const { user, system } = process.cpuUsage(cpu0);
  chosen.dispose();
  logits.dispose();
  cache.dispose();
  return { wall, cpu: (user + system) / 1000, ids };
}

console.log(`batch ${batch}, prompt ${promptLength}, ${tokens} tokens; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const results: Record<string, { wall: number; cpu: number }[]> = { 'tf ops': [], 'decode step': [] };
const extensions: Record<string, { wall: number; cpu: number }[]> = { 'tf ops': [], 'decode step': [] };
let continuations: string[] = [];
for (let round = 0; round < rounds; round++) {
  for (const [label, enabled] of [['tf ops', false], ['decode step', true]] as const) {
    decodePath.enabled = enabled;
    const r = decode();
    results[label].push(r);
    const e = extend();
    extensions[label].push(e);
    continuations.push(`${r.ids.join(',')} | after typing: ${e.ids.join(',')}`);
  }
}
decodePath.enabled = true;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [label, runs] of Object.entries(results)) {
  const wall = median(runs.map((r) => r.wall));
  const cpu = median(runs.map((r) => r.cpu));
  console.log(
    `${label.padEnd(12)} ${wall.toFixed(1)} ms/step wall (${((batch * 1000) / wall).toFixed(1)} tokens/s), ` +
      `${cpu.toFixed(1)} ms/step CPU (${((batch * 1000) / cpu).toFixed(1)} tokens/s)  runs wall: ${runs.map((r) => r.wall.toFixed(0)).join(', ')}`,
  );
}
for (const [label, runs] of Object.entries(extensions)) {
  const wall = median(runs.map((r) => r.wall));
  const cpu = median(runs.map((r) => r.cpu));
  console.log(`${label.padEnd(12)} ${typed} typed tokens after ${promptLength - typed} cached: ${wall.toFixed(1)} ms wall, ${cpu.toFixed(1)} ms CPU`);
}
continuations = [...new Set(continuations)];
console.log(`greedy continuations identical across paths and rounds: ${continuations.length === 1}`);
console.log(`memory: RSS ${mib(process.memoryUsage().rss)}, weights held ${mib(model.weightBytes)}`);
model.dispose();
