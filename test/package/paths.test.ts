// main/paths.ts in the shapes the app runs in: a checkout, and a packaged app (an app.asar with its
// app.asar.unpacked twin and the default model among the resources). Plain Node has no asar support, so
// the archive is imitated by a folder of the same name: only the path arithmetic is under test here.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { appRoot, defaultModelDir, unpackedPath, wasmDir } from '../../main/paths.js';
import { repoRoot, tempDir } from './helpers.js';

const tmp = tempDir('paths');
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Sets Electron's `process.resourcesPath` for the length of `body`. */
function withResourcesPath<T>(resources: string | undefined, body: () => T): T {
  const proc = process as unknown as { resourcesPath?: string };
  const before = proc.resourcesPath;
  proc.resourcesPath = resources;
  try {
    return body();
  } finally {
    if (before === undefined) delete proc.resourcesPath;
    else proc.resourcesPath = before;
  }
}

test('appRoot is the checkout when running from sources', () => {
  assert.equal(path.resolve(appRoot()), path.resolve(repoRoot));
});

test('unpackedPath maps a file inside app.asar to its unpacked twin only when the twin exists', () => {
  const resources = path.join(tmp, 'resources');
  const inside = path.join(resources, 'app.asar', 'node_modules', 'x', 'a.wasm');
  const twin = path.join(resources, 'app.asar.unpacked', 'node_modules', 'x', 'a.wasm');
  assert.equal(unpackedPath(inside), inside, 'no twin yet: unchanged');
  mkdirSync(path.dirname(twin), { recursive: true });
  writeFileSync(twin, '');
  assert.equal(unpackedPath(inside), twin);
  assert.equal(unpackedPath(path.dirname(inside)), path.dirname(twin), 'folders too');
  // Only a path segment named exactly app.asar counts.
  const lookalike = path.join(tmp, 'my-app.asar-notes', 'a.wasm');
  assert.equal(unpackedPath(lookalike), lookalike);
});

test('defaultModelDir prefers the packaged resources/default-model, and is null when there is none', () => {
  const resources = path.join(tmp, 'packaged-resources');
  const model = path.join(resources, 'default-model');
  const checkoutModel = path.join(repoRoot, 'resources', 'default-model');
  const fromCheckout = existsSync(path.join(checkoutModel, 'config.json')) ? checkoutModel : null;

  mkdirSync(resources, { recursive: true });
  assert.equal(withResourcesPath(resources, defaultModelDir), fromCheckout, 'nothing packaged: the checkout (or none)');
  mkdirSync(model);
  assert.equal(withResourcesPath(resources, defaultModelDir), fromCheckout, 'a folder without config.json is no model');
  writeFileSync(path.join(model, 'config.json'), '{}');
  assert.equal(withResourcesPath(resources, defaultModelDir), model);
  assert.equal(withResourcesPath(undefined, defaultModelDir), fromCheckout, 'plain Node has no resourcesPath');
});

test('wasmDir is the folder of the wasm backend, holding its binaries', () => {
  const dir = wasmDir();
  for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) {
    assert.ok(existsSync(path.join(dir, file)), `${file} in ${dir}`);
  }
});
