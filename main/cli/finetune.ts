/**
 * `inkling finetune`: the training engine headless. Reads .txt/.md files, trains (LoRA or full), prints
 * progress, keeps checkpoints under OUT/checkpoints, writes the merged Hugging Face model to OUT/model, and
 * continues a stopped run with --resume. Ctrl-C stops after the current micro-batch with a checkpoint.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../../worker/backend.js';
import { gpt2TensorShapes } from '../../worker/model/weights.js';
import { checkTrainingFits } from '../../worker/training-job.js';
import { loadModel, readGPT2Config } from '../../worker/model/load.js';
import { createRandomModel } from '../../worker/model/random.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import {
  FileCheckpointSink,
  TrainingControl,
  exportTrainedModel,
  paramMapOf,
  parseLoraTargets,
  prepareTraining,
  resolveTrainingOptions,
  runTraining,
  type ResolvedTrainingOptions,
  type TrainingEvent,
  type TrainingOptions,
  type TrainingPlan,
  type TrainingText,
} from '../../worker/train/index.js';
import { UsageError, parseFloatOption, parseIntOption } from './args.js';
import { PROCESS_IO, type CliIo } from './task-io.js';

export const FINETUNE_USAGE = `Usage: inkling finetune --model DIR --data FILE_OR_DIR [options]

Trains on the .txt/.md files given (a file, or a folder searched recursively) and writes OUT/model, a
Hugging Face GPT-2 folder with the result merged in; checkpoints go to OUT/checkpoints.

  --method lora|full     LoRA adapters (default) or every weight
  --epochs N             passes over the text (default: 3 for LoRA, 2 for full)
  --lr X                 peak learning rate (default: 3e-4 for LoRA, 5e-5 for full)
  --out DIR              where checkpoints and the model go (default: ./finetuned)
  --resume               continue the run in OUT from its last checkpoint (its options are kept)
  --json                 one JSON object per line instead of text
  --max-steps N          stop after N optimizer steps
  --block-size N         tokens per training block (default 128)
  --batch-size N         blocks per forward pass (default 2)
  --grad-accum N         forward passes per optimizer step (default 4)
  --rank N               LoRA rank (default 8)      --alpha X   LoRA alpha (default 16)
  --targets LIST         LoRA targets, e.g. c_attn,c_proj,c_fc (default c_attn)
  --eval-every N         held-out evaluation every N steps   --checkpoint-every N
  --patience N           early stop after N evaluations without improvement (0: never)
  --from-scratch         start from random weights of the model's shape (method full)
  --seed N               (default 0)                --backend auto|tensorflow|wasm|cpu`;

const OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string' },
  method: { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  json: { type: 'boolean' },
  'max-steps': { type: 'string' },
  'block-size': { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  rank: { type: 'string' },
  alpha: { type: 'string' },
  targets: { type: 'string' },
  'eval-every': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  patience: { type: 'string' },
  'from-scratch': { type: 'boolean' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Kept as a name of its own for callers; the shape is every command's. */
export type FinetuneIo = CliIo;

const TEXT_EXTENSIONS = new Set(['.txt', '.md', '.markdown']);

