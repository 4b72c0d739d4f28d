/**
 * Prefill and decode speed and memory of the GPT-2-small-shaped random model in one engine configuration
 * (threads × precision), in a process of its own so that each configuration's memory is its own (a wasm
 * heap never shrinks). `bench/engine.ts` runs it once per configuration, on the compiled engine that the app
 * ships (`benchDecodeConfig` builds it into .bench/built): under tsx each engine thread loads the TypeScript
 * loader too (~25 MiB more for the partner thread), which is not the engine's.
 *
 *   node --import tsx bench/decode-config.ts --threads 2 --precision fast [--screen on|off] [--backend wasm] [--quick] [--checkpoint DIR]
 *
 * Prints one JSON object (DecodeConfigResult) on its last line.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { LanguageModel, GenerationResult } from '../worker/index.js';

/**
 * This process's resident size before any of the engine's code is loaded (Node and the TypeScript loader):
 * the engine's own is what the process holds beyond it. Measured here, before the imports in `measure`.
 */
const runtimeRss = process.memoryUsage().rss;
const engine = async () => ({
  tf: await import('@tensorflow/tfjs-core'),
  ...(await import('../worker/index.js')),
  ...(await import('./random-checkpoint.js')),
});

export const PROMPT_TOKENS = 128;
export const NEW_TOKENS = 64;

export interface DecodeConfigResult {
  threads: number;
  precision: string;
  /** Whether exact decoding screened the output layer by its int8 copy (worker/model/output-screen.ts). */
  screened: boolean;
  note: string | null;
  /** Whether the products ran on the native kernels (worker/model/kernels/native), and why not. */
  native_kernels: boolean;
  native_kernels_note: string | null;
  /** Median of three prefills. */
  prefill_ms: number;
  /** Median of three generations of NEW_TOKENS after the prompt (one with --quick). */
  decode_tokens_per_s: number;
  decode_nrs3_tokens_per_s: number;
  decode_nrs3_cost_ratio: number;
  weight_mib: number;
  /** Weights held beyond the model's float32 ones in this configuration (the partner's share, int8 copies). */
  extra_mib: number;
  /** Resident size of the whole process at the end (the engine alone in it). */
  rss_mib: number;
  /** The process's resident size before the engine's code was loaded (Node, the TypeScript loader). */
  runtime_mib: number;
  /** What the engine holds: rss_mib − runtime_mib (its code, tfjs, the weights, caches, activations). */
  engine_mib: number;
  /** engine_mib over the model's weights (the checkpoint's numbers), and over every weight byte held (weight_mib + extra_mib). */
  engine_per_weight: number;
  engine_per_held: number;
  peak_rss_mib: number;
  tensors_after_decode: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const mib = (bytes: number) => round(bytes / 2 ** 20);

function prefillMs(model: LanguageModel, prompt: number[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const cache = model.createCache(1);
    const t0 = performance.now();
    const logits = model.forward([prompt], cache);
    logits.dataSync();
    times.push(performance.now() - t0);
    logits.dispose();
    cache.dispose();
  }
  return median(times);
}

async function measure(
  threads: number,
  precision: 'exact' | 'fast',
  screen: boolean,
  backend: string,
  quick: boolean,
  checkpoint: string | undefined,
): Promise<DecodeConfigResult> {
  const { tf, initBackend, loadModel, ensureGpt2SmallRandom, gpt2Tokenizer, generate } = await engine();
  const decode = (model: LanguageModel, prompt: number[], k: number, newTokens: number): Promise<GenerationResult> =>
    generate(model, gpt2Tokenizer(), prompt, {
      maxNewTokens: newTokens,
      minNewTokens: newTokens,
      eosTokenId: null,
      numReturnSequences: k,
      doSample: k > 1,
      seed: 1,
    });
  await initBackend(backend);
  const model = await loadModel(checkpoint ?? (await ensureGpt2SmallRandom()), { threads, precision, screen });
  const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => (i * 7919 + 13) % 50000);
  await decode(model, prompt.slice(0, 8), 1, 8); // first-call costs of every kernel
  const prefill = prefillMs(model, prompt, quick ? 1 : 3);
  // The median of three generations, as the prefill's of three runs: one slow minute on this shared host
  // should not decide the figure alone.
  const singles: GenerationResult[] = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) singles.push(await decode(model, prompt, 1, quick ? 16 : NEW_TOKENS));
  const single = singles.sort((a, b) => a.timings.decodeTokensPerS - b.timings.decodeTokensPerS)[Math.floor(singles.length / 2)];
  const triple = await decode(model, prompt, 3, quick ? 16 : NEW_TOKENS);
  const rss = process.memoryUsage().rss;
  const nativeNote = model.nativeKernelsNote;
  const result: DecodeConfigResult = {
    threads: model.threads,
    precision: model.precision,
    screened: model.screened,
    note: model.threadsNote ?? model.precisionNote,
    native_kernels: nativeNote === null,
    native_kernels_note: nativeNote,
    prefill_ms: round(prefill),
    decode_tokens_per_s: round(single.timings.decodeTokensPerS, 2),
    decode_nrs3_tokens_per_s: round(triple.timings.decodeTokensPerS, 2),
    decode_nrs3_cost_ratio: round(triple.timings.decodeMs / single.timings.decodeMs, 2),
    weight_mib: mib(model.weightBytes),
    extra_mib: mib(model.extraBytes),
    rss_mib: mib(rss),
    runtime_mib: mib(runtimeRss),
    engine_mib: mib(rss - runtimeRss),
    engine_per_weight: round((rss - runtimeRss) / model.weightBytes, 2),
    engine_per_held: round((rss - runtimeRss) / (model.weightBytes + model.extraBytes), 2),
    peak_rss_mib: round(process.resourceUsage().maxRSS / 1024),
    tensors_after_decode: tf.memory().numTensors,
  };
  model.dispose();
  return result;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const built = path.join(benchDir, '..', '.bench', 'built');
