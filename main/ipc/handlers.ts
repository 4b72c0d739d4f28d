/**
 * The API, implemented once for both transports (Electron IPC and the browser-mode WebSocket). Each method
 * checks what the renderer sent, calls the store or the engine, and lets errors surface as `ApiError`s
 * carrying a code (the store's `StoreError` codes pass through unchanged).
 */
import type {
  ApiHandlers,
  CompletionEvent,
  CompletionRequest,
  DocumentFull,
  DocumentSummary,
  EngineStatus,
  FinetunePlan,
  FinetuneRequest,
  FinetuneRun,
  RevisionSummary,
  Settings,
  Style,
} from './contract.js';
import { ApiError } from './errors.js';
import type { ApiEventBus } from './events.js';
import type { SettingsPatch } from '../store/index.js';
import { completionRequest, id, integer, LIMITS, optional, settingsPatch, string } from './validate.js';
import { finetuneRequest } from './validate-finetune.js';
import { createAssistHandlers, isAssistEngine, type ApiTemplates } from './assist-handlers.js';
import type { ModelHandlers } from './model-handlers.js';

/** The part of the store (main/store) the API uses. */
export interface ApiStore {
  listDocuments(query?: string): DocumentSummary[];
  getDocument(id: string): DocumentFull | null;
  createDocument(title?: string): DocumentFull;
  saveDocument(id: string, patch: { title?: string; body?: string }): DocumentSummary;
  deleteDocument(id: string): void;
  restoreDocument(id: string): DocumentSummary;
  listRevisions(documentId: string): RevisionSummary[];
  restoreRevision(documentId: string, revisionId: number): DocumentFull;
  getSettings(): Settings;
  updateSettings(patch: SettingsPatch): Settings;
}

/** The part of the engine host (main/engine) the API uses. */
export interface ApiEngine {
  complete(request: CompletionRequest, onEvent: (event: CompletionEvent) => void): void;
  cancel(requestId: string): void;
  status(): EngineStatus;
}

/** Fine-tuning and styles (main/engine/finetune.ts); absent when there is no model to train. */
export interface ApiFinetune {
  plan(request: FinetuneRequest): Promise<FinetunePlan>;
  start(request: FinetuneRequest): Promise<FinetuneRun>;
  pause(runId: string): FinetuneRun;
  resume(runId: string): FinetuneRun;
  cancel(runId: string): Promise<FinetuneRun>;
  list(): FinetuneRun[];
  deleteRun(runId: string): Promise<void>;
  listStyles(): Style[];
  activateStyle(styleId: string | null): Promise<Style[]>;
  renameStyle(styleId: string, name: string): Style;
  deleteStyle(styleId: string): Promise<void>;
  exportStyle(styleId: string, dir?: string): Promise<{ path: string }>;
}

export interface HandlerParts {
  store: ApiStore;
  engine: ApiEngine;
  events: Pick<ApiEventBus, 'emit'>;
  finetune?: ApiFinetune | null;
  /** Prompt templates (the store's); without them the template methods answer NOT_AVAILABLE. */
  templates?: ApiTemplates | null;
  /** The model manager (main/ipc/model-handlers.ts); without it the list is empty and changes answer NOT_AVAILABLE. */
  models?: ModelHandlers | null;
}

function noModelManager(): ModelHandlers {
  const unavailable = async (): Promise<never> => {
    throw new ApiError('NOT_AVAILABLE', 'the model manager is not available here');
  };
  return {
    listModels: async () => [],
    inspectModel: unavailable,
    importModel: unavailable,
    listModelDownloads: async () => [],
    downloadModel: unavailable,
    cancelDownload: async () => {},
    activateModel: unavailable,
    deleteModel: unavailable,
    pickImportSource: unavailable,
  };
}

/** The contract's shape only: the engine's `done` carries timings the renderer has no use for. */
function contractEvent(event: CompletionEvent): CompletionEvent {
  if (event.type !== 'done') return event;
  const { requestId, type, alternatives, latencyMs, reusedTokens } = event;
  return { requestId, type, alternatives, latencyMs, reusedTokens };
}

const MAX_REVISION_ID = Number.MAX_SAFE_INTEGER;

