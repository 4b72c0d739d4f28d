/**
 * Picks the TensorFlow.js backend: native TensorFlow (GPU, then CPU) when installed, else WebAssembly, else
 * plain JavaScript; and says why in words a user understands.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SHARED_HEAP_ENV, sharedHeapWasmPaths } from './wasm-shared-heap.js';

/** Backends by their TensorFlow.js names, fastest first. */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
/** What a user may ask for: a backend, or `auto` for the fastest that works. */
export const BACKEND_CHOICES = ['auto', ...BACKEND_NAMES] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export const BACKEND_ENV = 'INKLING_BACKEND';
/**
 * A folder holding the wasm binaries, for when they are not beside the backend's script: in the packaged
 * app that script is inside app.asar and the binaries are unpacked next to it (main/paths.ts sets this).
 */
export const WASM_DIR_ENV = 'INKLING_WASM_DIR';

export interface BackendSelection {
  name: string;
  reason: string;
}

/** How a backend package is loaded; tests replace it to simulate packages that are missing or broken. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

// A variable specifier: the native packages are optional dependencies, usually absent, and must not be
// resolved by the type checker or a bundler.
const importModule: ModuleImporter = (specifier) => import(specifier);

interface Attempt {
  label: string;
  ok: boolean;
  /** Why it did not work, e.g. "not installed". */
  failure?: string;
}

function describeImportFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return 'not installed';
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return `failed to load (${message})`;
}

async function activate(name: BackendName): Promise<string | null> {
  if (tf.findBackendFactory(name) === null) {
    return 'loaded, but registered with another copy of @tensorflow/tfjs-core';
  }
  try {
    if (!(await tf.setBackend(name))) return 'failed to start';
    await tf.ready();
    return null;
  } catch (error) {
    return `failed to start (${error instanceof Error ? error.message : String(error)})`;
  }
}

type SetWasmPaths = (prefixOrFileMap: string | Record<string, string>) => void;

/**
 * Tells the wasm backend where its binaries are, before it starts: INKLING_WASM_DIR's when set, and the SIMD
 * one rewritten to share its heap (wasm-shared-heap.ts) unless INKLING_SHARED_HEAP=off or it cannot be made.
 * Returns why the backend cannot work, or null.
 */
function useWasmBinaries(loaded: unknown): string | null {
  const dir = process.env[WASM_DIR_ENV] || undefined;
  if (dir && !existsSync(path.join(dir, 'tfjs-backend-wasm.wasm'))) {
    return `failed to load (${WASM_DIR_ENV}=${dir} holds no tfjs-backend-wasm.wasm)`;
  }
  const module = loaded as { setWasmPaths?: SetWasmPaths; default?: { setWasmPaths?: SetWasmPaths } } | undefined;
  const setWasmPaths = module?.setWasmPaths ?? module?.default?.setWasmPaths;
  if (typeof setWasmPaths !== 'function') return dir ? `failed to load (it has no setWasmPaths to honour ${WASM_DIR_ENV})` : null;
  // A prefix, not a folder: the binary's file name is appended to it as it is.
  let paths: string | Record<string, string> | null = dir ? (dir.endsWith(path.sep) ? dir : dir + path.sep) : null;
  if (process.env[SHARED_HEAP_ENV] !== 'off') {
    try {
      paths = sharedHeapWasmPaths(dir);
    } catch {
      // The package's binaries then: everything works, the second engine thread holds a copy of its share.
    }
  }
  if (paths !== null) setWasmPaths(paths);
  return null;
}

async function tryPackage(label: string, specifier: string, name: BackendName, load: ModuleImporter): Promise<Attempt> {
  let loaded: unknown;
  try {
    loaded = await load(specifier);
  } catch (error) {
    return { label, ok: false, failure: describeImportFailure(error) };
  }
  const wasmProblem = name === 'wasm' ? useWasmBinaries(loaded) : null;
  if (wasmProblem !== null) return { label, ok: false, failure: wasmProblem };
  const failure = await activate(name);
  return failure === null ? { label, ok: true } : { label, ok: false, failure };
}

