// The packaging step as far as it goes without Electron's binary (which cannot be downloaded on our
// machines): electron-builder --dir with a placeholder executable standing in for Electron, then the
// resulting app.asar is opened and checked, and its contents are run in browser mode with plain Node.
// What this cannot show: that Electron itself starts the packaged app (window, preload, IPC, asar reads
// from the engine thread and the partner thread it starts), and the native-module rebuild for Electron's ABI (it needs Electron's headers,
// so npmRebuild is off here and the package keeps the Node build of better-sqlite3).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { extractAll, extractFile, listPackage, statFile } from '@electron/asar';
import { nativeKernels } from '../../worker/model/kernels/native/native.js';
import {
  buildInto,
  checkBrowserModeRoundTrip,
  dirBytes,
  listFiles,
  mib,
  repoRoot,
  run,
  runBuiltEngine,
  startBuiltBrowserMode,
  tempDir,
  tinyModel,
} from './helpers.js';

let work: string;
let appOut: string;
let asarFile: string;
let entries: string[];
let builderOutput: string;

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const WASM_DIR = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
/** The native kernels, where npm ci built them (scripts/build-native.mjs). */
const NATIVE_KERNELS = 'dist/worker/model/kernels/native/inkling-native.node';
const SQLITE_ADDON = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
/** The engine's WebAssembly kernels, as packaged: every .wasm under the sources' worker/, under dist/. */
const KERNELS = listFiles(path.join(repoRoot, 'worker'))
  .filter((file) => file.endsWith('.wasm'))
  .map((file) => `dist/worker/${file}`);
/** Where the code starts its threads: beside the modules they import, inside app.asar (see electron-builder.yml). */
const THREAD_SCRIPTS = ['dist/worker/thread.js', 'dist/worker/thread-entry.js', 'dist/worker/model/parallel/partner-thread.js'];
const realDefaultModel = path.join(repoRoot, 'resources', 'default-model');

/**
 * A project folder electron-builder can package: the build, the manifest, the builder config, the icons,
 * a default model (the real one when this checkout has it, else the tiny fixture standing in for it) and
 * the checkout's node_modules.
 */
async function stageProject(stage: string): Promise<void> {
  await buildInto(stage);
  for (const file of ['package.json', 'package-lock.json', 'electron-builder.yml']) {
    copyFileSync(path.join(repoRoot, file), path.join(stage, file));
  }
  cpSync(path.join(repoRoot, 'resources'), path.join(stage, 'resources'), {
    recursive: true,
    filter: (source) => source !== realDefaultModel,
  });
  const model = path.join(stage, 'resources', 'default-model');
  if (existsSync(path.join(realDefaultModel, 'config.json'))) {
    symlinkSync(realDefaultModel, model, 'dir');
  } else {
    mkdirSync(model);
    for (const file of ['config.json', 'model.safetensors']) copyFileSync(path.join(tinyModel, file), path.join(model, file));
  }
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
}

/** An "unpacked Electron" for electron-builder's electronDist: a placeholder that refuses to run. */
function placeholderElectron(dir: string): void {
  mkdirSync(path.join(dir, 'resources'), { recursive: true });
  const executable = path.join(dir, 'electron');
  writeFileSync(executable, '#!/bin/sh\necho "a placeholder for the Electron binary, which these tests do not run" >&2\nexit 1\n');
  chmodSync(executable, 0o755);
}

