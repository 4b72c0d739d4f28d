/**
 * The training loop: micro-batches → accumulated gradients → clip → AdamW, with evaluation, early stopping,
 * checkpoints, progress events, pause/resume/cancel, and exact resumption from a checkpoint.
 *
 * Determinism is by construction: the data order is a function of (seed, epoch), the learning rate of the
 * step, and the dropout masks of a random state that checkpoints carry. So a run that is killed and resumed
 * from its last checkpoint redoes the lost steps with the same numbers and ends where an uninterrupted run
 * ends.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../model/types.js';
import {
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
  type CheckpointReason,
  type CheckpointSink,
  type CheckpointTensor,
  type HistoryEntry,
  type TrainingCheckpoint,
  type TrainingStatus,
} from './checkpoint.js';
import { TrainingControl } from './control.js';
import { BatchSchedule, makeBatch, type Dataset } from './data.js';
import { evaluateLoss } from './evaluate.js';
import { batchLoss, checkParams, frozenWeights, type ForwardContext, type ParamMap } from './forward.js';
import { initLoraTensors, loraSet } from './lora.js';
import { AdamW, clipByGlobalNorm, learningRateAt } from './optimizer.js';
import { planTraining, type ResolvedTrainingOptions, type TrainingPlan } from './options.js';
import { TrainingRng, deriveSeed } from './rng.js';
import { TrainedWeights } from './weights.js';
import { registerGradients } from './gradients.js';

export type TrainingEvent =
  | { type: 'started'; plan: TrainingPlan; resumedFromStep: number | null }
  | ({ type: 'progress' } & TrainingProgress)
  | { type: 'evaluation'; step: number; heldOutLoss: number; perplexity: number; improved: boolean }
  | { type: 'checkpoint'; step: number; reason: CheckpointReason }
  | { type: 'paused'; step: number }
  | { type: 'resumed'; step: number }
  | { type: 'finished'; status: TrainingStatus; step: number; heldOutLoss: number | null; perplexity: number | null };

export interface TrainingProgress {
  /** Optimizer steps done. */
  step: number;
  totalSteps: number;
  /** 1-based epoch the step belonged to. */
  epoch: number;
  epochs: number;
  trainLoss: number;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The latest held-out loss and its perplexity (null before the first evaluation or without held-out text). */
  heldOutLoss: number | null;
  heldOutPerplexity: number | null;
  /** Training tokens per second in this session (evaluations and pauses excluded). */
  tokensPerSecond: number;
  /** Time spent on the run so far, over every session, pauses excluded. */
  elapsedMs: number;
  /** Estimated time to the end (at this session's pace, evaluations included). */
  etaMs: number;
}

export interface TrainingRunInit {
  config: GPT2Config;
  /**
   * Starting weights (the frozen base for LoRA). The run only reads them; the caller still owns them. Full
   * training copies them before it emits `started`, so a caller short of memory may free them then.
   */
  params: ParamMap;
  dataset: Dataset;
  options: ResolvedTrainingOptions;
  sink?: CheckpointSink;
  /** Continue from the sink's latest checkpoint when it has one (otherwise start fresh). */
  resume?: boolean;
  /**
   * Resume even though the checkpoint was made for another `maxSteps`: a run shortened (or lengthened) on
   * the way. From the resumed step on, the learning-rate schedule follows the new length; the steps before
   * stay what they were, so the result is not what a run of the new length from the start would give.
   */
  allowNewLength?: boolean;
  control?: TrainingControl;
  signal?: AbortSignal;
  onEvent?: (event: TrainingEvent) => void;
}

export interface TrainingResult {
  status: TrainingStatus;
  step: number;
  totalSteps: number;
  resumedFromStep: number | null;
  /** Loss of the last step trained (null when no step was). */
  finalTrainLoss: number | null;
  initialHeldOutLoss: number | null;
  /** Held-out loss of the returned weights (the best ones when early stopping kept them). */
  finalHeldOutLoss: number | null;
  bestHeldOutLoss: number | null;
  bestStep: number | null;
  tokensSeen: number;
  elapsedMs: number;
  history: HistoryEntry[];
  /** The trained tensors; the caller owns them (dispose()). */
  weights: TrainedWeights;
}

