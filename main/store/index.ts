import type { DocumentFull, DocumentSummary, RevisionSummary, Settings } from '../ipc/contract.js';
import { openDatabase, type RecoveredDatabase } from './database.js';
import { createDocumentStore, type DocumentPatch, type RevisionFull } from './documents.js';
import { createModelStore, type ModelInput, type ModelSummary } from './models.js';
import { DEFAULT_REVISION_POLICY, type RevisionPolicy } from './revision-policy.js';
import { createSettingsStore, type SettingsPatch } from './settings.js';
import { createFinetuneStore, type FinetuneStore } from './finetune.js';
import { createTemplateStore, type TemplateStore } from './templates.js';
import { createModelRegistry, type ModelRegistry } from './model-registry.js';

export { StoreError, type StoreErrorCode } from './errors.js';
export { DB_FILE_NAME, type RecoveredDatabase } from './database.js';
export { LATEST_SCHEMA_VERSION } from './migrations.js';
export { DEFAULT_SETTINGS, DECODING_RULES, SETTINGS_RULES, type SettingsPatch } from './settings.js';
export { DEFAULT_TITLE, type DocumentPatch, type RevisionFull } from './documents.js';
export { StoreCheckpointSink, FINETUNE_STATES, mergePoints, type FinetuneStore, type NewRun, type RunPatch, type StyleWeights } from './finetune.js';
export { DEFAULT_REVISION_POLICY, type RevisionPolicy } from './revision-policy.js';
export { TEMPLATE_LIMITS, type TemplateStore } from './templates.js';
export type { ModelRegistry, RegisteredModel } from './model-registry.js';
export {
  CHUNK_BYTES,
  MODEL_KINDS,
  type ModelFileInfo,
  type ModelFileInput,
  type ModelInput,
  type ModelKind,
  type ModelSummary,
} from './models.js';

export interface StoreOptions {
  /** Milliseconds since the epoch; tests pass a fake clock. Default `Date.now`. */
  now?: () => number;
  /** How long a write waits for another process's lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** Trash older than this is deleted for good when the store opens; null keeps it forever. Default 30. */
  trashRetentionDays?: number | null;
  revisionPolicy?: Partial<RevisionPolicy>;
}

export interface ModelStore {
  /** Stores the files chunk by chunk; the model appears in `list` only once every byte is written. */
  put(input: ModelInput): Promise<ModelSummary>;
  /** Complete models, newest first. */
  list(): ModelSummary[];
  get(id: string): ModelSummary | null;
  /** The whole file; CHECKSUM_MISMATCH if its bytes no longer match the SHA-256 recorded at `put`. */
  readFile(modelId: string, fileName: string): Buffer;
  /**
   * Deletes the model and its files (at once: it is gone from `list` before this resolves), then returns the
   * space to the disk in small steps; resolves to false if there was no such model.
   */
  delete(id: string): Promise<boolean>;
}

/**
 * The open store. Document and settings methods are named and shaped as in `InklingApi` (main/ipc/contract.ts),
 * but synchronous; they throw `StoreError` with a stable `code`.
 */
export interface OpenedStore {
  /** The database file. */
  readonly path: string;
  /** Set when the previous file was unusable and was moved aside; tell the user. */
  readonly recovered: RecoveredDatabase | null;

  /** Live documents, most recently changed first; with a query, those whose title or body contains it (any case). */
  listDocuments(query?: string | null): DocumentSummary[];
  /** Null when there is no such document or it is in the trash. */
  getDocument(id: string): DocumentFull | null;
  /** Title "Untitled" when none or a blank one is given. */
  createDocument(title?: string | null): DocumentFull;
  saveDocument(id: string, patch: DocumentPatch): DocumentSummary;
  /** Moves the document to the trash. */
  deleteDocument(id: string): void;
  /** Takes the document out of the trash (undo of deleteDocument). */
  restoreDocument(id: string): DocumentSummary;
  listTrash(): DocumentSummary[];
  /** Deletes for good what has been in the trash at least that many days; returns how many documents. */
  purgeTrash(olderThanDays: number): number;

  /** Newest first. */
  listRevisions(documentId: string): RevisionSummary[];
  getRevision(documentId: string, revisionId: number): RevisionFull | null;
  /** The current text becomes a revision first, so nothing is lost. */
  restoreRevision(documentId: string, revisionId: number): DocumentFull;

  getSettings(): Settings;
  /** Validates every value (INVALID_SETTINGS names each problem) and merges `decoding` field by field. */
  updateSettings(patch: SettingsPatch): Settings;

  readonly models: ModelStore;
  /** Fine-tuning runs, their checkpoints, and styles. */
  readonly finetune: FinetuneStore;
  /** Prompt templates (rewrite, translate); the built-in ones are seeded when the store opens. */
  readonly templates: TemplateStore;
  /** Base models kept as folders under the data folder, and which one the app starts on. */
  readonly modelRegistry: ModelRegistry;

  /** Checkpoints the WAL into the database file and closes it. Calling it again does nothing. */
  close(): void;
}

/** Opens (creating, migrating or recovering as needed) `<dataDir>/inkling.db`. */
export function openStore(dataDir: string, opts: StoreOptions = {}): OpenedStore {
  const now = opts.now ?? Date.now;
  const { db, path, recovered } = openDatabase(dataDir, { busyTimeoutMs: opts.busyTimeoutMs ?? 5000, now });
  try {
    const documents = createDocumentStore(db, now, { ...DEFAULT_REVISION_POLICY, ...opts.revisionPolicy });
    const settings = createSettingsStore(db);
    const models = createModelStore(db, now);
    const modelStore: ModelStore = { put: models.put, list: models.list, get: models.get, readFile: models.readFile, delete: models.delete };
    const finetune = createFinetuneStore(db, now, modelStore);
    const templates = createTemplateStore(db, now);
    templates.seed();
    const modelRegistry = createModelRegistry(db);

    models.deleteIncomplete();
    // Space left free by a crash mid-import or an interrupted delete; in the background, in small steps.
    void models.reclaimFreePages();
    const retentionDays = opts.trashRetentionDays === undefined ? 30 : opts.trashRetentionDays;
    if (retentionDays !== null) documents.purgeTrash(retentionDays);

    return {
      path,
      recovered,
      // null as well as undefined: JSON (the browser bridge) turns an omitted argument into null.
      listDocuments: (query) => (query == null ? documents.list() : documents.search(query)),
      getDocument: documents.get,
      createDocument: documents.create,
      saveDocument: documents.save,
      deleteDocument: documents.trash,
      restoreDocument: documents.restore,
      listTrash: documents.listTrash,
      purgeTrash: documents.purgeTrash,
      listRevisions: documents.listRevisions,
      getRevision: documents.getRevision,
      restoreRevision: documents.restoreRevision,
      getSettings: settings.get,
      updateSettings: settings.update,
      models: modelStore,
      finetune,
      templates,
      modelRegistry,
      close() {
        if (!db.open) return;
        db.pragma('optimize');
        db.pragma('wal_checkpoint(TRUNCATE)');
        db.close();
      },
    };
  } catch (error) {
    db.close();
    throw error;
  }
}
