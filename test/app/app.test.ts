import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createApp,
  defaultDataDir,
  parseAppArgs,
  resolveConfig,
  UsageError,
  type AppEngine,
} from '../../main/app.js';
import type { CompletionEvent, EngineStatus } from '../../main/ipc/contract.js';

test('default data folder per OS', () => {
  assert.equal(defaultDataDir({ env: {}, platform: 'linux', home: '/home/ada' }), '/home/ada/.config/Inkling');
  assert.equal(defaultDataDir({ env: { XDG_CONFIG_HOME: '/cfg' }, platform: 'linux', home: '/home/ada' }), '/cfg/Inkling');
  assert.equal(
    defaultDataDir({ env: { APPDATA: 'C:\\Users\\Ada\\AppData\\Roaming' }, platform: 'win32', home: 'C:\\Users\\Ada' }),
    'C:\\Users\\Ada\\AppData\\Roaming\\Inkling',
  );
  assert.equal(
    defaultDataDir({ env: {}, platform: 'darwin', home: '/Users/ada' }),
    '/Users/ada/Library/Application Support/Inkling',
  );
});

test('flags win over the environment, which wins over the defaults', () => {
  const system = { env: { INKLING_DATA_DIR: '/env/data', INKLING_MODEL: '/env/model', INKLING_BACKEND: 'cpu' }, platform: 'linux' as const, home: '/home/ada' };
  const noBundled = () => null;
  assert.deepEqual(resolveConfig({ data: '/flag/data', model: '/flag/model', backend: 'wasm' }, system, noBundled), {
    dataDir: '/flag/data',
    modelDir: '/flag/model',
    backend: 'wasm',
  });
  assert.deepEqual(resolveConfig({}, system, noBundled), { dataDir: '/env/data', modelDir: '/env/model', backend: 'cpu' });
  assert.deepEqual(resolveConfig({}, { env: {}, platform: 'linux', home: '/home/ada' }, noBundled), {
    dataDir: '/home/ada/.config/Inkling',
    modelDir: null,
    backend: null,
  });
  assert.equal(resolveConfig({}, { env: {}, platform: 'linux', home: '/h' }, () => '/app/resources/default-model').modelDir, '/app/resources/default-model');
});

test('command-line flags: parsed, checked, unknown ones refused only when strict', () => {
  assert.deepEqual(parseAppArgs(['--port', '0', '--data', '/d', '--model', '/m', '--backend', 'wasm'], { strict: true }), {
    data: '/d',
    model: '/m',
    backend: 'wasm',
    port: 0,
    help: false,
  });
  assert.throws(() => parseAppArgs(['--port', 'abc'], { strict: true }), UsageError);
  assert.throws(() => parseAppArgs(['--port', '70000'], { strict: true }), /at most 65535/);
  assert.throws(() => parseAppArgs(['--colour'], { strict: true }), UsageError);
  assert.equal(parseAppArgs(['--no-sandbox', '--data', '/d'], { strict: false }).data, '/d');
});

function tmpDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'inkling-app-'));
}

