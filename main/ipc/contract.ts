/**
 * The one contract between the renderer and the main process. The Electron preload and the browser-mode
 * WebSocket bridge both expose exactly `InklingApi`; main implements `ApiHandlers` once for both transports.
 * Errors cross the boundary as `AppError` data, never as thrown objects.
 */

export interface AppError {
  code: string;
  message: string;
}

export interface DocumentSummary {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  /** The first characters of the body, for the list. */
  snippet: string;
}

export interface DocumentFull extends DocumentSummary {
  body: string;
}

export interface RevisionSummary {
  id: number;
  documentId: string;
  title: string;
  createdAt: number;
  /** Characters in the body at that revision. */
  length: number;
}

export interface DecodingSettings {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  /** New tokens per suggestion. */
  maxNewTokens: number;
  /** Alternatives fetched when the user cycles (Alt+] / Alt+[). */
  numAlternatives: number;
  doSample: boolean;
}

/**
 * Weights the engine decodes with. exact: float32. fast: int8 with a scale per 32 weights for the few new
 * tokens of each step (about 2× faster on GPT-2 small), prompts still in float32.
 */
export type EnginePrecision = 'exact' | 'fast';

export interface Settings {
  decoding: DecodingSettings;
  /** Pause after typing before a suggestion is requested. */
  suggestionDelayMs: number;
  /** Cut suggestions at a sentence end or a line break. */
  stopAtSentenceEnd: boolean;
  suggestionsEnabled: boolean;
  /** Desktop app only: look for a newer release now and then (off by default: nothing leaves the machine). */
  checkForUpdates: boolean;
  /** "Classify tone": the labels the selection is scored against (2 to 10, different). */
  toneLabels: string[];
  /** "Classify tone": the zero-shot prompt, with `{text}` where the selection goes. */
  toneTemplate: string;
  /** "Classify tone": divide out the labels' prior measured on the template with empty text. */
  toneCalibrate: boolean;
  /** "Suggestion speed": the engine restarts with it when it changes. */
  precision: EnginePrecision;
}

export type EngineState = 'starting' | 'loading' | 'ready' | 'restarting' | 'error';

export interface EngineStatus {
  state: EngineState;
  /** e.g. "wasm"; empty until the worker reports it. */
  backend: string;
  /** Why this backend, e.g. "tfjs-node not installed, using WebAssembly". */
  backendReason: string;
  /** Threads the engine's matrix products run on (1 or 2); absent until the worker reports it. */
  threads?: number;
  /** Why one thread although two were asked for (INKLING_THREADS), e.g. "the cpu backend schedules its own threads". */
  threadsNote?: string | null;
  /** Precision the engine decodes with; absent until the worker reports it. */
  precision?: EnginePrecision;
  /** Why exact although fast was asked for, e.g. "inDim must be a positive multiple of 32, got 40". */
  precisionNote?: string | null;
  /**
   * Whether the matrix products run on the native kernels (AVX2: prompts about twice as fast as on the WebAssembly
   * ones); absent until reported.
   */
  nativeKernels?: boolean;
  /** Why not, e.g. "this CPU has no AVX2 and FMA"; null when they do. */
  nativeKernelsNote?: string | null;
  modelName: string;
  error: AppError | null;
}

export interface CompletionRequest {
  /** Chosen by the caller; a new request cancels every older one (latest wins). */
  requestId: string;
  documentId: string;
  /** The document text before the cursor. */
  prefix: string;
  /** 1 for the inline suggestion; more when the user asks to cycle alternatives. */
  numAlternatives?: number;
  /** Overrides of the saved decoding settings. */
  decoding?: Partial<DecodingSettings>;
  stopAtSentenceEnd?: boolean;
  /**
   * Only run this prefix into the engine's cache, generating nothing (`done` with no alternatives): sent when
   * the caret comes to rest somewhere new, so that a suggestion asked for there later finds its prompt
   * already run. Like any request it supersedes the older ones.
   */
  prefillOnly?: boolean;
}

export type CompletionEvent =
  | { requestId: string; type: 'delta'; alternative: number; text: string }
  | {
      requestId: string;
      type: 'done';
      alternatives: string[];
      /** From the request reaching main to the last token. */
      latencyMs: number;
      /** Prompt tokens whose keys/values were reused from the previous request. */
      reusedTokens: number;
    }
  | { requestId: string; type: 'cancelled' }
  | { requestId: string; type: 'error'; error: AppError };

// ---- fine-tuning ("learn my style") ----

