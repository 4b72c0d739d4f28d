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

export interface Settings {
  decoding: DecodingSettings;
  /** Pause after typing before a suggestion is requested. */
  suggestionDelayMs: number;
  /** Cut suggestions at a sentence end or a line break. */
  stopAtSentenceEnd: boolean;
  suggestionsEnabled: boolean;
  /** Desktop app only: look for a newer release now and then (off by default: nothing leaves the machine). */
  checkForUpdates: boolean;
}

export type EngineState = 'starting' | 'loading' | 'ready' | 'restarting' | 'error';

export interface EngineStatus {
  state: EngineState;
  /** e.g. "wasm"; empty until the worker reports it. */
  backend: string;
  /** Why this backend, e.g. "tfjs-node not installed, using WebAssembly". */
  backendReason: string;
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
}

/** The request/response half of the API: the methods main answers. */
export type ApiMethodName = Exclude<keyof InklingApi, 'onCompletion' | 'onEngineStatus' | 'onFinetune'>;
export type ApiHandlers = { [K in ApiMethodName]: InklingApi[K] };

/** Events main pushes to the renderer. */
export interface ApiEvents {
  completion: CompletionEvent;
  engineStatus: EngineStatus;
  finetune: FinetuneRun;
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
] as const;

/** Electron IPC channel names: one per method, one per event. */
export const ipcChannel = (name: ApiMethodName | ApiEventName): string => `inkling:${name}`;

/** Browser-mode wire messages (WebSocket, JSON). */
export type WireRequest = { kind: 'invoke'; id: number; method: ApiMethodName; args: unknown[] };
export type WireMessage =
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: AppError }
  | { kind: 'event'; event: ApiEventName; payload: unknown };
