// worker/model/kernels/kernel-binary.ts: the engine's .wasm kernels are read beside their modules, and, packaged,
// from app.asar.unpacked. Plain Node has no asar support, so the archive is imitated by a folder of that name.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { kernelBinaryPath, readKernelBinary, unpackedTwin } from '../../worker/model/kernels/kernel-binary.js';
import { unpackedPath } from '../../main/paths.js';
import { repoRoot, tempDir } from './helpers.js';

const tmp = tempDir('kernel-binary');
after(() => rmSync(tmp, { recursive: true, force: true }));

const packagedKernel = (resources: string, folder: 'app.asar' | 'app.asar.unpacked') =>
  path.join(resources, folder, 'dist', 'worker', 'model', 'kernels', 'q8', 'q8.wasm');

test('in a checkout the kernel is read where it sits', () => {
  const url = pathToFileURL(path.join(repoRoot, 'worker', 'model', 'kernels', 'q8', 'q8.wasm'));
  assert.equal(kernelBinaryPath(url), path.join(repoRoot, 'worker', 'model', 'kernels', 'q8', 'q8.wasm'));
  const bytes = readKernelBinary(url);
  assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], 'a WebAssembly module');
});

test('packaged, the kernel is read from app.asar.unpacked when the twin is there', () => {
  const resources = path.join(tmp, 'resources');
  const inside = packagedKernel(resources, 'app.asar');
  const twin = packagedKernel(resources, 'app.asar.unpacked');
  mkdirSync(path.dirname(inside), { recursive: true });
  writeFileSync(inside, 'in the archive');
  assert.equal(kernelBinaryPath(pathToFileURL(inside)), inside, 'no twin: the archive path');
  mkdirSync(path.dirname(twin), { recursive: true });
  writeFileSync(twin, 'unpacked');
  assert.equal(kernelBinaryPath(pathToFileURL(inside)), twin);
  assert.equal(Buffer.from(readKernelBinary(pathToFileURL(inside))).toString(), 'unpacked');
  // Only a path segment named exactly app.asar counts.
  const lookalike = path.join(tmp, 'my-app.asar-notes', 'q8.wasm');
  assert.equal(unpackedTwin(lookalike), lookalike);
});

test('the rule is main/paths.ts unpackedPath (the engine library cannot import main/)', () => {
  const resources = path.join(tmp, 'same-rule');
  const inside = packagedKernel(resources, 'app.asar');
  const twin = packagedKernel(resources, 'app.asar.unpacked');
  mkdirSync(path.dirname(twin), { recursive: true });
  writeFileSync(twin, readFileSync(path.join(repoRoot, 'worker', 'model', 'kernels', 'q8', 'q8.wasm')));
  for (const file of [inside, path.dirname(inside), path.join(tmp, 'elsewhere', 'q8.wasm')]) {
    assert.equal(unpackedTwin(file), unpackedPath(file), file);
  }
});

test('a missing kernel is named, with how it is made', () => {
  const missing = pathToFileURL(path.join(tmp, 'nowhere', 'q8.wasm'));
  assert.throws(
    () => readKernelBinary(missing),
    (error: Error) =>
      error.message.includes(path.join(tmp, 'nowhere', 'q8.wasm')) &&
      /file not found/.test(error.message) &&
      /npm run build:kernels/.test(error.message),
  );
});
