/**
 * The app without its transport: store + engine host + API handlers + event bus, and where their files
 * live. The browser-mode server and the Electron shell both start from `createApp`.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseIntOption, UsageError } from './cli/args.js';
import type { ApiHandlers, CompletionEvent, EngineStatus } from './ipc/contract.js';
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
  /** Builds and starts the engine for a model folder. */
  startEngine?: (modelDir: string, backend: string | null) => AppEngine;
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

function startEngineHost(modelDir: string, backend: string | null): AppEngine {
  const host = new EngineHost();
  // Not awaited: loading takes seconds and its progress reaches the renderer as status events.
  void host.start(modelDir, backend === null ? {} : { backend });
  return host;
}

function modelProblem(modelDir: string | null): { code: string; message: string } | null {
  if (modelDir === null) return { code: 'NO_MODEL', message: 'no model found; pass --model DIR' };
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    return { code: 'NO_MODEL', message: `the model folder ${modelDir} does not exist; pass --model DIR` };
  }
  return null;
}

export async function createApp(config: AppConfig, parts: AppParts = {}): Promise<App> {
  mkdirSync(config.dataDir, { recursive: true });
  const store = (parts.openStore ?? openStore)(config.dataDir);
  const events = createEventBus();

  const problem = modelProblem(config.modelDir);
  let engine: AppEngine;
  let offStatus = () => {};
  try {
    if (problem !== null) {
      engine = unavailableEngine(problem.code, problem.message);
    } else {
      // Loading is asynchronous, so subscribing right after the start misses at most the synchronous
      // first state, which the explicit emit below repeats.
      const start = parts.startEngine ?? startEngineHost;
      engine = start(config.modelDir!, config.backend);
      offStatus = engine.on('status', (status) => events.emit('engineStatus', status));
      events.emit('engineStatus', engine.status());
    }
  } catch (err) {
    store.close();
    throw err;
  }

  // Fine-tuning runs in the engine worker, so it exists only with a model (and an engine that trains).
  let finetune: FinetuneService | null = null;
  if (problem === null && isFinetuneEngine(engine)) {
    finetune = new FinetuneService({
      store,
      engine,
      emit: (run) => events.emit('finetune', run),
      modelName: path.basename(config.modelDir!),
      dataDir: config.dataDir,
    });
    void finetune.restoreActiveStyle();
  }
  const handlers = createApiHandlers({ store, engine, events, finetune, templates: store.templates ?? null });
  let closed: Promise<void> | null = null;
  return {
    config,
    handlers,
    events,
    close() {
      closed ??= (async () => {
        offStatus();
        try {
          // A run in training saves its last step before the engine goes.
          await finetune?.suspend();
          await engine.stop();
        } finally {
          store.close();
        }
      })();
      return closed;
    },
  };
}
