/**
 * The engine host: runs the engine worker thread for the main process and maps its messages onto the app's
 * contract (`CompletionRequest` in, `CompletionEvent`s and `EngineStatus` out). Node only, no Electron.
 *
 * - Latest wins: a new request cancels every older one at once (they end with 'cancelled'); the worker
 *   stops the old generation within one decode step.
 * - A crashed worker (exception, exit, out of memory) fails the requests in flight with ENGINE_CRASHED and
 *   is started again after a back-off, unless it keeps crashing (then the state is 'error').
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type {
  AppError,
  AssistEvent,
  CompletionEvent,
  CompletionRequest,
  DecodingSettings,
  EnginePrecision,
  EngineStatus,
} from '../ipc/contract.js';
import type {
  CompletionOptions,
  CompletionTimings,
  EngineError,
  EngineWorkerData,
  HostToWorker,
  StyleWeightsMessage,
  WorkerToHost,
} from '../../worker/protocol.js';
import { threadEntry } from '../../worker/thread-entry.js';
import type { TrainingCheckpoint } from '../../worker/train/checkpoint.js';
import type { ZeroShotResult } from '../../worker/classify/zero-shot.js';
import type { GenerationOptions } from '../../worker/generate/types.js';
import type { PromptTemplate } from '../../worker/rewrite/templates.js';
import type { TrainingText } from '../../worker/train/data.js';
import type { ResolvedTrainingOptions, TrainingOptions, TrainingPlan } from '../../worker/train/options.js';
import type { TrainingEvent } from '../../worker/train/trainer.js';

/** What the host tells the owner of a training run (see `EngineHost.startTraining`). */
export interface TrainingListener {
  onEvent(event: TrainingEvent, options?: ResolvedTrainingOptions): void;
  /** Store the checkpoint; the run waits until this settles (a rejection fails the run's save). */
  onCheckpoint(checkpoint: TrainingCheckpoint): Promise<void>;
  /** The run failed (bad data, a crash of the engine, a checkpoint that could not be stored). */
  onError(error: AppError): void;
}

/** An error from the engine, with its code, as a thrown Error. */
export class EngineRequestError extends Error {
  override name = 'EngineRequestError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface EngineCompletionRequest extends CompletionRequest {
  /** Engine options beyond the decoding settings (e.g. `reusePrefix: false` for benchmarks, `seed`). */
  engine?: Pick<CompletionOptions, 'reusePrefix' | 'seed' | 'stop' | 'minNewTokens' | 'debugStepDelayMs'>;
}

/** `done` with the worker's breakdown of the time; still a `CompletionEvent`. */
export type EngineDoneEvent = Extract<CompletionEvent, { type: 'done' }> & {
  /** Prompt tokens the model saw (the tail of the document that fits the context). */
  promptTokens: number;
  timings: CompletionTimings;
};
export type EngineCompletionEvent = Exclude<CompletionEvent, { type: 'done' }> | EngineDoneEvent;

export interface RestartPolicy {
  /** More crashes than this within `windowMs` stop the restarts (state 'error', ENGINE_CRASH_LOOP). */
  maxRestarts: number;
  windowMs: number;
  /** Delay before the first restart; doubles with each crash in the window, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface EngineHostOptions {
  /** Decoding settings used where a request does not override them (generation defaults otherwise). */
  decoding?: Partial<DecodingSettings>;
  stopAtSentenceEnd?: boolean;
  /** Heap limits of the worker; running past them counts as a crash. */
  resourceLimits?: ResourceLimits;
  restart?: Partial<RestartPolicy>;
}

export interface StartOptions {
  /** Preferred TensorFlow.js backend; the worker falls back (and says why) when it is unavailable. */
  backend?: string;
  /** Prompt tokens kept at most (default: the model's context). */
  maxContextTokens?: number;
  /** Threads for the model's matrix products (1 or 2; default: INKLING_THREADS, else by model size). */
  threads?: number;
  /** exact (float32) or fast (int8 weights for decoding); default: INKLING_PRECISION, else exact. */
  precision?: EnginePrecision;
}

export interface EngineMemory {
  numTensors: number;
  numBytes: number;
  heapUsedBytes: number;
}

const DEFAULT_RESTART: RestartPolicy = { maxRestarts: 3, windowMs: 60_000, baseDelayMs: 250, maxDelayMs: 4_000 };

interface ActiveRequest {
  requestId: string;
  jobId: string;
  seq: number;
  receivedAt: number;
  onEvent: (event: EngineCompletionEvent) => void;
}