export async function finetuneCommand(args: string[], io: FinetuneIo = PROCESS_IO): Promise<number> {
  let verbose = args.includes('--verbose');
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: false, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values } = parsed;
    verbose = values.verbose === true;
    if (values.help) {
      io.stdout.write(FINETUNE_USAGE + '\n');
      return 0;
    }
    return await finetune(values, io);
  } catch (error) {
    const e = error as Error;
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling finetune: ${e.message.split('\n')[0]}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

async function finetune(values: Values, io: FinetuneIo): Promise<number> {
  if (values.model === undefined) throw new UsageError('finetune needs --model DIR (a GPT-2 folder)');
  if (values.data === undefined) throw new UsageError('finetune needs --data FILE_OR_DIR (.txt/.md files)');
  const requested = trainingOptions(values);
  const out = path.resolve(values.out ?? 'finetuned');
  const sink = new FileCheckpointSink(path.join(out, 'checkpoints'));
  const print = printer(values.json === true, io);

  const checkpoint = await sink.loadLatest();
  if (values.resume && checkpoint === null) throw new UsageError(`nothing to resume: ${sink.dir} has no checkpoint`);
  if (!values.resume && checkpoint !== null) {
    throw new UsageError(`${out} already holds a run (step ${checkpoint.meta.step}): add --resume to continue it, or choose another --out`);
  }

  const backend = await initBackend(values.backend);
  const texts = await readTexts(values.data);
  const config = await readGPT2Config(values.model);
  const tokenizer = await loadTokenizer(values.model);
  // A resumed run keeps the options it started with; a different dataset or model is refused by the engine.
  const options: ResolvedTrainingOptions = checkpoint?.meta.options ?? resolveTrainingOptions(requested, config);
  if (checkpoint) {
    const asked = resolveTrainingOptions({ method: options.method, fromScratch: options.fromScratch, ...requested }, config);
    const ignored = (Object.keys(requested) as (keyof TrainingOptions & keyof ResolvedTrainingOptions)[]).filter(
      (k) => JSON.stringify(asked[k]) !== JSON.stringify(options[k]),
    );
    if (ignored.length > 0) print.note(`a resumed run keeps the options it started with; ignoring ${ignored.join(', ')}`);
  }
  const { dataset, plan } = prepareTraining(texts, tokenizer, config, options);
  print.plan(plan, backend.reason, checkpoint?.meta.step ?? null);
  // Before loading anything: a run the backend cannot hold fails now with a way out, not hours in.
  const baseParameters = [...gpt2TensorShapes(config).values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
  checkTrainingFits(baseParameters, plan, backend.name, config);

  const model: GPT2Model = options.fromScratch ? createRandomModel(config, options.seed) : await loadModel(values.model);
  const control = new TrainingControl();
  if (io.signal) control.follow(io.signal);
  let interrupts = 0;
  const onSigint = () => {
    // A second Ctrl-C does not wait: the last periodic checkpoint is still there to resume from.
    if (++interrupts > 1) process.exit(130);
    print.note('stopping after the current micro-batch (a checkpoint will be saved; Ctrl-C again to quit now)…');
    control.cancel();
  };
  process.on('SIGINT', onSigint);
  try {
    const base = paramMapOf(model.params);
    const result = await runTraining({
      config,
      params: base,
      dataset,
      options,
      sink,
      resume: checkpoint !== null,
      control,
      onEvent: (event) => {
        // Full training has copied the weights by now; freeing the originals leaves room (wasm has 4 GiB).
        if (event.type === 'started' && options.method === 'full') model.dispose();
        print.event(event, plan);
      },
    });
    try {
      if (result.status === 'cancelled') {
        print.done({ status: 'cancelled', step: result.step, totalSteps: result.totalSteps, resume: `add --resume to continue from step ${result.step}` });
        return 130;
      }
      const modelDir = path.join(out, 'model');
      await exportTrainedModel(modelDir, config, base, result.weights, { tokenizerFrom: values.model });
      const ppl = (loss: number | null) => (loss === null ? null : Math.exp(loss));
      print.done({
        status: result.status,
        step: result.step,
        totalSteps: result.totalSteps,
        heldOutPerplexityBefore: ppl(result.initialHeldOutLoss),
        heldOutPerplexityAfter: ppl(result.finalHeldOutLoss),
        bestStep: result.bestStep,
        model: modelDir,
      });
      return 0;
    } finally {
      result.weights.dispose();
    }
  } finally {
    process.off('SIGINT', onSigint);
    model.dispose();
  }
}

function trainingOptions(values: Values): TrainingOptions {
  const method = values.method ?? 'lora';
  if (method !== 'lora' && method !== 'full') throw new UsageError(`--method must be lora or full, got "${method}"`);
  const fromScratch = values['from-scratch'] === true;
  if (fromScratch && values.method === undefined) throw new UsageError('--from-scratch trains every weight: add --method full');
  const lora: TrainingOptions['lora'] = {};
  const rank = parseIntOption('rank', values.rank, 1);
  const alpha = parseFloatOption('alpha', values.alpha);
  if (rank !== undefined) lora.rank = rank;
  if (alpha !== undefined) lora.alpha = alpha;
  if (values.targets !== undefined) {
    try {
      lora.targets = parseLoraTargets(values.targets.split(','));
    } catch (error) {
      throw new UsageError(`--targets: ${(error as Error).message}`);
    }
  }
  const patience = parseIntOption('patience', values.patience, 0);
  const options: TrainingOptions = {
    method: values.method === undefined ? undefined : method,
    fromScratch: fromScratch || undefined,
    epochs: parseIntOption('epochs', values.epochs, 1),
    learningRate: parseFloatOption('lr', values.lr),
    maxSteps: parseIntOption('max-steps', values['max-steps'], 1),
    blockSize: parseIntOption('block-size', values['block-size'], 1),
    batchSize: parseIntOption('batch-size', values['batch-size'], 1),
    gradAccumSteps: parseIntOption('grad-accum', values['grad-accum'], 1),
    evalEvery: parseIntOption('eval-every', values['eval-every'], 1),
    checkpointEvery: parseIntOption('checkpoint-every', values['checkpoint-every'], 1),
    earlyStopPatience: patience === undefined ? undefined : patience === 0 ? null : patience,
    seed: parseIntOption('seed', values.seed, 0),
    lora: method === 'lora' ? lora : undefined,
  };
  if (method !== 'lora' && (rank !== undefined || alpha !== undefined || values.targets !== undefined)) {
    throw new UsageError('--rank, --alpha and --targets apply to --method lora only');
  }
  for (const key of Object.keys(options) as (keyof TrainingOptions)[]) if (options[key] === undefined) delete options[key];
  return options;
}

/** The .txt/.md files of `target` (a file, or a folder searched recursively), named relative to it. */
async function readTexts(target: string): Promise<TrainingText[]> {
  const info = await stat(target).catch(() => null);
  if (info === null) throw new UsageError(`--data ${target} does not exist`);
  if (info.isFile()) return [{ name: path.basename(target), text: await readFile(target, 'utf8') }];
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && TEXT_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) files.push(full);
    }
  };
  await walk(target);
  if (files.length === 0) throw new UsageError(`--data ${target} has no .txt or .md files`);
  return Promise.all(files.map(async (file) => ({ name: path.relative(target, file), text: await readFile(file, 'utf8') })));
}

