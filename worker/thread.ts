/**
 * The engine's worker thread: loads one model and answers completion requests, one at a time, latest wins.
 * The main process talks to it only through the messages of `./protocol.ts`.
 *
 * A request that arrives while another runs aborts the running one (its generation loop stops at the next
 * decode step) and waits for it to wind down; a request still waiting when an even newer one arrives is
 * cancelled without running. The host also raises a shared counter, so the running job sees that it is
 * stale after its current step even if the loop has not let the message queue run yet.
 *
 * Template runs and tone classification for the side panel ("assists") have a lane of their own
 * (./assist-job.ts), so that a suggestion never queues behind a 64-token rewrite.
 */
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';
import { GenerationOptionsError, generate, promptScreen, resolveMaxNewTokens } from './generate/index.js';
import type { GenerationOptions } from './generate/types.js';
import { PRECISIONS, loadModel, type GPT2Model, type GPT2ModelOptions } from './model/index.js';
import type { LanguageModel } from './model/types.js';
import type {
  CompleteMessage,
  CompletionOptions,
  EngineError,
  EngineWorkerData,
  ExportStyleMessage,
  HostToWorker,
  InitMessage,
  SetStyleMessage,
  StyleWeightsMessage,
  TrainPlanMessage,
  TrainStartMessage,
  WorkerToHost,
} from './protocol.js';
import { exportTrainedModel } from './train/export.js';
import { TrainedWeights } from './train/weights.js';
import { disposeMerged, loraSet, mergeLora } from './train/lora.js';
import { modelFromParams, paramMapOf } from './train/params.js';
import { WorkerTraining } from './training-job.js';
import { AssistLane } from './assist-job.js';
import { PrefillStopped, PrefixSession, contextWindow, type PreparedPrompt } from './session.js';
import { SuggestionStream } from './suggestion.js';
import { loadTokenizer } from './tokenizer/index.js';
import type { Tokenizer } from './tokenizer/types.js';

/** Env variable that allows the test-only messages and options (`debug-crash`, `debugStepDelayMs`). */
const DEBUG_ENV = 'INKLING_ENGINE_DEBUG';
/** New tokens when the request does not say (a suggestion is a few words). */
const DEFAULT_MAX_NEW_TOKENS = 8;

const port = parentPort;
if (port === null) throw new Error('worker/thread.ts must be started as a worker thread (node:worker_threads)');
const data = workerData as EngineWorkerData;
const cancelBelow = new Int32Array(data.cancelBelow);
const debug = process.env[DEBUG_ENV] === '1';

function post(message: WorkerToHost): void {
  port!.postMessage(message);
}

function toEngineError(err: unknown, fallbackCode: string): EngineError {
  if (err instanceof GenerationOptionsError) return { code: 'INVALID_ARGUMENT', message: err.message };
  if (typeof err === 'object' && err !== null) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (typeof message === 'string') return { code: typeof code === 'string' ? code : fallbackCode, message };
  }
  return { code: fallbackCode, message: String(err) };
}

// ---- state ----

const CANCELLED = Symbol('cancelled');
const SUGGESTION_ENDED = Symbol('suggestion ended');

interface Job {
  msg: CompleteMessage;
  receivedAt: number;
  controller: AbortController;
  generatedTokens: number;
}

/** A completion job's time before the model ran: waiting for the job before it, and tokenizing. */
interface JobTimes {
  queueMs: number;
  tokenizeMs: number;
  /** When the job started (performance.now()). */
  started: number;
}

let running: Job | null = null;
let waiting: Job | null = null;
/** Settles when the running job (if any) has finished; jobs run one after another. */
let jobs: Promise<void> = Promise.resolve();

const isStale = (job: Job): boolean => job.controller.signal.aborted || Atomics.load(cancelBelow, 0) > job.msg.seq;

interface Engine {
  /** What suggestions use: the base model, or a style's model built from it. */
  model: LanguageModel;
  /** The model as loaded; training always starts from it. */
  base: GPT2Model;
  modelDir: string;
  tokenizer: Tokenizer;
  session: PrefixSession;
  maxContextTokens: number;
  styleId: string | null;
  /** What the base model was loaded with (threads, precision); a style's model gets the same. */
  modelOptions: GPT2ModelOptions;
}

let engine: Promise<Engine> | null = null;

