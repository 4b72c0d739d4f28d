/**
 * The app without its transport: store + engine host + API handlers + event bus, and where their files
 * live. The browser-mode server and the Electron shell both start from `createApp`.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseIntOption, UsageError } from './cli/args.js';
import {
  API_METHODS,
  type ApiHandlers,
  type ApiMethodName,
  type CompletionEvent,
  type EnginePrecision,
  type EngineStatus,
} from './ipc/contract.js';
import { BUNDLED_MODEL_ID, createModelHandlers, startingModel } from './ipc/model-handlers.js';
import { createEventBus, type ApiEventBus } from './ipc/events.js';
import { createApiHandlers, type ApiEngine } from './ipc/handlers.js';
import { EngineHost } from './engine/host.js';
import { FinetuneService, isFinetuneEngine } from './engine/finetune.js';
import { openStore, type OpenedStore } from './store/index.js';
import { defaultModelDir } from './paths.js';

export { UsageError };

export const APP_NAME = 'Inkling';

export interface AppFlags {
  data?: string;
  model?: string;
  backend?: string;
  port?: number;
  help?: boolean;
}

/**
 * `--data DIR --model DIR --backend B --port P`. Strict (the web CLI) refuses unknown options; lenient
 * (Electron, whose command line also carries Chromium switches) ignores them.
 */
export function parseAppArgs(argv: string[], { strict }: { strict: boolean }): AppFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        model: { type: 'string' },
        backend: { type: 'string' },
        port: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict,
      allowPositionals: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const port = parseIntOption('port', str(values.port), 0);
  if (port !== undefined && port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  return {
    data: str(values.data),
    model: str(values.model),
    backend: str(values.backend),
    port,
    help: values.help === true,
  };
}

export interface SystemInfo {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  home: string;
}

const currentSystem = (): SystemInfo => ({ env: process.env, platform: process.platform, home: os.homedir() });

/** The per-user folder each OS expects application data in (the same one Electron calls `userData`). */
export function defaultDataDir({ env, platform, home }: SystemInfo = currentSystem()): string {
  if (platform === 'win32') return path.win32.join(env.APPDATA || path.win32.join(home, 'AppData', 'Roaming'), APP_NAME);
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Application Support', APP_NAME);
  return path.posix.join(env.XDG_CONFIG_HOME || path.posix.join(home, '.config'), APP_NAME);
}

export interface AppConfig {
  dataDir: string;
  /** Null when no model was given and this build has no default model. */
  modelDir: string | null;
  /** Preferred TensorFlow.js backend, or null for the engine's own choice. */
  backend: string | null;
}

/** Flags first, then the environment (INKLING_DATA_DIR, INKLING_MODEL, INKLING_BACKEND), then defaults. */
export function resolveConfig(
  flags: AppFlags,
  system: SystemInfo = currentSystem(),
  bundledModel: () => string | null = defaultModelDir,
): AppConfig {
  const { env } = system;
  const dataDir = flags.data ?? (env.INKLING_DATA_DIR || defaultDataDir(system));
  const modelDir = flags.model ?? (env.INKLING_MODEL || bundledModel());
  return {
    dataDir: path.resolve(dataDir),
    modelDir: modelDir === null ? null : path.resolve(modelDir),
    backend: flags.backend ?? (env.INKLING_BACKEND || null),
  };
}

export interface App {
  config: AppConfig;
  handlers: ApiHandlers;
  events: Pick<ApiEventBus, 'on'>;
  /** Stops the engine and closes the store (flushing its write-ahead log); safe to call twice. */
  close(): Promise<void>;
}

/** What runs the model: the engine host, or a stand-in that explains why there is no model. */
export interface AppEngine extends ApiEngine {
  on(event: 'status', listener: (status: EngineStatus) => void): () => void;
  stop(): Promise<void>;
}

export interface AppParts {
  openStore?: (dataDir: string) => OpenedStore;
  /** Builds and starts the engine for a model folder, with the precision of the settings. */
  startEngine?: (modelDir: string, backend: string | null, precision: EnginePrecision) => AppEngine;
  /** The default model shipped with the app (default: `defaultModelDir()`); null for none. */
  bundledModelDir?: string | null;
  /** Hub address for model downloads (default: INKLING_HUB_URL, else huggingface.co). */
  hubBase?: string;
}

/** Stands in for the engine when there is no model: its status and every completion say what to do. */
export function unavailableEngine(code: string, message: string): AppEngine {
  const status: EngineStatus = { state: 'error', backend: '', backendReason: '', modelName: '', error: { code, message } };
  return {
    status: () => ({ ...status }),
    complete(request, onEvent: (event: CompletionEvent) => void) {
      onEvent({ requestId: request.requestId, type: 'error', error: { code, message } });
    },
    cancel() {},
    on: () => () => {},
    stop: async () => {},
  };
}

function startEngineHost(modelDir: string, backend: string | null, precision: EnginePrecision): AppEngine {
  const host = new EngineHost();
  // Not awaited: loading takes seconds and its progress reaches the renderer as status events.
  void host.start(modelDir, backend === null ? { precision } : { backend, precision });
  return host;
}

function modelProblem(modelDir: string | null): { code: string; message: string } | null {
  if (modelDir === null) return { code: 'NO_MODEL', message: 'no model found; import or download one under Models, or pass --model DIR' };
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    return { code: 'NO_MODEL', message: `the model folder ${modelDir} does not exist; pass --model DIR` };
  }
  return null;
}

