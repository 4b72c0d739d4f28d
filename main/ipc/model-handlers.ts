/**
 * The model manager's half of the API: list, inspect, import, download, activate and delete base models.
 *
 * Storage: a model is a Hugging Face folder under `<dataDir>/models/<id>/`, registered in SQLite
 * (main/store/model-registry.ts) with its origin, shape and the sha256 of its weights. Folders rather than
 * chunked blobs because the engine loads a folder from disk in its worker: weights kept as blobs would have to
 * be read through the main process (hundreds of MB to GB) and written back out to a file on every start. The
 * checksum in SQLite still catches a damaged or swapped weights file before the engine loads it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ParsedGPT2Config } from '../../worker/model/config.js';
import { ModelFormatError } from '../../worker/model/errors.js';
import { copyImport, inspectImport, type ImportSummary } from '../models/import.js';
import { DownloadError, downloadModel, GPT2_DOWNLOADS, type Gpt2Repo } from '../models/download.js';
import type { ModelRegistry, RegisteredModel } from '../store/model-registry.js';
import type { ApiHandlers, ModelInfo, ModelInspection, ModelProgressEvent } from './contract.js';
import { ApiError } from './errors.js';
import { id, optional, string } from './validate.js';

export const BUNDLED_MODEL_ID = 'bundled';

type ModelHandlerNames =
  | 'listModels'
  | 'inspectModel'
  | 'importModel'
  | 'listModelDownloads'
  | 'downloadModel'
  | 'cancelDownload'
  | 'activateModel'
  | 'deleteModel'
  | 'pickImportSource';
export type ModelHandlers = Pick<ApiHandlers, ModelHandlerNames>;

export interface ModelHandlerParts {
  registry: ModelRegistry;
  /** `<dataDir>/models`: where imports and downloads go. */
  modelsDir: string;
  /** The default model shipped with the app, or null when this build has none. */
  bundledDir: string | null;
  /** Hub address for downloads (undefined: huggingface.co). */
  hubBase?: string;
  emit(event: ModelProgressEvent): void;
  /** Restarts the engine on a model folder. */
  switchModel(folder: string, name: string): Promise<void>;
  /** The id of the model the engine runs now (BUNDLED_MODEL_ID, a registry id, or null). */
  activeId(): string | null;
  /** Milliseconds between progress events of one job (default 100). */
  progressIntervalMs?: number;
}

/**
 * The answer wherever there is no native dialog: in browser mode the page runs in a browser, which cannot open
 * a dialog on the machine that runs main. The Electron shell answers the method itself (main/electron/dialogs.ts).
 */
export async function noImportDialog(): Promise<never> {
  throw new ApiError('NOT_AVAILABLE', 'there is no file dialog here: type or paste the path of the folder or .safetensors file');
}

export function describeShape(config: ParsedGPT2Config): string {
  return `${config.nLayer} layers × ${config.nEmbd}, ${config.nHead} heads, context ${config.nPositions}, vocabulary ${config.vocabSize}`;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Throws CHECKSUM_MISMATCH when the weights no longer match what was registered. */
export async function verifyRegistered(model: RegisteredModel): Promise<void> {
  const weights = path.join(model.folder, 'model.safetensors');
  if (!existsSync(weights)) throw new ApiError('MODEL_MISSING', `the files of "${model.name}" are gone from ${model.folder}; delete it and import it again`);
  const actual = await sha256File(weights);
  if (actual !== model.sha256) {
    throw new ApiError('CHECKSUM_MISMATCH', `the weights of "${model.name}" changed on disk since they were stored (sha256 ${actual.slice(0, 12)}…, expected ${model.sha256.slice(0, 12)}…); delete it and import it again`);
  }
}

function inspection(summary: ImportSummary): ModelInspection {
  return {
    source: summary.source,
    suggestedName: summary.suggestedName,
    releasedAs: summary.releasedAs,
    shape: describeShape(summary.config),
    parameters: summary.parameters,
    dtypes: summary.dtypes,
    sizeBytes: summary.sizeBytes,
    memoryBytes: summary.memoryBytes,
    tokenizerFiles: summary.tokenizerFiles,
  };
}

/** inspectImport with its format errors as one API code, the message kept (it names the file and the problem). */
async function inspect(source: string): Promise<ImportSummary> {
  try {
    return await inspectImport(source);
  } catch (err) {
    if (err instanceof ModelFormatError) throw new ApiError('INVALID_MODEL', err.message);
    throw err;
  }
}

/** A folder name that is free under `dir`: the name itself, else name-2, name-3, … */
function freeFolderName(dir: string, name: string, taken: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '').slice(0, 60) || 'model';
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? base : `${base}-${n}`;
    if (candidate === BUNDLED_MODEL_ID || taken.has(candidate)) continue;
    if (!existsSync(path.join(dir, candidate)) && !existsSync(path.join(dir, `${candidate}.partial`))) return candidate;
  }
}

