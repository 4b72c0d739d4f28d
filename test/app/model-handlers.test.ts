// The model manager through the app's real handlers: a real store in a temporary data folder, a fake engine
// (no model is run), the tiny fixture imported by path, and downloads from a local hub on 127.0.0.1.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, type AppEngine } from '../../main/app.js';
import type { EngineStatus, ModelProgressEvent } from '../../main/ipc/contract.js';
import { openStore } from '../../main/store/index.js';
import { useLocalHub } from '../models/local-hub.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tinyGpt2 = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');

function tmpDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-models-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Records which folders the app started engines on. */
function fakeEngines() {
  const started: string[] = [];
  const stopped: string[] = [];
  const startEngine = (modelDir: string): AppEngine => {
    started.push(modelDir);
    const status: EngineStatus = { state: 'ready', backend: 'fake', backendReason: '', modelName: path.basename(modelDir), error: null };
    return {
      status: () => status,
      complete() {},
      cancel() {},
      on: () => () => {},
      stop: async () => void stopped.push(modelDir),
    };
  };
  return { started, stopped, startEngine };
}

async function openApp(dataDir: string, engines = fakeEngines(), bundledModelDir: string | null = null, hubBase?: string) {
  const app = await createApp({ dataDir, modelDir: null, backend: null }, { startEngine: engines.startEngine, bundledModelDir, hubBase });
  const progress: ModelProgressEvent[] = [];
  app.events.on('models', (event) => progress.push(event));
  return { app, progress, engines };
}

test('import the tiny fixture: validated, copied under the data folder, registered with its checksum, listed', async () => {
  const dataDir = tmpDir();
  const { app, progress } = await openApp(dataDir);
  try {
    const inspected = await app.handlers.inspectModel(tinyGpt2);
    assert.equal(inspected.shape, '2 layers × 32, 4 heads, context 64, vocabulary 50257');
    assert.ok(inspected.parameters > 0);

    const model = await app.handlers.importModel(tinyGpt2);
    assert.equal(model.id, 'tiny-gpt2');
    assert.equal(model.source, 'imported');
    assert.equal(model.origin, tinyGpt2);
    assert.equal(model.active, false);
    assert.equal(model.memoryBytes, inspected.memoryBytes);
    const folder = path.join(dataDir, 'models', 'tiny-gpt2');
    assert.deepEqual(readFileSync(path.join(folder, 'model.safetensors')), readFileSync(path.join(tinyGpt2, 'model.safetensors')));
    assert.equal(progress.at(-1)?.state, 'done');
    assert.equal(progress.at(-1)?.bytes, inspected.sizeBytes);

    const list = await app.handlers.listModels();
    assert.deepEqual(list.map((m) => m.id), ['tiny-gpt2']);
    // A second import of the same folder gets its own id and folder.
    const again = await app.handlers.importModel(tinyGpt2, 'my copy');
    assert.equal(again.id, 'my-copy');
    assert.equal(again.name, 'my copy');
  } finally {
    await app.close();
  }
});

test('a folder that is not a GPT-2 checkpoint is refused with a clear error and nothing is copied', async () => {
  const dataDir = tmpDir();
  const bad = path.join(tmpDir(), 'notes');
  mkdirSync(bad);
  writeFileSync(path.join(bad, 'readme.txt'), 'hello');
  const { app, progress } = await openApp(dataDir);
  try {
    await assert.rejects(app.handlers.inspectModel(bad), (err: Error & { code?: string }) => err.code === 'INVALID_MODEL' && /no config\.json/.test(err.message));
    await assert.rejects(app.handlers.importModel(bad), (err: Error & { code?: string }) => err.code === 'INVALID_MODEL');
    assert.equal(progress.at(-1)?.state, 'error');
    assert.deepEqual(await app.handlers.listModels(), []);
    assert.equal(existsSync(path.join(dataDir, 'models', 'notes')), false);
  } finally {
    await app.close();
  }
});

test('activate restarts the engine on the model and is remembered at the next start; delete rules', async () => {
  const dataDir = tmpDir();
  const bundled = tmpDir(); // stands in for the shipped default model (the fake engine reads nothing)
  writeFileSync(path.join(bundled, 'config.json'), readFileSync(path.join(tinyGpt2, 'config.json')));
  writeFileSync(path.join(bundled, 'model.safetensors'), readFileSync(path.join(tinyGpt2, 'model.safetensors')));
  const first = await openApp(dataDir, fakeEngines(), bundled);
  const model = await first.app.handlers.importModel(tinyGpt2);
  assert.deepEqual(first.engines.started, [bundled], 'starts on the bundled default');
  let list = await first.app.handlers.listModels();
  assert.deepEqual(list.map((m) => [m.id, m.source, m.active]), [['bundled', 'bundled', true], [model.id, 'imported', false]]);

  await assert.rejects(first.app.handlers.deleteModel('bundled'), { code: 'FORBIDDEN' });
  list = await first.app.handlers.activateModel(model.id);
  assert.deepEqual(first.engines.started, [bundled, path.join(dataDir, 'models', model.id)]);
  assert.deepEqual(first.engines.stopped, [bundled], 'the old engine stopped first');
  assert.deepEqual(list.filter((m) => m.active).map((m) => m.id), [model.id]);
  assert.equal((await first.app.handlers.getEngineStatus()).modelName, model.id);
  await assert.rejects(first.app.handlers.deleteModel(model.id), { code: 'MODEL_IN_USE' });
  await first.app.close();

  const second = await openApp(dataDir, fakeEngines(), bundled);
  try {
    assert.deepEqual(second.engines.started, [path.join(dataDir, 'models', model.id)], 'the next start uses the chosen model');
    await second.app.handlers.activateModel('bundled');
    await second.app.handlers.deleteModel(model.id);
    assert.equal(existsSync(path.join(dataDir, 'models', model.id)), false);
    assert.deepEqual((await second.app.handlers.listModels()).map((m) => m.id), ['bundled']);
    await assert.rejects(second.app.handlers.deleteModel(model.id), { code: 'NOT_FOUND' });
  } finally {
    await second.app.close();
  }
});

