/**
 * Training speed and memory: tokens per second of LoRA and of full fine-tuning, batch 4 × 128 tokens, on a
 * GPT-2-small-shaped model (random weights) and on a small GPT-2 (4 layers, 256 wide, GPT-2 vocabulary,
 * ~16M parameters — for scale, PyTorch on the 2-core dev machine trains that at ~500 tokens/s, 2 threads).
 *
 * Each case runs in its own process, with the real trainer (`runTraining`), for one warm-up step (kernel
 * set-up, weight packing) and then `steps` timed steps; tokens/s is over the timed steps only. Random weights train as fast as real
 * ones, so no download is needed. Full fine-tuning of GPT-2 small needs weights + gradients + two AdamW
 * moments (~2 GB) plus activations inside wasm's 4 GiB heap; if that fails the case reports null and why.
 *
 *   node --import tsx bench/train.ts [--backend wasm] [--steps 2] [--skip-gpt2-small]
 *   node --import tsx bench/train.ts --case gpt2-small:lora [--micro-batch 1|2|4]   (one case, JSON only)
 *
 * Human-readable lines first; the last line is one JSON object.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../worker/backend.js';
import { loadModel } from '../worker/model/load.js';
import { createRandomModel } from '../worker/model/random.js';
import type { GPT2Config } from '../worker/model/types.js';
import { gpt2Tokenizer } from '../worker/tokenizer/index.js';
import { buildDataset, type Dataset } from '../worker/train/data.js';
import { datasetOptions, resolveTrainingOptions, type TrainingMethod } from '../worker/train/options.js';
import { paramMapOf } from '../worker/train/params.js';
import { runTraining } from '../worker/train/trainer.js';
import { ensureGpt2SmallRandom, repoRoot } from './random-checkpoint.js';

export interface TrainBenchOptions {
  /** Backend choice, as `initBackend` takes it (default wasm); the cases run in child processes with it. */
  backend?: string;
  /** Timed optimizer steps per case, after one warm-up step (default 2). */
  steps?: number;
  /** Only the small model (GPT-2 small steps take tens of seconds each on wasm). */
  skipGpt2Small?: boolean;
  log?: (line: string) => void;
}

export interface TrainCaseResult {
  model: 'gpt2-small' | 'small-16m';
  method: TrainingMethod;
  /** Blocks per forward pass; an optimizer step is always 4 blocks (micro-batches accumulated). */
  microBatch: number;
  parameters: number;
  trainableParameters: number;
  /** Training tokens per second over the timed steps; null when the case could not run. */
  tokensPerSecond: number | null;
  /** Milliseconds of each timed step. */
  stepMs: number[];
  warmupStepMs: number | null;
  /** Largest tf.memory().numBytes seen after a step (tensors alive between steps). */
  peakTensorMiB: number | null;
  /** Largest resident set size sampled after a step of this case. */
  peakSampledRssMiB: number | null;
  /** Peak RSS of the process that ran this case (and only it). */
  processPeakRssMiB: number;
  error: string | null;
}

export interface TrainBenchResult {
  backend: string;
  batchSize: number;
  blockSize: number;
  steps: number;
  cases: TrainCaseResult[];
  /** The largest peak RSS of any case. */
  peakRssMiB: number;
  loadAverage1m: number;
}

const BATCH = 4;
const BLOCK = 128;
export const SMALL_16M: Partial<GPT2Config> = { nLayer: 4, nEmbd: 256, nHead: 4, nPositions: 1024 };

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** Real prose for the batches (Emma, as the tokenizer benchmark uses): enough tokens for every step, never repeated. */
function benchText(tokensNeeded: number): string {
  const file = path.resolve(repoRoot, '..', 'shared', 'corpus', 'austen-emma.txt.gz');
  const text = gunzipSync(readFileSync(file)).toString('utf8');
  // ~4 characters per token; twice that for margin.
  return text.slice(0, Math.min(text.length, tokensNeeded * 8));
}