export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

export async function runTraining(init: TrainingRunInit): Promise<TrainingResult> {
  const run = new TrainingRun(init);
  try {
    return await run.execute();
  } finally {
    run.dispose();
  }
}

/** One run's state. Every tensor it makes is either returned (the weights) or disposed by `dispose()`. */
class TrainingRun {
  private readonly plan: TrainingPlan;
  private readonly schedule: BatchSchedule;
  private readonly control: TrainingControl;
  private readonly rng: TrainingRng;
  private readonly trainable = new Map<string, tf.Variable>();
  /** The base's matrices when they stay frozen (LoRA), with transposed copies where those pay off. */
  private readonly frozen: Map<string, tf.Tensor | null> | null;
  private readonly optimizer: AdamW;
  private best: Map<string, tf.Tensor> | null = null;
  private readonly state: Omit<CheckpointMeta, 'format' | 'reason' | 'createdAt' | 'rngState' | 'dataPosition' | 'options' | 'plan'>;

  // This session only: for tokens/s and the ETA.
  private sessionTokens = 0;
  private sessionTrainMs = 0;
  private sessionSteps = 0;
  private sessionActiveMs = 0;
  private resumedFromStep: number | null = null;
  /** The step of the last checkpoint saved or restored, so that it is not written twice. */
  private savedStep: number | null = null;
  private lastTrainLoss: number | null = null;

  constructor(private readonly init: TrainingRunInit) {
    const { config, params, dataset, options } = init;
    registerGradients();
    checkParams(params, config);
    this.plan = planTraining(dataset, options, config);
    this.schedule = new BatchSchedule(dataset.trainBlocks.length, options.batchSize, options.gradAccumSteps, options.seed);
    this.control = init.control ?? new TrainingControl();
    if (init.signal) this.control.follow(init.signal);
    this.rng = new TrainingRng(deriveSeed(options.seed, 0xd40b));

    const initial = options.lora
      ? initLoraTensors(config, options.lora, deriveSeed(options.seed, 0x10a))
      : new Map(Object.entries(params).map(([name, t]) => [name, t.clone()]));
    for (const [name, t] of initial) {
      this.trainable.set(name, tf.variable(t, true));
      t.dispose();
    }
    this.frozen = options.lora ? frozenWeights(params, wantsTransposes(params)) : null;
    this.optimizer = new AdamW(this.trainable, {
      beta1: options.beta1,
      beta2: options.beta2,
      epsilon: options.epsilon,
      weightDecay: options.weightDecay,
    });
    this.state = {
      step: 0,
      totalSteps: this.plan.totalSteps,
      evaluationPending: true,
      dataFingerprint: dataset.fingerprint,
      modelFingerprint: modelFingerprint(params, config),
      initialHeldOutLoss: null,
      bestHeldOutLoss: null,
      bestStep: null,
      lastHeldOutLoss: null,
      evaluationsWithoutImprovement: 0,
      tokensSeen: 0,
      elapsedMs: 0,
      history: [],
      finished: null,
    };
  }

