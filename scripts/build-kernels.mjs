#!/usr/bin/env node
// Assembles the engine's hand-written WebAssembly kernels: every worker/model/kernels/**/*.wat becomes the
// .wasm beside it (committed, so that neither the app nor its tests need wabt at run time).
//
//   node scripts/build-kernels.mjs           writes the .wasm files
//   node scripts/build-kernels.mjs --check   writes nothing; exits 1 if a committed .wasm differs from its source
//
// wabt (the WebAssembly Binary Toolkit, compiled to JavaScript) rather than a hand-rolled encoder: it parses
// the standard text format, validates the module and writes the binary deterministically.
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const root = fileURLToPath(new URL('..', import.meta.url));
export const kernelsDir = path.join(root, 'worker', 'model', 'kernels');

/** Post-MVP features the kernels may use. Electron runs all of them; Node 20 (V8 11.3) needs a flag for relaxed SIMD, which only f32-fma.wat uses (see f32.ts). */
const FEATURES = { simd: true, threads: true, relaxed_simd: true };

/**
 * A source with this line is also built importing a *shared* memory, into `<name>.shared.wasm`: the same code
 * for two threads that share one memory (worker/model/parallel/shared-arena.ts). A module must declare the
 * memory it imports as shared or not, and tfjs's own memory is not.
 */
const ALSO_SHARED = ';; build: also shared';
const PLAIN_IMPORT = '(import "env" "memory" (memory 1))';
const SHARED_IMPORT = '(import "env" "memory" (memory 1 65536 shared))';

/** Every .wat file under worker/model/kernels, sorted, as absolute paths. */
export function kernelSources(dir = kernelsDir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return kernelSources(full);
      return entry.name.endsWith('.wat') ? [full] : [];
    })
    .sort();
}

/** The .wasm path that belongs to a .wat source (its shared-memory build's with `shared`). */
export function wasmPathOf(watPath, shared = false) {
  return watPath.replace(/\.wat$/, shared ? '.shared.wasm' : '.wasm');
}

/** Every binary to build: each source's, and its shared-memory twin's where the source asks for one. */
export function kernelBuilds(dir = kernelsDir) {
  return kernelSources(dir).flatMap((source) => {
    const builds = [{ source, shared: false, wasmPath: wasmPathOf(source) }];
    if (readFileSync(source, 'utf8').includes(ALSO_SHARED)) builds.push({ source, shared: true, wasmPath: wasmPathOf(source, true) });
    return builds;
  });
}

let wabtPromise;

/** Assembles one .wat file into validated WebAssembly bytes (with a name section, for readable traps). */
export async function assembleWat(watPath, shared = false) {
  wabtPromise ??= wabtInit();
  const wabt = await wabtPromise;
  let text = readFileSync(watPath, 'utf8');
  if (shared) {
    if (!text.includes(PLAIN_IMPORT)) throw new Error(`${path.relative(root, watPath)}: a shared build needs the line ${PLAIN_IMPORT}`);
    text = text.replace(PLAIN_IMPORT, SHARED_IMPORT);
  }
  let module;
  try {
    module = wabt.parseWat(path.basename(watPath), text, FEATURES);
  } catch (error) {
    // wabt's own message names file, line and column; its stack is minified wabt internals.
    throw new Error(`cannot assemble ${path.relative(root, watPath)}: ${error.message}`, { cause: error });
  }
  try {
    module.resolveNames();
    module.validate(FEATURES);
    return Uint8Array.from(module.toBinary({ log: false, write_debug_names: true }).buffer);
  } finally {
    module.destroy();
  }
}

async function main() {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { source, shared, wasmPath } of kernelBuilds()) {
    const bytes = await assembleWat(source, shared);
    const shown = path.relative(root, wasmPath);
    if (check) {
      const same = existsSync(wasmPath) && Buffer.from(bytes).equals(readFileSync(wasmPath));
      if (!same) stale++;
      console.log(`${same ? 'ok   ' : 'STALE'} ${shown}`);
    } else {
      writeFileSync(wasmPath, bytes);
      console.log(`wrote ${shown} (${bytes.length} bytes)`);
    }
  }
  if (stale > 0) {
    console.error(`${stale} kernel binaries differ from their .wat sources: run node scripts/build-kernels.mjs`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
