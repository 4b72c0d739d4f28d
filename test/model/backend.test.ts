import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_CHOICES, BACKEND_ENV, BACKEND_NAMES, initBackend, type ModuleImporter } from '../../worker/backend.js';

const realImport: ModuleImporter = (specifier) => import(specifier);

function notFound(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}'`), { code: 'ERR_MODULE_NOT_FOUND' });
}

/** An importer for a machine where the packages in `missing` are absent and those in `broken` fail to load. */
function machine(missing: string[], broken: Record<string, string> = {}): ModuleImporter {
  return async (specifier) => {
    if (missing.includes(specifier)) throw notFound(specifier);
    if (specifier in broken) throw new Error(broken[specifier]);
    return realImport(specifier);
  };
}

const NATIVE = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
const nativeInstalled = NATIVE.some((name) => {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
});

afterEach(() => {
  delete process.env[BACKEND_ENV];
});

test('the names', () => {
  assert.deepEqual([...BACKEND_NAMES], ['tensorflow', 'wasm', 'cpu']);
  assert.deepEqual([...BACKEND_CHOICES], ['auto', 'tensorflow', 'wasm', 'cpu']);
});

test('auto without native TensorFlow falls back to WebAssembly and says why', async () => {
  const selection = await initBackend('auto', machine(NATIVE));
  assert.deepEqual(selection, { name: 'wasm', reason: 'tfjs-node-gpu and tfjs-node not installed, using WebAssembly' });
  assert.equal(tf.getBackend(), 'wasm');
});

test('asking for tensorflow where it is missing falls back, and the reason says so', async () => {
  const selection = await initBackend('tensorflow', machine(NATIVE));
  assert.equal(selection.name, 'wasm');
  assert.match(selection.reason, /^tfjs-node-gpu and tfjs-node not installed, using WebAssembly/);
});

test('a native package that fails to load is reported as such', async () => {
  const selection = await initBackend(
    'auto',
    machine(['@tensorflow/tfjs-node-gpu'], { '@tensorflow/tfjs-node': 'libtensorflow.so.2: cannot open shared object file' }),
  );
  assert.equal(selection.name, 'wasm');
  assert.equal(
    selection.reason,
    'tfjs-node-gpu not installed; tfjs-node failed to load (libtensorflow.so.2: cannot open shared object file), using WebAssembly',
  );
});

test('a native package that loads but registers nothing is not used', async () => {
  const selection = await initBackend('tensorflow', async (specifier) => (NATIVE.includes(specifier) ? {} : realImport(specifier)));
  assert.equal(selection.name, 'wasm');
  assert.match(selection.reason, /tfjs-node-gpu and tfjs-node loaded, but registered with another copy of @tensorflow\/tfjs-core/);
});

test('when WebAssembly cannot start, plain JavaScript is the last resort', async () => {
  const selection = await initBackend('auto', machine([...NATIVE], { '@tensorflow/tfjs-backend-wasm': 'no WebAssembly here' }));
  assert.equal(selection.name, 'cpu');
  assert.match(selection.reason, /WebAssembly failed to load \(no WebAssembly here\), using plain JavaScript \(much slower\)$/);
  assert.equal(tf.getBackend(), 'cpu');
});

test('the argument picks a backend', async () => {
  assert.deepEqual(await initBackend('cpu'), { name: 'cpu', reason: 'using plain JavaScript (requested; much slower)' });
  assert.equal(tf.getBackend(), 'cpu');
  assert.deepEqual(await initBackend('wasm'), { name: 'wasm', reason: 'using WebAssembly (requested)' });
  assert.equal(tf.getBackend(), 'wasm');
});

test('INKLING_BACKEND picks one when the argument is absent or auto; an explicit argument wins', async () => {
  process.env[BACKEND_ENV] = 'cpu';
  assert.deepEqual(await initBackend(), { name: 'cpu', reason: 'using plain JavaScript (INKLING_BACKEND=cpu; much slower)' });
  assert.equal((await initBackend('auto')).name, 'cpu');
  assert.equal((await initBackend('wasm')).name, 'wasm');
  process.env[BACKEND_ENV] = 'WASM';
  assert.equal((await initBackend(undefined, machine(NATIVE))).reason, 'using WebAssembly (INKLING_BACKEND=WASM)');
});

test('an unknown name is an error that lists the choices', async () => {
  await assert.rejects(initBackend('webgpu'), /unknown TensorFlow\.js backend 'webgpu' \(requested\): use one of auto, tensorflow, wasm, cpu/);
  process.env[BACKEND_ENV] = 'gpu';
  await assert.rejects(initBackend(), /'gpu' \(INKLING_BACKEND=gpu\)/);
});

test('calling again with the same choice returns the first answer', async () => {
  const first = initBackend('wasm');
  const second = initBackend('wasm');
  assert.equal(await first, await second);
  // ...unless the backend was switched behind its back.
  await initBackend('cpu', machine([]));
  assert.equal((await initBackend('wasm')).name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test('on this machine, auto picks what is installed', { skip: nativeInstalled && 'native TensorFlow is installed here' }, async () => {
  const selection = await initBackend('auto');
  assert.deepEqual(selection, { name: 'wasm', reason: 'tfjs-node-gpu and tfjs-node not installed, using WebAssembly' });
});