before(async () => {
  work = tempDir('package');
  const stage = path.join(work, 'stage');
  const out = path.join(work, 'release');
  mkdirSync(stage);
  await stageProject(stage);
  placeholderElectron(path.join(work, 'electron-dist'));
  builderOutput = await run(
    process.execPath,
    [
      path.join(repoRoot, 'node_modules', 'electron-builder', 'cli.js'),
      '--dir',
      '--linux',
      '--x64',
      '--publish',
      'never',
      '--projectDir',
      stage,
      `-c.electronDist=${path.join(work, 'electron-dist')}`,
      // Rebuilding for Electron's ABI needs Electron's headers, which cannot be downloaded here.
      '-c.npmRebuild=false',
      `-c.directories.output=${out}`,
    ],
    { cwd: stage, timeoutMs: 300_000 },
  );
  appOut = path.join(out, 'linux-unpacked');
  asarFile = path.join(appOut, 'resources', 'app.asar');
  entries = listPackage(asarFile, { isPack: false }).map((entry) => entry.replace(/\\/g, '/').replace(/^\//, ''));
});

after(() => rmSync(work, { recursive: true, force: true }));

test('electron-builder --dir lays out the Linux app around a placeholder Electron (the Electron binary itself is not exercised)', () => {
  assert.ok(existsSync(asarFile), `app.asar was written; electron-builder said:\n${builderOutput}`);
  // electron-builder renames Electron's executable to the app's.
  assert.ok(existsSync(path.join(appOut, 'inkling')), 'the executable is named inkling');
});

test('app.asar holds the compiled app and its production dependencies', () => {
  const manifest = JSON.parse(extractFile(asarFile, 'package.json').toString('utf8')) as { main: string };
  for (const file of [
    manifest.main,
    'dist/main/electron/preload.cjs',
    'dist/main/server/cli.js',
    'dist/worker/thread.js',
    'dist/worker/train/tfjs-gradients.cjs',
    'dist/renderer/index.html',
    'resources/icons/512x512.png',
    'node_modules/better-sqlite3/lib/index.js',
    'node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js',
    'node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.node.js',
    'node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.node.js',
    'node_modules/js-tiktoken/dist/ranks/gpt2.js',
    'node_modules/electron-updater/package.json',
    'node_modules/ws/package.json',
  ]) {
    assert.ok(entries.includes(file), `${file} is in app.asar`);
  }
  assert.ok(entries.some((file) => /^dist\/renderer\/assets\/.+\.js$/.test(file)), 'the renderer bundle is in app.asar');
});

test('app.asar leaves out TypeScript, sources, tests, source maps and development packages', () => {
  const problems = entries.filter(
    (file) =>
      /\.([cm]?tsx?|map|md)$/.test(file) ||
      /^(main|worker|renderer|test|bench|scripts)\//.test(file) ||
      /(^|\/)(test|tests|__tests__)\//.test(file),
  );
  assert.deepEqual(problems, []);
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const devOnly = [...Object.keys(manifest.devDependencies), 'tsx', '@types/node'];
  const packaged = devOnly.filter((name) => entries.includes(`node_modules/${name}/package.json`));
  assert.deepEqual(packaged, [], 'no development package is packaged');
});

test('native code and wasm binaries are unpacked beside app.asar, as real files', () => {
  const unpacked = path.join(appOut, 'resources', 'app.asar.unpacked');
  const native = nativeKernels() ? [NATIVE_KERNELS] : [];
  for (const file of [SQLITE_ADDON, ...native, ...WASM_FILES.map((name) => `${WASM_DIR}/${name}`)]) {
    const entry = statFile(asarFile, file) as { unpacked?: boolean };
    assert.equal(entry.unpacked, true, `${file} is marked unpacked in app.asar`);
    assert.ok(statSync(path.join(unpacked, file)).size > 0, `${file} is a real file in app.asar.unpacked`);
  }
});

test('the engine\'s kernels are unpacked beside app.asar; its threads\' scripts are in app.asar, where the code starts them', () => {
  const unpacked = path.join(appOut, 'resources', 'app.asar.unpacked');
  assert.ok(KERNELS.includes('dist/worker/model/kernels/q8/q8.wasm'), `the int8 kernels are among ${KERNELS.join(', ')}`);
  for (const file of KERNELS) {
    const entry = statFile(asarFile, file) as { unpacked?: boolean };
    assert.equal(entry.unpacked, true, `${file} is marked unpacked in app.asar`);
    const source = readFileSync(path.join(repoRoot, file.replace(/^dist\//, '')));
    assert.ok(readFileSync(path.join(unpacked, file)).equals(source), `${file} is a real file in app.asar.unpacked, as committed`);
  }
  for (const file of THREAD_SCRIPTS) {
    assert.ok(entries.includes(file), `${file} is in app.asar`);
    const entry = statFile(asarFile, file) as { unpacked?: boolean };
    assert.notEqual(entry.unpacked, true, `${file} stays in app.asar, beside the modules it imports`);
  }
  assert.deepEqual(entries.filter((file) => /tsx-bootstrap/.test(file)), [], 'the tsx bootstrap is not packaged');
});

test('the packaged engine, laid out as in the app (unpacked files only beside app.asar), runs two threads with the int8 kernels', async () => {
  // Plain Node has no asar support, so the archive is extracted into a folder named app.asar and every file
  // electron-builder unpacked is deleted from it: what the code reads from app.asar.unpacked must be found there.
  const resources = path.join(work, 'layout', 'resources');
  const asarDir = path.join(resources, 'app.asar');
  const unpacked = path.join(appOut, 'resources', 'app.asar.unpacked');
  extractAll(asarFile, asarDir);
  const unpackedFiles = listFiles(unpacked);
  for (const file of unpackedFiles) rmSync(path.join(asarDir, file));
  assert.ok(unpackedFiles.includes('dist/worker/model/kernels/q8/q8.wasm') && !existsSync(path.join(asarDir, 'dist/worker/model/kernels/q8/q8.wasm')));
  symlinkSync(unpacked, path.join(resources, 'app.asar.unpacked'), 'dir');

  const loadLog = path.join(work, 'layout', 'loaded.txt');
  const report = await runBuiltEngine(path.join(asarDir, 'dist', 'worker'), {
    cwd: asarDir,
    loadLog,
    // What main.ts sets in the packaged app: tfjs's wasm binaries from app.asar.unpacked.
    env: { INKLING_WASM_DIR: path.join(resources, 'app.asar.unpacked', WASM_DIR) },
  });
  assert.equal(report.backend, 'wasm');
  assert.equal(report.threads, 2, `the partner thread started from app.asar: ${report.threadsNote}`);
  assert.equal(report.precision, 'fast', `the int8 kernels were read from app.asar.unpacked: ${report.precisionNote}`);
  if (nativeKernels()) assert.equal(report.nativeKernelsNote, null, 'the native kernels loaded from app.asar.unpacked');
  assert.ok(report.finite);
  const loaded = readFileSync(loadLog, 'utf8').split('\n').filter(Boolean);
  const partner = pathToFileURL(path.join(asarDir, 'dist', 'worker', 'model', 'parallel', 'partner-thread.js')).href;
  assert.ok(loaded.includes(partner), `the partner thread ran from app.asar (${partner})`);
});

test('the default model is an extra resource beside app.asar (the tiny fixture stands in when the checkout has none)', () => {
  const model = path.join(appOut, 'resources', 'default-model');
  assert.ok(existsSync(path.join(model, 'config.json')), 'default-model/config.json is packaged');
  assert.ok(!entries.some((file) => file.includes('default-model')), 'the model stays out of app.asar');
});

test('package size (for the README)', (t) => {
  const unpacked = path.join(appOut, 'resources', 'app.asar.unpacked');
  const model = path.join(appOut, 'resources', 'default-model');
  const placeholder = statSync(path.join(appOut, 'inkling')).size;
  const sizes = {
    appAsar: statSync(asarFile).size,
    asarUnpacked: dirBytes(unpacked),
    defaultModel: existsSync(model) ? dirBytes(model) : 0,
  };
  const appOnly = sizes.appAsar + sizes.asarUnpacked;
  t.diagnostic(
    `app.asar ${mib(sizes.appAsar)}, app.asar.unpacked ${mib(sizes.asarUnpacked)}: the app ${mib(appOnly)}; ` +
      `default model ${mib(sizes.defaultModel)}; linux-unpacked without Electron's own files ` +
      `${mib(dirBytes(appOut) - placeholder)} (Electron's binary and resources are not measured here)`,
  );
  assert.ok(sizes.appAsar > 0 && sizes.asarUnpacked > 0);
});

test('the packaged files run: browser mode from the extracted app.asar, with the unpacked wasm, completes with the packaged model', async () => {
  const extracted = path.join(work, 'extracted');
  extractAll(asarFile, extracted);
  const unpackedWasm = path.join(appOut, 'resources', 'app.asar.unpacked', WASM_DIR);
  const server = await startBuiltBrowserMode(
    path.join(extracted, 'dist', 'main', 'server', 'cli.js'),
    ['--data', path.join(work, 'data'), '--model', path.join(appOut, 'resources', 'default-model'), '--backend', 'wasm'],
    // What main.ts sets in the packaged app: the wasm binaries from app.asar.unpacked.
    { cwd: extracted, env: { INKLING_WASM_DIR: unpackedWasm } },
  );
  try {
    const status = await checkBrowserModeRoundTrip(server.url);
    assert.equal(status.backend, 'wasm');
    assert.match(status.backendReason, /WebAssembly/);
  } finally {
    assert.equal(await server.stop(), 0, `a clean stop; output:\n${server.output()}`);
  }
});

