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
}

/** The request/response half of the API: the methods main answers. */
export type ApiMethodName = Exclude<keyof InklingApi, 'onCompletion' | 'onEngineStatus'>;
export type ApiHandlers = { [K in ApiMethodName]: InklingApi[K] };

/** Events main pushes to the renderer. */
export interface ApiEvents {
  completion: CompletionEvent;
  engineStatus: EngineStatus;
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
] as const;

/** Electron IPC channel names: one per method, one per event. */
export const ipcChannel = (name: ApiMethodName | ApiEventName): string => `inkling:${name}`;

/** Browser-mode wire messages (WebSocket, JSON). */
export type WireRequest = { kind: 'invoke'; id: number; method: ApiMethodName; args: unknown[] };
export type WireMessage =
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: AppError }
  | { kind: 'event'; event: ApiEventName; payload: unknown };