async function trainCase(
  label: TrainCaseResult['model'],
  method: TrainingMethod,
  load: () => Promise<{ config: GPT2Config; params: Record<string, tf.Tensor>; dispose: () => void }>,
  steps: number,
  text: string,
  microBatch: number,
): Promise<TrainCaseResult> {
  const result: TrainCaseResult = {
    model: label,
    method,
    microBatch,
    parameters: 0,
    trainableParameters: 0,
    tokensPerSecond: null,
    stepMs: [],
    warmupStepMs: null,
    peakTensorMiB: null,
    peakSampledRssMiB: null,
    processPeakRssMiB: 0,
    error: null,
  };
  let model: Awaited<ReturnType<typeof load>> | null = null;
  try {
    model = await load();
    result.parameters = Object.values(model.params).reduce((n, t) => n + t.size, 0);
    const options = resolveTrainingOptions(
      {
        method,
        blockSize: BLOCK,
        batchSize: microBatch,
        gradAccumSteps: BATCH / microBatch,
        maxSteps: steps + 1,
        epochs: 100,
        heldOutFraction: 0,
        earlyStopPatience: null,
        checkpointEvery: 1000,
        evalEvery: 1000,
        seed: 1,
      },
      model.config,
    );
    const dataset: Dataset = buildDataset([{ name: 'emma', text }], gpt2Tokenizer(), datasetOptions(options));
    let last = 0;
    const held = model;
    const run = await runTraining({
      config: model.config,
      params: model.params,
      dataset,
      options,
      onEvent: (e) => {
        const now = performance.now();
        if (e.type === 'started') {
          result.trainableParameters = e.plan.trainableParameters;
          // Full training has its own copy now: freeing the base keeps GPT-2 small within wasm's heap.
          if (method === 'full') {
            held.dispose();
            model = null;
          }
          last = now;
          return;
        }
        if (e.type !== 'progress') return;
        const ms = now - last;
        last = now;
        if (e.step === 1) result.warmupStepMs = Math.round(ms);
        else result.stepMs.push(Math.round(ms));
        result.peakTensorMiB = Math.max(result.peakTensorMiB ?? 0, mib(tf.memory().numBytes));
        result.peakSampledRssMiB = Math.max(result.peakSampledRssMiB ?? 0, mib(process.memoryUsage().rss));
      },
    });
    run.weights.dispose();
    const timedMs = result.stepMs.reduce((a, b) => a + b, 0);
    if (result.stepMs.length > 0) result.tokensPerSecond = Math.round(((result.stepMs.length * BATCH * BLOCK) / (timedMs / 1000)) * 10) / 10;
  } catch (error) {
    // Most likely wasm's heap (at most 4 GiB) running out: a result, not a crash of the whole benchmark.
    result.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (/Aborted\(\)|out of memory|out of bounds|Cannot enlarge memory/i.test(result.error)) {
      result.error += ` (wasm's heap, at most 4 GiB, ran out; peak RSS ${peakRssMiB()} MiB)`;
    }
    result.tokensPerSecond = null;
  } finally {
    (model as { dispose: () => void } | null)?.dispose();
    result.processPeakRssMiB = peakRssMiB();
  }
  return result;
}

export type TrainCaseName = `${TrainCaseResult['model']}:${TrainingMethod}`;
// Smallest first; GPT-2 small's full fine-tuning is the case most likely to exhaust wasm's heap.
const CASES: TrainCaseName[] = ['small-16m:lora', 'small-16m:full', 'gpt2-small:lora', 'gpt2-small:full'];
/**
 * GPT-2 small with 4 or even 2 blocks of 128 tokens in one forward pass exhausts wasm's 4 GiB heap, LoRA
 * included (measured: abort at ~4.2 GB RSS; one block peaks at ~3.3 GB), so its 4-block steps are
 * accumulated from micro-batches of one block — the same update.
 */
const MICRO_BATCH: Record<TrainCaseName, number> = { 'small-16m:lora': 4, 'small-16m:full': 4, 'gpt2-small:lora': 1, 'gpt2-small:full': 1 };

/**
 * Each case runs in a child process: wasm's heap only grows (a case's peak would carry into the next),
 * a wasm abort leaves the module unusable, and a child's peak RSS is that case's alone.
 */