  async execute(): Promise<TrainingResult> {
    const { sink } = this.init;
    if (this.init.resume && sink) {
      const checkpoint = await sink.loadLatest();
      if (checkpoint) this.restore(checkpoint);
    }
    this.emit({ type: 'started', plan: this.plan, resumedFromStep: this.resumedFromStep });
    if (this.state.finished) return this.result(this.state.finished);

    const started = performance.now();
    let pausedMs = 0;
    const gate = async (): Promise<boolean> => {
      await nextTick();
      if (this.control.paused) {
        const pausedAt = performance.now();
        this.emit({ type: 'paused', step: this.state.step });
        await this.control.untilRunning();
        pausedMs += performance.now() - pausedAt;
        if (!this.control.cancelRequest) this.emit({ type: 'resumed', step: this.state.step });
      }
      return this.control.cancelRequest === null;
    };
    const active = () => performance.now() - started - pausedMs;
    const elapsedBefore = this.state.elapsedMs;
    const syncTime = () => {
      this.sessionActiveMs = active();
      this.state.elapsedMs = elapsedBefore + this.sessionActiveMs;
    };

    // After each step: its evaluation if one is due, then its checkpoint if one is due, then the next step.
    let status: TrainingStatus | null = null;
    while (status === null) {
      if (this.state.evaluationPending) {
        const loss = await this.evaluate(gate);
        syncTime();
        if (loss === 'cancelled') break;
        if (this.afterEvaluation(loss)) {
          status = 'early-stopped';
          break;
        }
      }
      if (this.state.step >= this.plan.totalSteps) {
        status = 'completed';
        break;
      }
      if (this.state.step > 0 && this.state.step % this.plan.checkpointEvery === 0 && this.savedStep !== this.state.step) {
        await this.save('periodic');
      }
      if (!(await this.trainStep(gate))) break;
      syncTime();
      this.state.evaluationPending = this.state.step % this.plan.evalEvery === 0 || this.state.step === this.plan.totalSteps;
    }
    syncTime();

    if (status === null) {
      const cancel = this.control.cancelRequest;
      if (cancel?.checkpoint) await this.save('cancelled');
      const result = this.result('cancelled');
      this.emitFinished(result);
      return result;
    }
    if (this.best && this.state.bestStep !== this.state.step) {
      // With early stopping on, the run ends on its best weights, not on the ones that stopped improving.
      for (const [name, t] of this.best) this.trainable.get(name)!.assign(t);
      this.state.lastHeldOutLoss = this.state.bestHeldOutLoss;
    }
    this.state.finished = status;
    await this.save('final');
    const result = this.result(status);
    this.emitFinished(result);
    return result;
  }

  /** One optimizer step; false when cancelled before it finished (nothing is applied then). */
  private async trainStep(gate: () => Promise<boolean>): Promise<boolean> {
    const { options, dataset } = this.init;
    const step = this.state.step;
    const epoch = Math.floor(step / this.plan.stepsPerEpoch);
    const micro = this.schedule.step(epoch, step % this.plan.stepsPerEpoch);
    const stepTokens = micro.reduce((n, blocks) => n + blocks.length, 0) * dataset.blockSize;
    const rngAtStart = this.rng.getState();
    const variables = [...this.trainable.values()];
    const names = new Map([...this.trainable].map(([name, v]) => [v.name, name]));
    let summed: Map<string, tf.Tensor> | null = null;
    let lossSum = 0;
    const t0 = performance.now();
    let trainMs = 0;
    try {
      for (const blocks of micro) {
        if (!(await gate())) {
          // Redoing this step later must draw the same dropout masks.
          this.rng.setState(rngAtStart);
          return false;
        }
        const m0 = performance.now();
        const batch = makeBatch(dataset.train, blocks.map((i) => dataset.trainBlocks[i]));
        const weight = (batch.inputs.length) / stepTokens;
        const ctx = this.forwardContext(true);
        const { value, grads } = tf.variableGrads(() => tf.mul(batchLoss(ctx.params, batch, ctx.forward), weight) as tf.Scalar, variables);
        lossSum += (await value.data())[0];
        value.dispose();
        summed = accumulate(summed, grads, names);
        trainMs += performance.now() - m0;
      }
      const m0 = performance.now();
      const { grads, norm } = options.maxGradNorm === null ? { grads: summed!, norm: globalNorm(summed!) } : clipByGlobalNorm(summed!, options.maxGradNorm);
      const learningRate = learningRateAt(step, {
        peak: options.learningRate,
        min: options.learningRate * options.minLearningRateRatio,
        warmupSteps: this.plan.warmupSteps,
        totalSteps: this.plan.totalSteps,
      });
      this.optimizer.apply(grads, learningRate);
      const gradNorm = (await norm.data())[0];
      norm.dispose();
      if (grads !== summed) disposeAll(grads);
      trainMs += performance.now() - m0;

      this.state.step = step + 1;
      this.state.tokensSeen += stepTokens;
      this.sessionTokens += stepTokens;
      this.sessionTrainMs += trainMs;
      this.sessionSteps += 1;
      this.lastTrainLoss = lossSum;
      this.state.history.push({ step: step + 1, trainLoss: lossSum, learningRate });
      const elapsed = this.state.elapsedMs + (performance.now() - t0);
      const perStep = (this.sessionActiveMs + (performance.now() - t0)) / this.sessionSteps;
      this.emit({
        type: 'progress',
        step: step + 1,
        totalSteps: this.plan.totalSteps,
        epoch: epoch + 1,
        epochs: Math.ceil(this.plan.totalSteps / this.plan.stepsPerEpoch),
        trainLoss: lossSum,
        learningRate,
        gradNorm,
        heldOutLoss: this.state.lastHeldOutLoss,
        heldOutPerplexity: this.state.lastHeldOutLoss === null ? null : Math.exp(this.state.lastHeldOutLoss),
        tokensPerSecond: this.sessionTrainMs > 0 ? (this.sessionTokens * 1000) / this.sessionTrainMs : 0,
        elapsedMs: elapsed,
        etaMs: perStep * (this.plan.totalSteps - step - 1),
      });
      return true;
    } finally {
      if (summed) disposeAll(summed);
    }
  }