export type FinetuneMethod = 'lora' | 'full';
export type FinetuneState = 'queued' | 'running' | 'paused' | 'done' | 'failed' | 'cancelled';

/** The few settings the panel offers; everything else keeps the engine's defaults. */
export interface FinetuneSettings {
  method: FinetuneMethod;
  epochs?: number;
  learningRate?: number;
  /** Stop after this many optimizer steps (a short trial run). */
  maxSteps?: number;
  /** Tokens per training block. */
  blockSize?: number;
  loraRank?: number;
  loraAlpha?: number;
  seed?: number;
}

/** What to train on: documents from the store and/or texts of files the user picked. */
export interface FinetuneSource {
  documentIds?: string[];
  files?: { name: string; text: string }[];
}

export interface FinetuneRequest extends FinetuneSource {
  settings: FinetuneSettings;
  /** The name the resulting style gets (default: from the first document). */
  name?: string;
}

export interface FinetunePlan {
  documents: number;
  trainTokens: number;
  heldOutTokens: number;
  totalSteps: number;
  tokensPerStep: number;
  /** Tokens the whole run trains on. */
  tokensToTrain: number;
  trainableParameters: number;
  /** Training speed measured by an earlier run of this method on this model, null when none measured it yet. */
  tokensPerSecond: number | null;
  /** tokensToTrain / tokensPerSecond; null when the speed is not known yet. */
  estimatedMs: number | null;
}

export interface LossPoint {
  step: number;
  trainLoss?: number;
  heldOutLoss?: number;
}

export interface FinetuneRun {
  id: string;
  name: string;
  modelName: string;
  method: FinetuneMethod;
  state: FinetuneState;
  settings: FinetuneSettings;
  step: number;
  totalSteps: number;
  points: LossPoint[];
  perplexityBefore: number | null;
  perplexityAfter: number | null;
  tokensPerSecond: number | null;
  /** Time left at the current pace (null when unknown or not running). */
  etaMs: number | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  error: AppError | null;
  /** The style this run became once done. */
  styleId: string | null;
}

/** A finished run the user can switch on for suggestions. */
export interface Style {
  id: string;
  name: string;
  runId: string | null;
  method: FinetuneMethod;
  modelName: string;
  createdAt: number;
  active: boolean;
  perplexityBefore: number | null;
  perplexityAfter: number | null;
}

// ---- assist: templates and tone on a selection ----

export type TemplateKind = 'rewrite' | 'translate';

/** A prompt template ("Rewrite more formally: …", "English: … French: …"), stored in SQLite and editable. */
export interface Template {
  id: string;
  name: string;
  kind: TemplateKind;
  /** The prompt, with `{text}` (once) where the selection goes. */
  prompt: string;
  /** Generation ends at the first of these; the output is cut before it. */
  stop: string[];
  /** Shown beside the output (e.g. that GPT-2 translates poorly). */
  note: string | null;
  /** Shipped with the app: it can be reset to its default, not deleted. */
  builtin: boolean;
  /** A built-in template the user changed. */
  modified: boolean;
  updatedAt: number;
}

/** A new template (no id) or a change to one. */
export interface TemplateInput {
  id?: string;
  name: string;
  kind: TemplateKind;
  prompt: string;
  stop: string[];
  note?: string | null;
}

/** The template id of "Continue": the selection continued as it is, no template. */
export const CONTINUE_TEMPLATE_ID = 'continue';

export interface AssistRequest {
  /** Chosen by the caller; a new assist cancels the older one (latest wins); completions are not affected. */
  requestId: string;
  /** A stored template's id, or `CONTINUE_TEMPLATE_ID`. */
  templateId: string;
  /** The selection. */
  text: string;
  /** Overrides of the saved decoding settings (a template's own length applies otherwise). */
  decoding?: Partial<DecodingSettings>;
}

export type AssistEvent =
  | { requestId: string; type: 'delta'; text: string }
  /** `output` is the final text (trimmed); the deltas streamed before it may differ in trailing space. */
  | { requestId: string; type: 'done'; output: string; finishReason: 'length' | 'eos' | 'stop' | 'aborted' }
  | { requestId: string; type: 'cancelled' }
  | { requestId: string; type: 'error'; error: AppError };

export interface ToneScore {
  label: string;
  /** Calibrated when calibration is on. */
  probability: number;
  uncalibratedProbability: number;
}

export interface ToneResult {
  /** The most probable label. */
  label: string;
  scores: ToneScore[];
  calibrated: boolean;
}

// ---- model manager: the base models (bundled default, imported, downloaded) ----

export type ModelSource = 'bundled' | 'imported' | 'downloaded';

