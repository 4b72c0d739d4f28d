/**
 * Benchmark (not a test): tokens per second of LoRA training steps on a GPT-2-small-shaped model (random
 * weights) on the wasm backend. Usage: node --import tsx test/train/lora-speed.bench.ts [tokens=128] [steps=3]
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRandomModel } from '../../worker/model/random.js';
import { buildDataset } from '../../worker/train/data.js';
import { datasetOptions, resolveTrainingOptions } from '../../worker/train/options.js';
import { paramMapOf } from '../../worker/train/params.js';
import { runTraining } from '../../worker/train/trainer.js';
import { byteTokenizer, useWasm } from './helpers.js';

const blockSize = Number(process.argv[2] ?? 128);
const steps = Number(process.argv[3] ?? 3);
await useWasm();
const model = createRandomModel({}, 1);
const params = paramMapOf(model.params);
const options = resolveTrainingOptions(
  { method: 'lora', blockSize, batchSize: 1, gradAccumSteps: 1, maxSteps: steps + 1, heldOutFraction: 0, earlyStopPatience: null },
  model.config,
);
// Any ids will do for timing; bytes are valid GPT-2 ids.
const text = 'It was a bright cold day in April, and the clocks were striking thirteen. '.repeat(200);
const dataset = buildDataset([{ name: 'bench', text }], byteTokenizer(), datasetOptions(options));
const times: number[] = [];
let last = performance.now();
const result = await runTraining({
  config: model.config,
  params,
  dataset,
  options,
  onEvent: (e) => {
    if (e.type !== 'progress') return;
    const now = performance.now();
    times.push(now - last);
    last = now;
    console.log(`step ${e.step}: ${times[times.length - 1].toFixed(0)} ms, loss ${e.trainLoss.toFixed(3)}, tensors ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MiB`);
  },
});
const warm = times.slice(1);
const median = warm.sort((a, b) => a - b)[Math.floor(warm.length / 2)];
console.log(`LoRA (rank 8, c_attn) step, batch 1 × ${blockSize} tokens, GPT-2 small shape, wasm: median ${median.toFixed(0)} ms → ${((blockSize * 1000) / median).toFixed(1)} tokens/s (first step, with setup and weight packing, ${times[0].toFixed(0)} ms)`);
result.weights.dispose();
model.dispose();
