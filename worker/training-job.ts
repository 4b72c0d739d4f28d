/**
 * Training inside the engine worker: one run at a time on the loaded base model, with checkpoints handed
 * to the host (which keeps them, e.g. in SQLite) and suggestions first.
 *
 * Suggestions keep priority through the run's own pause gate: while a completion waits or runs, the run is
 * held between micro-batches (`holdFor`); those holds are not reported as pauses, only the user's are.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CheckpointSink, TrainingCheckpoint } from './train/checkpoint.js';
import { TrainingControl } from './train/control.js';
import type { ParamMap } from './train/forward.js';
import { prepareTraining, resolveTrainingOptions, type ResolvedTrainingOptions, type TrainingOptions, type TrainingPlan } from './train/options.js';
import { runTraining, type TrainingEvent } from './train/trainer.js';
import type { GPT2Config } from './model/types.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { EngineError, TrainStartMessage, WorkerToHost } from './protocol.js';

export interface TrainingHost {
  post(message: WorkerToHost): void;
  toEngineError(err: unknown, fallbackCode: string): EngineError;
}

export interface TrainingModel {
  config: GPT2Config;
  tokenizer: Tokenizer;
  /** The base weights (never a style's). */
  params: ParamMap;
}

/** WebAssembly addresses 4 GiB; leave room for the JavaScript side. */
const WASM_TRAINING_BYTES = 3.5 * 1024 ** 3;
/**
 * Activation memory of one training forward/backward, per token, layer and unit of width, in floats. Measured
 * with bench/train.ts: one 128-token block of GPT-2 small peaks about 2 GiB above the weights on wasm (LoRA
 * fits at 3.3 GiB; two blocks, or full fine-tuning, run out of the heap).
 */
const ACTIVATION_FLOATS_PER_TOKEN_LAYER_WIDTH = 420;

export interface TrainingShape {
  nLayer: number;
  nEmbd: number;
}

/**
 * Refuses, before any work, a run whose tensors cannot fit the backend: the base weights, the trained ones
 * with their gradients and two AdamW moments, (LoRA on wasm, up to GPT-2 small's size) the transposed copies
 * of the frozen weights the trainer keeps, and the activations of one micro-batch. Native backends use the
 * machine's memory: not checked.
 */
export function checkTrainingFits(
  baseParameters: number,
  plan: Pick<TrainingPlan, 'method' | 'trainableParameters' | 'batchSize' | 'blockSize'>,
  backend: string,
  shape: TrainingShape,
): void {
  if (backend !== 'wasm') return;
  const transposes = plan.method === 'lora' && baseParameters <= 200e6 ? baseParameters : 0;
  const stateBytes = 4 * (baseParameters + transposes + 4 * plan.trainableParameters);
  const activationBytes = 4 * ACTIVATION_FLOATS_PER_TOKEN_LAYER_WIDTH * plan.batchSize * plan.blockSize * shape.nLayer * shape.nEmbd;
  const bytes = stateBytes + activationBytes;
  if (bytes > WASM_TRAINING_BYTES) {
    const gib = (bytes / 1024 ** 3).toFixed(1);
    const wayOut =
      stateBytes + activationBytes / plan.batchSize <= WASM_TRAINING_BYTES && plan.batchSize > 1
        ? ': train one block per micro-batch (batch size 1, more accumulation steps)'
        : plan.method === 'full'
          ? ': choose LoRA, or a smaller model'
          : ': choose a smaller model or shorter blocks';
    throw Object.assign(
      new Error(`training this model ${plan.method === 'full' ? 'fully' : 'with LoRA'} needs about ${gib} GiB, more than the WebAssembly backend's 4 GiB${wayOut}`),
      { code: 'MODEL_TOO_LARGE' },
    );
  }
}

const parameterCount = (params: ParamMap) => Object.values(params).reduce((n, t) => n + t.size, 0);

/** A sink whose checkpoints travel to the host; `loadLatest` serves the one the host sent at the start. */
class HostCheckpointSink implements CheckpointSink {
  private nextAck = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(
    private readonly runId: string,
    private readonly host: TrainingHost,
    private latest: TrainingCheckpoint | null,
  ) {}

  save(checkpoint: TrainingCheckpoint): Promise<void> {
    const ackId = this.nextAck++;
    return new Promise((resolve, reject) => {
      this.pending.set(ackId, { resolve, reject });
      this.host.post({ type: 'train-checkpoint', runId: this.runId, ackId, checkpoint });
    });
  }

  async loadLatest(): Promise<TrainingCheckpoint | null> {
    const latest = this.latest;
    this.latest = null; // the run holds its own copy from here
    return latest;
  }

