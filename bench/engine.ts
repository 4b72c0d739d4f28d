/**
 * `npm run bench`: the engine's speed and memory on a GPT-2-small-shaped model with random weights, the
 * tokenizer's speed on corpus prose, and keystroke-to-suggestion latency through the real worker protocol.
 * Human-readable lines first; the last line is one JSON object for scripts.
 *
 *   npm run bench [-- --backend wasm --quick --skip-training]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, loadModel, gpt2Tokenizer, generate, type LanguageModel, type GenerationResult } from '../worker/index.js';
import { ensureGpt2SmallRandom, repoRoot } from './random-checkpoint.js';
import { benchKeystroke } from './keystroke.js';
import { benchTraining, trainBenchFields } from './train.js';

const { values } = parseArgs({
  options: { backend: { type: 'string', default: 'wasm' }, quick: { type: 'boolean', default: false }, 'skip-training': { type: 'boolean', default: false } },
});
const PROMPT_TOKENS = 128;
const NEW_TOKENS = 64;
const sharedDir = path.resolve(repoRoot, '..', 'shared');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const log = (line: string) => console.log(line);

function tokenizerSpeed(): number {
  const text = gunzipSync(readFileSync(path.join(sharedDir, 'corpus', 'austen-emma.txt.gz'))).toString('utf8');
  const tokenizer = gpt2Tokenizer();
  tokenizer.encode(text.slice(0, 10_000)); // build tables; the cache is cleared below so the timed run is cold
  (tokenizer as { clearCache?: () => void }).clearCache?.();
  const t0 = performance.now();
  tokenizer.encode(text);
  return Buffer.byteLength(text) / 1e6 / ((performance.now() - t0) / 1000);
}

function prefillMs(model: LanguageModel, prompt: number[]): number {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const cache = model.createCache(1);
    const t0 = performance.now();
    const logits = model.forward([prompt], cache);
    logits.dataSync();
    runs.push(performance.now() - t0);
    logits.dispose();
    cache.dispose();
  }
  return median(runs);
}

async function decode(model: LanguageModel, prompt: number[], k: number): Promise<GenerationResult> {
  const tokenizer = gpt2Tokenizer();
  return generate(model, tokenizer, prompt, {
    maxNewTokens: NEW_TOKENS,
    minNewTokens: NEW_TOKENS,
    eosTokenId: null,
    numReturnSequences: k,
    doSample: k > 1,
    seed: 1,
  });
}

async function main(): Promise<void> {
  const backend = await initBackend(values.backend);
  log(`backend: ${backend.name} (${backend.reason})`);

  const tokenizerMBps = tokenizerSpeed();
  log(`tokenizer: ${tokenizerMBps.toFixed(1)} MB/s encoding Emma (cold cache)`);

  const dir = await ensureGpt2SmallRandom();
  const model = await loadModel(dir);
  const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => (i * 7919 + 13) % 50000);
  await decode(model, prompt.slice(0, 8), 1); // warm-up: first-call costs of every kernel

  const prefill = prefillMs(model, prompt);
  log(`prefill of ${PROMPT_TOKENS} tokens: ${prefill.toFixed(0)} ms`);
  const single = await decode(model, prompt, 1);
  log(`decode: ${single.timings.decodeTokensPerS.toFixed(1)} tokens/s (batch 1, ${NEW_TOKENS} new tokens)`);
  const triple = await decode(model, prompt, 3);
  const costRatio = triple.timings.decodeMs / single.timings.decodeMs;
  log(`num_return_sequences=3: ${triple.timings.decodeTokensPerS.toFixed(1)} tokens/s in all; ${costRatio.toFixed(2)}× the time of one sequence`);
  const tensorsAfter = tf.memory().numTensors;
  // Before the keystroke benchmark's worker loads its own copies of the models into this process.
  const engineRssMiB = process.resourceUsage().maxRSS / 1024;
  log(`peak RSS with the engine alone: ${engineRssMiB.toFixed(0)} MiB (weights: ${(model.weightBytes / 2 ** 20).toFixed(0)} MiB)`);
  model.dispose();

  const keystroke = await benchKeystroke({
    modelDir: path.join(sharedDir, 'fixtures', 'tiny-gpt2'),
    backend: values.backend,
    keystrokes: values.quick ? 6 : 16,
  });
  log(`keystroke → 6-token suggestion, tiny model: p50 ${keystroke.withReuse.medianMs.toFixed(0)} ms with prefix reuse, ${keystroke.withoutReuse.medianMs.toFixed(0)} ms without`);
  const keystrokeSmall = await benchKeystroke({ modelDir: dir, backend: values.backend, keystrokes: values.quick ? 3 : 8 });
  log(`keystroke → 6-token suggestion, GPT-2 small shape: p50 ${keystrokeSmall.withReuse.medianMs.toFixed(0)} ms with prefix reuse, ${keystrokeSmall.withoutReuse.medianMs.toFixed(0)} ms without`);

  // Training last: its cases run in child processes (wasm's heap never shrinks) and take minutes.
  const training = values['skip-training'] ? null : await benchTraining({ backend: values.backend, steps: values.quick ? 1 : 2, log });

  const result = {
    bench: 'engine',
    backend: backend.name,
    model: 'gpt2-small-shape-random-f32',
    prefill_ms: round(prefill),
    decode_tokens_per_s: round(single.timings.decodeTokensPerS, 2),
    decode_nrs3_tokens_per_s: round(triple.timings.decodeTokensPerS, 2),
    decode_nrs3_cost_ratio: round(costRatio, 2),
    tokenizer_mb_per_s: round(tokenizerMBps, 2),
    peak_rss_mib: round(engineRssMiB),
    weight_mib: round(model.weightBytes / 2 ** 20),
    tensors_after_decode: tensorsAfter,
    keystroke_tiny_p50_ms: { reuse: round(keystroke.withReuse.medianMs), no_reuse: round(keystroke.withoutReuse.medianMs) },
    keystroke_gpt2_small_p50_ms: { reuse: round(keystrokeSmall.withReuse.medianMs), no_reuse: round(keystrokeSmall.withoutReuse.medianMs) },
    ...(training ? trainBenchFields(training) : {}),
    // This machine is shared: the load average says how much the numbers above were disturbed.
    load_average_1m: round(loadavg()[0]!, 2),
  };
  console.log(JSON.stringify(result));
}

await main();