let building: Promise<string> | null = null;

/** The engine compiled as `npm run build` compiles it, with this script beside it; built once per process. */
function compiledScript(): Promise<string> {
  building ??= (async () => {
    const { buildApp } = (await import(pathToFileURL(path.join(benchDir, '..', 'scripts', 'build.mjs')).href)) as {
      buildApp(options: { outDir: string; renderer: boolean }): Promise<unknown>;
    };
    await buildApp({ outDir: built, renderer: false });
    const { build } = await import('esbuild');
    await build({
      entryPoints: ['decode-config.ts', 'random-checkpoint.ts'].map((f) => path.join(benchDir, f)),
      outdir: path.join(built, 'bench'),
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'warning',
    });
    return path.join(built, 'bench', 'decode-config.js');
  })();
  return building;
}

/**
 * Runs one configuration in a child process, on the compiled engine, and returns its result; `native` false
 * runs prompts on the WebAssembly kernels (INKLING_NATIVE=off), for the native ones' share.
 */
export async function benchDecodeConfig(
  threads: number,
  precision: 'exact' | 'fast',
  checkpoint: string,
  backend = 'wasm',
  quick = false,
  screen = true,
  native = true,
): Promise<DecodeConfigResult> {
  const script = await compiledScript();
  const args = [
    script,
    ...['--threads', String(threads), '--precision', precision, '--screen', screen ? 'on' : 'off', '--backend', backend, '--checkpoint', checkpoint],
    ...(quick ? ['--quick'] : []),
  ];
  const env = native ? process.env : { ...process.env, INKLING_NATIVE: 'off' };
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: path.dirname(script), maxBuffer: 1 << 20, env });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as DecodeConfigResult;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '1' },
      precision: { type: 'string', default: 'exact' },
      screen: { type: 'string', default: 'on' },
      backend: { type: 'string', default: 'wasm' },
      quick: { type: 'boolean', default: false },
      checkpoint: { type: 'string' },
    },
  });
  const precision = values.precision === 'fast' ? 'fast' : 'exact';
  console.log(JSON.stringify(await measure(Number(values.threads), precision, values.screen !== 'off', values.backend, values.quick, values.checkpoint)));
}