test('weights changed on disk after the import are caught before the engine loads them', async () => {
  const dataDir = tmpDir();
  const { app, engines } = await openApp(dataDir);
  try {
    const model = await app.handlers.importModel(tinyGpt2);
    const weights = path.join(dataDir, 'models', model.id, 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(weights, bytes);
    await assert.rejects(app.handlers.activateModel(model.id), { code: 'CHECKSUM_MISMATCH' });
    assert.deepEqual(engines.started, [], 'no engine was started');
  } finally {
    await app.close();
  }
});

test('without any model the status says how to get one, and the remembered model is gone: fall back', async () => {
  const dataDir = tmpDir();
  const store = openStore(dataDir);
  store.modelRegistry.setActiveId('vanished');
  store.close();
  const { app, engines } = await openApp(dataDir);
  try {
    assert.deepEqual(engines.started, []);
    const status = await app.handlers.getEngineStatus();
    assert.equal(status.error?.code, 'NO_MODEL');
    assert.match(status.error!.message, /import or download one under Models/);
  } finally {
    await app.close();
  }
});

// ---- downloads from a hub on 127.0.0.1 ----

const hub = useLocalHub();

test('download GPT-2 from the hub: progress, registered as downloaded, offered as installed', async () => {
  const dataDir = tmpDir();
  const { app, progress } = await openApp(dataDir, fakeEngines(), null, hub.url);
  try {
    const model = await app.handlers.downloadModel('gpt2');
    assert.equal(model.source, 'downloaded');
    assert.equal(model.origin, 'gpt2');
    assert.equal(model.name, 'GPT-2 (124M)');
    const running = progress.filter((e) => e.state === 'running');
    assert.ok(running.length > 0, 'progress was reported');
    assert.equal(progress.at(-1)?.state, 'done');
    const offers = await app.handlers.listModelDownloads();
    assert.deepEqual(offers.map((o) => o.repo), ['gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl']);
    assert.equal(offers[0]!.installed, true);
    await assert.rejects(app.handlers.downloadModel('gpt2'), { code: 'ALREADY_EXISTS' });
    await assert.rejects(app.handlers.downloadModel('../etc'), { code: 'INVALID_INPUT' });
  } finally {
    await app.close();
  }
});

test('a cancelled download says so, and the next try resumes and completes', async () => {
  const dataDir = tmpDir();
  const { app, progress } = await openApp(dataDir, fakeEngines(), null, hub.url);
  try {
    hub.throttleBytes = 64 * 1024;
    const pending = app.handlers.downloadModel('gpt2');
    // Cancel once part of the weights has arrived.
    while (!progress.some((e) => e.file === 'model.safetensors' && e.bytes > 200_000)) await new Promise((r) => setTimeout(r, 10));
    await app.handlers.cancelDownload('gpt2');
    await assert.rejects(pending, { code: 'DOWNLOAD_CANCELLED' });
    assert.equal(progress.at(-1)?.state, 'cancelled');
    assert.deepEqual(await app.handlers.listModels(), []);

    hub.throttleBytes = null;
    hub.ranges.length = 0;
    const model = await app.handlers.downloadModel('gpt2');
    assert.equal(model.origin, 'gpt2');
    assert.ok(hub.ranges.some((r) => Number(/\d+/.exec(r)![0]) > 0), `the weights were resumed, not fetched again (ranges: ${hub.ranges.join(', ')})`);
  } finally {
    hub.throttleBytes = null;
    await app.close();
  }
});

test('offline: a clear message', async () => {
  const dataDir = tmpDir();
  // A port nothing listens on: connection refused, as when the hub cannot be reached.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const { app, progress } = await openApp(dataDir, fakeEngines(), null, `http://127.0.0.1:${port}`);
  try {
    await assert.rejects(app.handlers.downloadModel('gpt2'), (err: Error & { code?: string }) => err.code === 'DOWNLOAD_OFFLINE' && /offline/.test(err.message));
    assert.equal(progress.at(-1)?.state, 'error');
  } finally {
    await app.close();
  }
});

test('an explicit --model folder wins over the remembered model, and shows as active when it is a registered one', async () => {
  const dataDir = tmpDir();
  const first = await openApp(dataDir);
  const model = await first.app.handlers.importModel(tinyGpt2);
  await first.app.handlers.activateModel(model.id);
  await first.app.close();

  const other = tmpDir();
  const engines = fakeEngines();
  const explicit = await createApp({ dataDir, modelDir: other, backend: null }, { startEngine: engines.startEngine, bundledModelDir: null });
  try {
    assert.deepEqual(engines.started, [other]);
    assert.deepEqual((await explicit.handlers.listModels()).map((m) => m.active), [false]);
  } finally {
    await explicit.close();
  }
  const folder = path.join(dataDir, 'models', model.id);
  const registered = await createApp({ dataDir, modelDir: folder, backend: null }, { startEngine: fakeEngines().startEngine, bundledModelDir: null });
  try {
    assert.deepEqual((await registered.handlers.listModels()).map((m) => m.active), [true]);
  } finally {
    await registered.close();
  }
});