  /** Held-out loss of the current weights; null without held-out text; 'cancelled' when stopped midway. */
  private async evaluate(gate: () => Promise<boolean>): Promise<number | null | 'cancelled'> {
    const { dataset, config, options } = this.init;
    if (dataset.heldOutBlocks.length === 0) return null;
    const ctx = this.forwardContext(false);
    return evaluateLoss(ctx.params, config, dataset, { lora: ctx.forward.lora, batchSize: options.batchSize, between: gate });
  }

  /** Records an evaluation; true when early stopping says to stop. */
  private afterEvaluation(loss: number | null): boolean {
    const s = this.state;
    s.evaluationPending = false;
    if (loss === null) return false;
    const patience = this.init.options.earlyStopPatience;
    if (s.step === 0) s.initialHeldOutLoss = loss;
    s.lastHeldOutLoss = loss;
    const entry = s.history.find((h) => h.step === s.step);
    if (entry) entry.heldOutLoss = loss;
    else s.history.push({ step: s.step, heldOutLoss: loss });
    const improved = s.bestHeldOutLoss === null || loss < s.bestHeldOutLoss - this.init.options.earlyStopMinDelta;
    if (improved) {
      s.bestHeldOutLoss = loss;
      s.bestStep = s.step;
      s.evaluationsWithoutImprovement = 0;
      if (patience !== null) this.keepBest();
    } else {
      s.evaluationsWithoutImprovement += 1;
    }
    this.emit({ type: 'evaluation', step: s.step, heldOutLoss: loss, perplexity: Math.exp(loss), improved });
    return patience !== null && s.evaluationsWithoutImprovement >= patience && s.step < this.plan.totalSteps;
  }

  private keepBest(): void {
    this.disposeBest();
    this.best = new Map([...this.trainable].map(([name, v]) => [name, v.clone()]));
  }

  private forwardContext(training: boolean): { params: ParamMap; forward: ForwardContext } {
    const { config, params, options } = this.init;
    const forward: ForwardContext = { config, frozen: this.frozen ?? undefined };
    let all = params;
    if (options.lora) forward.lora = loraSet(this.trainable, options.lora);
    else all = Object.fromEntries(this.trainable);
    if (training) {
      forward.dropout = options.dropout;
      forward.loraDropout = options.lora?.dropout ?? 0;
      forward.rng = this.rng;
    }
    return { params: all, forward };
  }