function printer(json: boolean, io: FinetuneIo) {
  const line = (text: string) => io.stdout.write(text + '\n');
  const emit = (object: Record<string, unknown>) => line(JSON.stringify(object));
  return {
    plan(plan: TrainingPlan, backend: string, resumeFrom: number | null) {
      if (json) return emit({ event: 'plan', backend, resumeFrom, ...plan });
      line(`backend: ${backend}`);
      line(
        `plan: ${plan.method}, ${plan.documents} document(s), ${n(plan.trainTokens)} training tokens, ` +
          `${n(plan.heldOutTokens)} held out (${plan.split}); ${n(plan.trainBlocks)} blocks of ${plan.blockSize}; ` +
          `${plan.stepsPerEpoch} steps/epoch × ${plan.epochs} = ${plan.totalSteps} steps of ${n(plan.tokensPerStep)} tokens; ` +
          `${n(plan.trainableParameters)} trained parameters`,
      );
      if (resumeFrom !== null) line(`resuming from step ${resumeFrom}`);
    },
    event(event: TrainingEvent, plan: TrainingPlan) {
      if (event.type === 'started') return;
      if (json) {
        const { type, ...rest } = event;
        return emit({ event: type, ...rest });
      }
      switch (event.type) {
        case 'progress': {
          const heldOut = event.heldOutLoss === null ? '' : ` held-out ${event.heldOutLoss.toFixed(3)} (ppl ${event.heldOutPerplexity!.toFixed(2)})`;
          line(
            `step ${event.step}/${event.totalSteps} epoch ${event.epoch}/${event.epochs} loss ${event.trainLoss.toFixed(3)} ` +
              `lr ${event.learningRate.toExponential(2)}${heldOut} ${event.tokensPerSecond.toFixed(1)} tok/s ` +
              `elapsed ${duration(event.elapsedMs)} eta ${duration(event.etaMs)}`,
          );
          break;
        }
        case 'evaluation':
          line(`eval step ${event.step}/${plan.totalSteps}: held-out loss ${event.heldOutLoss.toFixed(4)}, perplexity ${event.perplexity.toFixed(2)}${event.improved ? ' (best)' : ''}`);
          break;
        case 'checkpoint':
          line(`checkpoint at step ${event.step} (${event.reason})`);
          break;
        case 'paused':
        case 'resumed':
          line(`${event.type} at step ${event.step}`);
          break;
        case 'finished':
          break;
      }
    },
    note(text: string) {
      if (json) emit({ event: 'note', message: text });
      else io.stderr.write(text + '\n');
    },
    done(summary: Record<string, unknown>) {
      if (json) return emit({ event: 'done', ...summary });
      const ppl = (x: unknown) => (typeof x === 'number' ? x.toFixed(2) : 'n/a');
      if (summary.status === 'cancelled') {
        line(`cancelled at step ${summary.step}/${summary.totalSteps}; ${summary.resume}`);
        return;
      }
      line(
        `done (${summary.status}) after ${summary.step}/${summary.totalSteps} steps; held-out perplexity ` +
          `${ppl(summary.heldOutPerplexityBefore)} → ${ppl(summary.heldOutPerplexityAfter)}; model written to ${summary.model}`,
      );
    },
  };
}

const n = (x: number) => x.toLocaleString('en-US');

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
