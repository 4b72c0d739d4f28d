/**
 * Where the app's own files are, in the three shapes it runs in:
 * - a development checkout: sources under the repository root, the renderer built into dist/renderer;
 * - a production build (`npm run build`): the same root, compiled code under dist/;
 * - a packaged app (electron-builder): the root is `resources/app.asar`; files that must be real files on disk
 *   (native modules, the wasm binaries) sit at the same relative paths under `resources/app.asar.unpacked`,
 *   and the default model under `resources/default-model` (see electron-builder.yml).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The repository (or packaged app) root: main/ sits directly under it, in sources and in dist/ alike. */
export function appRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const up = join(here, '..');
  return existsSync(join(up, 'package.json')) ? up : join(up, '..');
}

/**
 * The real file for a path that may point into an asar archive: its twin under `app.asar.unpacked` when the
 * packager put it there, else the path itself. Electron reads most files from inside the archive, but
 * anything handed to code that is not Electron-aware (a wasm loader, a native library) must be a real file.
 */
export function unpackedPath(file: string): string {
  const twin = file.replace(/([\\/])app\.asar(?=[\\/]|$)/, '$1app.asar.unpacked');
  return twin !== file && existsSync(twin) ? twin : file;
}

/**
 * The packaged app's resources folder: `process.resourcesPath`, which only Electron defines. In development
 * it is Electron's own folder, which holds none of our files, so every lookup there simply misses.
 */
function resourcesDir(): string | null {
  const resources = (process as NodeJS.Process & { resourcesPath?: string }).resourcesPath;
  return typeof resources === 'string' && resources !== '' ? resources : null;
}

/** The embedded default model, or null when this build has none. */
export function defaultModelDir(): string | null {
  const resources = resourcesDir();
  const candidates = [
    // Packaged: an extraResource beside app.asar (a model of hundreds of MiB stays out of the archive).
    ...(resources === null ? [] : [join(resources, 'default-model')]),
    join(appRoot(), 'resources', 'default-model'),
  ];
  return candidates.find((dir) => existsSync(join(dir, 'config.json'))) ?? null;
}

/**
 * The folder with TensorFlow.js's wasm binaries as real files. The wasm backend finds them next to its own
 * script by default; packaged, that script is inside app.asar and the binaries are unpacked beside it, so
 * the engine is pointed here explicitly (INKLING_WASM_DIR, see worker/backend.ts).
 */
export function wasmDir(): string {
  const script = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  return unpackedPath(dirname(script));
}
