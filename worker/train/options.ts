/**
 * Training options, their defaults, and the plan (token, block and step counts) they give on a dataset.
 *
 * Defaults are for what users bring: a few hundred KB of their own prose (≈100k GPT-2 tokens) on GPT-2
 * small, trained on a CPU (wasm, ~tens of tokens/s), so a run is a few hundred optimizer steps at most:
 *
 * - LoRA: rank 8, alpha 16 (scale 2), dropout 0.05 on `c_attn` — PEFT's common GPT-2 setting. Peak learning
 *   rate 3e-4: the LoRA paper trained GPT-2 at 2e-4 with scale alpha/r = 8 for thousands of steps; we have
 *   a quarter of that scale and far fewer steps, and adapters starting at B = 0 tolerate a higher rate than
 *   full weights, so a little above 2e-4 (PEFT examples use 1e-4…3e-4). Weight decay 0.01 as in the paper.
 * - Full fine-tuning: 5e-5, the usual rate for GPT-2 small (Hugging Face's default); higher rates quickly
 *   wreck a pretrained model on little data. Dropout 0.1 (GPT-2's own) since every weight can now overfit.
 * - From scratch (random init): 1e-3, beta2 0.99, weight decay 0.1, as nanoGPT trains small GPTs.
 * - Effective batch 8 blocks of 128 tokens (micro-batches of 2, accumulated 4 times): 1k tokens per step
 *   gives ~100 steps per epoch on 100k tokens, and a micro-batch of 256 tokens is a few seconds on wasm, so
 *   pause and cancel answer quickly. Blocks of 128 tokens suit a completer that continues sentences and
 *   cost less attention than 1024; the model keeps its long context (LoRA leaves position embeddings alone).
 * - Warm-up 5 % of the steps (at most 100), cosine decay to a tenth of the peak, gradient norm clipped at 1.
 * - Held-out 10 %, evaluated about ten times per run; early stop after 3 evaluations without improvement,
 *   keeping the best weights — with little data the best point often comes before the last epoch.
 */
import type { GPT2Config } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { BatchSchedule, buildDataset, type Dataset, type DatasetOptions, type TrainingText } from './data.js';
import { DEFAULT_LORA, checkLoraConfig, type LoraConfig, type LoraModule } from './lora.js';

export type TrainingMethod = 'lora' | 'full';

export interface TrainingOptions {
  /** `lora`: train small adapters beside the frozen model; `full`: train every weight. Default `lora`. */
  method?: TrainingMethod;
  /** The weights start random (training a model from nothing): changes the defaults, not the algorithm. */
  fromScratch?: boolean;
  epochs?: number;
  /** Stop after this many optimizer steps even if the epochs are not done (the schedule fits this length). */
  maxSteps?: number | null;
  /** Input tokens per block (default 128, at most the model's context). */
  blockSize?: number;
  /** Distance between training blocks (default: blockSize, no overlap). */
  stride?: number;
  heldOutFraction?: number;
  maxHeldOutTokens?: number;
  /** Blocks per forward pass. */
  batchSize?: number;
  /** Forward passes whose gradients are summed into one optimizer step. */
  gradAccumSteps?: number;
  learningRate?: number;
  /** The learning rate cosine decay ends at, as a share of the peak. */
  minLearningRateRatio?: number;
  /** Linear warm-up steps; default (null) 5 % of the run, at least 1, at most 100. */
  warmupSteps?: number | null;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Clip the global gradient norm to this; `Infinity` (or null) turns clipping off. */
  maxGradNorm?: number | null;
  /** GPT-2's dropout (embeddings, attention, residual branches) while training. */
  dropout?: number;
  /** Adapter settings (method lora); null or absent: the defaults. */
  lora?: Partial<LoraConfig> | null;
  /** Evaluate the held-out loss every this many steps (and at the end); default (null) about ten times per run. */
  evalEvery?: number | null;
  /** Stop after this many evaluations without improvement, and keep the best weights; null: never. */
  earlyStopPatience?: number | null;
  /** An evaluation improves only when it is lower than the best by more than this. */
  earlyStopMinDelta?: number;
  /** Save a checkpoint every this many steps (and at the end); default (null): at every evaluation. */
  checkpointEvery?: number | null;
  seed?: number;
}

