/**
 * What `inkling import` and `inkling download` share: the user's data folder opened with the app's own model
 * handlers — one code path for the app and the CLI (the copy or download into models/<id>/, the check of the
 * files, the registry row with its sha256) — and the report of the model registered there.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ModelInfo, ModelProgressEvent } from '../ipc/contract.js';
import type { ModelHandlers } from '../ipc/model-handlers.js';
import type { ModelRegistry } from '../store/model-registry.js';
import type { CliIo } from './task-io.js';

export type ModelCommand = 'import' | 'download';

const PAST: Record<ModelCommand, string> = { import: 'imported', download: 'downloaded' };

export interface UserModels {
  command: ModelCommand;
  dataDir: string;
  registry: ModelRegistry;
  handlers: ModelHandlers;
}

export interface UserModelsOptions {
  command: ModelCommand;
  /** The --data-dir flag, if given. */
  dataDir: string | undefined;
  hubBase?: string;
  /** Every progress event of the handlers: each command's printer keeps its own steps. */
  emit(event: ModelProgressEvent): void;
}

/** Runs `use` on the data folder's store and model handlers, and closes the store after it. */
export async function withUserModels<T>(options: UserModelsOptions, io: CliIo, use: (models: UserModels) => Promise<T>): Promise<T> {
  // Imported lazily: the store (a native module) is needed only here, not for `import --check` or `--to`.
  const [{ resolveConfig }, { openStore }, { createModelHandlers }] = await Promise.all([
    import('../app.js'),
    import('../store/index.js'),
    import('../ipc/model-handlers.js'),
  ]);
  // The app's own resolution (flag, then INKLING_DATA_DIR, then the per-user folder), so both find one store.
  const { dataDir } = resolveConfig({ data: options.dataDir }, undefined, () => null);
  mkdirSync(dataDir, { recursive: true });
  const store = openStore(dataDir);
  try {
    if (store.recovered) io.stderr.write(`inkling ${options.command}: the database could not be read and was moved to ${store.recovered.movedTo} (${store.recovered.reason})\n`);
    const registry = store.modelRegistry;
    const handlers = createModelHandlers({
      registry,
      modelsDir: path.join(dataDir, 'models'),
      bundledDir: null,
      hubBase: options.hubBase,
      // Every event: a time throttle could swallow all of a quick transfer's lines.
      progressIntervalMs: 0,
      emit: options.emit,
      // Nothing runs a model here: activation is only remembered, for the app's next start.
      switchModel: async () => {},
      activeId: () => registry.activeId(),
    });
    return await use({ command: options.command, dataDir, registry, handlers });
  } finally {
    store.close();
  }
}

/**
 * Makes the model active if asked, then prints it as registered: text, or one JSON object in which `fields`
 * (the command's own, e.g. the hub repository) stand before the shared ones.
 */
export function reportRegistered(
  user: UserModels,
  info: ModelInfo,
  how: { activate?: boolean; json?: boolean; fields?: Record<string, unknown> },
  io: CliIo,
): void {
  const { registry, dataDir } = user;
  // The weights were hashed by the import or download a moment ago, so the row is remembered as is
  // (activateModel would hash them again).
  if (how.activate) registry.setActiveId(info.id);
  const model = registry.get(info.id)!;
  const result = { ...info, active: registry.activeId() === info.id };
  const past = PAST[user.command];
  if (how.json) {
    io.stdout.write(JSON.stringify({ ...result, ...how.fields, [past]: true, registered: true, target: model.folder, sha256: model.sha256, dataDir }) + '\n');
  } else {
    io.stdout.write(describeRegistered(result, model.folder, user));
  }
}

function describeRegistered(model: ModelInfo, folder: string, user: UserModels): string {
  return [
    `id:         ${model.id}`,
    `name:       ${model.name}`,
    `model:      GPT-2: ${model.shape}`,
    `parameters: ${(model.parameters / 1e6).toFixed(1)}M; ${mib(model.sizeBytes)} on disk, about ${mib(model.memoryBytes)} in memory`,
    `folder:     ${folder}`,
    `${PAST[user.command]} into ${user.dataDir}; ${model.active ? 'the app starts on it (active)' : `choose it under Models in the app, or ${user.command} with --activate`}`,
  ].join('\n') + '\n';
}

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