type StatusListener = (status: EngineStatus) => void;

/** A template run on a selection (see `EngineHost.assist`). */
export interface EngineAssistRequest {
  requestId: string;
  template: PromptTemplate;
  text: string;
  /** Generation options over the template's own (e.g. sampling settings); `debugStepDelayMs` is test-only. */
  options?: GenerationOptions & { debugStepDelayMs?: number };
  /** Keep the output's leading space ("Continue" inserts right after the selection). */
  keepLeadingSpace?: boolean;
}

export interface EngineClassifyRequest {
  text: string;
  labels: string[];
  template: string;
  calibrate: boolean;
}

interface ActiveAssist {
  requestId: string;
  jobId: string;
  onEvent: (event: AssistEvent) => void;
}

export interface EngineWorkerOptions {
  /** The shared cancel mark (see `EngineWorkerData.cancelBelow`). */
  cancelBelow: SharedArrayBuffer;
  resourceLimits?: ResourceLimits;
  /** The thread's environment (default: a copy of this process's). */
  env?: NodeJS.ProcessEnv;
}

/** Starts a bare engine worker thread; it waits for an `init` message. `EngineHost` is built on this. */
export function startEngineWorker(options: EngineWorkerOptions): Worker {
  const { url, entry } = threadEntry(new URL('../../worker/thread.js', import.meta.url));
  const workerData: EngineWorkerData = { cancelBelow: options.cancelBelow, entry };
  return new Worker(url, { workerData, resourceLimits: options.resourceLimits, env: options.env ?? process.env });
}

export class EngineHost {
  private readonly options: EngineHostOptions;
  private readonly restartPolicy: RestartPolicy;
  private worker: Worker | null = null;
  private init: Extract<HostToWorker, { type: 'init' }> | null = null;
  private current: EngineStatus = { state: 'starting', backend: '', backendReason: '', modelName: '', error: null };
  private readonly statusListeners = new Set<StatusListener>();
  private readonly active = new Map<string, ActiveRequest>(); // by job id
  private readonly memoryQueries = new Map<string, (memory: EngineMemory) => void>();
  // Shared with every worker this host starts: jobs numbered below it are cancelled.
  private readonly cancelBelow = new Int32Array(new SharedArrayBuffer(4));
  private seq = 0;
  private memoryQueryCount = 0;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Requests made while no worker runs (between a crash and the restart): only the latest matters. */
  private deferred: HostToWorker | null = null;
  private readonly trainingRuns = new Map<string, TrainingListener>();
  private readonly requests = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private requestCount = 0;
  /** Assists in flight by job id (latest wins: at most one normally, more only while one winds down). */
  private readonly assists = new Map<string, ActiveAssist>();
  private assistCount = 0;
  /** The style suggestions use, sent again to a restarted worker. */
  private style: Extract<HostToWorker, { type: 'set-style' }> | null = null;

  constructor(options: EngineHostOptions = {}) {
    this.options = options;
    this.restartPolicy = { ...DEFAULT_RESTART, ...options.restart };
  }

  /** Starts the worker and loads the model; resolves with the status once it is 'ready' or 'error'. */
  start(modelDir: string, options: StartOptions = {}): Promise<EngineStatus> {
    this.stopped = false;
    this.init = {
      type: 'init',
      modelDir,
      backend: options.backend,
      maxContextTokens: options.maxContextTokens,
      threads: options.threads,
      precision: options.precision,
    };
    const settled = new Promise<EngineStatus>((resolve) => {
      const off = this.on('status', (status) => {
        if (status.state === 'ready' || status.state === 'error') {
          off();
          resolve(status);
        }
      });
    });
    if (this.worker === null) {
      // An explicit start is a fresh start: earlier crashes (and a pending restart) no longer count.
      if (this.restartTimer !== null) clearTimeout(this.restartTimer);
      this.restartTimer = null;
      this.crashes = [];
      this.spawn();
    } else {
      this.failAll('cancelled');
      this.worker.postMessage(this.init);
    }
    return settled;
  }

  status(): EngineStatus {
    return { ...this.current };
  }

