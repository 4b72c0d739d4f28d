/** Shared by the tests of the CLI commands that register models in a real (temporary) data folder. */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, type AppEngine } from '../../main/app.js';
import type { CliIo } from '../../main/cli/task-io.js';
import type { EngineStatus } from '../../main/ipc/contract.js';
import { openStore } from '../../main/store/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const tinyGpt2 = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');

/** A fresh folder, removed after the test file. */
export function tmpDir(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `inkling-cli-${label}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a command in-process and collects what it printed; `onStderr` sees each write as it happens. */
export async function runCommand(
  command: (args: string[], io: CliIo) => Promise<number>,
  args: string[],
  { onStderr, signal }: { onStderr?: (text: string) => void; signal?: AbortSignal } = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (s: string) => out.push(s) },
    stderr: {
      write: (s: string) => {
        err.push(s);
        onStderr?.(s);
      },
    },
    signal,
  };
  const code = await command(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** The app on `dataDir` with an engine that runs nothing but records which folder it was started on. */
export async function openApp(dataDir: string) {
  const started: string[] = [];
  const startEngine = (modelDir: string): AppEngine => {
    started.push(modelDir);
    const status: EngineStatus = { state: 'ready', backend: 'fake', backendReason: '', modelName: path.basename(modelDir), error: null };
    return { status: () => status, complete() {}, cancel() {}, on: () => () => {}, stop: async () => {} };
  };
  const app = await createApp({ dataDir, modelDir: null, backend: null }, { startEngine, bundledModelDir: null });
  return { app, started };
}

/** What the data folder's registry holds, read through the store the app opens. */
export function registered(dataDir: string) {
  const store = openStore(dataDir);
  try {
    return { models: store.modelRegistry.list(), activeId: store.modelRegistry.activeId() };
  } finally {
    store.close();
  }
}