/** Calls `emit` at most every `ms` for running progress; final states always go out. */
function throttled(emit: (event: ModelProgressEvent) => void, ms: number): (event: ModelProgressEvent) => void {
  let last = 0;
  return (event) => {
    const now = Date.now();
    if (event.state === 'running' && now - last < ms) return;
    last = now;
    emit(event);
  };
}

export function createModelHandlers(parts: ModelHandlerParts): ModelHandlers {
  const { registry, modelsDir, bundledDir } = parts;
  const interval = parts.progressIntervalMs ?? 100;
  const downloads = new Map<string, AbortController>();
  const importing = new Set<string>();
  let bundledInfo: Promise<ModelInfo | null> | null = null;

  const info = (model: RegisteredModel): ModelInfo => ({
    id: model.id,
    name: model.name,
    source: model.source,
    origin: model.origin,
    shape: model.shape,
    parameters: model.parameters,
    sizeBytes: model.sizeBytes,
    memoryBytes: model.memoryBytes,
    active: parts.activeId() === model.id,
    createdAt: model.createdAt,
  });

  async function bundled(): Promise<ModelInfo | null> {
    if (bundledDir === null) return null;
    // Only the header is read, but once is enough: the bundled model does not change while the app runs.
    bundledInfo ??= inspectImport(bundledDir).then(
      (summary): ModelInfo => ({
        id: BUNDLED_MODEL_ID,
        name: 'Default model',
        source: 'bundled',
        origin: null,
        shape: describeShape(summary.config),
        parameters: summary.parameters,
        sizeBytes: summary.sizeBytes,
        memoryBytes: summary.memoryBytes,
        active: false,
        createdAt: null,
      }),
      () => null,
    );
    const model = await bundledInfo;
    return model === null ? null : { ...model, active: parts.activeId() === BUNDLED_MODEL_ID };
  }

  async function list(): Promise<ModelInfo[]> {
    const first = await bundled();
    return [...(first === null ? [] : [first]), ...registry.list().map(info)];
  }

  /** Hashes the copied weights and adds the row; a failure removes the folder, so no half model stays. */
  async function register(folder: string, summary: ImportSummary, source: RegisteredModel['source'], origin: string, name: string): Promise<RegisteredModel> {
    try {
      const model: RegisteredModel = {
        id: path.basename(folder),
        name,
        source,
        origin,
        folder,
        shape: describeShape(summary.config),
        parameters: summary.parameters,
        sizeBytes: summary.sizeBytes,
        memoryBytes: summary.memoryBytes,
        sha256: await sha256File(path.join(folder, 'model.safetensors')),
        createdAt: Date.now(),
      };
      registry.add(model);
      return model;
    } catch (err) {
      await rm(folder, { recursive: true, force: true });
      throw err;
    }
  }

  return {
    listModels: list,

    async inspectModel(source) {
      return inspection(await inspect(string(4096)(source, 'path')));
    },

    async importModel(source, name) {
      const from = path.resolve(string(4096)(source, 'path'));
      const wanted = optional(string(80))(name ?? undefined, 'name');
      if (importing.has(from)) throw new ApiError('BUSY', `${from} is being imported already`);
      importing.add(from);
      const emit = throttled(parts.emit, interval);
      const total = { bytes: 0, totalBytes: null as number | null };
      try {
        const summary = await inspect(from);
        total.totalBytes = summary.sizeBytes;
        const displayName = wanted?.trim() || summary.suggestedName;
        const folderName = freeFolderName(modelsDir, displayName, new Set(registry.list().map((m) => m.id)));
        const folder = path.join(modelsDir, folderName);
        emit({ jobId: from, kind: 'import', state: 'running', bytes: 0, totalBytes: summary.sizeBytes });
        await copyImport(summary, folder, {
          onProgress: (copied, all) => {
            total.bytes = copied;
            emit({ jobId: from, kind: 'import', state: 'running', bytes: copied, totalBytes: all });
          },
        });
        const model = info(await register(folder, summary, 'imported', summary.source, displayName));
        parts.emit({ jobId: from, kind: 'import', state: 'done', bytes: summary.sizeBytes, totalBytes: summary.sizeBytes, model });
        return model;
      } catch (err) {
        const error = err as Error & { code?: string };
        parts.emit({ jobId: from, kind: 'import', state: 'error', ...total, error: { code: error.code ?? 'INTERNAL', message: error.message } });
        throw err;
      } finally {
        importing.delete(from);
      }
    },

    async listModelDownloads() {
      const installed = new Set(registry.list().filter((m) => m.source === 'downloaded').map((m) => m.origin));
      return Object.entries(GPT2_DOWNLOADS).map(([repo, { label, approxBytes }]) => ({ repo, label, approxBytes, installed: installed.has(repo) }));
    },

    async downloadModel(repoArg) {
      const repo = string(100)(repoArg, 'repo');
      if (!(repo in GPT2_DOWNLOADS)) throw new ApiError('INVALID_INPUT', `"${repo}" is not one of the GPT-2 downloads (${Object.keys(GPT2_DOWNLOADS).join(', ')})`);
      if (downloads.has(repo)) throw new ApiError('BUSY', `${repo} is being downloaded already`);
      if (registry.list().some((m) => m.source === 'downloaded' && m.origin === repo)) throw new ApiError('ALREADY_EXISTS', `${repo} is downloaded already`);
      const controller = new AbortController();
      downloads.set(repo, controller);
      const emit = throttled(parts.emit, interval);
      const last = { bytes: 0, totalBytes: null as number | null };
      // A fixed folder per repository, so that a download interrupted (or cancelled) earlier resumes.
      const folder = path.join(modelsDir, `hub-${repo}`);
      try {
        await downloadModel(repo, folder, {
          base: parts.hubBase,
          signal: controller.signal,
          onEvent(event) {
            if (event.type !== 'progress') return;
            last.bytes = event.bytes;
            last.totalBytes = event.totalBytes;
            emit({ jobId: repo, kind: 'download', state: 'running', bytes: event.bytes, totalBytes: event.totalBytes, file: event.file });
          },
        });
        const summary = await inspect(folder).catch(async (err) => {
          await rm(folder, { recursive: true, force: true });
          throw err;
        });
        const model = info(await register(folder, summary, 'downloaded', repo, GPT2_DOWNLOADS[repo as Gpt2Repo].label));
        parts.emit({ jobId: repo, kind: 'download', state: 'done', bytes: summary.sizeBytes, totalBytes: summary.sizeBytes, model });
        return model;
      } catch (err) {
        const cancelled = err instanceof DownloadError && err.code === 'cancelled';
        const apiError =
          err instanceof DownloadError
            ? new ApiError(`DOWNLOAD_${err.code.toUpperCase()}`, err.code === 'offline' ? `cannot reach the model hub — are you offline? (${err.message})` : err.message)
            : (err as Error & { code?: string });
        parts.emit({
          jobId: repo,
          kind: 'download',
          state: cancelled ? 'cancelled' : 'error',
          ...last,
          error: { code: apiError.code ?? 'INTERNAL', message: apiError.message },
        });
        throw apiError;
      } finally {
        downloads.delete(repo);
      }
    },

    async cancelDownload(repoArg) {
      downloads.get(string(100)(repoArg, 'repo'))?.abort();
    },

    async activateModel(modelArg) {
      const modelId = id(modelArg, 'id');
      if (modelId === BUNDLED_MODEL_ID) {
        if (bundledDir === null) throw new ApiError('NOT_FOUND', 'this build has no default model');
        await parts.switchModel(bundledDir, 'Default model');
      } else {
        const model = registry.get(modelId);
        if (model === null) throw new ApiError('NOT_FOUND', `no model "${modelId}"`);
        await verifyRegistered(model);
        await parts.switchModel(model.folder, model.name);
      }
      registry.setActiveId(modelId);
      return list();
    },

    async deleteModel(modelArg) {
      const modelId = id(modelArg, 'id');
      if (modelId === BUNDLED_MODEL_ID) throw new ApiError('FORBIDDEN', 'the default model comes with the app and cannot be deleted');
      const model = registry.get(modelId);
      if (model === null) throw new ApiError('NOT_FOUND', `no model "${modelId}"`);
      if (parts.activeId() === modelId) throw new ApiError('MODEL_IN_USE', `"${model.name}" is the active model; switch to another one first`);
      // The row goes first: a crash in between leaves an unlisted folder, never a listed model without files.
      registry.remove(modelId);
      if (registry.activeId() === modelId) registry.setActiveId(null);
      if (path.dirname(model.folder) === modelsDir) await rm(model.folder, { recursive: true, force: true });
    },

    pickImportSource: noImportDialog,
  };
}

/** The model folder the app starts on: the remembered one when it is still there, else the bundled default. */
export async function startingModel(
  registry: ModelRegistry,
  bundledDir: string | null,
): Promise<{ id: string; folder: string; name: string } | null> {
  const remembered = registry.activeId();
  if (remembered !== null && remembered !== BUNDLED_MODEL_ID) {
    const model = registry.get(remembered);
    // Only the size is checked here (hashing GBs would delay every start); activation checks the sha256.
    const weights = model === null ? null : await stat(path.join(model.folder, 'model.safetensors')).catch(() => null);
    if (model !== null && weights !== null) return { id: model.id, folder: model.folder, name: model.name };
  }
  return bundledDir === null ? null : { id: BUNDLED_MODEL_ID, folder: bundledDir, name: 'Default model' };
}