/** Rewrites, translations, continuations of a selection and tone classification (see assist-job.ts). */
const assists = new AssistLane({
  post,
  toEngineError,
  debug,
  async model() {
    const eng = await loadedEngine();
    return { model: eng.model, tokenizer: eng.tokenizer };
  },
});

async function load(msg: InitMessage): Promise<Engine> {
  const started = performance.now();
  post({ type: 'status', state: 'loading', modelDir: msg.modelDir });
  if (msg.precision !== undefined && !PRECISIONS.includes(msg.precision)) {
    throw Object.assign(new Error(`init: precision must be ${PRECISIONS.join(' or ')}, got ${JSON.stringify(msg.precision)}`), {
      code: 'INVALID_MESSAGE',
    });
  }
  const backend = await initBackend(msg.backend);
  const modelOptions: GPT2ModelOptions = { threads: msg.threads, precision: msg.precision };
  const [model, tokenizer] = await Promise.all([loadModel(msg.modelDir, modelOptions), loadTokenizer(msg.modelDir)]);
  const nPositions = model.config.nPositions;
  const nativeKernelsNote = model.nativeKernelsNote;
  post({
    type: 'status',
    state: 'ready',
    backend: backend.name,
    backendReason: backend.reason,
    threads: model.threads,
    threadsNote: model.threadsNote,
    precision: model.precision,
    precisionNote: model.precisionNote,
    nativeKernels: nativeKernelsNote === null,
    nativeKernelsNote,
    modelName: path.basename(path.resolve(msg.modelDir)),
    nPositions,
    loadMs: performance.now() - started,
  });
  return {
    model,
    base: model,
    modelDir: msg.modelDir,
    tokenizer,
    session: new PrefixSession(model),
    maxContextTokens: Math.min(nPositions, msg.maxContextTokens ?? nPositions),
    styleId: null,
    modelOptions,
  };
}

async function init(msg: InitMessage): Promise<void> {
  const previous = engine;
  // A reload ends the jobs of the old model first, and waits for them to let go of it.
  running?.controller.abort(CANCELLED);
  if (waiting !== null) cancelled(waiting);
  waiting = null;
  // Assists are held off from now on (not only once the old jobs end): an assist that started later would
  // wait for this very engine while the reload waits for it.
  engine = assists.exclusive(async () => {
    await jobs;
    await training.stop();
    const old = await previous?.catch(() => null);
    old?.session.dispose();
    if (old && old.model !== old.base) old.model.dispose();
    old?.base.dispose();
    return load(msg);
  });
  try {
    await engine;
  } catch (err) {
    post({ type: 'status', state: 'error', error: toEngineError(err, 'MODEL_LOAD_FAILED') });
  }
}

// ---- completion jobs ----

function enqueue(msg: CompleteMessage): void {
  running?.controller.abort(CANCELLED);
  if (waiting !== null) cancelled(waiting);
  const job: Job = { msg, receivedAt: performance.now(), controller: new AbortController(), generatedTokens: 0 };
  waiting = job;
  syncTrainingHold();
  jobs = jobs.then(async () => {
    if (waiting !== job) return; // replaced (and answered) while it waited
    waiting = null;
    running = job;
    try {
      await run(job);
    } catch (err) {
      post({ type: 'error', id: job.msg.id, error: toEngineError(err, 'GENERATION_FAILED') });
    } finally {
      running = null;
      syncTrainingHold();
    }
  });
}

// ---- training: suggestions first ----

const training = new WorkerTraining({ post, toEngineError });
let trainingHold: (() => void) | null = null;

/** Holds a training run between micro-batches while a completion waits or runs. */
function syncTrainingHold(): void {
  const busy = running !== null || waiting !== null;
  if (busy && trainingHold === null) trainingHold = training.holdFor();
  if (!busy && trainingHold !== null) {
    trainingHold();
    trainingHold = null;
  }
}

async function loadedEngine(): Promise<Engine> {
  if (engine === null) throw Object.assign(new Error('no model loaded: send init first'), { code: 'ENGINE_NOT_READY' });
  return engine;
}

function trainingModel(eng: Engine) {
  return { config: eng.base.config, tokenizer: eng.tokenizer, params: paramMapOf(eng.base.params) };
}

