/**
 * Fine-tuning as an app feature: gathers the texts (documents and picked files), plans and starts runs in
 * the engine worker, records their progress and checkpoints in the store, turns finished runs into styles,
 * and switches styles on for suggestions.
 *
 * A run lives in the worker while it trains; its state lives in the store. When the app starts, runs that
 * were training are offered as paused; resuming one starts it in the worker from its last checkpoint.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AppError, FinetunePlan, FinetuneRequest, FinetuneRun, FinetuneSettings, Style } from '../ipc/contract.js';
import { ApiError } from '../ipc/errors.js';
import type { FinetuneStore, StyleWeights } from '../store/index.js';
import { StoreCheckpointSink } from '../store/index.js';
import type { DocumentFull } from '../ipc/contract.js';
import type { StyleWeightsMessage } from '../../worker/protocol.js';
import type { TrainingCheckpoint } from '../../worker/train/checkpoint.js';
import type { TrainingText } from '../../worker/train/data.js';
import type { LoraConfig } from '../../worker/train/lora.js';
import type { ResolvedTrainingOptions, TrainingOptions, TrainingPlan } from '../../worker/train/options.js';
import type { TrainingListener } from './host.js';

/** The part of EngineHost fine-tuning uses. */
export interface FinetuneEngine {
  planTraining(texts: TrainingText[], options: TrainingOptions): Promise<{ plan: TrainingPlan; options: ResolvedTrainingOptions }>;
  startTraining(runId: string, texts: TrainingText[], options: TrainingOptions | ResolvedTrainingOptions, checkpoint: TrainingCheckpoint | null, listener: TrainingListener): void;
  pauseTraining(runId: string): void;
  resumeTraining(runId: string): void;
  cancelTraining(runId: string): void;
  setStyle(styleId: string | null, weights: StyleWeightsMessage | null): Promise<void>;
  exportStyle(dir: string, weights: StyleWeightsMessage): Promise<string>;
}

export function isFinetuneEngine(engine: object): engine is FinetuneEngine {
  return typeof (engine as Partial<FinetuneEngine>).planTraining === 'function';
}

export interface FinetuneServiceParts {
  store: { finetune: FinetuneStore; getDocument(id: string): DocumentFull | null };
  engine: FinetuneEngine;
  /** Called with the run after every change (the app pushes it to the renderer). */
  emit(run: FinetuneRun): void;
  /** Identifies the base model runs and styles belong to (the model folder's name). */
  modelName: string;
  /** Exports go under `<dataDir>/exports` unless a folder is given. */
  dataDir: string;
}

/** Limits checked before any work starts. */
export const FINETUNE_LIMITS = {
  /** One picked file, in characters (a 50 MB file is refused with a message, not read into a run). */
  fileChars: 10_000_000,
  totalChars: 40_000_000,
  files: 1_000,
};

/** Codes that mean the worker went away (the app closed, the engine crashed): the run can resume. */
const INTERRUPTED = new Set(['ENGINE_STOPPED', 'ENGINE_CRASHED', 'ENGINE_CRASH_LOOP']);

export function trainingOptionsOf(settings: FinetuneSettings): TrainingOptions {
  const lora: Partial<LoraConfig> = {};
  if (settings.loraRank !== undefined) lora.rank = settings.loraRank;
  if (settings.loraAlpha !== undefined) lora.alpha = settings.loraAlpha;
  const options: TrainingOptions = {
    method: settings.method,
    epochs: settings.epochs,
    learningRate: settings.learningRate,
    maxSteps: settings.maxSteps,
    blockSize: settings.blockSize,
    seed: settings.seed,
    lora: settings.method === 'lora' && Object.keys(lora).length > 0 ? lora : undefined,
  };
  for (const key of Object.keys(options) as (keyof TrainingOptions)[]) if (options[key] === undefined) delete options[key];
  return options;
}

/** Refuses what is not text: a NUL character does not occur in prose, and binary files are full of them. */
function checkText(name: string, text: string): void {
  if (text.length > FINETUNE_LIMITS.fileChars) {
    throw new ApiError('TOO_LARGE', `"${name}" is too large to train on (${(text.length / 1e6).toFixed(1)} M characters; the limit is ${FINETUNE_LIMITS.fileChars / 1e6} M)`);
  }
  if (text.includes('\u0000')) throw new ApiError('NOT_TEXT', `"${name}" is not a text file (choose .txt or .md files)`);
}

interface LiveRun {
  etaMs: number | null;
  /** Stopped because the app closes: it ends paused (resumable), not cancelled. */
  suspending: boolean;
  /** Settles when the worker has let go of the run. */
  ended: Promise<void>;
  end: () => void;
}

export class FinetuneService {
  private readonly live = new Map<string, LiveRun>();