/** Every option decided, as a checkpoint stores it; a resumed run must use the same. */
export interface ResolvedTrainingOptions {
  method: TrainingMethod;
  fromScratch: boolean;
  epochs: number;
  maxSteps: number | null;
  blockSize: number;
  stride: number;
  heldOutFraction: number;
  maxHeldOutTokens: number;
  batchSize: number;
  gradAccumSteps: number;
  learningRate: number;
  minLearningRateRatio: number;
  warmupSteps: number | null;
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** null: no clipping (JSON has no Infinity). */
  maxGradNorm: number | null;
  dropout: number;
  lora: LoraConfig | null;
  evalEvery: number | null;
  earlyStopPatience: number | null;
  earlyStopMinDelta: number;
  checkpointEvery: number | null;
  seed: number;
}

export class TrainingOptionsError extends Error {
  override name = 'TrainingOptionsError';
}

/** Fills in the defaults and checks every value. Idempotent: resolved options (a checkpoint's) resolve to themselves. */
export function resolveTrainingOptions(options: TrainingOptions, config: GPT2Config): ResolvedTrainingOptions {
  const method = options.method ?? 'lora';
  if (method !== 'lora' && method !== 'full') throw new TrainingOptionsError(`method must be "lora" or "full", got "${method}"`);
  const fromScratch = options.fromScratch ?? false;
  if (fromScratch && method === 'lora') throw new TrainingOptionsError('training from scratch needs method "full": LoRA adapts an existing model');
  const preset = fromScratch ? SCRATCH : method === 'lora' ? LORA : FULL;

  const blockSize = options.blockSize ?? Math.min(preset.blockSize, config.nPositions);
  const lora: LoraConfig | null = method === 'lora' ? { ...DEFAULT_LORA, ...options.lora } : null;
  if (lora) {
    lora.targets = [...lora.targets] as LoraModule[];
    checkLoraConfig(lora);
  }
  const resolved: ResolvedTrainingOptions = {
    method,
    fromScratch,
    epochs: options.epochs ?? preset.epochs,
    maxSteps: options.maxSteps ?? null,
    blockSize,
    stride: options.stride ?? blockSize,
    heldOutFraction: options.heldOutFraction ?? 0.1,
    maxHeldOutTokens: options.maxHeldOutTokens ?? 8192,
    // One block per forward pass: on wasm a 128-token block of GPT-2 small already peaks near 3.3 GB (bench/train.ts);
    // two abort at the 4 GiB heap. Accumulation keeps 8 blocks per optimizer step.
    batchSize: options.batchSize ?? 1,
    gradAccumSteps: options.gradAccumSteps ?? 8,
    learningRate: options.learningRate ?? preset.learningRate,
    minLearningRateRatio: options.minLearningRateRatio ?? 0.1,
    warmupSteps: options.warmupSteps ?? null,
    weightDecay: options.weightDecay ?? preset.weightDecay,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? preset.beta2,
    epsilon: options.epsilon ?? 1e-8,
    maxGradNorm: options.maxGradNorm === undefined ? 1 : options.maxGradNorm === null || !Number.isFinite(options.maxGradNorm) ? null : options.maxGradNorm,
    dropout: options.dropout ?? preset.dropout,
    lora,
    evalEvery: options.evalEvery ?? null,
    earlyStopPatience: options.earlyStopPatience === undefined ? preset.earlyStopPatience : options.earlyStopPatience,
    earlyStopMinDelta: options.earlyStopMinDelta ?? 0,
    checkpointEvery: options.checkpointEvery ?? null,
    seed: options.seed ?? 0,
  };
  check(resolved, config);
  return resolved;
}