test('without a model the app runs and says so in the status and in every completion', async () => {
  const dir = tmpDir();
  // A build without the embedded default model (this checkout has one).
  const app = await createApp({ dataDir: path.join(dir, 'data'), modelDir: null, backend: null }, { bundledModelDir: null });
  try {
    const status = await app.handlers.getEngineStatus();
    assert.equal(status.state, 'error');
    assert.deepEqual(status.error, { code: 'NO_MODEL', message: 'no model found; import or download one under Models, or pass --model DIR' });
    const events: CompletionEvent[] = [];
    app.events.on('completion', (e) => events.push(e));
    await app.handlers.complete({ requestId: 'r', documentId: 'd', prefix: 'Hi' });
    assert.deepEqual(events, [{ requestId: 'r', type: 'error', error: status.error }]);
    // The store works all the same.
    const doc = await app.handlers.createDocument('Notes');
    assert.equal((await app.handlers.listDocuments())[0]!.id, doc.id);
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model folder that does not exist is named in the status', async () => {
  const dir = tmpDir();
  const app = await createApp({ dataDir: dir, modelDir: path.join(dir, 'nope'), backend: null });
  try {
    const status = await app.handlers.getEngineStatus();
    assert.equal(status.error?.code, 'NO_MODEL');
    assert.ok(status.error?.message.includes(path.join(dir, 'nope')));
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with a model: the engine is started with the backend, its status reaches the bus, close stops it and closes the store', async () => {
  const dir = tmpDir();
  const started: Array<[string, string | null]> = [];
  let statusListener: ((s: EngineStatus) => void) | null = null;
  let stops = 0;
  const engine: AppEngine = {
    status: () => ({ state: 'loading', backend: '', backendReason: '', modelName: '', error: null }),
    complete() {},
    cancel() {},
    on(_event, listener) {
      statusListener = listener;
      return () => (statusListener = null);
    },
    async stop() {
      stops++;
    },
  };
  const modelDir = dir; // any existing folder: the fake engine does not read it
  const app = await createApp(
    { dataDir: path.join(dir, 'data'), modelDir, backend: 'cpu' },
    { startEngine: (m, b) => (started.push([m, b]), engine) },
  );
  const seen: EngineStatus[] = [];
  app.events.on('engineStatus', (s) => seen.push(s));
  assert.deepEqual(started, [[modelDir, 'cpu']]);
  statusListener!({ state: 'ready', backend: 'cpu', backendReason: 'asked for', modelName: 'tiny', error: null });
  assert.deepEqual(seen.map((s) => s.state), ['ready']);

  await app.handlers.createDocument('kept');
  await Promise.all([app.close(), app.close()]);
  assert.equal(stops, 1);
  assert.equal(statusListener, null, 'the status listener is removed');
  // Closing checkpointed the write-ahead log into the database file.
  assert.deepEqual(readdirSync(path.join(dir, 'data')).filter((f) => f.endsWith('-wal')), []);
  rmSync(dir, { recursive: true, force: true });
});

test('changing the suggestion precision restarts the engine with it; other settings and the same value do not', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-precision-'));
  const started: Array<[string, string | null, string]> = [];
  const stopped: number[] = [];
  const startEngine = (m: string, b: string | null, p: string): AppEngine => {
    const index = started.push([m, b, p]) - 1;
    return {
      status: () => ({ state: 'ready', backend: 'fake', backendReason: '', modelName: 'm', precision: p === 'fast' ? 'fast' : 'exact', error: null }),
      complete() {},
      cancel() {},
      on: () => () => {},
      stop: async () => void stopped.push(index),
    };
  };
  const config = { dataDir: path.join(dir, 'data'), modelDir: dir, backend: 'wasm' };
  const app = await createApp(config, { startEngine, bundledModelDir: null });
  try {
    assert.deepEqual(started, [[dir, 'wasm', 'exact']], 'the default is exact');
    assert.equal((await app.handlers.updateSettings({ suggestionDelayMs: 300 })).precision, 'exact');
    assert.equal(started.length, 1, 'a setting the engine does not load with restarts nothing');

    const saved = await app.handlers.updateSettings({ precision: 'fast' });
    assert.equal(saved.precision, 'fast');
    assert.deepEqual(started, [[dir, 'wasm', 'exact'], [dir, 'wasm', 'fast']]);
    assert.deepEqual(stopped, [0], 'the old engine stopped first');
    assert.equal((await app.handlers.getEngineStatus()).precision, 'fast', 'the API answers from the new engine');

    await app.handlers.updateSettings({ precision: 'fast', suggestionDelayMs: 350 });
    assert.equal(started.length, 2, 'the same precision again restarts nothing');
    await assert.rejects(app.handlers.updateSettings({ precision: 'int4' as 'fast' }), /precision/);
    assert.equal(started.length, 2);
  } finally {
    await app.close();
  }
  // Stored: the next start loads fast at once.
  const reopened = await createApp(config, { startEngine, bundledModelDir: null });
  await reopened.close();
  assert.deepEqual(started.at(-1), [dir, 'wasm', 'fast']);
  rmSync(dir, { recursive: true, force: true });
});

test('with the real engine: the status reports the precision, and a change reloads the model with it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-precision-real-'));
  const tiny = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'tiny-gpt2');
  const app = await createApp({ dataDir: dir, modelDir: tiny, backend: 'wasm' }, { bundledModelDir: null });
  const readyWith = (precision: string) =>
    new Promise<EngineStatus>((resolve) => {
      const off = app.events.on('engineStatus', (status) => {
        if (status.state === 'ready' && status.precision === precision) {
          off();
          resolve(status);
        }
      });
    });
  try {
    const exact = readyWith('exact');
    if ((await app.handlers.getEngineStatus()).state !== 'ready') await exact;
    assert.equal((await app.handlers.getEngineStatus()).precision, 'exact');

    const fast = readyWith('fast');
    await app.handlers.updateSettings({ precision: 'fast' });
    const status = await fast;
    assert.equal(status.precisionNote, null);
    assert.equal((await app.handlers.getEngineStatus()).precision, 'fast');
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