  constructor(private readonly parts: FinetuneServiceParts) {
    // Runs a restart interrupted wait for the user to resume them.
    parts.store.finetune.pauseInterrupted();
  }

  /** Switches the style that was on when the app closed back on (best effort: suggestions work without it). */
  async restoreActiveStyle(): Promise<void> {
    const active = this.parts.store.finetune.listStyles().find((s) => s.active);
    if (!active) return;
    if (active.modelName !== this.parts.modelName) {
      // Another model is loaded: its weights are not the ones this style adapts.
      this.parts.store.finetune.setActiveStyle(null);
      return;
    }
    try {
      await this.parts.engine.setStyle(active.id, this.weightsOf(active.id));
    } catch (err) {
      console.error(`inkling: the style "${active.name}" could not be switched back on:`, (err as Error).message);
      this.parts.store.finetune.setActiveStyle(null);
    }
  }

  texts(source: FinetuneRequest): TrainingText[] {
    const texts: TrainingText[] = [];
    for (const id of source.documentIds ?? []) {
      const doc = this.parts.store.getDocument(id);
      if (doc === null) throw new ApiError('NOT_FOUND', `document ${id} does not exist (or is in the trash)`);
      texts.push({ name: doc.title, text: doc.body });
    }
    if ((source.files?.length ?? 0) > FINETUNE_LIMITS.files) throw new ApiError('TOO_LARGE', `at most ${FINETUNE_LIMITS.files} files can be chosen`);
    for (const file of source.files ?? []) texts.push({ name: file.name, text: file.text });
    if (texts.length === 0) throw new ApiError('INVALID_INPUT', 'choose at least one document or file to learn from');
    texts.forEach((t) => checkText(t.name, t.text));
    const total = texts.reduce((n, t) => n + t.text.length, 0);
    if (total > FINETUNE_LIMITS.totalChars) throw new ApiError('TOO_LARGE', `the chosen texts are too large together (${(total / 1e6).toFixed(1)} M characters; the limit is ${FINETUNE_LIMITS.totalChars / 1e6} M)`);
    if (texts.every((t) => t.text.trim() === '')) throw new ApiError('INVALID_INPUT', 'the chosen documents are empty: there is no text to learn from');
    return texts;
  }

  private async planOf(texts: TrainingText[], settings: FinetuneSettings): Promise<{ plan: TrainingPlan; options: ResolvedTrainingOptions }> {
    let planned;
    try {
      planned = await this.parts.engine.planTraining(texts, trainingOptionsOf(settings));
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new ApiError(e.code === 'ENGINE_NOT_READY' ? 'ENGINE_NOT_READY' : 'INVALID_INPUT', e.message);
    }
    const { plan } = planned;
    if (plan.trainTokens <= plan.blockSize) {
      throw new ApiError(
        'TOO_SHORT',
        `the text is shorter than one training block (${plan.trainTokens} tokens to train on; a block is ${plan.blockSize}): choose more text`,
      );
    }
    return planned;
  }

  async plan(request: FinetuneRequest): Promise<FinetunePlan> {
    const { plan } = await this.planOf(this.texts(request), request.settings);
    const tokensPerSecond = this.parts.store.finetune.measuredSpeed(this.parts.modelName, request.settings.method);
    return {
      documents: plan.documents,
      trainTokens: plan.trainTokens,
      heldOutTokens: plan.heldOutTokens,
      totalSteps: plan.totalSteps,
      tokensPerStep: plan.tokensPerStep,
      tokensToTrain: plan.tokensToTrain,
      trainableParameters: plan.trainableParameters,
      tokensPerSecond,
      estimatedMs: tokensPerSecond === null ? null : (plan.tokensToTrain / tokensPerSecond) * 1000,
    };
  }

  async start(request: FinetuneRequest): Promise<FinetuneRun> {
    if (this.live.size > 0) throw new ApiError('TRAINING_BUSY', 'a run is already training: pause or cancel it first');
    const texts = this.texts(request);
    // Planning checks the data in the engine before the store is touched.
    const { plan } = await this.planOf(texts, request.settings);
    const name = request.name?.trim() || `${texts[0]!.name}${texts.length > 1 ? ` + ${texts.length - 1}` : ''}`;
    const run = this.parts.store.finetune.createRun({ name, modelName: this.parts.modelName, settings: request.settings, texts, totalSteps: plan.totalSteps });
    // Running before the launch: an engine that fails at once records 'failed' after it, not before.
    this.publish(this.parts.store.finetune.updateRun(run.id, { state: 'running' }));
    this.launch(run.id, texts, trainingOptionsOf(request.settings), null);
    return this.withLive(this.requireRun(run.id));
  }