const LORA = { blockSize: 128, epochs: 3, learningRate: 3e-4, weightDecay: 0.01, beta2: 0.999, dropout: 0, earlyStopPatience: 3 };
const FULL = { blockSize: 128, epochs: 2, learningRate: 5e-5, weightDecay: 0.01, beta2: 0.999, dropout: 0.1, earlyStopPatience: 3 };
const SCRATCH = { blockSize: 256, epochs: 10, learningRate: 1e-3, weightDecay: 0.1, beta2: 0.99, dropout: 0.1, earlyStopPatience: null };

function check(o: ResolvedTrainingOptions, config: GPT2Config): void {
  const positiveInt = (name: string, v: number | null) => {
    if (v !== null && (!Number.isInteger(v) || v < 1)) throw new TrainingOptionsError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt('epochs', o.epochs);
  positiveInt('maxSteps', o.maxSteps);
  positiveInt('blockSize', o.blockSize);
  positiveInt('stride', o.stride);
  positiveInt('batchSize', o.batchSize);
  positiveInt('gradAccumSteps', o.gradAccumSteps);
  positiveInt('evalEvery', o.evalEvery);
  positiveInt('checkpointEvery', o.checkpointEvery);
  positiveInt('maxHeldOutTokens', o.maxHeldOutTokens);
  if (o.warmupSteps !== null && (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0)) {
    throw new TrainingOptionsError(`warmupSteps must be an integer ≥ 0, got ${o.warmupSteps}`);
  }
  if (o.earlyStopPatience !== null) positiveInt('earlyStopPatience', o.earlyStopPatience);
  if (o.blockSize > config.nPositions) {
    throw new TrainingOptionsError(`blockSize ${o.blockSize} is longer than the model's context of ${config.nPositions} tokens`);
  }
  if (!(o.learningRate > 0 && Number.isFinite(o.learningRate))) throw new TrainingOptionsError(`learningRate must be positive, got ${o.learningRate}`);
  const unit = (name: string, v: number, open: boolean) => {
    if (!(v >= 0 && (open ? v < 1 : v <= 1))) throw new TrainingOptionsError(`${name} must be in [0, 1${open ? ')' : ']'}, got ${v}`);
  };
  unit('minLearningRateRatio', o.minLearningRateRatio, false);
  unit('heldOutFraction', o.heldOutFraction, true);
  unit('dropout', o.dropout, true);
  unit('beta1', o.beta1, true);
  unit('beta2', o.beta2, true);
  if (!(o.weightDecay >= 0)) throw new TrainingOptionsError(`weightDecay must be ≥ 0, got ${o.weightDecay}`);
  if (!(o.epsilon > 0)) throw new TrainingOptionsError(`epsilon must be positive, got ${o.epsilon}`);
  if (o.maxGradNorm !== null && !(o.maxGradNorm > 0)) throw new TrainingOptionsError(`maxGradNorm must be positive, got ${o.maxGradNorm}`);
  if (!Number.isInteger(o.seed)) throw new TrainingOptionsError(`seed must be an integer, got ${o.seed}`);
}

export function datasetOptions(o: ResolvedTrainingOptions): DatasetOptions {
  return {
    blockSize: o.blockSize,
    stride: o.stride,
    heldOutFraction: o.heldOutFraction,
    maxHeldOutTokens: o.maxHeldOutTokens,
    seed: o.seed,
  };
}

/** What a run will do, known before it starts. */
export interface TrainingPlan {
  method: TrainingMethod;
  documents: number;
  trainTokens: number;
  heldOutTokens: number;
  /** Held-out tokens an evaluation scores (at most `maxHeldOutTokens`). */
  heldOutTokensEvaluated: number;
  split: Dataset['split'];
  heldOutDocuments: string[];
  blockSize: number;
  stride: number;
  trainBlocks: number;
  heldOutBlocks: number;
  batchSize: number;
  gradAccumSteps: number;
  /** Tokens (inputs) one optimizer step trains on, when its micro-batches are full. */
  tokensPerStep: number;
  stepsPerEpoch: number;
  epochs: number;
  totalSteps: number;
  /** Tokens the whole run trains on (for a time estimate: divide by tokens per second). */
  tokensToTrain: number;
  warmupSteps: number;
  evalEvery: number;
  /** Held-out evaluations the run makes, the one before the first step included. */
  evaluations: number;
  checkpointEvery: number;
  /** Trained parameters (adapter weights for LoRA). */
  trainableParameters: number;
}

export function planTraining(dataset: Dataset, options: ResolvedTrainingOptions, config: GPT2Config): TrainingPlan {
  const schedule = new BatchSchedule(dataset.trainBlocks.length, options.batchSize, options.gradAccumSteps, options.seed);
  const stepsPerEpoch = schedule.stepsPerEpoch;
  const totalSteps = Math.min(stepsPerEpoch * options.epochs, options.maxSteps ?? Infinity);
  const warmupSteps = options.warmupSteps ?? Math.min(100, Math.max(1, Math.round(0.05 * totalSteps)));
  const evalEvery = options.evalEvery ?? Math.max(1, Math.min(stepsPerEpoch, Math.ceil(totalSteps / 10)));
  const documents = new Set([...dataset.trainDocuments, ...dataset.heldOutDocuments]).size;
  const fullEpochs = Math.floor(totalSteps / stepsPerEpoch);
  const tokensPerEpoch = dataset.trainBlocks.length * dataset.blockSize;
  const tokensPerStep = options.batchSize * options.gradAccumSteps * dataset.blockSize;
  const evaluations = dataset.heldOutBlocks.length === 0 ? 0 : 1 + Math.floor(totalSteps / evalEvery) + (totalSteps % evalEvery === 0 ? 0 : 1);
  return {
    method: options.method,
    documents,
    trainTokens: dataset.train.length,
    heldOutTokens: dataset.heldOut.length,
    heldOutTokensEvaluated: dataset.heldOutBlocks.reduce((n, b) => n + b.length - 1, 0),
    split: dataset.split,
    heldOutDocuments: dataset.heldOutDocuments,
    blockSize: dataset.blockSize,
    stride: dataset.stride,
    trainBlocks: dataset.trainBlocks.length,
    heldOutBlocks: dataset.heldOutBlocks.length,
    batchSize: options.batchSize,
    gradAccumSteps: options.gradAccumSteps,
    tokensPerStep,
    stepsPerEpoch,
    epochs: options.epochs,
    totalSteps,
    tokensToTrain: fullEpochs * tokensPerEpoch + Math.min((totalSteps % stepsPerEpoch) * tokensPerStep, tokensPerEpoch),
    warmupSteps: Math.min(warmupSteps, totalSteps),
    evalEvery,
    evaluations,
    checkpointEvery: options.checkpointEvery ?? evalEvery,
    trainableParameters: trainableParameterCount(config, options),
  };
}

/** Tokenizes the texts and plans the run: everything a UI shows before the user presses Start. */
export function prepareTraining(
  texts: readonly TrainingText[],
  tokenizer: Tokenizer,
  config: GPT2Config,
  options: TrainingOptions,
): { options: ResolvedTrainingOptions; dataset: Dataset; plan: TrainingPlan } {
  const resolved = resolveTrainingOptions(options, config);
  const dataset = buildDataset(texts, tokenizer, datasetOptions(resolved));
  return { options: resolved, dataset, plan: planTraining(dataset, resolved, config) };
}

function trainableParameterCount(config: GPT2Config, options: ResolvedTrainingOptions): number {
  const { nEmbd: C, nInner: F, nLayer: L } = config;
  if (options.lora) {
    const r = options.lora.rank;
    const perLayer: Record<LoraModule, number> = {
      'attn.c_attn': r * (C + 3 * C),
      'attn.c_proj': r * (C + C),
      'mlp.c_fc': r * (C + F),
      'mlp.c_proj': r * (F + C),
    };
    return L * options.lora.targets.reduce((n, t) => n + perLayer[t], 0);
  }
  const perLayer = 4 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * F + F) + (F * C + C);
  return config.vocabSize * C + config.nPositions * C + L * perLayer + 2 * C;
}