/** Every API method, answered by whichever handlers the current model's runtime built. */
function delegatingHandlers(current: () => ApiHandlers): ApiHandlers {
  const handlers = {} as Record<ApiMethodName, (...args: unknown[]) => unknown>;
  for (const method of API_METHODS) {
    handlers[method] = (...args: unknown[]) => (current()[method] as (...a: unknown[]) => unknown)(...args);
  }
  return handlers as unknown as ApiHandlers;
}

/** The engine and what depends on it; rebuilt when the user switches models. */
interface Runtime {
  engine: AppEngine;
  finetune: FinetuneService | null;
  handlers: ApiHandlers;
  stop(): Promise<void>;
}

export async function createApp(config: AppConfig, parts: AppParts = {}): Promise<App> {
  mkdirSync(config.dataDir, { recursive: true });
  const store = (parts.openStore ?? openStore)(config.dataDir);
  const events = createEventBus();
  const bundledDir = parts.bundledModelDir !== undefined ? parts.bundledModelDir : defaultModelDir();
  const modelsDir = path.join(config.dataDir, 'models');

  // An explicit --model / INKLING_MODEL wins; otherwise the model chosen in the model manager, else the default.
  let activeId: string | null = null;
  let modelDir = config.modelDir;
  const explicit = config.modelDir !== null && (bundledDir === null || path.resolve(config.modelDir) !== path.resolve(bundledDir));
  if (!explicit) {
    try {
      const chosen = await startingModel(store.modelRegistry, bundledDir);
      if (chosen !== null) ({ id: activeId, folder: modelDir } = chosen);
    } catch (err) {
      store.close();
      throw err;
    }
  }

  function boot(dir: string | null): Runtime {
    const problem = modelProblem(dir);
    let engine: AppEngine;
    let offStatus = () => {};
    if (problem !== null) {
      engine = unavailableEngine(problem.code, problem.message);
      events.emit('engineStatus', engine.status());
    } else {
      // Loading is asynchronous, so subscribing right after the start misses at most the synchronous
      // first state, which the explicit emit below repeats.
      const start = parts.startEngine ?? startEngineHost;
      engine = start(dir!, config.backend, store.getSettings().precision);
      offStatus = engine.on('status', (status) => events.emit('engineStatus', status));
      events.emit('engineStatus', engine.status());
    }
    // Fine-tuning runs in the engine worker, so it exists only with a model (and an engine that trains).
    let finetune: FinetuneService | null = null;
    if (problem === null && isFinetuneEngine(engine)) {
      finetune = new FinetuneService({
        store,
        engine,
        emit: (run) => events.emit('finetune', run),
        modelName: path.basename(dir!),
        dataDir: config.dataDir,
      });
      void finetune.restoreActiveStyle();
    }
    const handlers = createApiHandlers({ store, engine, events, finetune, templates: store.templates ?? null, models: modelHandlers });
    return {
      engine,
      finetune,
      handlers,
      async stop() {
        offStatus();
        // A run in training saves its last step before the engine goes.
        await finetune?.suspend();
        await engine.stop();
      },
    };
  }

  let switching: Promise<void> = Promise.resolve();
  /** Stops the engine and starts one on `folder`; one at a time, the old one gone first (memory for one model only). */
  function reboot(folder: string | null): Promise<void> {
    const next = switching.then(async () => {
      await runtime.stop();
      runtime = boot(folder);
      currentDir = folder;
    });
    switching = next.catch(() => {});
    return next;
  }
  const modelHandlers = createModelHandlers({
    registry: store.modelRegistry,
    modelsDir,
    bundledDir,
    hubBase: parts.hubBase ?? (process.env.INKLING_HUB_URL || undefined),
    emit: (event) => events.emit('models', event),
    activeId: () => activeId,
    async switchModel(folder) {
      await reboot(folder);
      activeId = idForFolder(folder);
    },
  });
  const idForFolder = (folder: string): string | null => {
    if (bundledDir !== null && path.resolve(folder) === path.resolve(bundledDir)) return BUNDLED_MODEL_ID;
    return store.modelRegistry.list().find((m) => path.resolve(m.folder) === path.resolve(folder))?.id ?? null;
  };

  // A --model folder that happens to be a registered model shows as active in the list too.
  if (activeId === null && modelDir !== null) activeId = idForFolder(modelDir);
  let runtime: Runtime;
  let currentDir = modelDir;
  try {
    runtime = boot(modelDir);
  } catch (err) {
    store.close();
    throw err;
  }
  const handlers = delegatingHandlers(() => runtime.handlers);
  // The precision is fixed when the engine loads its model: a change restarts the engine, as a model switch does.
  const saveSettings = handlers.updateSettings;
  handlers.updateSettings = async (patch) => {
    const before = store.getSettings().precision;
    const saved = await saveSettings(patch);
    if (saved.precision !== before) await reboot(currentDir);
    return saved;
  };
  let closed: Promise<void> | null = null;
  return {
    config,
    handlers,
    events,
    close() {
      closed ??= (async () => {
        try {
          await switching;
          await runtime.stop();
        } finally {
          store.close();
        }
      })();
      return closed;
    },
  };
}
