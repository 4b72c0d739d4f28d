#!/usr/bin/env node
// The production build: everything the app runs, as JavaScript, with no TypeScript loader at run time.
//
//   node scripts/build.mjs [--out DIR] [--no-renderer]     (npm run build)
//
// Writes, under DIR (default: dist/):
//   main/**.js, worker/**.js   main/ and worker/ compiled file by file, ES modules, same layout as the sources
//   worker/**.wasm             the engine's WebAssembly kernels (assembled from their .wat by
//                              scripts/build-kernels.mjs and committed), copied to the same relative paths
//   main/electron/preload.cjs  the sandboxed preload, bundled (see main/electron/build.mjs)
//   worker/train/tfjs-gradients.cjs  tfjs-core's op gradients, bundled (see worker/train/gradients.ts)
//   renderer/                  the Vite build of the renderer
//
// Why esbuild, file by file, rather than `tsc` emitting: the output keeps the source layout, so the paths the
// code computes from `import.meta.url` (the engine host finding worker/thread.js, the engine thread finding
// its partner thread, the kernels finding their .wasm, paths.ts finding the app root) hold unchanged; and it
// takes about a second where tsc takes most of a minute on our 2-core machines, which lets the package tests
// build from scratch. The sources are written for per-file compilation
// (`isolatedModules`, `verbatimModuleSyntax`), so nothing is lost; type checking stays with `npm run typecheck`.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { buildPreload } from '../main/electron/build.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Compiled by esbuild file by file. The preload is left out: it only works bundled. */
const SOURCE_DIRS = ['main', 'worker'];
const NOT_COMPILED = new Set([path.join('main', 'electron', 'preload.ts')]);
// Electron 45 runs Node 22, the CLI and browser mode need Node 20: the lower one decides the syntax.
const NODE_TARGET = 'node20';

/**
 * Files the compiled code needs at run time beside it, read through `new URL('./x.wasm', import.meta.url)`:
 * the WebAssembly kernels, and the native ones where this machine built them (scripts/build-native.mjs).
 * The tsx bootstrap (worker/tsx-bootstrap.mjs) is deliberately not among them: a build starts its threads'
 * compiled .js files (worker/thread-entry.ts).
 */
// The addon by its name: node-gyp leaves other .node files in build/ folders (intermediate, or of a failed build).
const isRunTimeAsset = (name) => name.endsWith('.wasm') || name === 'inkling-native.node';
/** Where a build's threads start; checked after building, because a missing one fails only once a thread starts. */
const THREAD_ENTRIES = [path.join('worker', 'thread.js'), path.join('worker', 'model', 'parallel', 'partner-thread.js')];

/** Files under `dir` (relative to the root) that `keep(name, relative)` accepts. */
function filesUnder(dir, keep) {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return filesUnder(relative, keep);
    return keep(entry.name, relative) ? [relative] : [];
  });
}

function typeScriptSources(dir) {
  return filesUnder(dir, (name, relative) => name.endsWith('.ts') && !name.endsWith('.d.ts') && !NOT_COMPILED.has(relative));
}

async function compileMainAndWorker(outDir) {
  const entryPoints = SOURCE_DIRS.flatMap(typeScriptSources).map((file) => path.join(root, file));
  await build({
    entryPoints,
    outdir: outDir,
    outbase: root,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: NODE_TARGET,
    logLevel: 'warning',
  });
  return entryPoints.length;
}

/** Copies the run-time assets of main/ and worker/ (the kernels' .wasm) to the same relative paths. */
function copyRunTimeAssets(outDir) {
  const assets = SOURCE_DIRS.flatMap((dir) => filesUnder(dir, isRunTimeAsset));
  for (const file of assets) {
    mkdirSync(path.dirname(path.join(outDir, file)), { recursive: true });
    copyFileSync(path.join(root, file), path.join(outDir, file));
  }
  return assets;
}

/**
 * tfjs-core publishes its op gradients only in its ES-module build, whose extension-less imports Node's own
 * loader refuses (in development tsx resolves them). One CommonJS bundle of it needs no loader. It registers
 * into tfjs-core's global registry, so it serves the copy of tfjs-core the engine imports.
 */
async function bundleGradients(outDir) {
  const require = createRequire(import.meta.url);
  await build({
    entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')],
    outfile: path.join(outDir, 'worker', 'train', 'tfjs-gradients.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: NODE_TARGET,
    minify: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
}

async function buildRenderer(outDir) {
  const { build: viteBuild } = await import('vite');
  await viteBuild({
    configFile: path.join(root, 'renderer', 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: path.join(outDir, 'renderer'), emptyOutDir: true },
  });
}

export async function buildApp({ outDir = path.join(root, 'dist'), renderer = true } = {}) {
  outDir = path.resolve(outDir);
  // Compiled files of deleted sources must not linger (and end up in the package).
  for (const dir of SOURCE_DIRS) rmSync(path.join(outDir, dir), { recursive: true, force: true });
  const started = performance.now();
  const files = await compileMainAndWorker(outDir);
  const assets = copyRunTimeAssets(outDir);
  await buildPreload(path.join(outDir, 'main', 'electron', 'preload.cjs'));
  await bundleGradients(outDir);
  if (renderer) await buildRenderer(outDir);
  for (const file of [...THREAD_ENTRIES, ...assets]) {
    if (!existsSync(path.join(outDir, file))) throw new Error(`build: ${path.join(outDir, file)} was not written`);
  }
  if (!assets.some((file) => file.startsWith(path.join('worker', 'model', 'kernels') + path.sep))) {
    throw new Error('build: no WebAssembly kernels (worker/model/kernels/**/*.wasm) were found to copy; run npm run build:kernels');
  }
  return { outDir, files, assets: assets.length, seconds: (performance.now() - started) / 1000 };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, 'no-renderer': { type: 'boolean' } } });
  try {
    const result = await buildApp({ outDir: values.out, renderer: !values['no-renderer'] });
    console.log(`built ${result.files} modules, ${result.assets} kernel binaries, the preload${values['no-renderer'] ? '' : ' and the renderer'} into ${result.outDir} in ${result.seconds.toFixed(1)} s`);
  } catch (err) {
    console.error(`build failed: ${err?.message ?? err}`);
    process.exit(1);
  }
}
