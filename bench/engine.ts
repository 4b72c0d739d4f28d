/**
 * `npm run bench`: the engine's speed and memory on a GPT-2-small-shaped model with random weights, the
 * tokenizer's speed on corpus prose, and keystroke-to-suggestion latency through the real worker protocol.
 * Human-readable lines first; the last line is one JSON object for scripts.
 *
 *   npm run bench [-- --backend wasm --quick --skip-training]
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { initBackend, gpt2Tokenizer } from '../worker/index.js';
import { benchDecodeConfig, NEW_TOKENS, PROMPT_TOKENS, type DecodeConfigResult } from './decode-config.js';
import { ensureGpt2SmallRandom, gpt2SmallConfig as gpt2Small, repoRoot } from './random-checkpoint.js';
import { benchFirstSuggestion, benchKeystroke } from './keystroke.js';
import { benchTraining, trainBenchFields } from './train.js';
import { measureCeiling, type MachineCeiling } from './machine-ceiling.js';
import { decodeBytesPerToken, prefillFlops } from './model-work.js';

const { values } = parseArgs({
  options: { backend: { type: 'string', default: 'wasm' }, quick: { type: 'boolean', default: false }, 'skip-training': { type: 'boolean', default: false } },
});
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

/** The machine's rates just before and after a measurement (machine-ceiling.ts), and their means. */
type Rate = Exclude<keyof MachineCeiling, 'threads'>;
type Around = { before: MachineCeiling; after: MachineCeiling } & Record<Rate, number>;

/** Runs `measure` between two probes of the machine with `threads` threads; null ceilings where it has no relaxed SIMD. */
async function aroundCeilings<T>(threads: number, measure: () => Promise<T>): Promise<{ result: T; ceiling: Around | null }> {
  const probe = () =>
    measureCeiling(threads).catch((error: unknown) => {
      log(`(no machine ceilings: ${error instanceof Error ? error.message : String(error)})`);
      return null;
    });
  const before = await probe();
  const result = await measure();
  const after = before && (await probe());
  if (!before || !after) return { result, ceiling: null };
  const mean = (key: Rate) => round((before[key] + after[key]) / 2);
  return { result, ceiling: { before, after, fma_gflops: mean('fma_gflops'), tile_gflops: mean('tile_gflops'), read_gb_per_s: mean('read_gb_per_s') } };
}

/**
 * A configuration's speed beside the machine's at the time: the prefill's rate over the multiply–add rates
 * (registers alone; the prompt kernel's tile on L1 data) and the time it would take at the tile's rate; decoding's
 * bytes read a second over the rate of streaming reads, and the tokens a second that rate would allow.
 */
function efficiency(c: DecodeConfigResult, ceiling: Around) {
  const flops = prefillFlops(gpt2Small, PROMPT_TOKENS);
  const bytes = decodeBytesPerToken(gpt2Small, c.precision === 'fast' ? 'fast' : 'exact', PROMPT_TOKENS + NEW_TOKENS / 2, c.screened);
  const prefillRate = flops / (c.prefill_ms / 1000) / 1e9;
  const decodeRate = (bytes * c.decode_tokens_per_s) / 1e9;
  return {
    ceiling,
    prefill_gflop: round(flops / 1e9, 2),
    prefill_gflops_per_s: round(prefillRate),
    prefill_of_fma_rate: round(prefillRate / ceiling.fma_gflops, 2),
    prefill_of_tile_rate: round(prefillRate / ceiling.tile_gflops, 2),
    prefill_ms_at_tile_rate: round((flops / 1e9 / ceiling.tile_gflops) * 1000),
    decode_mb_per_token: round(bytes / 1e6),
    decode_gb_per_s: round(decodeRate, 2),
    decode_of_read_rate: round(decodeRate / ceiling.read_gb_per_s, 2),
    decode_tokens_per_s_at_read_rate: round((ceiling.read_gb_per_s * 1e9) / bytes),
  };
}