/** "tfjs-node-gpu and tfjs-node not installed", "tfjs-node failed to load (…)" */
function summarize(failed: Attempt[]): string {
  const groups = new Map<string, string[]>();
  for (const a of failed) groups.set(a.failure!, [...(groups.get(a.failure!) ?? []), a.label]);
  return [...groups].map(([failure, labels]) => `${labels.join(' and ')} ${failure}`).join('; ');
}

function parseChoice(preferred: string | undefined): { choice: BackendChoice; source: string } {
  const fromArgument = preferred !== undefined && preferred !== '' && preferred !== 'auto';
  const raw = fromArgument ? preferred : (process.env[BACKEND_ENV] || 'auto');
  const source = fromArgument ? 'requested' : `${BACKEND_ENV}=${raw}`;
  const choice = raw.trim().toLowerCase();
  if (!(BACKEND_CHOICES as readonly string[]).includes(choice)) {
    throw new Error(`unknown TensorFlow.js backend '${raw}' (${source}): use one of ${BACKEND_CHOICES.join(', ')}`);
  }
  return { choice: choice as BackendChoice, source };
}

async function select(choice: BackendChoice, source: string, load: ModuleImporter): Promise<BackendSelection> {
  const failed: Attempt[] = [];
  const because = (text: string) => (failed.length ? `${summarize(failed)}, ${text}` : text);

  if (choice === 'auto' || choice === 'tensorflow') {
    for (const [label, specifier] of [
      ['tfjs-node-gpu', '@tensorflow/tfjs-node-gpu'],
      ['tfjs-node', '@tensorflow/tfjs-node'],
    ] as const) {
      const attempt = await tryPackage(label, specifier, 'tensorflow', load);
      if (attempt.ok) {
        const what = label === 'tfjs-node-gpu' ? 'native TensorFlow with GPU support (tfjs-node-gpu)' : 'native TensorFlow (tfjs-node)';
        return { name: 'tensorflow', reason: because(`using ${what}`) };
      }
      failed.push(attempt);
    }
  }
  if (choice !== 'cpu') {
    const attempt = await tryPackage('WebAssembly', '@tensorflow/tfjs-backend-wasm', 'wasm', load);
    if (attempt.ok) {
      return { name: 'wasm', reason: because(choice === 'wasm' ? `using WebAssembly (${source})` : 'using WebAssembly') };
    }
    failed.push(attempt);
  }
  const attempt = await tryPackage('the JavaScript backend', '@tensorflow/tfjs-backend-cpu', 'cpu', load);
  if (attempt.ok) {
    return {
      name: 'cpu',
      reason: because(choice === 'cpu' ? `using plain JavaScript (${source}; much slower)` : 'using plain JavaScript (much slower)'),
    };
  }
  failed.push(attempt);
  throw new Error(`no TensorFlow.js backend could start: ${summarize(failed)}`);
}

let current: { choice: BackendChoice; selection: Promise<BackendSelection>; name?: string } | null = null;

/**
 * Starts the backend `preferred` names ('tensorflow' | 'wasm' | 'cpu' | 'auto'; when absent or 'auto', the
 * INKLING_BACKEND environment variable, else auto), falling back down BACKEND_NAMES when it cannot start.
 * Calling it again with the same choice returns the first answer without touching the backend (unless
 * something else switched backends since).
 */
export async function initBackend(preferred?: string, load: ModuleImporter = importModule): Promise<BackendSelection> {
  const { choice, source } = parseChoice(preferred);
  const cached = current;
  if (load === importModule && cached?.choice === choice && (cached.name === undefined || cached.name === tf.getBackend())) {
    return cached.selection;
  }
  const selection = select(choice, source, load);
  if (load !== importModule) return selection;
  const entry: NonNullable<typeof current> = { choice, selection };
  current = entry;
  try {
    entry.name = (await selection).name;
    return selection;
  } catch (error) {
    if (current === entry) current = null;
    throw error;
  }
}