  private async save(reason: CheckpointReason): Promise<void> {
    const { sink, options } = this.init;
    if (!sink) return;
    const tensors = new Map<string, CheckpointTensor>();
    const add = async (prefix: string, source: ReadonlyMap<string, tf.Tensor>) => {
      for (const [name, t] of source) tensors.set(`${prefix}/${name}`, { shape: [...t.shape], data: (await t.data()) as Float32Array });
    };
    const adam = this.optimizer.state();
    await add('param', this.trainable);
    await add('adam_m', adam.m);
    await add('adam_v', adam.v);
    if (this.best) await add('best', this.best);
    const meta: CheckpointMeta = {
      format: CHECKPOINT_FORMAT,
      reason,
      createdAt: new Date().toISOString(),
      rngState: this.rng.getState(),
      dataPosition: { epoch: Math.floor(this.state.step / this.plan.stepsPerEpoch), stepInEpoch: this.state.step % this.plan.stepsPerEpoch },
      options,
      plan: this.plan,
      ...structuredClone(this.state),
    };
    if (adam.step !== this.state.step) throw new Error(`internal: optimizer at step ${adam.step}, run at ${this.state.step}`);
    await sink.save({ meta, tensors });
    this.savedStep = this.state.step;
    this.emit({ type: 'checkpoint', step: this.state.step, reason });
  }

  private restore(checkpoint: TrainingCheckpoint): void {
    const { meta, tensors } = checkpoint;
    const { options, dataset } = this.init;
    if (meta.format !== CHECKPOINT_FORMAT) throw new CheckpointMismatchError(`checkpoint format ${meta.format} is not supported`);
    const differing = Object.keys(options).filter(
      (k) =>
        !(k === 'maxSteps' && this.init.allowNewLength) &&
        JSON.stringify(options[k as keyof ResolvedTrainingOptions]) !== JSON.stringify(meta.options[k as keyof ResolvedTrainingOptions]),
    );
    if (this.init.allowNewLength && options.maxSteps !== meta.options.maxSteps && options.maxSteps !== null && options.maxSteps <= meta.step) {
      throw new CheckpointMismatchError(`the run is at step ${meta.step} already: a new length must be longer than that, got ${options.maxSteps}`);
    }
    if (differing.length > 0) {
      throw new CheckpointMismatchError(`the checkpoint was made with different training options (${differing.join(', ')}); resume with the same options or start a new run`);
    }
    if (meta.dataFingerprint !== dataset.fingerprint) {
      throw new CheckpointMismatchError('the training text differs from the checkpoint\'s; resume with the same files or start a new run');
    }
    if (meta.modelFingerprint !== this.state.modelFingerprint) {
      throw new CheckpointMismatchError('the checkpoint was trained from a different model; resume with the same model or start a new run');
    }
    const read = (prefix: string) => {
      const out = new Map<string, tf.Tensor>();
      for (const name of this.trainable.keys()) {
        const t = tensors.get(`${prefix}/${name}`);
        if (t === undefined) throw new CheckpointMismatchError(`the checkpoint has no tensor ${prefix}/${name}`);
        out.set(name, tf.tensor(t.data, t.shape, 'float32'));
      }
      return out;
    };
    const params = read('param');
    const m = read('adam_m');
    const v = read('adam_v');
    try {
      for (const [name, t] of params) {
        const target = this.trainable.get(name)!;
        if (!tf.util.arraysEqual(t.shape, target.shape)) {
          throw new CheckpointMismatchError(`checkpoint tensor ${name} has shape [${t.shape}], expected [${target.shape}]`);
        }
        target.assign(t);
      }
      this.optimizer.load(meta.step, m, v);
      if ([...tensors.keys()].some((k) => k.startsWith('best/'))) {
        this.disposeBest();
        this.best = read('best');
      }
    } finally {
      for (const map of [params, m, v]) disposeAll(map);
    }
    this.rng.setState(meta.rngState);
    for (const key of Object.keys(this.state) as (keyof typeof this.state)[]) {
      (this.state as Record<string, unknown>)[key] = structuredClone(meta[key]);
    }
    this.resumedFromStep = meta.step;
    this.savedStep = meta.step;
    const last = [...meta.history].reverse().find((h) => h.trainLoss !== undefined);
    this.lastTrainLoss = last?.trainLoss ?? null;
  }

