/**
 * `npm run train:default -- [options]`: trains Inkling's embedded default model from scratch on the
 * public-domain corpus (../shared/corpus) and writes it, in Hugging Face GPT-2 layout with a model card, to
 * resources/default-model/.
 *
 * 1. Reads the books (gzip), holds a few whole books out: they are never trained on (not even by the
 *    tokenizer) and give the card's held-out loss and bits per byte.
 * 2. Trains a byte-level BPE vocabulary on the training books (cached in the work folder).
 * 3. Trains a small GPT-2 with the project's trainer (the fine-tuning code path, from scratch), with
 *    checkpoints under WORK/checkpoints: the process may be killed at any moment and continued with --resume.
 * 4. Exports F16 weights when they score within 0.5 % of F32 on the held-out books (else F32), measures
 *    them, samples a few continuations and writes MODEL_CARD.md. The output folder is replaced atomically.
 *
 * Default shape, from bench/default-model-shapes.ts (CPU seconds per 1k training tokens, wasm, one core):
 * 6×384/ctx 256 14.6, 6×256/ctx 128 6.2, 4×256/ctx 256 5.8, 4×256/ctx 128 5.0, 3×192/ctx 128 3.5. With an
 * 8192-token vocabulary the output layer is about 40 % of the cost, so width is what costs; at a budget of
 * ~10 CPU-hours the data seen limits the loss more than the size, and 4 layers × 256 with 256 tokens of
 * context (5.3M parameters, 10.6 MB in F16) sees ~6M tokens (half the corpus) in that time. The 8192-token
 * BPE spends 3.9–4.1 bytes per token on the held-out books, against GPT-2's 4.0–4.4 with a 6× larger
 * output layer.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { initBackend } from '../worker/backend.js';
import { evaluateText, type TextEvaluation } from '../worker/eval/index.js';
import { generate } from '../worker/generate/index.js';
import { completeGPT2Config } from '../worker/model/config.js';
import { loadModel } from '../worker/model/load.js';
import { createRandomModel } from '../worker/model/random.js';
import type { GPT2Config } from '../worker/model/types.js';
import { loadTokenizer, type Tokenizer } from '../worker/tokenizer/index.js';
import { countWords, trainBpe, writeBpeFiles } from '../worker/tokenizer/train-bpe.js';
import {
  FileCheckpointSink,
  TrainingControl,
  buildDataset,
  exportTrainedModel,
  paramMapOf,
  planTraining,
  resolveTrainingOptions,
  runTraining,
  type Block,
  type Dataset,
  type TrainingEvent,
  type TrainingOptions,
} from '../worker/train/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Held out by default: ~0.9 MB of prose from three authors of different periods, none of whose other books
 * is in the corpus except Austen's (so one held-out book tests a familiar style, two unfamiliar ones).
 */
const DEFAULT_HELD_OUT = ['austen-persuasion', 'conrad-heart-of-darkness', 'stevenson-jekyll-and-hyde'];

const SAMPLE_TOKENS = 48;
const DTYPE_SAMPLE_BYTES = 60_000;
const SAMPLE_PROMPTS = [
  'It was a dark and stormy night, and',
  'She opened the letter and read',
  'The old man looked at the sea',
  'In the morning we set out for the village,',
];

export const USAGE = `Usage: npm run train:default -- [options]

  --corpus DIR          the books, NAME.txt.gz (default ../shared/corpus)
  --held-out LIST       books (NAME without .txt.gz) kept out of training (default ${DEFAULT_HELD_OUT.join(',')})
  --work DIR            tokenizer cache, checkpoints, logs (default .train-default/)
  --out DIR             the exported model (default resources/default-model)
  --resume              continue the run in WORK from its last checkpoint
  --vocab-size N        BPE vocabulary, <|endoftext|> included (default 8192)
  --layers N --embd N --heads N --context N     model shape (default 4, 256, 4, 256)
  --max-steps N         optimizer steps (default 3000); the learning-rate schedule fits this length
  --new-length N        with --resume: change the run's length to N steps from where it stands (the
                        schedule decays over the new length from there; the card records the change)
  --batch-size N --grad-accum N                 blocks per forward pass, passes per step (default 4, 2)
  --lr X                peak learning rate (default 1e-3)
  --eval-every N        held-out evaluation every N steps (default 250)
  --checkpoint-every N  (default 25)
  --eval-tokens N       held-out tokens scored at each evaluation during training (default 16384)
  --card-eval-bytes N   bytes of each held-out book scored for the card (default: all)
  --dtype auto|f16|f32  weight precision of the export (default auto: F16 unless it costs > 0.5 % bits/byte)
  --seed N              (default 0)
  --backend auto|tensorflow|wasm|cpu`;