export interface ModelInfo {
  /** 'bundled' for the default model shipped with the app; otherwise the registry's id. */
  id: string;
  name: string;
  source: ModelSource;
  /** Where it came from: the imported folder or file, the hub repository; null for the bundled model. */
  origin: string | null;
  /** e.g. "12 layers × 768, 12 heads, context 1024, vocabulary 50257". */
  shape: string;
  parameters: number;
  /** Bytes on disk. */
  sizeBytes: number;
  /** Bytes the loaded model needs in memory (estimate). */
  memoryBytes: number;
  /** The model suggestions come from now. */
  active: boolean;
  createdAt: number | null;
}

/** What an import would bring in, checked before anything is copied. */
export interface ModelInspection {
  source: string;
  suggestedName: string;
  releasedAs: string | null;
  shape: string;
  parameters: number;
  dtypes: string[];
  sizeBytes: number;
  memoryBytes: number;
  tokenizerFiles: string[];
}

/**
 * What the import dialog offers. Omitted: folders and .safetensors files in one dialog — macOS only; Windows
 * and Linux dialogs pick either files or folders, and show a folder dialog then.
 */
export type ImportSourceKind = 'folder' | 'file';

/** A GPT-2 checkpoint offered for download. */
export interface ModelDownloadOption {
  repo: string;
  label: string;
  approxBytes: number;
  /** Already downloaded. */
  installed: boolean;
}

/** Progress of an import or a download; `done`/`error`/`cancelled` end it. */
export interface ModelProgressEvent {
  /** The import's source path or the download's repository. */
  jobId: string;
  kind: 'import' | 'download';
  state: 'running' | 'done' | 'error' | 'cancelled';
  bytes: number;
  totalBytes: number | null;
  /** The file being copied or downloaded. */
  file?: string;
  model?: ModelInfo;
  error?: AppError;
}

/** What the renderer can call. Every method resolves or rejects with an Error whose message is `AppError.message`. */
export interface InklingApi {
  listDocuments(query?: string): Promise<DocumentSummary[]>;
  getDocument(id: string): Promise<DocumentFull | null>;
  createDocument(title?: string): Promise<DocumentFull>;
  saveDocument(id: string, patch: { title?: string; body?: string }): Promise<DocumentSummary>;
  /** Moves the document to the trash; `restoreDocument` undoes it. */
  deleteDocument(id: string): Promise<void>;
  restoreDocument(id: string): Promise<DocumentSummary>;
  listRevisions(documentId: string): Promise<RevisionSummary[]>;
  restoreRevision(documentId: string, revisionId: number): Promise<DocumentFull>;
  getSettings(): Promise<Settings>;
  updateSettings(patch: Partial<Omit<Settings, 'decoding'>> & { decoding?: Partial<DecodingSettings> }): Promise<Settings>;
  getEngineStatus(): Promise<EngineStatus>;
  /** Starts a completion; its results arrive through `onCompletion`. */
  complete(request: CompletionRequest): Promise<void>;
  cancelCompletion(requestId: string): Promise<void>;
  onCompletion(listener: (event: CompletionEvent) => void): () => void;
  onEngineStatus(listener: (status: EngineStatus) => void): () => void;

  /** Tokens, steps and (when a speed was measured before) time of a run, without starting it. */
  planFinetune(request: FinetuneRequest): Promise<FinetunePlan>;
  /** Starts a run in the engine worker; its progress arrives through `onFinetune`. */
  startFinetune(request: FinetuneRequest): Promise<FinetuneRun>;
  pauseFinetune(runId: string): Promise<FinetuneRun>;
  /** Continues a paused run (also one paused by a restart of the app, from its last checkpoint). */
  resumeFinetune(runId: string): Promise<FinetuneRun>;
  cancelFinetune(runId: string): Promise<FinetuneRun>;
  /** Newest first, with their loss curves. */
  listFinetuneRuns(): Promise<FinetuneRun[]>;
  deleteFinetuneRun(runId: string): Promise<void>;
  listStyles(): Promise<Style[]>;
  /** Switches a style on for suggestions (null: back to the base model); resolves with the styles. */
  activateStyle(styleId: string | null): Promise<Style[]>;
  renameStyle(styleId: string, name: string): Promise<Style>;
  deleteStyle(styleId: string): Promise<void>;
  /** Writes a Hugging Face checkpoint folder (LoRA merged) under the data folder, or into `dir`; resolves with its path. */
  exportStyle(styleId: string, dir?: string): Promise<{ path: string }>;
  onFinetune(listener: (run: FinetuneRun) => void): () => void;