  pause(runId: string): FinetuneRun {
    const run = this.requireRun(runId);
    if (!this.live.has(runId)) throw new ApiError('INVALID_STATE', `the run "${run.name}" is not training (it is ${run.state})`);
    this.parts.engine.pauseTraining(runId);
    return this.publish(this.parts.store.finetune.updateRun(runId, { state: 'paused' }));
  }

  resume(runId: string): FinetuneRun {
    const run = this.requireRun(runId);
    if (this.live.has(runId)) {
      this.parts.engine.resumeTraining(runId);
      return this.publish(this.parts.store.finetune.updateRun(runId, { state: 'running' }));
    }
    if (run.state !== 'paused' && run.state !== 'failed') throw new ApiError('INVALID_STATE', `the run "${run.name}" cannot be resumed (it is ${run.state})`);
    if (this.live.size > 0) throw new ApiError('TRAINING_BUSY', 'a run is already training: pause or cancel it first');
    if (run.modelName !== this.parts.modelName) throw new ApiError('MODEL_MISMATCH', `the run "${run.name}" trains ${run.modelName}, but ${this.parts.modelName} is loaded`);
    const checkpoint = this.parts.store.finetune.latestCheckpoint(runId);
    const texts = this.parts.store.finetune.runTexts(runId);
    this.publish(this.parts.store.finetune.updateRun(runId, { state: 'running', error: null }));
    this.launch(runId, texts, checkpoint?.meta.options ?? trainingOptionsOf(run.settings), checkpoint);
    return this.withLive(this.requireRun(runId));
  }

  async cancel(runId: string): Promise<FinetuneRun> {
    const run = this.requireRun(runId);
    if (this.live.has(runId)) {
      // The run stops after its current micro-batch; its 'finished' event records the state.
      this.parts.engine.cancelTraining(runId);
      return run;
    }
    if (run.state === 'done' || run.state === 'cancelled') return run;
    await this.parts.store.finetune.deleteCheckpoints(runId);
    return this.publish(this.parts.store.finetune.updateRun(runId, { state: 'cancelled', finishedAt: Date.now() }));
  }