async function planTraining(msg: TrainPlanMessage): Promise<void> {
  try {
    const eng = await loadedEngine();
    const { plan, options } = training.plan(trainingModel(eng), msg.texts, msg.options);
    post({ type: 'train-plan', id: msg.id, plan, options });
  } catch (err) {
    post({ type: 'train-plan-error', id: msg.id, error: toEngineError(err, 'TRAINING_FAILED') });
  }
}

async function startTraining(msg: TrainStartMessage): Promise<void> {
  try {
    const eng = await loadedEngine();
    training.start(trainingModel(eng), msg);
  } catch (err) {
    post({ type: 'train-error', runId: msg.runId, error: toEngineError(err, 'TRAINING_FAILED') });
  }
}

/** The weights as tensors, handed to `use`, and freed after. */
async function withStyleWeights<T>(weights: StyleWeightsMessage, use: (trained: TrainedWeights) => Promise<T>): Promise<T> {
  const tensors = new Map([...weights.tensors].map(([name, t]) => [name, tf.tensor(t.data, t.shape, 'float32')]));
  const trained = new TrainedWeights(weights.method, weights.lora, tensors);
  try {
    return await use(trained);
  } finally {
    trained.dispose();
  }
}

/**
 * A model for suggestions with the style in it: LoRA adapters merged into copies of the adapted matrices
 * (the other tensors are shared with the base: clones share their data), or the full trained weights.
 */
function styledModel(eng: Engine, trained: TrainedWeights): GPT2Model {
  const config = eng.base.config;
  if (trained.lora === null) return modelFromParams(config, Object.fromEntries(trained.tensors), eng.modelOptions);
  const base = paramMapOf(eng.base.params);
  const merged = mergeLora(base, loraSet(trained.tensors, trained.lora));
  try {
    return modelFromParams(config, merged, eng.modelOptions);
  } finally {
    disposeMerged(merged, base);
  }
}

function setStyle(msg: SetStyleMessage): void {
  // In the job queue, so that no completion uses the model while it is swapped.
  jobs = jobs.then(async () => {
    try {
      const eng = await loadedEngine();
      const next = msg.weights === null ? eng.base : await withStyleWeights(msg.weights, async (trained) => styledModel(eng, trained));
      // An assist may be generating with the old model: swap once it has let go of it.
      await assists.exclusive(async () => {
        const old = eng.model;
        eng.session.dispose();
        eng.model = next;
        eng.session = new PrefixSession(next);
        eng.styleId = msg.weights === null ? null : msg.styleId;
        if (old !== eng.base && old !== next) old.dispose();
      });
      post({ type: 'style-set', id: msg.id, styleId: eng.styleId });
    } catch (err) {
      post({ type: 'style-set', id: msg.id, styleId: null, error: toEngineError(err, 'STYLE_FAILED') });
    }
  });
}

async function exportStyle(msg: ExportStyleMessage): Promise<void> {
  try {
    const eng = await loadedEngine();
    await withStyleWeights(msg.weights, (trained) =>
      exportTrainedModel(msg.dir, eng.base.config, paramMapOf(eng.base.params), trained, { tokenizerFrom: eng.modelDir }),
    );
    post({ type: 'style-exported', id: msg.id, dir: msg.dir });
  } catch (err) {
    post({ type: 'style-exported', id: msg.id, dir: msg.dir, error: toEngineError(err, 'EXPORT_FAILED') });
  }
}

function cancel(id: string): void {
  if (waiting?.msg.id === id) {
    cancelled(waiting);
    waiting = null;
    syncTrainingHold();
  }
  if (running?.msg.id === id) running.controller.abort(CANCELLED);
}

function cancelled(job: Job): void {
  post({ type: 'cancelled', id: job.msg.id, generatedTokens: job.generatedTokens });
}

/** The generation options of a request, without the engine's own fields (generate refuses unknown ones). */
function generationOptions(options: CompletionOptions, numAlternatives: number): GenerationOptions {
  const { stopAtSentenceEnd, reusePrefix: _reuse, prefillOnly: _prefill, debugStepDelayMs: _delay, debugPrefillChunkTokens: _chunk, ...rest } = options;
  return {
    ...rest,
    maxNewTokens: rest.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    numReturnSequences: numAlternatives,
    // Alternatives are different by nature: greedy decoding would give one sequence k times.
    doSample: numAlternatives > 1 ? true : rest.doSample,
    stop: stopAtSentenceEnd ? [...new Set(['\n', ...(rest.stop ?? [])])] : rest.stop,
  };
}

