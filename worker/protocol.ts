/**
 * The one contract between the engine host (main process) and the engine worker thread. Both sides import
 * it with `import type`, so a change that breaks either side fails `tsc`. Every message is plain
 * structured-clone data; errors travel as `{ code, message }`.
 */
import type { FinishReason, GenerationOptions } from './generate/types.js';
import type { Precision } from './model/parallel/decode-products.js';
import type { CheckpointTensor, TrainingCheckpoint } from './train/checkpoint.js';
import type { TrainingText } from './train/data.js';
import type { LoraConfig } from './train/lora.js';
import type { PromptTemplate } from './rewrite/templates.js';
import type { ZeroShotResult } from './classify/zero-shot.js';
import type { ResolvedTrainingOptions, TrainingOptions, TrainingPlan } from './train/options.js';
import type { TrainingEvent } from './train/trainer.js';

export interface EngineError {
  code: string;
  message: string;
}

/** Error codes the engine uses; other codes (a loader's, Node's `ENOENT`) pass through unchanged. */
export type EngineErrorCode =
  | 'ENGINE_CRASHED'
  | 'ENGINE_CRASH_LOOP'
  | 'ENGINE_STOPPED'
  | 'ENGINE_NOT_READY'
  | 'MODEL_LOAD_FAILED'
  | 'GENERATION_FAILED'
  | 'INVALID_MESSAGE';

/** What one completion may ask of the generation loop, plus the engine-side post-processing. */
export interface CompletionOptions extends Omit<GenerationOptions, 'signal' | 'numReturnSequences'> {
  /** Cut each suggestion after the first sentence end or line break. */
  stopAtSentenceEnd?: boolean;
  /** Reuse the keys/values of the previous prompt's common prefix (default true; false for benchmarks). */
  reusePrefix?: boolean;
  /**
   * Only run the prompt into the prefix cache and generate nothing (`done` with no alternatives): the caret came
   * to rest somewhere new, and the suggestion asked for there after the next pause should find its prompt
   * already run. The prompt window is chosen as for a suggestion with these options (it depends on
   * `maxNewTokens`), so that the two agree.
   */
  prefillOnly?: boolean;
  /**
   * Test-only (honoured only when the worker runs with INKLING_ENGINE_DEBUG=1): block the thread this long
   * after every generated token (and every pass of a `prefillOnly` job), so that tests can cancel a job in the
   * middle without racing it.
   */
  debugStepDelayMs?: number;
  /** Test-only, as `debugStepDelayMs`: the tokens per pass of a `prefillOnly` job (which sleeps that delay between passes). */
  debugPrefillChunkTokens?: number;
}

export interface InitMessage {
  type: 'init';
  /** A folder with config.json + model.safetensors (and optionally tokenizer files). */
  modelDir: string;
  /** Preferred TensorFlow.js backend ("wasm", "cpu", "tensorflow"); the worker falls back when unavailable. */
  backend?: string;
  /**
   * Prompt tokens kept at most (default: the model's n_positions). Long documents use only their tail; a
   * smaller window bounds the prefill cost of a keystroke that cannot reuse the cache.
   */
  maxContextTokens?: number;
  /** Threads for the model's matrix products (1 or 2; default: INKLING_THREADS, else by model size). */
  threads?: number;
  /** Weights for decoding: exact (float32) or fast (int8, see decode-products.ts); default INKLING_PRECISION, else exact. */
  precision?: Precision;
}

export interface CompleteMessage {
  type: 'complete';
  id: string;
  /** The document text before the cursor. */
  prefix: string;
  options: CompletionOptions;
  numAlternatives: number;
  /**
   * The host's sequence number for this job. The worker also watches a shared counter (see
   * `EngineWorkerData.cancelBelow`) so that a newer request stops this one within one decode step even
   * while the generation loop has not yet yielded to the message queue.
   */
  seq: number;
}

export interface CancelMessage {
  type: 'cancel';
  id: string;
}

/** Test/diagnostic: the worker answers with a `memory` event. */
export interface MemoryMessage {
  type: 'memory';
  id: string;
}

/** Test-only, refused unless INKLING_ENGINE_DEBUG=1: make the worker die in one of the ways it can. */
export interface DebugCrashMessage {
  type: 'debug-crash';
  /** throw: an uncaught exception; exit: process.exit(70) in the thread; oom: exhaust the heap limit. */
  mode: 'throw' | 'exit' | 'oom';
}

/** Tokenizes the texts and plans a run with these options, without training. */
export interface TrainPlanMessage {
  type: 'train-plan';
  id: string;
  texts: TrainingText[];
  options: TrainingOptions;
}

/**
 * Starts (or, with `checkpoint`, resumes) a training run on the loaded base model. One run at a time;
 * completions keep priority: the run yields between micro-batches while a completion waits or runs.
 */
export interface TrainStartMessage {
  type: 'train-start';
  runId: string;
  texts: TrainingText[];
  options: TrainingOptions | ResolvedTrainingOptions;
  /** The run's latest checkpoint when it resumes (the host keeps checkpoints, e.g. in SQLite). */
  checkpoint: TrainingCheckpoint | null;
}

export interface TrainControlMessage {
  type: 'train-pause' | 'train-resume' | 'train-cancel';
  runId: string;
}

/** The host's answer to a `train-checkpoint`: the run goes on only once its checkpoint is stored. */
export interface TrainCheckpointSavedMessage {
  type: 'train-checkpoint-saved';
  runId: string;
  ackId: number;
  error?: EngineError;
}

/** Weights of a fine-tuned style: LoRA adapters (merged into a copy of the base) or full weights. */
export interface StyleWeightsMessage {
  method: 'lora' | 'full';
  lora: LoraConfig | null;
  tensors: Map<string, CheckpointTensor>;
}