export function createApiHandlers({ store, engine, events, finetune = null, templates = null, models = null }: HandlerParts): ApiHandlers {
  const training = (): ApiFinetune => {
    if (finetune === null) {
      const status = engine.status();
      throw new ApiError(status.error?.code ?? 'NO_MODEL', `fine-tuning needs a model: ${status.error?.message ?? 'the engine is not available'}`);
    }
    return finetune;
  };
  const assist = createAssistHandlers({
    templates,
    engine: isAssistEngine(engine) ? engine : null,
    getSettings: () => store.getSettings(),
    emit: (event) => events.emit('assist', event),
    unavailable() {
      const status = engine.status();
      return new ApiError(status.error?.code ?? 'NO_MODEL', `this needs a model: ${status.error?.message ?? 'the engine is not available'}`);
    },
  });
  return {
    ...assist,
    ...(models ?? noModelManager()),
    async listDocuments(query) {
      return store.listDocuments(optional(string(LIMITS.queryChars))(query, 'query'));
    },
    async getDocument(documentId) {
      return store.getDocument(id(documentId, 'id'));
    },
    async createDocument(title) {
      const checked = optional(string(LIMITS.titleChars))(title, 'title');
      return checked === undefined ? store.createDocument() : store.createDocument(checked);
    },
    async saveDocument(documentId, patch) {
      const docId = id(documentId, 'id');
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
        throw new ApiError('INVALID_INPUT', 'patch must be an object with title and/or body');
      }
      const unknown = Object.keys(patch).filter((key) => key !== 'title' && key !== 'body');
      if (unknown.length > 0) throw new ApiError('INVALID_INPUT', `patch has an unknown field "${unknown[0]!.slice(0, 64)}"`);
      const checked: { title?: string; body?: string } = {};
      const title = optional(string(LIMITS.titleChars))(patch.title, 'patch.title');
      const body = optional(string(LIMITS.bodyChars))(patch.body, 'patch.body');
      if (title !== undefined) checked.title = title;
      if (body !== undefined) checked.body = body;
      return store.saveDocument(docId, checked);
    },
    async deleteDocument(documentId) {
      store.deleteDocument(id(documentId, 'id'));
    },
    async restoreDocument(documentId) {
      return store.restoreDocument(id(documentId, 'id'));
    },
    async listRevisions(documentId) {
      return store.listRevisions(id(documentId, 'documentId'));
    },
    async restoreRevision(documentId, revisionId) {
      return store.restoreRevision(id(documentId, 'documentId'), integer(1, MAX_REVISION_ID)(revisionId, 'revisionId'));
    },
    async getSettings() {
      return store.getSettings();
    },
    async updateSettings(patch) {
      return store.updateSettings(settingsPatch(patch, 'patch'));
    },
    async getEngineStatus() {
      return engine.status();
    },
    async complete(request) {
      const checked = completionRequest(request);
      // Saved settings apply at each request, so a change on the settings page takes effect at the next keystroke.
      const settings = store.getSettings();
      engine.complete(
        {
          ...checked,
          numAlternatives: checked.numAlternatives ?? 1,
          decoding: { ...settings.decoding, ...checked.decoding },
          stopAtSentenceEnd: checked.stopAtSentenceEnd ?? settings.stopAtSentenceEnd,
        },
        (event) => events.emit('completion', contractEvent(event)),
      );
    },
    async cancelCompletion(requestId) {
      engine.cancel(id(requestId, 'requestId'));
    },
    async planFinetune(request) {
      return training().plan(finetuneRequest(request));
    },
    async startFinetune(request) {
      return training().start(finetuneRequest(request));
    },
    async pauseFinetune(runId) {
      return training().pause(id(runId, 'runId'));
    },
    async resumeFinetune(runId) {
      return training().resume(id(runId, 'runId'));
    },
    async cancelFinetune(runId) {
      return training().cancel(id(runId, 'runId'));
    },
    async listFinetuneRuns() {
      return finetune === null ? [] : finetune.list();
    },
    async deleteFinetuneRun(runId) {
      return training().deleteRun(id(runId, 'runId'));
    },
    async listStyles() {
      return finetune === null ? [] : finetune.listStyles();
    },
    async activateStyle(styleId) {
      // null (or undefined, which JSON turns into null) switches back to the base model.
      return training().activateStyle(styleId == null ? null : id(styleId, 'styleId'));
    },
    async renameStyle(styleId, name) {
      return training().renameStyle(id(styleId, 'styleId'), string(LIMITS.titleChars)(name, 'name'));
    },
    async deleteStyle(styleId) {
      return training().deleteStyle(id(styleId, 'styleId'));
    },
    async exportStyle(styleId, dir) {
      const folder = optional(string(4096))(dir ?? undefined, 'dir');
      return training().exportStyle(id(styleId, 'styleId'), folder);
    },
  };
}