async function run(job: Job): Promise<void> {
  const { msg } = job;
  const started = performance.now();
  const queueMs = started - job.receivedAt;
  if (engine === null) {
    post({ type: 'error', id: msg.id, error: { code: 'ENGINE_NOT_READY', message: 'no model loaded: send init first' } });
    return;
  }
  let eng: Engine;
  try {
    eng = await engine;
  } catch (err) {
    const cause = toEngineError(err, 'MODEL_LOAD_FAILED');
    post({ type: 'error', id: msg.id, error: { code: 'ENGINE_NOT_READY', message: `the model did not load: ${cause.message}` } });
    return;
  }
  if (isStale(job)) return cancelled(job);

  const numAlternatives = Math.max(1, Math.floor(msg.numAlternatives));
  const options = generationOptions(msg.options, numAlternatives);
  const maxNewTokens = resolveMaxNewTokens(options, 0);
  const budget = eng.maxContextTokens - maxNewTokens;
  if (budget < 1) {
    post({
      type: 'error',
      id: msg.id,
      error: {
        code: 'INVALID_ARGUMENT',
        message: `maxNewTokens ${maxNewTokens} leaves no room for the prompt in a context of ${eng.maxContextTokens} tokens`,
      },
    });
    return;
  }

  const tokenizeStart = performance.now();
  const allIds = eng.tokenizer.encode(msg.prefix);
  if (allIds.length === 0) {
    // The start of a document: GPT-2 continues from <|endoftext|>, as after any earlier document.
    const bos = eng.model.config.bosTokenId ?? eng.tokenizer.eosTokenId;
    if (bos === null) throw new Error('the prefix is empty and the model has no beginning-of-text token');
    allIds.push(bos);
  }
  // The window slides a quarter of the budget at a time: the cache survives three quarters of the slides.
  const promptIds = contextWindow(allIds, budget, Math.max(1, Math.floor(budget / 4)));
  const tokenizeMs = performance.now() - tokenizeStart;

  if (isStale(job)) return cancelled(job);
  try {
    const times = { queueMs, tokenizeMs, started };
    if (msg.options.prefillOnly) prefillOnly(job, eng, promptIds, times);
    else await suggest(job, eng, options, promptIds, times);
  } catch (err) {
    // The cache may hold a half-run step: start the next request from a clean one.
    eng.session.reset();
    throw err;
  }
}