/** Switches suggestions to a style (null: back to the base model); answered by `style-set`. */
export interface SetStyleMessage {
  type: 'set-style';
  id: string;
  styleId: string | null;
  weights: StyleWeightsMessage | null;
}

/** Writes a style as a Hugging Face folder (LoRA merged into the base); answered by `style-exported`. */
export interface ExportStyleMessage {
  type: 'export-style';
  id: string;
  dir: string;
  weights: StyleWeightsMessage;
}

/**
 * Runs a prompt template on a selection (rewrite, translate, or continue: a template of just "{text}"),
 * streaming `assist-delta`s. Assists have their own lane: a newer assist cancels an older one (latest
 * wins), and completions never wait behind an assist (the two interleave step by step).
 */
export interface AssistMessage {
  type: 'assist';
  id: string;
  template: PromptTemplate;
  text: string;
  options: GenerationOptions & Pick<CompletionOptions, 'debugStepDelayMs'>;
  /** Keep the output's leading whitespace (a continuation is inserted right after the text). */
  keepLeadingSpace?: boolean;
}

export interface AssistCancelMessage {
  type: 'assist-cancel';
  id: string;
}

/** Zero-shot classification of a text (e.g. its tone); answered by `classified`. */
export interface ClassifyMessage {
  type: 'classify';
  id: string;
  text: string;
  labels: string[];
  /** Prompt with `{text}`. */
  template: string;
  calibrate: boolean;
}

export type HostToWorker =
  | InitMessage
  | AssistMessage
  | AssistCancelMessage
  | ClassifyMessage
  | CompleteMessage
  | CancelMessage
  | MemoryMessage
  | DebugCrashMessage
  | TrainPlanMessage
  | TrainStartMessage
  | TrainControlMessage
  | TrainCheckpointSavedMessage
  | SetStyleMessage
  | ExportStyleMessage;

export type WorkerStatusEvent =
  | { type: 'status'; state: 'loading'; modelDir: string }
  | {
      type: 'status';
      state: 'ready';
      backend: string;
      backendReason: string;
      /** Threads the model's matrix products run on (1 or 2; see GPT2Model.threads). */
      threads: number;
      /** Why one thread although two were asked for (GPT2Model.threadsNote), else null. */
      threadsNote: string | null;
      /** Precision the decode step runs in (see GPT2Model.precision). */
      precision: Precision;
      /** Why exact although fast was asked for (GPT2Model.precisionNote), else null. */
      precisionNote: string | null;
      /** Whether the matrix products run on the native kernels (AVX2; worker/model/kernels/native). */
      nativeKernels: boolean;
      /** Why not (GPT2Model.nativeKernelsNote), else null. */
      nativeKernelsNote: string | null;
      modelName: string;
      /** Context length of the model. */
      nPositions: number;
      loadMs: number;
    }
  | { type: 'status'; state: 'error'; error: EngineError };

/** Where the time of one completion went, in the worker (milliseconds). */
export interface CompletionTimings {
  /** From the job's message arriving in the worker to its start (waiting for the job before it). */
  queueMs: number;
  tokenizeMs: number;
  /** Running the prompt tokens the cache did not hold. */
  prefillMs: number;
  decodeMs: number;
  /** From the job's start to its last token. */
  totalMs: number;
}

export type WorkerToHost =
  | WorkerStatusEvent
  /** Text appended to alternative `alternative`; the deltas of one alternative add up to its final text. */
  | { type: 'delta'; id: string; alternative: number; text: string }
  | {
      type: 'done';
      id: string;
      alternatives: string[];
      /** Prompt tokens whose keys/values came from the previous request. */
      reusedTokens: number;
      /** Prompt tokens the model saw (the tail of the document that fits the context). */
      promptTokens: number;
      timings: CompletionTimings;
    }
  | { type: 'cancelled'; id: string; /** tokens generated before the job stopped */ generatedTokens: number }
  | { type: 'error'; id: string; error: EngineError }
  | { type: 'memory'; id: string; numTensors: number; numBytes: number; heapUsedBytes: number }
  | { type: 'train-plan'; id: string; plan: TrainingPlan; options: ResolvedTrainingOptions }
  | { type: 'train-plan-error'; id: string; error: EngineError }
  /** The engine's own events (progress, evaluation, paused, …); pauses for completions are not reported. */
  | { type: 'train-event'; runId: string; event: TrainingEvent; options?: ResolvedTrainingOptions }
  /** Store this checkpoint and answer with `train-checkpoint-saved`. */
  | { type: 'train-checkpoint'; runId: string; ackId: number; checkpoint: TrainingCheckpoint }
  | { type: 'train-error'; runId: string; error: EngineError }
  | { type: 'style-set'; id: string; styleId: string | null; error?: EngineError }
  | { type: 'style-exported'; id: string; dir: string; error?: EngineError }
  /** Text appended to an assist's output; the deltas add up to `output` of its `assist-done`. */
  | { type: 'assist-delta'; id: string; text: string }
  | { type: 'assist-done'; id: string; output: string; finishReason: FinishReason; generatedTokens: number }
  | { type: 'assist-cancelled'; id: string }
  | { type: 'assist-error'; id: string; error: EngineError }
  | { type: 'classified'; id: string; result?: ZeroShotResult; error?: EngineError };

/** `workerData` the host passes when it starts the thread. */
export interface EngineWorkerData {
  /**
   * Int32Array over a SharedArrayBuffer, one element: every job whose `seq` is below it is cancelled. The
   * host raises it synchronously, and the worker checks it after each decode step.
   */
  cancelBelow: SharedArrayBuffer;
  /** Set when the thread is started through the tsx bootstrap: the module URL to import. */
  entry?: string;
}