async function main(): Promise<void> {
  const backend = await initBackend(values.backend);
  log(`backend: ${backend.name} (${backend.reason})`);

  const tokenizerMBps = tokenizerSpeed();
  log(`tokenizer: ${tokenizerMBps.toFixed(1)} MB/s encoding Emma (cold cache)`);

  const dir = await ensureGpt2SmallRandom();
  // One process per configuration (benchDecodeConfig), so that each one's memory is its own, each on the
  // compiled engine as the app ships it. The app's default on a 2-core machine is two threads, exact.
  // Each between two probes of what the machine gives at the time (this host is shared and moves by 2×).
  // Then exact with every logit computed (no int8 screen of the output layer), for the screen's share; and the
  // default with prompts on the WebAssembly kernels (INKLING_NATIVE=off), for the native kernels' share.
  const configs: (DecodeConfigResult & { efficiency: ReturnType<typeof efficiency> | null })[] = [];
  const plan = [[1, 'exact', true, true], [2, 'exact', true, true], [2, 'fast', true, true], [2, 'exact', false, true], [2, 'exact', true, false]] as const;
  for (const [threads, precision, screen, native] of plan) {
    const { result: c, ceiling } = await aroundCeilings(threads, () => benchDecodeConfig(threads, precision, dir, values.backend, values.quick, screen, native));
    const e = ceiling && efficiency(c, ceiling);
    configs.push({ ...c, efficiency: e });
    log(
      `${c.threads} thread${c.threads > 1 ? 's' : ''}, ${c.precision}${c.precision === 'exact' ? (c.screened ? ', output layer screened' : ', every logit') : ''}` +
        `, prompts on ${c.native_kernels ? 'the native kernels' : `WebAssembly (${c.native_kernels_note})`}` +
        `${c.note ? ` (${c.note})` : ''}: prefill of ${PROMPT_TOKENS} tokens ${c.prefill_ms.toFixed(0)} ms, ` +
        `decode ${c.decode_tokens_per_s.toFixed(1)} tokens/s (batch 1, ${NEW_TOKENS} new), num_return_sequences=3 ${c.decode_nrs3_tokens_per_s.toFixed(1)} tokens/s in all ` +
        `(${c.decode_nrs3_cost_ratio.toFixed(2)}× one sequence's time); the engine holds ${c.engine_mib.toFixed(0)} MiB (RSS ${c.rss_mib.toFixed(0)} − ` +
        `${c.runtime_mib.toFixed(0)} of Node before it loaded) for ${c.weight_mib.toFixed(0)} MiB of weights: ${c.engine_per_weight.toFixed(2)}×` +
        (c.extra_mib > 0 ? `, ${c.engine_per_held.toFixed(2)}× with the ${c.extra_mib.toFixed(0)} MiB of weights the partner thread and int8 copies hold` : ''),
    );
    if (e) {
      const pct = (x: number) => `${Math.round(x * 100)} %`;
      log(
        `  beside the machine at the time (${threads} thread${threads > 1 ? 's' : ''}: multiply–adds ${e.ceiling.fma_gflops} GFLOP/s from registers, ` +
          `${e.ceiling.tile_gflops} in the prompt kernel's tile on L1 data; reads ${e.ceiling.read_gb_per_s} GB/s): ` +
          `prefill ${e.prefill_gflops_per_s} GFLOP/s, ${pct(e.prefill_of_fma_rate)} of the first and ${pct(e.prefill_of_tile_rate)} of the second ` +
          `(${e.prefill_ms_at_tile_rate.toFixed(0)} ms at the tile's rate); decode ${e.decode_gb_per_s} GB/s of weights and caches, ` +
          `${pct(e.decode_of_read_rate)} of the read rate (${e.decode_tokens_per_s_at_read_rate.toFixed(1)} tokens/s at that rate)`,
      );
    }
  }
  const main2 = configs[1];

  const keystroke = await benchKeystroke({
    modelDir: path.join(sharedDir, 'fixtures', 'tiny-gpt2'),
    backend: values.backend,
    keystrokes: values.quick ? 6 : 16,
  });
  log(`keystroke → 6-token suggestion, tiny model: p50 ${keystroke.withReuse.medianMs.toFixed(0)} ms with prefix reuse, ${keystroke.withoutReuse.medianMs.toFixed(0)} ms without`);
  // The model the app starts on, once this checkout has it (npm run train:default).
  const defaultModel = path.join(repoRoot, 'resources', 'default-model');
  const keystrokeDefault = existsSync(path.join(defaultModel, 'config.json'))
    ? await benchKeystroke({ modelDir: defaultModel, backend: values.backend, keystrokes: values.quick ? 6 : 16 })
    : null;
  if (keystrokeDefault) {
    log(`keystroke → 6-token suggestion, default model: p50 ${keystrokeDefault.withReuse.medianMs.toFixed(0)} ms with prefix reuse, ${keystrokeDefault.withoutReuse.medianMs.toFixed(0)} ms without`);
  }
  const { result: keystrokeSmall, ceiling: keystrokeCeiling } = await aroundCeilings(2, () =>
    benchKeystroke({ modelDir: dir, backend: values.backend, keystrokes: values.quick ? 3 : 8 }),
  );
  // Its passes (one for the typed text, one per further suggested token) each read every weight at least once.
  const keystrokeFloorMs = keystrokeCeiling
    ? round(
        ((keystrokeSmall.suggestionTokens * decodeBytesPerToken(gpt2Small, 'exact', keystrokeSmall.withReuse.meanPromptTokens, true)) / 1e9 / keystrokeCeiling.read_gb_per_s) *
          1000,
      )
    : null;
  const keystrokeSmallFast = await benchKeystroke({ modelDir: dir, backend: values.backend, keystrokes: values.quick ? 3 : 8, precision: 'fast' });
  const keystrokeSmallFull = await benchKeystroke({ modelDir: dir, backend: values.backend, keystrokes: values.quick ? 3 : 8, screen: false });
  // With the app's own settings: the inline suggestion (sampled, up to 12 tokens, cut at the sentence end), and the
  // three alternatives the user cycles through.
  const app = (alternatives: number) =>
    benchKeystroke({ modelDir: dir, backend: values.backend, keystrokes: values.quick ? 2 : 4, request: { kind: 'app', alternatives } });
  const [keystrokeAppInline, keystrokeAppAlternatives] = [await app(1), await app(3)];
  for (const [what, k] of [['inline suggestion', keystrokeAppInline], ['three alternatives', keystrokeAppAlternatives]] as const) {
    log(`keystroke → the app's ${what} (default settings), GPT-2 small shape, exact: p50 ${k.withReuse.medianMs.toFixed(0)} ms with prefix reuse, ${k.withoutReuse.medianMs.toFixed(0)} ms without`);
  }
  for (const k of [keystrokeSmall, keystrokeSmallFast, keystrokeSmallFull]) {
    const how = k === keystrokeSmallFull ? ', every logit' : k === keystrokeSmall ? ', output layer screened' : '';
    log(
      `keystroke → 6-token suggestion, GPT-2 small shape, ${k.threads} thread${k.threads > 1 ? 's' : ''}, ${k.precision}${how}: ` +
        `p50 ${k.withReuse.medianMs.toFixed(0)} ms with prefix reuse, ${k.withoutReuse.medianMs.toFixed(0)} ms without` +
        (k === keystrokeSmall && keystrokeFloorMs !== null
          ? ` (reading the weights ${k.suggestionTokens} times at the ${keystrokeCeiling!.read_gb_per_s} GB/s measured around it takes ${keystrokeFloorMs.toFixed(0)} ms)`
          : ''),
    );
  }

  // The first suggestion at a new place in a long document: cold, and after the editor's prefill-only request.
  const first = await benchFirstSuggestion({ modelDir: dir, backend: values.backend, rounds: values.quick ? 1 : 3 });
  log(
    `first suggestion at a new place in ${first.docChars} characters (${first.promptTokens} tokens), GPT-2 small shape, exact: ` +
      `${first.coldMs.toFixed(0)} ms cold; ${first.afterPrefillMs.toFixed(0)} ms after the prefill-only request sent when the caret rests ` +
      `(which took ${first.prefillOnlyMs.toFixed(0)} ms)`,
  );

  // Training last: its cases run in child processes (wasm's heap never shrinks) and take minutes.
  const training = values['skip-training'] ? null : await benchTraining({ backend: values.backend, steps: values.quick ? 1 : 2, log });

  const result = {
    bench: 'engine',
    backend: backend.name,
    model: 'gpt2-small-shape-random-f32',
    // The app's default configuration here (2 threads, exact); every configuration is in `configs`.
    threads: main2.threads,
    prefill_ms: main2.prefill_ms,
    native_kernels: main2.native_kernels,
    // The same configuration with prompts on the WebAssembly kernels, and its ratio to prefill_ms (one run).
    prefill_wasm_kernels_ms: configs[4].prefill_ms,
    prefill_native_speedup: round(configs[4].prefill_ms / main2.prefill_ms, 2),
    decode_tokens_per_s: main2.decode_tokens_per_s,
    decode_nrs3_tokens_per_s: main2.decode_nrs3_tokens_per_s,
    decode_nrs3_cost_ratio: main2.decode_nrs3_cost_ratio,
    decode_fast_tokens_per_s: configs[2].decode_tokens_per_s,
    // Exact with every logit computed: the output layer not screened by its int8 copy (same tokens).
    decode_full_output_layer_tokens_per_s: configs[3].decode_tokens_per_s,
    // The same two beside what the machine gave around them (efficiency in `configs` for every configuration).
    prefill_ms_at_tile_rate: main2.efficiency?.prefill_ms_at_tile_rate ?? null,
    prefill_of_tile_rate: main2.efficiency?.prefill_of_tile_rate ?? null,
    decode_of_read_rate: main2.efficiency?.decode_of_read_rate ?? null,
    tokenizer_mb_per_s: round(tokenizerMBps, 2),
    peak_rss_mib: main2.peak_rss_mib,
    weight_mib: main2.weight_mib,
    tensors_after_decode: main2.tensors_after_decode,
    configs,
    keystroke_default_model_p50_ms: keystrokeDefault
      ? { reuse: round(keystrokeDefault.withReuse.medianMs), no_reuse: round(keystrokeDefault.withoutReuse.medianMs) }
      : null,
    keystroke_tiny_p50_ms: { reuse: round(keystroke.withReuse.medianMs), no_reuse: round(keystroke.withoutReuse.medianMs) },
    keystroke_gpt2_small_p50_ms: { reuse: round(keystrokeSmall.withReuse.medianMs), no_reuse: round(keystrokeSmall.withoutReuse.medianMs) },
    // The exact keystroke's floor from memory bandwidth alone, and the read rate measured around it.
    keystroke_gpt2_small_floor_ms: keystrokeFloorMs,
    keystroke_gpt2_small_read_gb_per_s: keystrokeCeiling?.read_gb_per_s ?? null,
    keystroke_gpt2_small_full_output_layer_p50_ms: { reuse: round(keystrokeSmallFull.withReuse.medianMs), no_reuse: round(keystrokeSmallFull.withoutReuse.medianMs) },
    keystroke_gpt2_small_app_inline_p50_ms: { reuse: round(keystrokeAppInline.withReuse.medianMs), no_reuse: round(keystrokeAppInline.withoutReuse.medianMs) },
    keystroke_gpt2_small_app_alternatives_p50_ms: {
      reuse: round(keystrokeAppAlternatives.withReuse.medianMs),
      no_reuse: round(keystrokeAppAlternatives.withoutReuse.medianMs),
    },
    keystroke_gpt2_small_fast_p50_ms: { reuse: round(keystrokeSmallFast.withReuse.medianMs), no_reuse: round(keystrokeSmallFast.withoutReuse.medianMs) },
    first_suggestion_gpt2_small_ms: {
      prompt_tokens: first.promptTokens,
      cold: round(first.coldMs),
      after_prefill: round(first.afterPrefillMs),
      prefill_only: round(first.prefillOnlyMs),
    },
    ...(training ? trainBenchFields(training) : {}),
    // This machine is shared: the load average says how much the numbers above were disturbed.
    load_average_1m: round(loadavg()[0]!, 2),
  };
  console.log(JSON.stringify(result));
}

await main();
