/**
 * Reading a hand-written kernel's `.wasm`, which sits beside the module that uses it (in the sources, and in
 * the build: scripts/build.mjs copies it next to the compiled `.js`).
 *
 * Packaged (electron-builder), that module is inside `resources/app.asar`, and the binaries are unpacked
 * beside the archive at the same relative path under `resources/app.asar.unpacked` (electron-builder.yml,
 * asarUnpack). The kernels are read in worker threads, the engine's and its partner's; a real file there does
 * not depend on Electron's archive support in those threads, so the unpacked copy is read when it exists.
 * The rule is main/paths.ts's `unpackedPath`, repeated here because the engine library does not import main/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A path segment named exactly `app.asar` (not `my-app.asar-notes`). */
const ASAR_SEGMENT = /([\\/])app\.asar(?=[\\/]|$)/;

/** `file`'s twin under `app.asar.unpacked` when it is inside app.asar and the twin exists, else `file`. */
export function unpackedTwin(file: string): string {
  const twin = file.replace(ASAR_SEGMENT, '$1app.asar.unpacked');
  return twin !== file && existsSync(twin) ? twin : file;
}

/** The file a kernel binary is read from; `url` is where it sits beside its module (`new URL('./x.wasm', import.meta.url)`). */
export function kernelBinaryPath(url: URL): string {
  return unpackedTwin(fileURLToPath(url));
}

/** The bytes of a kernel binary, or an error that names the file and how it is made. */
export function readKernelBinary(url: URL): Uint8Array<ArrayBuffer> {
  const file = kernelBinaryPath(url);
  try {
    return readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new Error(
      `cannot read the WebAssembly kernels ${file}: ${reason} (npm run build:kernels assembles them from their .wat; ` +
        'npm run build copies them next to the compiled code)',
      { cause: error },
    );
  }
}