  acknowledge(ackId: number, error?: EngineError): void {
    const waiting = this.pending.get(ackId);
    this.pending.delete(ackId);
    if (!waiting) return;
    if (error) waiting.reject(Object.assign(new Error(`the checkpoint could not be stored: ${error.message}`), { code: error.code }));
    else waiting.resolve();
  }

  failAll(reason: string): void {
    for (const waiting of this.pending.values()) waiting.reject(new Error(reason));
    this.pending.clear();
  }
}

interface ActiveRun {
  runId: string;
  control: TrainingControl;
  sink: HostCheckpointSink;
  userPaused: boolean;
  /** Whether the host has been told the run is paused (so the matching 'resumed' is reported too). */
  reportedPaused: boolean;
  done: Promise<void>;
}

export class WorkerTraining {
  private active: ActiveRun | null = null;
  private holds = 0;

  constructor(private readonly host: TrainingHost) {}

  get runId(): string | null {
    return this.active?.runId ?? null;
  }

  plan(model: TrainingModel, texts: TrainStartMessage['texts'], options: TrainingOptions) {
    const prepared = prepareTraining(texts, model.tokenizer, model.config, options);
    checkTrainingFits(parameterCount(model.params), prepared.plan, tf.getBackend(), model.config);
    return prepared;
  }

  start(model: TrainingModel, msg: TrainStartMessage): void {
    if (this.active !== null) {
      this.host.post({
        type: 'train-error',
        runId: msg.runId,
        error: { code: 'TRAINING_BUSY', message: `another run (${this.active.runId}) is training: pause or cancel it first` },
      });
      return;
    }
    const control = new TrainingControl();
    const sink = new HostCheckpointSink(msg.runId, this.host, msg.checkpoint);
    const run: ActiveRun = { runId: msg.runId, control, sink, userPaused: false, reportedPaused: false, done: Promise.resolve() };
    this.active = run;
    if (this.holds > 0) control.pause();
    run.done = this.execute(model, msg, run).finally(() => {
      sink.failAll('the run ended');
      if (this.active === run) this.active = null;
    });
  }

  private async execute(model: TrainingModel, msg: TrainStartMessage, run: ActiveRun): Promise<void> {
    try {
      // A resumed run keeps the options it started with (the checkpoint's).
      const options: ResolvedTrainingOptions = msg.checkpoint?.meta.options ?? resolveTrainingOptions(msg.options, model.config);
      const { dataset, plan } = prepareTraining(msg.texts, model.tokenizer, model.config, options);
      checkTrainingFits(parameterCount(model.params), plan, tf.getBackend(), model.config);
      const result = await runTraining({
        config: model.config,
        params: model.params,
        dataset,
        options,
        sink: run.sink,
        resume: msg.checkpoint !== null,
        control: run.control,
        onEvent: (event) => this.forward(run, event, options),
      });
      result.weights.dispose();
    } catch (err) {
      this.host.post({ type: 'train-error', runId: run.runId, error: this.host.toEngineError(err, 'TRAINING_FAILED') });
    }
  }

  private forward(run: ActiveRun, event: TrainingEvent, options: ResolvedTrainingOptions): void {
    if (event.type === 'paused') {
      if (!run.userPaused) return; // held for a completion
      run.reportedPaused = true;
    } else if (event.type === 'resumed') {
      if (!run.reportedPaused) return;
      run.reportedPaused = false;
    }
    this.host.post({ type: 'train-event', runId: run.runId, event, options: event.type === 'started' ? options : undefined });
  }

  control(type: 'train-pause' | 'train-resume' | 'train-cancel', runId: string): void {
    const run = this.active;
    if (run === null || run.runId !== runId) return;
    if (type === 'train-pause') {
      run.userPaused = true;
      run.control.pause();
    } else if (type === 'train-resume') {
      run.userPaused = false;
      // Still held for a completion: the run goes on when that ends.
      if (this.holds === 0) run.control.resume();
    } else {
      run.control.cancel();
    }
  }

  acknowledge(runId: string, ackId: number, error?: EngineError): void {
    if (this.active?.runId === runId) this.active.sink.acknowledge(ackId, error);
  }

  /** Holds the run between micro-batches until the returned release is called (a completion runs). */
  holdFor(): () => void {
    this.holds++;
    this.active?.control.pause();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      const run = this.active;
      if (this.holds === 0 && run && !run.userPaused) run.control.resume();
    };
  }

  /** Cancels the run (with a checkpoint) and waits for it to end: before the model goes away. */
  async stop(): Promise<void> {
    const run = this.active;
    if (run === null) return;
    run.control.cancel();
    await run.done;
  }
}