  /**
   * Stops the training run (the app is closing) with a checkpoint of its last step, so that it resumes
   * where it stopped rather than at its last periodic checkpoint. Gives up waiting after `timeoutMs`.
   */
  async suspend(timeoutMs = 10_000): Promise<void> {
    const runs = [...this.live.entries()];
    for (const [runId, live] of runs) {
      live.suspending = true;
      this.parts.engine.cancelTraining(runId);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.all(runs.map(([, live]) => live.ended)), timeout]);
    clearTimeout(timer);
  }

  list(): FinetuneRun[] {
    return this.parts.store.finetune.listRuns().map((run) => this.withLive(run));
  }

  async deleteRun(runId: string): Promise<void> {
    if (this.live.has(runId)) throw new ApiError('INVALID_STATE', 'the run is training: cancel it before deleting it');
    if (!(await this.parts.store.finetune.deleteRun(runId))) throw new ApiError('NOT_FOUND', `no fine-tuning run with id ${runId}`);
  }

  // ---- styles ----

  listStyles(): Style[] {
    return this.parts.store.finetune.listStyles();
  }

  async activateStyle(styleId: string | null): Promise<Style[]> {
    if (styleId === null) {
      await this.parts.engine.setStyle(null, null);
      return this.parts.store.finetune.setActiveStyle(null);
    }
    const style = this.requireStyle(styleId);
    if (style.modelName !== this.parts.modelName) {
      throw new ApiError('MODEL_MISMATCH', `the style "${style.name}" was trained on ${style.modelName}, but ${this.parts.modelName} is loaded`);
    }
    try {
      await this.parts.engine.setStyle(styleId, this.weightsOf(styleId));
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new ApiError(e.code ?? 'STYLE_FAILED', `the style "${style.name}" could not be switched on: ${e.message}`);
    }
    return this.parts.store.finetune.setActiveStyle(styleId);
  }

  renameStyle(styleId: string, name: string): Style {
    return this.parts.store.finetune.renameStyle(styleId, name);
  }

  async deleteStyle(styleId: string): Promise<void> {
    const style = this.requireStyle(styleId);
    if (style.active) await this.activateStyle(null);
    await this.parts.store.finetune.deleteStyle(styleId);
  }

  /**
   * Exports under `<dataDir>/exports` (into `dir` there when given): the page must not pick arbitrary
   * places on disk. The desktop shell, which can ask the user with a save dialog, uses `exportStyleTo`.
   */
  async exportStyle(styleId: string, dir?: string): Promise<{ path: string }> {
    const style = this.requireStyle(styleId);
    const exports = path.join(this.parts.dataDir, 'exports');
    const target = path.resolve(exports, dir ?? `${safeName(style.name)}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    if (path.relative(exports, target).startsWith('..') || path.relative(exports, target) === '') {
      throw new ApiError('FORBIDDEN', `exports go into a folder under ${exports}`);
    }
    return this.exportStyleTo(styleId, target);
  }

  /** Exports to any folder (the main process chooses it, e.g. from a save dialog). */
  async exportStyleTo(styleId: string, target: string): Promise<{ path: string }> {
    const style = this.requireStyle(styleId);
    mkdirSync(path.dirname(target), { recursive: true });
    try {
      return { path: await this.parts.engine.exportStyle(target, this.weightsOf(styleId)) };
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new ApiError(e.code ?? 'EXPORT_FAILED', `the style "${style.name}" could not be exported: ${e.message}`);
    }
  }

  // ---- internals ----

  private requireRun(runId: string): FinetuneRun {
    const run = this.parts.store.finetune.getRun(runId);
    if (run === null) throw new ApiError('NOT_FOUND', `no fine-tuning run with id ${runId}`);
    return run;
  }

  private requireStyle(styleId: string): Style {
    const style = this.parts.store.finetune.getStyle(styleId);
    if (style === null) throw new ApiError('NOT_FOUND', `no style with id ${styleId}`);
    return style;
  }

  private weightsOf(styleId: string): StyleWeightsMessage {
    const weights: StyleWeights = this.parts.store.finetune.styleWeights(styleId);
    return { method: weights.method, lora: weights.lora as LoraConfig | null, tensors: weights.tensors };
  }

  private withLive(run: FinetuneRun): FinetuneRun {
    const live = this.live.get(run.id);
    return live && run.state === 'running' ? { ...run, etaMs: live.etaMs } : run;
  }

  private publish(run: FinetuneRun): FinetuneRun {
    const shown = this.withLive(run);
    this.parts.emit(shown);
    return shown;
  }

  private launch(runId: string, texts: TrainingText[], options: TrainingOptions | ResolvedTrainingOptions, checkpoint: TrainingCheckpoint | null): void {
    let end = () => {};
    const ended = new Promise<void>((resolve) => (end = resolve));
    const live: LiveRun = { etaMs: null, suspending: false, ended, end };
    this.live.set(runId, live);
    const store = this.parts.store.finetune;
    const sink = new StoreCheckpointSink(store, runId);
    const update = (patch: Parameters<FinetuneStore['updateRun']>[1]) => {
      try {
        this.publish(store.updateRun(runId, patch));
      } catch (err) {
        // The run was deleted meanwhile; nothing left to record.
        if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
      }
    };
    this.parts.engine.startTraining(runId, texts, options, checkpoint, {
      onEvent: (event) => {
        switch (event.type) {
          case 'started':
            update({ totalSteps: event.plan.totalSteps });
            return;
          case 'progress':
            live.etaMs = event.etaMs;
            update({ step: event.step, tokensPerSecond: event.tokensPerSecond, points: [{ step: event.step, trainLoss: event.trainLoss }] });
            return;
          case 'evaluation':
            update({ points: [{ step: event.step, heldOutLoss: event.heldOutLoss }], ...(event.step === 0 ? { perplexityBefore: event.perplexity } : {}) });
            return;
          case 'finished':
            this.live.delete(runId);
            if (live.suspending && event.status === 'cancelled') {
              update({ state: 'paused', step: event.step });
              live.end();
              return;
            }
            void this.finish(runId, event.status, event.perplexity, event.step)
              .catch((err: Error) =>
                update({ state: 'failed', error: { code: 'STYLE_FAILED', message: `the run finished, but its style could not be stored: ${err.message}` } }),
              )
              .finally(live.end);
            return;
          default:
            return;
        }
      },
      onCheckpoint: (c) => sink.save(c),
      onError: (error: AppError) => {
        this.live.delete(runId);
        live.end();
        // The worker went away (the app closed, the engine crashed): the run resumes from its last checkpoint.
        update({ state: INTERRUPTED.has(error.code) ? 'paused' : 'failed', error });
      },
    });
  }

  private async finish(runId: string, status: string, perplexity: number | null, step: number): Promise<void> {
    const store = this.parts.store.finetune;
    if (status === 'cancelled') {
      this.publish(store.updateRun(runId, { state: 'cancelled', step, finishedAt: Date.now() }));
      return;
    }
    const checkpoint = store.latestCheckpoint(runId);
    if (checkpoint === null) throw new Error('the run saved no final checkpoint');
    store.updateRun(runId, { perplexityAfter: perplexity, step });
    await store.createStyle(runId, checkpoint);
    // The style keeps what suggestions need; the optimizer state is of no use any more.
    await store.deleteCheckpoints(runId);
    this.publish(store.updateRun(runId, { state: 'done', finishedAt: Date.now() }));
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'style';
}

