// INKLING_WASM_DIR (worker/backend.ts): the packaged app points the wasm backend at the binaries unpacked
// beside app.asar. Each case runs in a fresh process, because the wasm backend can be initialised only once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { wasmDir } from '../../main/paths.js';
import { plainNodeEnv, repoRoot, run, tempDir } from './helpers.js';

const tmp = tempDir('wasm-dir');
after(() => rmSync(tmp, { recursive: true, force: true }));

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** initBackend('auto') in a child process with INKLING_WASM_DIR set; resolves with the selection. */
async function selectBackend(dir: string): Promise<{ name: string; reason: string }> {
  const backend = pathToFileURL(path.join(repoRoot, 'worker', 'backend.ts')).href;
  const script = `const { initBackend } = await import(${JSON.stringify(backend)}); console.log(JSON.stringify(await initBackend('auto')));`;
  const output = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: plainNodeEnv({ INKLING_WASM_DIR: dir }),
  });
  return JSON.parse(output.trim().split('\n').at(-1)!) as { name: string; reason: string };
}

test('the binaries are loaded from INKLING_WASM_DIR', async () => {
  const copy = path.join(tmp, 'copy');
  mkdirSync(copy);
  for (const file of WASM_FILES) copyFileSync(path.join(wasmDir(), file), path.join(copy, file));
  const selection = await selectBackend(copy);
  assert.equal(selection.name, 'wasm');
  assert.match(selection.reason, /using WebAssembly$/);
});

test('broken binaries in INKLING_WASM_DIR are the ones tried: WebAssembly fails and the reason says so', async () => {
  const broken = path.join(tmp, 'broken');
  mkdirSync(broken);
  for (const file of WASM_FILES) writeFileSync(path.join(broken, file), 'not wasm');
  const selection = await selectBackend(broken);
  assert.equal(selection.name, 'cpu');
  assert.match(selection.reason, /WebAssembly failed to start/);
  assert.match(selection.reason, /using plain JavaScript \(much slower\)$/);
});

test('an INKLING_WASM_DIR without the binaries is named in the reason', async () => {
  const empty = path.join(tmp, 'empty');
  mkdirSync(empty);
  const selection = await selectBackend(empty);
  assert.equal(selection.name, 'cpu');
  assert.ok(selection.reason.includes(`INKLING_WASM_DIR=${empty} holds no tfjs-backend-wasm.wasm`), selection.reason);
});
