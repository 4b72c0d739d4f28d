// The wasm backend's heap as shared memory (worker/wasm-shared-heap.ts), so that the second engine thread reads
// the weights in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { currentBackendMemory } from '../../worker/model/kernels/backend-memory.js';
import { createRandomModel } from '../../worker/model/random.js';
import { WASM_BINARIES, isSharedHeap, sharedHeapWasmPaths, withSharedMemory } from '../../worker/wasm-shared-heap.js';

/** A module that defines a memory (min 1 page, max `max` pages or none) and exports it as "m". */
function moduleWithMemory(max: number | null): Uint8Array<ArrayBuffer> {
  const limits = max === null ? [0x00, 1] : [0x01, 1, max];
  const memory = [1, ...limits];
  const exported = [1, 1, 0x6d, 0x02, 0];
  return Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, memory.length, ...memory, 7, exported.length, ...exported]);
}

const exportedMemory = (bytes: Uint8Array<ArrayBuffer>) =>
  (new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as { m: WebAssembly.Memory }).m;

test('a module’s own memory is declared shared, its maximum kept (4 GiB where it had none)', () => {
  const plain = exportedMemory(moduleWithMemory(10));
  assert.equal(isSharedHeap(plain), false);
  const shared = exportedMemory(withSharedMemory(moduleWithMemory(10)));
  assert.equal(isSharedHeap(shared), true);
  assert.throws(() => shared.grow(10), RangeError, 'the maximum of 10 pages still holds');
  const unbounded = exportedMemory(withSharedMemory(moduleWithMemory(null)));
  assert.equal(isSharedHeap(unbounded), true);
  unbounded.grow(2);
  assert.throws(() => withSharedMemory(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])), /no memory section/);
});

test('the rewritten binary is made once into a cache folder; the other binaries are the package’s', () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'inkling-wasm-test-'));
  try {
    const paths = sharedHeapWasmPaths(undefined, cache);
    assert.deepEqual(Object.keys(paths).sort(), [...WASM_BINARIES].sort());
    const made = readdirSync(cache);
    assert.equal(made.length, 1);
    assert.match(made[0], /^[0-9a-f]{16}-tfjs-backend-wasm-simd\.wasm$/);
    const before = statSync(path.join(cache, made[0])).mtimeMs;
    assert.deepEqual(sharedHeapWasmPaths(undefined, cache), paths);
    assert.equal(statSync(path.join(cache, made[0])).mtimeMs, before, 'not written again');
    assert.ok(!paths['tfjs-backend-wasm.wasm'].startsWith(cache));
    // A damaged cached file is made again.
    const file = path.join(cache, made[0]);
    const good = readFileSync(file);
    writeFileSync(file, good.subarray(0, 1000));
    sharedHeapWasmPaths(undefined, cache);
    assert.ok(readFileSync(file).equals(good));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('the wasm backend runs on a shared heap, and a second thread holds no copy of its share', async () => {
  await initBackend('wasm');
  const memory = currentBackendMemory()!;
  assert.ok(memory.heap && isSharedHeap(memory.heap.memory), 'the heap is shared memory');
  const y = tf.tidy(() => tf.matMul(tf.ones([3, 4]), tf.ones([4, 2])).dataSync());
  assert.deepEqual([...y], [4, 4, 4, 4, 4, 4]);
  // Without the output layer's int8 screen, the one copy an exact model otherwise keeps (output-screen.ts).
  const model = createRandomModel({ nLayer: 2, nEmbd: 256, nHead: 4, vocabSize: 1500, nPositions: 64 }, 1, { threads: 2, screen: false });
  try {
    await model.threadsReady;
    assert.equal(model.threads, 2);
    assert.equal(model.extraBytes, 0);
  } finally {
    model.dispose();
  }
});

test('INKLING_SHARED_HEAP=off keeps the package’s binary: the second thread works on a copy of its share', () => {
  const script = fileURLToPath(new URL('./fixtures/shared-heap-off.ts', import.meta.url));
  const output = execFileSync(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, INKLING_SHARED_HEAP: 'off' },
    encoding: 'utf8',
  });
  const result = JSON.parse(output.trim().split('\n').pop()!);
  assert.equal(result.shared, false);
  assert.equal(result.threads, 2, result.note);
  assert.ok(result.extra > 0, 'the partner holds a copy of its share');
  assert.equal(result.finite, true);
});
