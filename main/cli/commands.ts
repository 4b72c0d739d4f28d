import type { CliInput } from './run.js';
import { UsageError, parsePrecisionOption } from './args.js';
import { defaultModelDir } from '../paths.js';
import { initBackend, loadModel, loadTokenizer, gpt2Tokenizer, generate, type GenerationOptions, type GPT2ModelOptions } from '../../worker/index.js';

/**
 * `--model DIR`: that model's own tokenizer. Without it, GPT-2's standard vocabulary — not the default
 * model's (which has its own, smaller one): `tokenize` is how ids are checked against other GPT-2 tools.
 */
async function tokenizerFor(input: CliInput) {
  const dir = input.values.model;
  return dir === undefined ? gpt2Tokenizer() : loadTokenizer(dir);
}

function modelDir(input: CliInput): string {
  const dir = input.values.model ?? defaultModelDir();
  if (dir === null) throw new UsageError('no model given and no default model is installed: pass --model DIR');
  return dir;
}

/**
 * `--threads N` and `--precision exact|fast` for loadModel (each left out when not given: its default,
 * INKLING_THREADS or by model size, INKLING_PRECISION or exact).
 */
function modelOptions(input: CliInput): GPT2ModelOptions {
  const threads = input.ints('threads', 1);
  const precision = parsePrecisionOption(input.values.precision);
  return { ...(threads === undefined ? {} : { threads }), ...(precision === undefined ? {} : { precision }) };
}

/** New positions per call through which fast logits reach the int8 weights (their path takes at most 4). */
const INT8_MAX_NEW_TOKENS = 4;

function generationOptions(input: CliInput): GenerationOptions {
  const options: GenerationOptions = {
    maxLength: input.ints('max-length', 1),
    maxNewTokens: input.ints('max-new-tokens', 1),
    minNewTokens: input.ints('min-new-tokens', 0),
    numReturnSequences: input.ints('num-return-sequences', 1),
    doSample: input.values['do-sample'] === true,
    temperature: input.floats('temperature'),
    topK: input.ints('top-k', 0),
    topP: input.floats('top-p'),
    repetitionPenalty: input.floats('repetition-penalty'),
    noRepeatNgramSize: input.ints('no-repeat-ngram-size', 0),
    seed: input.ints('seed', 0),
    stop: input.values.stop,
  };
  // Unset options keep generate's (Hugging Face's) defaults.
  for (const key of Object.keys(options) as (keyof GenerationOptions)[]) {
    if (options[key] === undefined) delete options[key];
  }
  return options;
}

async function generateCommand(input: CliInput): Promise<void> {
  const { values } = input;
  if ((values.prompt === undefined) === (values['prompt-ids'] === undefined)) {
    throw new UsageError('generate needs exactly one of --prompt TEXT or --prompt-ids 1,2,3');
  }
  const options = generationOptions(input);
  const dir = modelDir(input);
  const backend = await initBackend(values.backend);
  const started = performance.now();
  const [model, tokenizer] = await Promise.all([loadModel(dir, modelOptions(input)), loadTokenizer(dir)]);
  const loadMs = performance.now() - started;
  try {
    const promptIds = values.prompt !== undefined ? tokenizer.encode(values.prompt) : input.ids('prompt-ids')!;
    if (promptIds.length === 0) throw new UsageError('the prompt is empty: give at least one token');
    // A single plain-text continuation streams as it is made; several, or --json, print at the end.
    const stream = !values.json && (options.numReturnSequences ?? 1) === 1;
    const result = await generate(model, tokenizer, promptIds, options, stream ? (e) => process.stdout.write(e.textDelta) : undefined);
    if (result.truncatedPromptTokens > 0) {
      process.stderr.write(`inkling: the prompt was cut to its last ${result.promptTokens} tokens to fit the context window\n`);
    }
    if (values.json) {
      const nativeKernelsNote = model.nativeKernelsNote;
      const out = {
        backend: backend.name,
        backendReason: backend.reason,
        threads: model.threads,
        threadsNote: model.threadsNote,
        precision: model.precision,
        precisionNote: model.precisionNote,
        nativeKernels: nativeKernelsNote === null,
        nativeKernelsNote,
        promptTokens: result.promptTokens,
        truncatedPromptTokens: result.truncatedPromptTokens,
        sequences: result.sequences.map((s) => ({ ids: s.ids, text: s.text, finishReason: s.finishReason })),
        timings: { loadMs: round(loadMs), ...roundAll(result.timings) },
      };
      process.stdout.write(JSON.stringify(out) + '\n');
    } else if (stream) {
      process.stdout.write('\n');
    } else {
      result.sequences.forEach((s, i) => process.stdout.write(`--- ${i + 1} ---\n${s.text}\n`));
    }
  } finally {
    model.dispose();
  }
}

async function tokenizeCommand(input: CliInput): Promise<void> {
  const ids = (await tokenizerFor(input)).encode(input.readText());
  process.stdout.write(input.values.json ? JSON.stringify({ ids }) + '\n' : ids.join(',') + '\n');
}

async function detokenizeCommand(input: CliInput): Promise<void> {
  if (input.positionals.length !== 1) throw new UsageError('detokenize needs one argument: ids like 1,2,3');
  const tokenizer = await tokenizerFor(input);
  const ids = input.positionals[0]!.split(',').map((p) => p.trim());
  const parsed = ids.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`"${p}" is not a token id`);
    return Number(p);
  });
  process.stdout.write(tokenizer.decode(parsed));
}

async function logitsCommand(input: CliInput): Promise<void> {
  const ids = input.ids('prompt-ids');
  if (ids === undefined) throw new UsageError('logits needs --prompt-ids 1,2,3');
  if (!input.values.json) throw new UsageError('logits prints JSON only: add --json');
  await initBackend(input.values.backend);
  const model = await loadModel(modelDir(input), modelOptions(input));
  const cache = model.createCache(1);
  try {
    if (ids.length > model.config.nPositions) {
      throw new UsageError(`${ids.length} ids do not fit the model's ${model.config.nPositions} positions`);
    }
    const bad = ids.find((id) => id >= model.config.vocabSize);
    if (bad !== undefined) throw new UsageError(`token id ${bad} is outside the vocabulary (size ${model.config.vocabSize})`);
    // Fast weights serve only steps of a few new tokens: run the prompt that way so the row is theirs.
    const step = model.precision === 'fast' ? INT8_MAX_NEW_TOKENS : ids.length;
    for (let at = 0; at + step < ids.length; at += step) model.forward([ids.slice(at, at + step)], cache).dispose();
    const logits = model.forward([ids.slice(Math.floor((ids.length - 1) / step) * step)], cache);
    const row = Array.from(await logits.data());
    logits.dispose();
    process.stdout.write(JSON.stringify({ precision: model.precision, precisionNote: model.precisionNote, logits: row }) + '\n');
  } finally {
    cache.dispose();
    model.dispose();
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
const roundAll = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v]));

export const COMMANDS = {
  generate: generateCommand,
  tokenize: tokenizeCommand,
  detokenize: detokenizeCommand,
  logits: logitsCommand,
} as const;

export type Command = keyof typeof COMMANDS;