export async function benchTraining(opts: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const steps = opts.steps ?? 2;
  const backend = opts.backend ?? 'wasm';
  const log = opts.log ?? ((line: string) => console.log(line));
  const cases: TrainCaseResult[] = [];
  for (const name of CASES.filter((c) => !(opts.skipGpt2Small && c.startsWith('gpt2-small')))) {
    const c = await runCaseInChild(name, steps, backend);
    cases.push(c);
    const speed = c.tokensPerSecond === null ? `failed (${c.error})` : `${c.tokensPerSecond} tokens/s (steps ${c.stepMs.join(', ')} ms; warm-up ${c.warmupStepMs} ms)`;
    log(
      `train ${c.method} ${c.model} (${(c.trainableParameters / 1e6).toFixed(2)}M of ${(c.parameters / 1e6).toFixed(1)}M params trained), batch ${BATCH}×${BLOCK} (micro-batch ${c.microBatch}): ${speed}; ` +
        `tensors ≤ ${c.peakTensorMiB ?? '?'} MiB between steps, peak RSS ${c.processPeakRssMiB} MiB`,
    );
  }
  return {
    backend,
    batchSize: BATCH,
    blockSize: BLOCK,
    steps,
    cases,
    peakRssMiB: Math.max(0, ...cases.map((c) => c.processPeakRssMiB)),
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
  };
}

async function runCaseInChild(name: TrainCaseName, steps: number, backend: string): Promise<TrainCaseResult> {
  const [model, method] = name.split(':') as [TrainCaseResult['model'], TrainingMethod];
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--case', name, '--steps', String(steps), '--backend', backend];
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
    execFile(process.execPath, args, { maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 }),
    );
  });
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as TrainCaseResult;
  } catch {
    const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-3).join(' | ');
    return {
      model,
      method,
      microBatch: MICRO_BATCH[name],
      parameters: 0,
      trainableParameters: 0,
      tokensPerSecond: null,
      stepMs: [],
      warmupStepMs: null,
      peakTensorMiB: null,
      peakSampledRssMiB: null,
      processPeakRssMiB: 0,
      error: `the benchmark process exited with ${code}: ${tail}`,
    };
  }
}

/** One case in this process (the child side of `benchTraining`). */
export async function benchTrainingCase(name: TrainCaseName, steps: number, backend = 'wasm', microBatch = MICRO_BATCH[name]): Promise<TrainCaseResult> {
  if (![1, 2, 4].includes(microBatch)) throw new Error(`micro-batch must be 1, 2 or 4, got ${microBatch}`);
  if (!CASES.includes(name)) throw new Error(`unknown case "${name}"; one of ${CASES.join(', ')}`);
  await initBackend(backend);
  const [model, method] = name.split(':') as [TrainCaseResult['model'], TrainingMethod];
  const load =
    model === 'small-16m'
      ? async () => {
          const m = createRandomModel(SMALL_16M, 1);
          return { config: m.config, params: paramMapOf(m.params), dispose: () => m.dispose() };
        }
      : async () => {
          const m = await loadModel(await ensureGpt2SmallRandom());
          return { config: m.config, params: paramMapOf(m.params), dispose: () => m.dispose() };
        };
  return trainCase(model, method, load, steps, benchText((steps + 1) * BATCH * (BLOCK + 1)), microBatch);
}

/** The `train_*` fields `npm run bench` adds to its JSON line. */
export function trainBenchFields(r: TrainBenchResult): Record<string, number | null> {
  const speed = (model: TrainCaseResult['model'], method: TrainingMethod) => r.cases.find((c) => c.model === model && c.method === method)?.tokensPerSecond ?? null;
  return {
    train_lora_tokens_per_s: speed('gpt2-small', 'lora'),
    train_full_tokens_per_s: speed('gpt2-small', 'full'),
    train_small_lora_tokens_per_s: speed('small-16m', 'lora'),
    train_small_full_tokens_per_s: speed('small-16m', 'full'),
    train_peak_rss_mib: r.peakRssMiB,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'wasm' },
      steps: { type: 'string', default: '2' },
      'skip-gpt2-small': { type: 'boolean', default: false },
      case: { type: 'string' },
      'micro-batch': { type: 'string' },
    },
  });
  const steps = Number(values.steps);
  if (values.case) {
    const micro = values['micro-batch'] === undefined ? undefined : Number(values['micro-batch']);
    console.log(JSON.stringify(await benchTrainingCase(values.case as TrainCaseName, steps, values.backend, micro)));
  } else {
    console.log(`backend: ${values.backend}; each case in its own process`);
    const result = await benchTraining({ steps, backend: values.backend, skipGpt2Small: values['skip-gpt2-small'] });
    console.log(JSON.stringify({ bench: 'train', ...trainBenchFields(result), load_average_1m: result.loadAverage1m, detail: result }));
  }
}