  /** Built-in templates first, then the user's, by name. */
  listTemplates(): Promise<Template[]>;
  /** Creates (no id) or changes a template; the prompt must hold `{text}` exactly once. */
  saveTemplate(input: TemplateInput): Promise<Template>;
  /** Deletes one of the user's templates (built-in ones can only be reset). */
  deleteTemplate(id: string): Promise<void>;
  /** Puts a built-in template back to its default. */
  resetTemplate(id: string): Promise<Template>;
  /** Runs a template (or "Continue") on a selection; the output streams through `onAssist`. */
  runTemplate(request: AssistRequest): Promise<void>;
  cancelAssist(requestId: string): Promise<void>;
  /** Scores the text against the tone labels of the settings (zero-shot, calibrated when the settings say so). */
  classifyTone(text: string): Promise<ToneResult>;
  onAssist(listener: (event: AssistEvent) => void): () => void;

  /** The bundled default (when this build has one), then imported and downloaded models, newest first. */
  listModels(): Promise<ModelInfo[]>;
  /** Validates a GPT-2 folder or .safetensors file on the machine running main; copies nothing. */
  inspectModel(path: string): Promise<ModelInspection>;
  /** Copies a validated checkpoint into the data folder and registers it; progress through `onModels`. */
  importModel(path: string, name?: string): Promise<ModelInfo>;
  /** The GPT-2 sizes offered for download. */
  listModelDownloads(): Promise<ModelDownloadOption[]>;
  /** Downloads a GPT-2 checkpoint from the hub; progress through `onModels`; resumes an interrupted one. */
  downloadModel(repo: string): Promise<ModelInfo>;
  cancelDownload(repo: string): Promise<void>;
  /** Restarts the engine on this model and remembers it for the next start; resolves with the list. */
  activateModel(id: string): Promise<ModelInfo[]>;
  /** Deletes an imported or downloaded model (not the active one, not the bundled default). */
  deleteModel(id: string): Promise<void>;
  /**
   * Desktop app only: the system's open dialog, over the app's window, for a folder or a .safetensors file to
   * import; resolves with its path, or null when the user cancels. Browser mode has no native dialog: it
   * rejects with NOT_AVAILABLE, and the page keeps to its path field and drag-and-drop.
   */
  pickImportSource(kind?: ImportSourceKind): Promise<string | null>;
  onModels(listener: (event: ModelProgressEvent) => void): () => void;
}

/** The request/response half of the API: the methods main answers. */
export type ApiMethodName = Exclude<keyof InklingApi, 'onCompletion' | 'onEngineStatus' | 'onFinetune' | 'onAssist' | 'onModels'>;
export type ApiHandlers = { [K in ApiMethodName]: InklingApi[K] };

/** Events main pushes to the renderer. */
export interface ApiEvents {
  completion: CompletionEvent;
  engineStatus: EngineStatus;
  finetune: FinetuneRun;
  assist: AssistEvent;
  models: ModelProgressEvent;
}
export type ApiEventName = keyof ApiEvents;

export const API_METHODS: readonly ApiMethodName[] = [
  'listDocuments',
  'getDocument',
  'createDocument',
  'saveDocument',
  'deleteDocument',
  'restoreDocument',
  'listRevisions',
  'restoreRevision',
  'getSettings',
  'updateSettings',
  'getEngineStatus',
  'complete',
  'cancelCompletion',
  'planFinetune',
  'startFinetune',
  'pauseFinetune',
  'resumeFinetune',
  'cancelFinetune',
  'listFinetuneRuns',
  'deleteFinetuneRun',
  'listStyles',
  'activateStyle',
  'renameStyle',
  'deleteStyle',
  'exportStyle',
  'listTemplates',
  'saveTemplate',
  'deleteTemplate',
  'resetTemplate',
  'runTemplate',
  'cancelAssist',
  'classifyTone',
  'listModels',
  'inspectModel',
  'importModel',
  'listModelDownloads',
  'downloadModel',
  'cancelDownload',
  'activateModel',
  'deleteModel',
  'pickImportSource',
] as const;

/** Electron IPC channel names: one per method, one per event. */
export const ipcChannel = (name: ApiMethodName | ApiEventName): string => `inkling:${name}`;

/** Browser-mode wire messages (WebSocket, JSON). */
export type WireRequest = { kind: 'invoke'; id: number; method: ApiMethodName; args: unknown[] };
export type WireMessage =
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: AppError }
  | { kind: 'event'; event: ApiEventName; payload: unknown };