  /** Listens to status changes; returns the function that stops listening. */
  on(event: 'status', listener: StatusListener): () => void {
    if (event !== 'status') throw new Error(`EngineHost has no event ${JSON.stringify(event)}`);
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Starts a completion; every older request ends with 'cancelled'. Events arrive through `onEvent`. */
  complete(request: EngineCompletionRequest, onEvent: (event: EngineCompletionEvent) => void): void {
    const receivedAt = performance.now();
    const seq = ++this.seq;
    // Latest wins: raise the shared mark first, so a running job stops after its current step.
    Atomics.store(this.cancelBelow, 0, seq);
    this.failAll('cancelled');

    const unavailable = this.unavailableError();
    if (unavailable !== null) {
      onEvent({ requestId: request.requestId, type: 'error', error: unavailable });
      return;
    }
    const jobId = String(seq);
    this.active.set(jobId, { requestId: request.requestId, jobId, seq, receivedAt, onEvent });
    this.send({
      type: 'complete',
      id: jobId,
      seq,
      prefix: request.prefix,
      numAlternatives: request.numAlternatives ?? 1,
      options: this.completionOptions(request),
    });
  }

  /** Cancels one request (it ends with 'cancelled'); unknown or finished ids are ignored. */
  cancel(requestId: string): void {
    for (const request of this.active.values()) {
      if (request.requestId !== requestId) continue;
      this.active.delete(request.jobId);
      if (request.seq === this.seq) Atomics.store(this.cancelBelow, 0, request.seq + 1);
      this.send({ type: 'cancel', id: request.jobId });
      request.onEvent({ requestId, type: 'cancelled' });
    }
  }

  /**
   * Runs a template on a selection; the output streams to `onEvent`. A newer assist cancels this one
   * (it ends with 'cancelled'); completions neither cancel it nor wait for it.
   */
  assist(request: EngineAssistRequest, onEvent: (event: AssistEvent) => void): void {
    for (const active of [...this.assists.values()]) this.cancelAssist(active.requestId);
    const unavailable = this.unavailableError();
    if (unavailable !== null || this.worker === null) {
      const error = unavailable ?? { code: 'ENGINE_NOT_READY', message: 'the engine is restarting; try again in a moment' };
      onEvent({ requestId: request.requestId, type: 'error', error });
      return;
    }
    const jobId = `assist-${++this.assistCount}`;
    this.assists.set(jobId, { requestId: request.requestId, jobId, onEvent });
    const options = { ...request.options };
    for (const key of Object.keys(options) as (keyof typeof options)[]) if (options[key] === undefined) delete options[key];
    this.worker.postMessage({
      type: 'assist',
      id: jobId,
      template: request.template,
      text: request.text,
      options,
      keepLeadingSpace: request.keepLeadingSpace,
    } satisfies HostToWorker);
  }

  /** Cancels an assist (it ends with 'cancelled'); unknown or finished ids are ignored. */
  cancelAssist(requestId: string): void {
    for (const active of [...this.assists.values()]) {
      if (active.requestId !== requestId) continue;
      this.assists.delete(active.jobId);
      this.worker?.postMessage({ type: 'assist-cancel', id: active.jobId } satisfies HostToWorker);
      active.onEvent({ requestId, type: 'cancelled' });
    }
  }

  /** Zero-shot classification of a text (calibrated when asked); rejects with the engine's error. */
  classify(request: EngineClassifyRequest): Promise<ZeroShotResult> {
    return this.request((id) => ({ type: 'classify', id, ...request }));
  }

  /** Tensors and heap held by the worker (diagnostics, leak tests). */
  memory(): Promise<EngineMemory> {
    const worker = this.worker;
    if (worker === null) return Promise.reject(new Error('the engine worker is not running'));
    const id = `memory-${++this.memoryQueryCount}`;
    return new Promise((resolve) => {
      this.memoryQueries.set(id, resolve);
      worker.postMessage({ type: 'memory', id } satisfies HostToWorker);
    });
  }

  // ---- training and styles ----

  /** Tokenizes the texts and plans a run; rejects with the engine's message when the data cannot train. */
  planTraining(texts: TrainingText[], options: TrainingOptions): Promise<{ plan: TrainingPlan; options: ResolvedTrainingOptions }> {
    return this.request((id) => ({ type: 'train-plan', id, texts, options }));
  }

  /**
   * Starts a run in the worker (`checkpoint`: resume from it). Completions keep priority: the run waits
   * between micro-batches while one runs. Events reach `listener` until 'finished' or an error.
   */
  startTraining(runId: string, texts: TrainingText[], options: TrainingOptions | ResolvedTrainingOptions, checkpoint: TrainingCheckpoint | null, listener: TrainingListener): void {
    const unavailable = this.unavailableError();
    if (unavailable !== null || this.worker === null) {
      listener.onError(unavailable ?? { code: 'ENGINE_NOT_READY', message: 'the engine is restarting; try again in a moment' });
      return;
    }
    this.trainingRuns.set(runId, listener);
    this.worker.postMessage({ type: 'train-start', runId, texts, options, checkpoint } satisfies HostToWorker);
  }

  pauseTraining(runId: string): void {
    this.worker?.postMessage({ type: 'train-pause', runId } satisfies HostToWorker);
  }

  resumeTraining(runId: string): void {
    this.worker?.postMessage({ type: 'train-resume', runId } satisfies HostToWorker);
  }

  /** Stops the run after its current micro-batch, with a checkpoint; it ends with a 'finished' (cancelled) event. */
  cancelTraining(runId: string): void {
    this.worker?.postMessage({ type: 'train-cancel', runId } satisfies HostToWorker);
  }

  /** Switches suggestions to a style's weights (null: the base model); kept across worker restarts. */
  async setStyle(styleId: string | null, weights: StyleWeightsMessage | null): Promise<void> {
    await this.request((id) => {
      const message = { type: 'set-style', id, styleId, weights } as const;
      this.style = weights === null ? null : message;
      return message;
    });
  }

  /** Writes the style as a Hugging Face folder (LoRA merged into the base); resolves with the folder. */
  async exportStyle(dir: string, weights: StyleWeightsMessage): Promise<string> {
    return this.request((id) => ({ type: 'export-style', id, dir, weights }));
  }

  private request<T>(message: (id: string) => HostToWorker): Promise<T> {
    const worker = this.worker;
    const unavailable = this.unavailableError();
    if (worker === null || unavailable !== null) {
      const error = unavailable ?? { code: 'ENGINE_NOT_READY', message: 'the engine is restarting; try again in a moment' };
      return Promise.reject(new EngineRequestError(error.code, error.message));
    }
    const id = `request-${++this.requestCount}`;
    return new Promise<T>((resolve, reject) => {
      this.requests.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage(message(id));
    });
  }

  private settleRequest(id: string, error: EngineError | undefined, value: unknown): void {
    const request = this.requests.get(id);
    this.requests.delete(id);
    if (!request) return;
    if (error) request.reject(new EngineRequestError(error.code, error.message));
    else request.resolve(value);
  }

  private failTraining(error: AppError): void {
    const runs = [...this.trainingRuns.values()];
    this.trainingRuns.clear();
    for (const listener of runs) listener.onError(error);
    const requests = [...this.requests.values()];
    this.requests.clear();
    for (const request of requests) request.reject(new EngineRequestError(error.code, error.message));
  }

  private onTrainingMessage(message: Extract<WorkerToHost, { type: `train-${string}` }>): void {
    const worker = this.worker;
    switch (message.type) {
      case 'train-plan':
        return this.settleRequest(message.id, undefined, { plan: message.plan, options: message.options });
      case 'train-plan-error':
        return this.settleRequest(message.id, message.error, null);
      case 'train-event': {
        const listener = this.trainingRuns.get(message.runId);
        if (message.event.type === 'finished') this.trainingRuns.delete(message.runId);
        listener?.onEvent(message.event, message.options);
        return;
      }
      case 'train-checkpoint': {
        const listener = this.trainingRuns.get(message.runId);
        const { runId, ackId } = message;
        const saving = listener ? listener.onCheckpoint(message.checkpoint) : Promise.reject(new Error('no one keeps this run\'s checkpoints'));
        saving.then(
          () => worker?.postMessage({ type: 'train-checkpoint-saved', runId, ackId } satisfies HostToWorker),
          (err: Error & { code?: string }) =>
            worker?.postMessage({
              type: 'train-checkpoint-saved',
              runId,
              ackId,
              error: { code: err.code ?? 'CHECKPOINT_FAILED', message: err.message },
            } satisfies HostToWorker),
        );
        return;
      }
      case 'train-error': {
        const listener = this.trainingRuns.get(message.runId);
        this.trainingRuns.delete(message.runId);
        listener?.onError(message.error);
        return;
      }
    }
  }

  /**
   * Test-only: asks the worker to die (it refuses unless started with INKLING_ENGINE_DEBUG=1). Lets tests
   * prove the crash and restart path.
   */
  debugCrash(mode: 'throw' | 'exit' | 'oom'): void {
    this.worker?.postMessage({ type: 'debug-crash', mode } satisfies HostToWorker);
  }

  /** Stops the worker; requests in flight end with ENGINE_STOPPED. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.deferred = null;
    this.failAll({ code: 'ENGINE_STOPPED', message: 'the engine was stopped' });
    this.failTraining({ code: 'ENGINE_STOPPED', message: 'the engine was stopped' });
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
    this.setStatus({ state: 'error', error: { code: 'ENGINE_STOPPED', message: 'the engine was stopped' } });
  }

  // ---- internals ----

  private completionOptions(request: EngineCompletionRequest): CompletionOptions {
    const decoding = { ...this.options.decoding, ...request.decoding };
    const options: CompletionOptions = {
      maxNewTokens: decoding.maxNewTokens,
      doSample: decoding.doSample,
      temperature: decoding.temperature,
      topK: decoding.topK,
      topP: decoding.topP,
      repetitionPenalty: decoding.repetitionPenalty,
      noRepeatNgramSize: decoding.noRepeatNgramSize,
      stopAtSentenceEnd: request.stopAtSentenceEnd ?? this.options.stopAtSentenceEnd ?? false,
      prefillOnly: request.prefillOnly,
      ...request.engine,
    };
    // The generation loop refuses keys it does not know, and undefined ones carry nothing.
    for (const key of Object.keys(options) as (keyof CompletionOptions)[]) {
      if (options[key] === undefined) delete options[key];
    }
    return options;
  }

  private unavailableError(): AppError | null {
    if (this.init === null) return { code: 'ENGINE_NOT_READY', message: 'the engine was not started' };
    if (this.current.state === 'error') {
      const cause = this.current.error;
      return { code: cause?.code ?? 'ENGINE_NOT_READY', message: cause?.message ?? 'the engine is not available' };
    }
    return null;
  }

  private send(message: HostToWorker): void {
    if (this.worker !== null) this.worker.postMessage(message);
    else if (message.type === 'complete') this.deferred = message;
    else if (message.type === 'cancel' && this.deferred?.type === 'complete' && this.deferred.id === message.id) {
      this.deferred = null;
    }
  }

  private spawn(): void {
    const init = this.init!;
    const worker = startEngineWorker({
      cancelBelow: this.cancelBelow.buffer as SharedArrayBuffer,
      resourceLimits: this.options.resourceLimits,
    });
    this.worker = worker;
    let gone = false;
    const crashed = (error: AppError) => {
      if (gone) return;
      gone = true;
      if (this.worker === worker) this.onCrash(error);
    };
    worker.on('message', (message: WorkerToHost) => {
      if (this.worker === worker) this.onMessage(message);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      crashed({
        code: 'ENGINE_CRASHED',
        message: oom
          ? `the engine ran out of memory (${err.message})`
          : `the engine crashed: ${err.message || String(err)}`,
      });
    });
    worker.on('exit', (code) => {
      crashed({ code: 'ENGINE_CRASHED', message: `the engine stopped unexpectedly (exit code ${code})` });
    });
    this.setStatus({ state: this.crashes.length > 0 ? 'restarting' : 'starting', error: null });
    worker.postMessage(init);
    if (this.style !== null) worker.postMessage({ ...this.style, id: `restore-style-${++this.requestCount}` });
    if (this.deferred !== null) {
      worker.postMessage(this.deferred);
      this.deferred = null;
    }
  }

  private onCrash(error: AppError): void {
    this.worker = null;
    for (const query of this.memoryQueries.values()) query({ numTensors: -1, numBytes: -1, heapUsedBytes: -1 });
    this.memoryQueries.clear();
    this.failAll(error);
    this.failTraining(error);
    if (this.stopped) return;

    const now = Date.now();
    const { maxRestarts, windowMs, baseDelayMs, maxDelayMs } = this.restartPolicy;
    this.crashes = this.crashes.filter((t) => now - t < windowMs);
    this.crashes.push(now);
    if (this.crashes.length > maxRestarts) {
      this.setStatus({
        state: 'error',
        error: {
          code: 'ENGINE_CRASH_LOOP',
          message: `the engine crashed ${this.crashes.length} times within ${Math.round(windowMs / 1000)} s; ` +
            `not restarting it (last crash: ${error.message})`,
        },
      });
      return;
    }
    const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (this.crashes.length - 1));
    this.setStatus({ state: 'restarting', error });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.stopped) this.spawn();
    }, delay);
  }

  private onMessage(message: WorkerToHost): void {
    switch (message.type) {
      case 'train-plan':
      case 'train-plan-error':
      case 'train-event':
      case 'train-checkpoint':
      case 'train-error':
        return this.onTrainingMessage(message);
      case 'style-set':
        return this.settleRequest(message.id, message.error, message.styleId);
      case 'style-exported':
        return this.settleRequest(message.id, message.error, message.dir);
      case 'classified':
        return this.settleRequest(message.id, message.error, message.result);
      case 'assist-delta':
      case 'assist-done':
      case 'assist-cancelled':
      case 'assist-error':
        return this.onAssistMessage(message);
      case 'status':
        // After a crash the state stays 'restarting' until the model is back.
        if (message.state === 'loading') {
          if (this.current.state !== 'restarting') this.setStatus({ state: 'loading', error: null });
        }
        else if (message.state === 'ready') {
          this.setStatus({
            state: 'ready',
            backend: message.backend,
            backendReason: message.backendReason,
            threads: message.threads,
            threadsNote: message.threadsNote,
            precision: message.precision,
            precisionNote: message.precisionNote,
            nativeKernels: message.nativeKernels,
            nativeKernelsNote: message.nativeKernelsNote,
            modelName: message.modelName,
            error: null,
          });
        } else {
          this.setStatus({ state: 'error', error: message.error });
          this.failAll(message.error);
        }
        return;
      case 'memory': {
        const query = this.memoryQueries.get(message.id);
        this.memoryQueries.delete(message.id);
        query?.({ numTensors: message.numTensors, numBytes: message.numBytes, heapUsedBytes: message.heapUsedBytes });
        return;
      }
      case 'delta': {
        const request = this.active.get(message.id);
        request?.onEvent({ requestId: request.requestId, type: 'delta', alternative: message.alternative, text: message.text });
        return;
      }
      case 'done': {
        const request = this.active.get(message.id);
        if (request === undefined) return;
        this.active.delete(message.id);
        request.onEvent({
          requestId: request.requestId,
          type: 'done',
          alternatives: message.alternatives,
          latencyMs: performance.now() - request.receivedAt,
          reusedTokens: message.reusedTokens,
          promptTokens: message.promptTokens,
          timings: message.timings,
        });
        return;
      }
      case 'cancelled':
      case 'error': {
        const request = this.active.get(message.id);
        if (request === undefined) return; // already answered (cancelled by the host)
        this.active.delete(message.id);
        request.onEvent(
          message.type === 'error'
            ? { requestId: request.requestId, type: 'error', error: message.error }
            : { requestId: request.requestId, type: 'cancelled' },
        );
        return;
      }
    }
  }

  private onAssistMessage(message: Extract<WorkerToHost, { type: `assist-${string}` }>): void {
    const active = this.assists.get(message.id);
    if (active === undefined) return; // already answered (cancelled by the host)
    const { requestId } = active;
    if (message.type === 'assist-delta') return active.onEvent({ requestId, type: 'delta', text: message.text });
    this.assists.delete(message.id);
    if (message.type === 'assist-done') active.onEvent({ requestId, type: 'done', output: message.output, finishReason: message.finishReason });
    else if (message.type === 'assist-error') active.onEvent({ requestId, type: 'error', error: message.error });
    else active.onEvent({ requestId, type: 'cancelled' });
  }

  /** Ends every request in flight, with 'cancelled' or with an error. */
  private failAll(outcome: 'cancelled' | AppError): void {
    // A new completion cancels the older completions only; the assists in flight end on errors (a crash).
    const assists = outcome === 'cancelled' ? [] : [...this.assists.values()];
    for (const a of assists) this.assists.delete(a.jobId);
    for (const a of assists) {
      a.onEvent(outcome === 'cancelled' ? { requestId: a.requestId, type: 'cancelled' } : { requestId: a.requestId, type: 'error', error: outcome });
    }
    const requests = [...this.active.values()];
    this.active.clear();
    if (this.deferred?.type === 'complete') this.deferred = null;
    for (const r of requests) {
      r.onEvent(
        outcome === 'cancelled'
          ? { requestId: r.requestId, type: 'cancelled' }
          : { requestId: r.requestId, type: 'error', error: outcome },
      );
    }
  }

  private setStatus(patch: Partial<EngineStatus>): void {
    this.current = { ...this.current, ...patch };
    const snapshot = this.status();
    for (const listener of this.statusListeners) listener(snapshot);
  }
}