/** Test-only (INKLING_ENGINE_DEBUG=1): blocks the thread for `debugStepDelayMs`, so that tests can cancel mid-job. */
function debugPause(options: CompletionOptions): (() => void) | null {
  const ms = debug ? (options.debugStepDelayMs ?? 0) : 0;
  if (ms <= 0) return null;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  return () => void Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Tokens per pass of a prefill-only job: ~0.5 s on GPT-2 small with two threads, so a newer request waits at
 * most about that long for the warm-up it supersedes, which keeps the passes it ran.
 */
const PREFILL_CHUNK_TOKENS = 128;

/** Runs the prompt the session lacks and nothing else (`CompletionOptions.prefillOnly`), in stoppable passes. */
function prefillOnly(
  job: Job,
  eng: Engine,
  promptIds: number[],
  times: JobTimes,
): void {
  const { msg } = job;
  const pause = debugPause(msg.options);
  let prepared: PreparedPrompt;
  try {
    prepared = eng.session.prepare(promptIds, {
      reuse: msg.options.reusePrefix ?? true,
      chunkTokens: (debug ? msg.options.debugPrefillChunkTokens : undefined) ?? PREFILL_CHUNK_TOKENS,
      shouldStop: () => {
        pause?.();
        return isStale(job);
      },
    });
  } catch (err) {
    if (err instanceof PrefillStopped) return cancelled(job);
    throw err;
  }
  prepared.release();
  if (isStale(job)) return cancelled(job);
  postDone(job, prepared, promptIds.length, times, [], 0);
}

/** The job's `done`: what it shows (none for a prefill), and where its time went. */
function postDone(job: Job, prepared: PreparedPrompt, promptTokens: number, times: JobTimes, alternatives: string[], decodeMs: number): void {
  post({
    type: 'done',
    id: job.msg.id,
    alternatives,
    reusedTokens: prepared.reusedTokens,
    promptTokens,
    timings: {
      queueMs: times.queueMs,
      tokenizeMs: times.tokenizeMs,
      prefillMs: prepared.prefillMs,
      decodeMs,
      totalMs: performance.now() - times.started,
    },
  });
}

/** Runs the prompt the session lacks, generates, and streams the shaped suggestions. */
async function suggest(
  job: Job,
  eng: Engine,
  options: GenerationOptions,
  promptIds: number[],
  times: JobTimes,
): Promise<void> {
  const { msg } = job;
  const numAlternatives = options.numReturnSequences!;
  const pause = debugPause(msg.options);
  const prepared = eng.session.prepare(promptIds, {
    reuse: msg.options.reusePrefix ?? true,
    screen: promptScreen(eng.model, eng.tokenizer, promptIds, options),
  });
  const streams = Array.from(
    { length: numAlternatives },
    () => new SuggestionStream({ stopAtSentenceEnd: msg.options.stopAtSentenceEnd ?? false, afterSpace: /[ \t]$/.test(msg.prefix) }),
  );
  const { controller } = job;
  let result;
  try {
    result = await generate(prepared.model, eng.tokenizer, prepared.promptIds.slice(), { ...options, signal: controller.signal }, (event) => {
      job.generatedTokens++;
      pause?.();
      if (isStale(job)) {
        controller.abort(CANCELLED);
        return;
      }
      const stream = streams[event.sequence];
      const delta = stream.update(event.text);
      if (delta !== '') post({ type: 'delta', id: msg.id, alternative: event.sequence, text: delta });
      if (streams.every((s) => s.ended)) controller.abort(SUGGESTION_ENDED);
    });
  } finally {
    prepared.release();
  }
  if (controller.signal.aborted && controller.signal.reason === CANCELLED) return cancelled(job);
  if (Atomics.load(cancelBelow, 0) > msg.seq) return cancelled(job);

  result.sequences.forEach((sequence, i) => {
    const delta = streams[i].update(sequence.text);
    if (delta !== '') post({ type: 'delta', id: msg.id, alternative: i, text: delta });
  });
  postDone(job, prepared, promptIds.length, times, streams.map((s) => s.text), result.timings.decodeMs + result.timings.prefillMs);
}

// ---- test-only ----

function debugCrash(mode: 'throw' | 'exit' | 'oom'): void {
  if (mode === 'exit') process.exit(70);
  if (mode === 'throw') {
    // Outside any promise chain, so that it is an uncaught exception of the thread.
    setImmediate(() => {
      throw new Error('debug-crash: the engine worker threw on purpose');
    });
    return;
  }
  const hoard: unknown[] = [];
  for (;;) hoard.push(new Array(1 << 16).fill({ hoard }));
}

// ---- message loop ----

port.on('message', (msg: HostToWorker) => {
  switch (msg.type) {
    case 'init':
      void init(msg);
      return;
    case 'complete':
      enqueue(msg);
      return;
    case 'cancel':
      cancel(msg.id);
      return;
    case 'assist':
      assists.run(msg);
      return;
    case 'assist-cancel':
      assists.cancel(msg.id);
      return;
    case 'classify':
      assists.classify(msg);
      return;
    case 'memory': {
      const memory = tf.memory();
      post({
        type: 'memory',
        id: msg.id,
        numTensors: memory.numTensors,
        numBytes: memory.numBytes,
        heapUsedBytes: process.memoryUsage().heapUsed,
      });
      return;
    }
    case 'train-plan':
      void planTraining(msg);
      return;
    case 'train-start':
      void startTraining(msg);
      return;
    case 'train-pause':
    case 'train-resume':
    case 'train-cancel':
      training.control(msg.type, msg.runId);
      return;
    case 'train-checkpoint-saved':
      training.acknowledge(msg.runId, msg.ackId, msg.error);
      return;
    case 'set-style':
      setStyle(msg);
      return;
    case 'export-style':
      void exportStyle(msg);
      return;
    case 'debug-crash':
      if (!debug) {
        post({
          type: 'error',
          id: 'debug-crash',
          error: { code: 'INVALID_MESSAGE', message: `debug-crash is test-only: set ${DEBUG_ENV}=1 to allow it` },
        });
        return;
      }
      debugCrash(msg.mode);
      return;
    default: {
      const unknown = msg as { type?: unknown };
      post({
        type: 'error',
        id: '',
        error: { code: 'INVALID_MESSAGE', message: `unknown engine message type ${JSON.stringify(unknown.type)}` },
      });
    }
  }
});