const OPTIONS = {
  corpus: { type: 'string' },
  'held-out': { type: 'string' },
  work: { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  'vocab-size': { type: 'string' },
  layers: { type: 'string' },
  embd: { type: 'string' },
  heads: { type: 'string' },
  context: { type: 'string' },
  'max-steps': { type: 'string' },
  'new-length': { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  lr: { type: 'string' },
  'eval-every': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  'eval-tokens': { type: 'string' },
  'card-eval-bytes': { type: 'string' },
  dtype: { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface TrainDefaultIo {
  log: (line: string) => void;
  /** Stops the run like Ctrl-C (after the current micro-batch, with a checkpoint). */
  signal?: AbortSignal;
}

interface Book {
  name: string;
  text: string;
}

/** What the run was started with; a resumed run must be the same run. */
interface RunSpec {
  corpus: string[];
  heldOut: string[];
  vocabSize: number;
  config: GPT2Config;
  training: TrainingOptions;
  evalTokens: number;
  /** `--new-length` on a resume: the run's planned length changed at a step (the card says so). */
  lengthChanges?: { atStep: number; from: number; to: number }[];
}

export async function trainDefault(args: string[], io: TrainDefaultIo = { log: (l) => console.log(l) }): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    io.log(USAGE);
    return 0;
  }
  const int = (name: keyof typeof values, fallback: number, min = 1): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${String(raw)}"`);
    return n;
  };
  const corpusDir = path.resolve(values.corpus ?? path.resolve(repoRoot, '..', 'shared', 'corpus'));
  const work = path.resolve(values.work ?? path.join(repoRoot, '.train-default'));
  const out = path.resolve(values.out ?? path.join(repoRoot, 'resources', 'default-model'));
  const heldOutNames = (values['held-out']?.split(',') ?? DEFAULT_HELD_OUT).map((s) => s.trim()).filter(Boolean);
  const dtypeChoice = values.dtype ?? 'auto';
  if (!['auto', 'f16', 'f32'].includes(dtypeChoice)) throw new Error(`--dtype must be auto, f16 or f32, got "${dtypeChoice}"`);
  const cardEvalBytes = values['card-eval-bytes'] === undefined ? Infinity : int('card-eval-bytes', 0);

  // --- the books -------------------------------------------------------------------------------------
  const started = performance.now();
  const books = await readCorpus(corpusDir);
  const missing = heldOutNames.filter((n) => !books.some((b) => b.name === n));
  if (missing.length > 0) throw new Error(`--held-out: ${missing.join(', ')} not in ${corpusDir}`);
  const trainBooks = books.filter((b) => !heldOutNames.includes(b.name));
  const heldOutBooks = books.filter((b) => heldOutNames.includes(b.name));
  if (trainBooks.length === 0) throw new Error('every book is held out: nothing is left to train on');
  const bytes = (bs: Book[]) => bs.reduce((n, b) => n + Buffer.byteLength(b.text), 0);
  io.log(`corpus: ${trainBooks.length} books for training (${mb(bytes(trainBooks))}), ${heldOutBooks.length} held out (${mb(bytes(heldOutBooks))})`);

  const vocabSize = int('vocab-size', 8192);
  const nEmbd = int('embd', 256);
  const nHead = int('heads', 4);
  const context = int('context', 256);
  const config = completeGPT2Config({
    vocabSize,
    nPositions: context,
    nEmbd,
    nLayer: int('layers', 4),
    nHead,
    bosTokenId: vocabSize - 1,
    eosTokenId: vocabSize - 1,
  });
  const training: TrainingOptions = {
    method: 'full',
    fromScratch: true,
    epochs: 1000, // the length is set by maxSteps
    maxSteps: int('max-steps', 3000),
    blockSize: context,
    batchSize: int('batch-size', 4),
    gradAccumSteps: int('grad-accum', 2),
    learningRate: values.lr === undefined ? 1e-3 : Number(values.lr),
    dropout: 0, // one pass over ~12M tokens does not overfit a model this small
    evalEvery: int('eval-every', 250),
    checkpointEvery: int('checkpoint-every', 25),
    earlyStopPatience: null,
    seed: int('seed', 0, 0),
  };
  const spec: RunSpec = {
    corpus: books.map((b) => `${b.name}:${sha256(b.text).slice(0, 16)}`),
    heldOut: heldOutNames,
    vocabSize,
    config,
    training,
    evalTokens: int('eval-tokens', 16384),
  };

  await mkdir(work, { recursive: true });
  const specPath = path.join(work, 'run.json');
  const sink = new FileCheckpointSink(path.join(work, 'checkpoints'));
  const checkpoint = await sink.loadLatest();
  const newLength = values['new-length'] === undefined ? null : int('new-length', 1);
  if (newLength !== null && !values.resume) throw new Error('--new-length changes a run being resumed: add --resume');
  if (values.resume) {
    if (checkpoint === null) throw new Error(`nothing to resume: ${sink.dir} has no checkpoint`);
    const saved = JSON.parse(await readFile(specPath, 'utf8')) as RunSpec;
    // The length may differ from the flags' once it was changed: compare everything else.
    const comparable = (r: RunSpec) => JSON.stringify({ ...r, training: { ...r.training, maxSteps: null }, lengthChanges: null });
    const sameLength = saved.training.maxSteps === spec.training.maxSteps || saved.lengthChanges?.length;
    if (comparable(saved) !== comparable(spec) || !sameLength) {
      throw new Error(`${work} holds a run with other settings or data; resume it with the same options (see ${specPath}), or use another --work`);
    }
    spec.training.maxSteps = saved.training.maxSteps;
    spec.lengthChanges = saved.lengthChanges;
    if (newLength !== null && newLength <= checkpoint.meta.step) {
      throw new Error(`--new-length: the run is at step ${checkpoint.meta.step} already; give a length beyond it, got ${newLength}`);
    }
    if (newLength !== null && newLength !== saved.training.maxSteps) {
      const change = { atStep: checkpoint.meta.step, from: saved.training.maxSteps ?? 0, to: newLength };
      spec.training.maxSteps = newLength;
      spec.lengthChanges = [...(saved.lengthChanges ?? []), change];
      io.log(`the run's length changes from ${change.from} to ${newLength} steps at step ${change.atStep}`);
    }
    await writeAtomic(specPath, JSON.stringify(spec, null, 1));
  } else if (checkpoint !== null) {
    throw new Error(`${work} already holds a run (step ${checkpoint.meta.step}): add --resume to continue it, or choose another --work`);
  } else {
    await writeAtomic(specPath, JSON.stringify(spec, null, 1));
  }

  // --- the tokenizer -----------------------------------------------------------------------------------
  const tokenizerDir = path.join(work, 'tokenizer');
  const tokenizer = await cachedTokenizer(tokenizerDir, trainBooks, vocabSize, io);
  if (tokenizer.vocabSize !== vocabSize || tokenizer.eosTokenId !== vocabSize - 1) {
    throw new Error(`the trained vocabulary has ${tokenizer.vocabSize} tokens, not ${vocabSize}: the corpus is too small for --vocab-size`);
  }

  // --- the data ----------------------------------------------------------------------------------------
  const options = resolveTrainingOptions(training, config);
  let t = performance.now();
  const dataset = datasetWithHeldOutBooks(trainBooks, heldOutBooks, tokenizer, context, spec.evalTokens, training.seed ?? 0);
  const plan = planTraining(dataset, options, config);
  io.log(
    `data: ${n(dataset.train.length)} training tokens, ${n(dataset.heldOut.length)} held out (tokenized in ${s(t)}); ` +
      `${plan.totalSteps} steps of ${n(plan.tokensPerStep)} tokens = ${(plan.totalSteps * plan.tokensPerStep / dataset.train.length).toFixed(2)} epochs`,
  );
  const backend = await initBackend(values.backend);
  io.log(`backend: ${backend.name} (${backend.reason}); model: ${config.nLayer} layers, width ${config.nEmbd}, ${config.nHead} heads, context ${context}, ${n(plan.trainableParameters)} parameters`);

  // --- training ------------------------------------------------------------------------------------------
  const model = createRandomModel(config, options.seed);
  const base = paramMapOf(model.params);
  const control = new TrainingControl();
  if (io.signal) control.follow(io.signal);
  const stop = () => {
    io.log('stopping after the current micro-batch (a checkpoint will be saved)…');
    control.cancel();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const logPath = path.join(work, 'train-log.jsonl');
  let log = '';
  let result;
  try {
    result = await runTraining({
      config,
      params: base,
      dataset,
      options,
      sink,
      resume: checkpoint !== null,
      allowNewLength: (spec.lengthChanges?.length ?? 0) > 0,
      control,
      onEvent: (event) => {
        if (event.type === 'started') model.dispose(); // the run holds its own copy
        log += JSON.stringify({ at: new Date().toISOString(), ...event, plan: undefined }) + '\n';
        const line = describe(event);
        if (line) io.log(line);
        if (event.type === 'checkpoint' || event.type === 'finished') {
          void writeFile(logPath, log, { flag: 'a' });
          log = '';
        }
      },
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    model.dispose();
  }
  try {
    if (result.status === 'cancelled') {
      io.log(`stopped at step ${result.step}/${result.totalSteps}; continue with --resume`);
      return 130;
    }

    // --- export, measure, card -------------------------------------------------------------------------
    t = performance.now();
    const heldOutEval = heldOutBooks.map((b) => ({ name: b.name, text: truncateUtf8(b.text, cardEvalBytes) }));
    // F16 halves the file; it is kept when it costs under 0.5 % bits per byte on a sample of the held-out
    // books (a sample, because scoring is as slow as a tenth of the training on this hardware).
    const sample = heldOutBooks.map((b) => ({ name: b.name, text: truncateUtf8(b.text, DTYPE_SAMPLE_BYTES / heldOutBooks.length) }));
    const dirs = { F32: path.join(work, 'export-f32'), F16: path.join(work, 'export-f16') };
    const wanted: Array<'F32' | 'F16'> = dtypeChoice === 'f32' ? ['F32'] : dtypeChoice === 'f16' ? ['F16'] : ['F32', 'F16'];
    const sampleBpb: Partial<Record<'F32' | 'F16', number>> = {};
    for (const dtype of wanted) {
      await rm(dirs[dtype], { recursive: true, force: true });
      await exportTrainedModel(dirs[dtype], config, base, result.weights, { dtype, tokenizerFrom: tokenizerDir });
      if (wanted.length === 2) {
        sampleBpb[dtype] = pooled(await scoreBooks(dirs[dtype], sample)).bitsPerByte;
        io.log(`${dtype}: bits per byte ${sampleBpb[dtype]!.toFixed(4)} on a ${mb(DTYPE_SAMPLE_BYTES)} held-out sample`);
      }
    }
    const chosen: 'F16' | 'F32' =
      dtypeChoice === 'f16' || (dtypeChoice === 'auto' && sampleBpb.F16! <= sampleBpb.F32! * 1.005) ? 'F16' : 'F32';
    const scores = await scoreBooks(dirs[chosen], heldOutEval);
    io.log(`held-out bits per byte (${chosen}): ${pooled(scores).bitsPerByte.toFixed(4)}`);
    const samples = await sampleContinuations(dirs[chosen], options.seed);
    const card = modelCard({
      config,
      dtype: chosen,
      comparison: wanted.length === 2 ? { f32: sampleBpb.F32!, f16: sampleBpb.F16! } : null,
      trainBooks,
      heldOutBooks,
      trainTokens: dataset.train.length,
      tokenizer,
      bytesPerToken: bytes(heldOutBooks) / heldOutBooks.reduce((k, b) => k + tokenizer.encode(b.text).length, 0),
      steps: result.step,
      tokensPerStep: plan.tokensPerStep,
      tokensSeen: result.tokensSeen,
      trainingMs: result.elapsedMs,
      finalHeldOutLoss: result.finalHeldOutLoss,
      options: training,
      backend: backend.name,
      scores,
      cardEvalBytes,
      samples,
      lengthChanges: spec.lengthChanges ?? [],
    });
    await writeFile(path.join(dirs[chosen], 'MODEL_CARD.md'), card);
    // Replace the output folder in one rename, so a reader never sees half a model.
    const staging = `${out}.partial`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(path.dirname(out), { recursive: true });
    await rename(dirs[chosen], staging);
    await rm(out, { recursive: true, force: true });
    await rename(staging, out);
    io.log(`wrote ${out} (${chosen}) in ${s(t)}; total ${s(started)}`);
    return 0;
  } finally {
    result.weights.dispose();
  }
}

async function readCorpus(dir: string): Promise<Book[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.txt.gz')).sort();
  if (files.length === 0) throw new Error(`${dir} has no .txt.gz books`);
  return Promise.all(
    files.map(async (f) => ({ name: f.slice(0, -'.txt.gz'.length), text: gunzipSync(await readFile(path.join(dir, f))).toString('utf8') })),
  );
}

/** The BPE vocabulary of the training books, trained once and reused while the books are the same. */
async function cachedTokenizer(dir: string, books: Book[], vocabSize: number, io: TrainDefaultIo): Promise<Tokenizer> {
  const key = sha256(JSON.stringify({ vocabSize, books: books.map((b) => [b.name, sha256(b.text)]) }));
  const keyPath = path.join(dir, 'source.sha256');
  if (existsSync(keyPath) && (await readFile(keyPath, 'utf8')).trim() === key) {
    io.log(`tokenizer: cached in ${dir}`);
    return loadTokenizer(dir);
  }
  const t = performance.now();
  const counts = new Map<string, number>();
  for (const b of books) countWords(b.text, counts);
  const trained = trainBpe(counts, { vocabSize });
  await rm(dir, { recursive: true, force: true });
  await writeBpeFiles(dir, trained);
  await writeAtomic(keyPath, key + '\n');
  io.log(`tokenizer: ${trained.vocabSize} tokens trained on ${n(counts.size)} distinct words in ${s(t)}`);
  return loadTokenizer(dir);
}

/**
 * The trainer's dataset, with the held-out books as its held-out side (the trainer would otherwise pick
 * held-out documents itself). Held-out windows overlap by one token so every target is scored once, and
 * at most `evalTokens` of them (evenly spread) are scored per evaluation.
 */
function datasetWithHeldOutBooks(train: Book[], heldOut: Book[], tokenizer: Tokenizer, blockSize: number, evalTokens: number, seed: number): Dataset {
  const trainSet = buildDataset(train, tokenizer, { blockSize, stride: blockSize, heldOutFraction: 0, maxHeldOutTokens: evalTokens, seed });
  if (heldOut.length === 0) return trainSet;
  const heldSet = buildDataset(heldOut, tokenizer, { blockSize, stride: blockSize, heldOutFraction: 0, maxHeldOutTokens: evalTokens, seed });
  const stream = heldSet.train;
  const windows: Block[] = [];
  for (let start = 0; start + 1 < stream.length; start += blockSize) windows.push({ start, length: Math.min(blockSize + 1, stream.length - start) });
  const count = Math.max(1, Math.floor(evalTokens / blockSize));
  const chosen = windows.length <= count ? windows : Array.from({ length: count }, (_, i) => windows[Math.floor((i * windows.length) / count)]);
  const scored = (bs: Block[]) => bs.reduce((k, b) => k + b.length - 1, 0);
  return {
    ...trainSet,
    heldOut: stream,
    heldOutBlocks: chosen,
    split: 'documents',
    heldOutDocuments: heldOut.map((b) => b.name),
    heldOutTokensSkipped: scored(windows) - scored(chosen),
    fingerprint: `${trainSet.fingerprint}+${heldSet.fingerprint}`,
  };
}

async function scoreBooks(dir: string, books: Book[]): Promise<Array<TextEvaluation & { name: string }>> {
  const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
  try {
    const scores = [];
    for (const b of books) scores.push({ name: b.name, ...(await evaluateText(paramMapOf(model.params), model.config, tokenizer, b.text)) });
    return scores;
  } finally {
    model.dispose();
  }
}

/** Totals over several texts: loss per token and bits per byte of all of them together. */
function pooled(scores: TextEvaluation[]): { tokens: number; bytes: number; meanLoss: number; bitsPerByte: number } {
  const loss = scores.reduce((k, x) => k + x.totalLoss, 0);
  const tokens = scores.reduce((k, x) => k + x.scoredTokens, 0);
  const bytes = scores.reduce((k, x) => k + x.bytes, 0);
  return { tokens, bytes, meanLoss: loss / tokens, bitsPerByte: loss / Math.LN2 / bytes };
}

async function sampleContinuations(dir: string, seed: number): Promise<Array<{ prompt: string; text: string }>> {
  const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
  try {
    const out = [];
    for (const [i, prompt] of SAMPLE_PROMPTS.entries()) {
      const ids = tokenizer.encode(prompt);
      const r = await generate(model, tokenizer, ids, {
        maxNewTokens: Math.min(SAMPLE_TOKENS, model.config.nPositions - ids.length),
        doSample: true,
        topK: 40,
        temperature: 0.8,
        seed: seed + i,
      });
      // A sequence's text is its continuation alone (the prompt is not repeated in it).
      out.push({ prompt, text: r.sequences[0].text });
    }
    return out;
  } finally {
    model.dispose();
  }
}

interface CardFacts {
  config: GPT2Config;
  dtype: 'F16' | 'F32';
  comparison: { f32: number; f16: number } | null;
  trainBooks: Book[];
  heldOutBooks: Book[];
  trainTokens: number;
  tokenizer: Tokenizer;
  bytesPerToken: number;
  steps: number;
  tokensPerStep: number;
  tokensSeen: number;
  trainingMs: number;
  finalHeldOutLoss: number | null;
  options: TrainingOptions;
  backend: string;
  scores: Array<TextEvaluation & { name: string }>;
  cardEvalBytes: number;
  samples: Array<{ prompt: string; text: string }>;
  lengthChanges: NonNullable<RunSpec['lengthChanges']>;
}

function modelCard(f: CardFacts): string {
  const c = f.config;
  const all = pooled(f.scores);
  const params = paramCount(c);
  const quote = (text: string) => text.split('\n').map((l) => `> ${l}`).join('\n');
  return `# Inkling default model

A small GPT-2 trained from scratch by this repository's own trainer (\`npm run train:default\`, scripts/train-default.ts)
on public-domain English prose. Generated by that script; numbers below are measured, samples are unedited.

## Shape
- GPT-2 architecture: ${c.nLayer} layers, width ${c.nEmbd}, ${c.nHead} heads, MLP ${c.nInner}, context ${c.nPositions} tokens, tied output layer
- ${n(params)} parameters; weights stored as ${f.dtype}${f.comparison ? ` (bits per byte on a held-out sample: F32 ${f.comparison.f32.toFixed(4)}, F16 ${f.comparison.f16.toFixed(4)})` : ''}

## Tokenizer
- Byte-level BPE (GPT-2's pre-tokenizer and byte alphabet) with ${f.tokenizer.vocabSize} tokens, trained on the training books only;
  \`<|endoftext|>\` is id ${f.tokenizer.eosTokenId} (also bos/eos). Files: vocab.json, merges.txt.
- ${f.bytesPerToken.toFixed(2)} bytes per token on the held-out books.

## Data
- ${f.trainBooks.length} public-domain books (${mb(f.trainBooks.reduce((k, b) => k + Buffer.byteLength(b.text), 0))}, ${n(f.trainTokens)} tokens) from ../shared/corpus
  (Project Gutenberg texts with the PG boilerplate removed, and Jane Austen's novels; see that folder's README.md for provenance and cleaning).
- Held out, never trained on (neither the tokenizer nor the model): ${f.heldOutBooks.map((b) => b.name).join(', ')}.
- Content note: 18th–early-20th-century books; they contain period language and attitudes, including slurs. The model can reproduce them.

## Training
- ${n(f.steps)} optimizer steps of ${n(f.tokensPerStep)} tokens (${n(f.tokensSeen)} tokens seen, ${(f.tokensSeen / f.trainTokens).toFixed(2)} epochs)
${f.lengthChanges.map((ch) => `- The run was planned for ${n(ch.from)} steps and changed to ${n(ch.to)} at step ${n(ch.atStep)} (\`--resume --new-length ${ch.to}\`): the learning rate decays over the new length from there.\n`).join('')}- AdamW, peak learning rate ${f.options.learningRate}, cosine decay with warm-up, weight decay 0.1, no dropout, gradient clipping at 1, seed ${f.options.seed}
- ${hours(f.trainingMs)} of training on the ${f.backend} backend (${os.cpus().length} CPU cores, ${os.cpus()[0]?.model ?? 'unknown CPU'})
- Final held-out loss during training (a sample of windows): ${f.finalHeldOutLoss === null ? 'n/a' : f.finalHeldOutLoss.toFixed(4)} nats/token

## Held-out evaluation
Scored with \`inkling eval\` settings: each token once, windows of ${c.nPositions} tokens with stride ${Math.floor(c.nPositions / 2)}, text preceded by
\`<|endoftext|>\`${Number.isFinite(f.cardEvalBytes) ? `, first ${n(f.cardEvalBytes)} bytes of each book` : ''}. Bits per byte = total loss / ln 2 / UTF-8 bytes, comparable across tokenizers.

| book | tokens | loss (nats/token) | perplexity | bits per byte |
|---|---:|---:|---:|---:|
${f.scores.map((x) => `| ${x.name} | ${n(x.scoredTokens)} | ${x.meanLoss.toFixed(4)} | ${x.perplexity.toFixed(2)} | ${x.bitsPerByte.toFixed(4)} |`).join('\n')}
| **all** | ${n(all.tokens)} | ${all.meanLoss.toFixed(4)} | ${Math.exp(all.meanLoss).toFixed(2)} | **${all.bitsPerByte.toFixed(4)}** |

## Sample continuations (unedited; top-k 40, temperature 0.8, up to ${SAMPLE_TOKENS} new tokens)
${f.samples.map((x) => `**${x.prompt}**\n\n${quote(x.prompt + x.text)}`).join('\n\n')}

## Reproduce
\`\`\`
npm run train:default -- ${reproduceFlags(f, f.lengthChanges[0]?.from ?? f.options.maxSteps ?? 0)}
${f.lengthChanges.map((ch) => `# stopped (Ctrl-C) at step ${ch.atStep}, then:\nnpm run train:default -- --resume --new-length ${ch.to} ${reproduceFlags(f, f.lengthChanges[0].from)}`).join('\n')}
\`\`\`
`;
}

function reproduceFlags(f: CardFacts, maxSteps: number): string {
  const c = f.config;
  return (
    `--layers ${c.nLayer} --embd ${c.nEmbd} --heads ${c.nHead} --context ${c.nPositions} --vocab-size ${c.vocabSize} --max-steps ${maxSteps} ` +
    `--batch-size ${f.options.batchSize} --grad-accum ${f.options.gradAccumSteps} --lr ${f.options.learningRate} --seed ${f.options.seed} ` +
    `--held-out ${f.heldOutBooks.map((b) => b.name).join(',')}${Number.isFinite(f.cardEvalBytes) ? ` --card-eval-bytes ${f.cardEvalBytes}` : ''}`
  );
}

function paramCount(c: GPT2Config): number {
  const perLayer = 4 * c.nEmbd + (c.nEmbd * 3 * c.nEmbd + 3 * c.nEmbd) + (c.nEmbd * c.nEmbd + c.nEmbd) + 2 * c.nEmbd * c.nInner + c.nInner + c.nEmbd;
  return c.vocabSize * c.nEmbd + c.nPositions * c.nEmbd + c.nLayer * perLayer + 2 * c.nEmbd;
}

function describe(event: TrainingEvent): string | null {
  switch (event.type) {
    case 'progress':
      return (
        `step ${event.step}/${event.totalSteps} loss ${event.trainLoss.toFixed(3)} lr ${event.learningRate.toExponential(2)} ` +
        `${event.tokensPerSecond.toFixed(0)} tok/s elapsed ${hours(event.elapsedMs)} eta ${hours(event.etaMs)}`
      );
    case 'evaluation':
      return `eval step ${event.step}: held-out loss ${event.heldOutLoss.toFixed(4)} (ppl ${event.perplexity.toFixed(2)})`;
    case 'checkpoint':
      return `checkpoint at step ${event.step} (${event.reason})`;
    case 'started':
      return event.resumedFromStep === null ? null : `resumed from step ${event.resumedFromStep}`;
    default:
      return null;
  }
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (!Number.isFinite(maxBytes) || Buffer.byteLength(text) <= maxBytes) return text;
  return Buffer.from(text).subarray(0, maxBytes).toString('utf8').replace(/\uFFFD$/, '');
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const n = (x: number) => x.toLocaleString('en-US');
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const s = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;
function hours(ms: number): string {
  const sec = Math.round(ms / 1000);
  if (sec < 120) return `${sec} s`;
  const m = Math.round(sec / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  trainDefault(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`train:default: ${error.message}`);
      process.exit(1);
    },
  );
}
