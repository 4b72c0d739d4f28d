#!/usr/bin/env node
// The production build: everything the app runs, as JavaScript, with no TypeScript loader at run time.
//
//   node scripts/build.mjs [--out DIR] [--no-renderer]     (npm run build)
//
// Writes, under DIR (default: dist/):
//   main/**.js, worker/**.js   main/ and worker/ compiled file by file, ES modules, same layout as the sources
//   main/electron/preload.cjs  the sandboxed preload, bundled (see main/electron/build.mjs)
//   worker/train/tfjs-gradients.cjs  tfjs-core's op gradients, bundled (see worker/train/gradients.ts)
//   renderer/                  the Vite build of the renderer
//
// Why esbuild, file by file, rather than `tsc` emitting: the output keeps the source layout, so the paths the
// code computes from `import.meta.url` (the engine host finding worker/thread.js, paths.ts finding the app
// root) hold unchanged; and it takes about a second where tsc takes most of a minute on our 2-core machines,
// which lets the package tests build from scratch. The sources are written for per-file compilation
// (`isolatedModules`, `verbatimModuleSyntax`), so nothing is lost; type checking stays with `npm run typecheck`.
import { existsSync, readdirSync, rmSync } from 'node:fs';
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

function typeScriptSources(dir) {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return typeScriptSources(relative);
    const isSource = entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts');
    return isSource && !NOT_COMPILED.has(relative) ? [relative] : [];
  });
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
  await buildPreload(path.join(outDir, 'main', 'electron', 'preload.cjs'));
  await bundleGradients(outDir);
  if (renderer) await buildRenderer(outDir);
  if (!existsSync(path.join(outDir, 'worker', 'thread.js'))) throw new Error(`build: ${outDir}/worker/thread.js was not written`);
  return { outDir, files, seconds: (performance.now() - started) / 1000 };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, 'no-renderer': { type: 'boolean' } } });
  try {
    const result = await buildApp({ outDir: values.out, renderer: !values['no-renderer'] });
    console.log(`built ${result.files} modules, the preload${values['no-renderer'] ? '' : ' and the renderer'} into ${result.outDir} in ${result.seconds.toFixed(1)} s`);
  } catch (err) {
    console.error(`build failed: ${err?.message ?? err}`);
    process.exit(1);
  }
}