  private result(status: TrainingStatus): TrainingResult {
    const s = this.state;
    const weights = new TrainedWeights(this.init.options.method, this.init.options.lora, new Map([...this.trainable].map(([n, v]) => [n, v.clone()])));
    return {
      status,
      step: s.step,
      totalSteps: this.plan.totalSteps,
      resumedFromStep: this.resumedFromStep,
      finalTrainLoss: this.lastTrainLoss,
      initialHeldOutLoss: s.initialHeldOutLoss,
      finalHeldOutLoss: s.lastHeldOutLoss,
      bestHeldOutLoss: s.bestHeldOutLoss,
      bestStep: s.bestStep,
      tokensSeen: s.tokensSeen,
      elapsedMs: s.elapsedMs,
      history: structuredClone(s.history),
      weights,
    };
  }

  private emitFinished(result: TrainingResult): void {
    const loss = result.finalHeldOutLoss;
    this.emit({ type: 'finished', status: result.status, step: result.step, heldOutLoss: loss, perplexity: loss === null ? null : Math.exp(loss) });
  }

  private emit(event: TrainingEvent): void {
    this.init.onEvent?.(event);
  }

  private disposeBest(): void {
    if (this.best) disposeAll(this.best);
    this.best = null;
  }

  dispose(): void {
    this.optimizer.dispose();
    disposeAll(this.trainable);
    if (this.frozen) for (const t of this.frozen.values()) t?.dispose();
    this.disposeBest();
  }
}

/**
 * Transposed copies of frozen weights speed up wasm's backward pass (its transposed products are slow) for
 * a second copy of the weights; wasm addresses at most 4 GiB, so only up to GPT-2 small's size (124M
 * parameters). Native TensorFlow multiplies transposed operands at full speed and needs no copies.
 */
function wantsTransposes(params: ParamMap): boolean {
  const count = Object.values(params).reduce((n, t) => n + t.size, 0);
  return tf.getBackend() === 'wasm' && count <= 200e6;
}

function accumulate(sum: Map<string, tf.Tensor> | null, grads: tf.NamedTensorMap, names: Map<string, string>): Map<string, tf.Tensor> {
  const out = sum ?? new Map<string, tf.Tensor>();
  for (const [variableName, g] of Object.entries(grads)) {
    const name = names.get(variableName);
    if (name === undefined) throw new Error(`internal: a gradient for unknown variable ${variableName}`);
    const previous = out.get(name);
    if (previous === undefined) {
      out.set(name, g);
    } else {
      out.set(name, tf.add(previous, g));
      previous.dispose();
      g.dispose();
    }
  }
  return out;
}

function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

function disposeAll(tensors: ReadonlyMap<string, tf.Tensor>): void {
  for (const t of tensors.values()) t.dispose();
}

function nextTick(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}

/**
 * Identifies the starting weights cheaply: the shape and the values of the small LayerNorm tensors, which
 * differ between any two checkpoints that differ at all in practice.
 */
function modelFingerprint(params: ParamMap, config: GPT2Config): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
  };
  [config.vocabSize, config.nPositions, config.nEmbd, config.nLayer, config.nHead, config.nInner].forEach(mix);
  for (const name of ['ln_f.weight', 'ln_f.bias', 'h.0.ln_1.weight', 'h.0.ln_1.bias']) {
    const values = params[name].dataSync() as Float32Array;
    for (const word of new Uint32Array(values.buffer, values.byteOffset, values.length)) mix(word);
  }
  return h.toString(16).padStart(8, '0');
}
