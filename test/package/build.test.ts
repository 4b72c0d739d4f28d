// `npm run build` output runs on its own: browser mode from the built JavaScript with plain `node` (no tsx,
// NODE_OPTIONS cleared, a guard that fails on any TypeScript import), the compiled engine thread included, and
// the engine's second thread and int8 WebAssembly kernels from the build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { nativeKernels } from '../../worker/model/kernels/native/native.js';
import {
  buildInto,
  checkBrowserModeRoundTrip,
  listFiles,
  makeAppRoot,
  noTypeScriptGuard,
  plainNodeEnv,
  repoRoot,
  run,
  runBuiltEngine,
  startBuiltBrowserMode,
  tempDir,
  tinyModel,
} from './helpers.js';

let appDir: string;
let dist: string;

before(async () => {
  appDir = tempDir('build');
  dist = path.join(appDir, 'dist');
  await buildInto(appDir);
  makeAppRoot(appDir);
});

after(() => rmSync(appDir, { recursive: true, force: true }));

test('the build is JavaScript only: every main/ and worker/ source has its .js, and no TypeScript is left', () => {
  const built = listFiles(dist);
  assert.deepEqual(built.filter((file) => /\.[cm]?tsx?$/.test(file)), [], 'no TypeScript in the build');
  const expected = [
    ...listFiles(path.join(repoRoot, 'main')).map((f) => `main/${f}`),
    ...listFiles(path.join(repoRoot, 'worker')).map((f) => `worker/${f}`),
  ]
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && file !== 'main/electron/preload.ts')
    .map((file) => file.replace(/\.ts$/, '.js'));
  assert.ok(expected.length > 40, 'the sources were found');
  const missing = expected.filter((file) => !built.includes(file));
  assert.deepEqual(missing, [], 'every source is compiled');
  for (const file of ['main/electron/preload.cjs', 'worker/train/tfjs-gradients.cjs', 'renderer/index.html']) {
    assert.ok(built.includes(file), `${file} is built`);
  }
  // The development helpers that load tsx are not part of the build.
  assert.ok(!built.some((file) => /tsx-bootstrap|entry\.mjs/.test(file)), 'no tsx bootstrap in the build');
});

test('the WebAssembly kernels are in the build at their source paths (beside the modules that read them), byte for byte', () => {
  const kernels = listFiles(path.join(repoRoot, 'worker'))
    .filter((file) => file.endsWith('.wasm'))
    .map((file) => `worker/${file}`);
  assert.ok(kernels.includes('worker/model/kernels/q8/q8.wasm'), 'the sources have the int8 kernels');
  for (const file of kernels) {
    const built = path.join(dist, file);
    assert.ok(existsSync(built), `${file} is in the build`);
    assert.ok(readFileSync(built).equals(readFileSync(path.join(repoRoot, file))), `${file} is copied unchanged`);
  }
  const sourcesOnly = listFiles(dist).filter((file) => file.endsWith('.wat'));
  assert.deepEqual(sourcesOnly, [], 'the kernels\' text sources stay out of the build');
});

test('the guard works: importing a .ts file under it fails loudly', async () => {
  const probe = path.join(appDir, 'probe.mjs');
  writeFileSync(path.join(appDir, 'leftover.ts'), 'export const x = 1;\n');
  writeFileSync(probe, "await import('./leftover.ts');\n");
  await assert.rejects(
    run(process.execPath, ['--import', noTypeScriptGuard, probe], { cwd: appDir, env: plainNodeEnv() }),
    /no-typescript guard: TypeScript source .*leftover\.ts/,
  );
});

test('built browser mode serves the page, answers the API and completes with the tiny model on the compiled engine thread', async () => {
  const loadLog = path.join(appDir, 'loaded.txt');
  const server = await startBuiltBrowserMode(
    path.join(dist, 'main', 'server', 'cli.js'),
    ['--data', path.join(appDir, 'data'), '--model', tinyModel, '--backend', 'wasm'],
    { cwd: appDir, loadLog },
  );
  try {
    const status = await checkBrowserModeRoundTrip(server.url);
    assert.equal(status.backend, 'wasm');
    assert.match(status.backendReason, /WebAssembly/, 'the status says which backend and why');
  } finally {
    assert.equal(await server.stop(), 0, `a clean stop; output:\n${server.output()}`);
  }
  const loaded = readFileSync(loadLog, 'utf8').split('\n').filter(Boolean);
  const engineThread = pathToFileURL(path.join(dist, 'worker', 'thread.js')).href;
  assert.ok(loaded.includes(engineThread), `the compiled engine thread ran (${engineThread})`);
  const fromSources = loaded.filter((url) => url.startsWith(pathToFileURL(repoRoot).href) && !url.includes('/node_modules/'));
  assert.deepEqual(fromSources, [], 'nothing was loaded from the checkout sources');
});

test('the built engine runs a model on two threads with the int8 kernels, from the compiled partner thread', async () => {
  const loadLog = path.join(appDir, 'engine-loaded.txt');
  const report = await runBuiltEngine(path.join(dist, 'worker'), { cwd: appDir, loadLog });
  assert.equal(report.backend, 'wasm');
  assert.equal(report.threads, 2, `the second thread started and stayed: ${report.threadsNote}`);
  assert.equal(report.precision, 'fast', `the int8 kernels loaded: ${report.precisionNote}`);
  if (nativeKernels()) assert.equal(report.nativeKernelsNote, null, 'the build carries the native kernels, and they load from it');
  assert.ok(report.finite, 'the logits are finite');
  const loaded = readFileSync(loadLog, 'utf8').split('\n').filter(Boolean);
  for (const file of ['worker/model/parallel/partner-thread.js', 'worker/model/kernels/q8/q8.js']) {
    const href = pathToFileURL(path.join(dist, file)).href;
    assert.ok(loaded.includes(href), `the compiled ${file} ran`);
  }
  const fromSources = loaded.filter((url) => url.startsWith(pathToFileURL(repoRoot).href) && !url.includes('/node_modules/'));
  assert.deepEqual(fromSources, [], 'nothing was loaded from the checkout sources');
});

test('training gradients load from the build without tsx (bundled tfjs-core gradients)', async () => {
  const gradients = pathToFileURL(path.join(dist, 'worker', 'train', 'gradients.js')).href;
  const script = `const { registerGradients } = await import(${JSON.stringify(gradients)}); registerGradients(); console.log('registered');`;
  const output = await run(process.execPath, ['--import', noTypeScriptGuard, '--input-type=module', '-e', script], {
    cwd: appDir,
    env: plainNodeEnv(),
  });
  assert.match(output, /registered/);
  assert.ok(existsSync(path.join(dist, 'worker', 'train', 'tfjs-gradients.cjs')));
});
