// The Electron shell's decisions, tested with injected fakes: the Electron binary cannot run here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { API_METHODS, ipcChannel, type ApiHandlers, type CompletionEvent, type InklingApi } from '../../main/ipc/contract.js';
import { createEventBus } from '../../main/ipc/events.js';
import type { Outcome } from '../../main/ipc/errors.js';
import { ApiError } from '../../main/ipc/errors.js';
import { createInklingApi, type IpcRendererLike } from '../../main/electron/bridge.js';
import { buildPreload } from '../../main/electron/build.mjs';
import {
  isAllowedNavigation,
  isAllowedRequest,
  isAllowedSender,
  pushEvents,
  registerIpc,
  windowOptions,
  type IpcMainLike,
  type InvokeEventLike,
} from '../../main/electron/policy.js';

const APP_URL = pathToFileURL('/opt/Inkling/dist/renderer/index.html').href;

test('window options: isolated, sandboxed, no Node in the page, web security on', () => {
  const options = windowOptions({ preload: '/opt/Inkling/preload.cjs' });
  const prefs = options.webPreferences!;
  assert.equal(prefs.preload, '/opt/Inkling/preload.cjs');
  assert.equal(prefs.contextIsolation, true);
  assert.equal(prefs.sandbox, true);
  assert.equal(prefs.nodeIntegration, false);
  assert.equal(prefs.nodeIntegrationInWorker, false);
  assert.equal(prefs.nodeIntegrationInSubFrames, false);
  assert.equal(prefs.webSecurity, true);
  assert.equal(prefs.allowRunningInsecureContent, false);
  assert.equal(prefs.webviewTag, false);
  assert.equal(prefs.experimentalFeatures, false);
  assert.equal(options.show, false);
});

test('IPC sender check: only our own file:// page', () => {
  assert.equal(isAllowedSender(APP_URL, APP_URL), true);
  assert.equal(isAllowedSender(`${APP_URL}#/doc/1`, APP_URL), true, 'a fragment is the same page');
  assert.equal(isAllowedSender(`${APP_URL}?x=1`, APP_URL), true);
  for (const url of [
    pathToFileURL('/opt/Inkling/dist/renderer/other.html').href,
    pathToFileURL('/tmp/index.html').href,
    'https://evil.example/opt/Inkling/dist/renderer/index.html',
    'http://127.0.0.1:5173/',
    'about:blank',
    'data:text/html,hi',
    '',
    null,
    undefined,
    'not a url',
  ]) {
    assert.equal(isAllowedSender(url, APP_URL), false, String(url));
  }
});

test('navigation is never allowed; requests only to local files', () => {
  assert.equal(isAllowedNavigation('https://example.com/'), false);
  assert.equal(isAllowedNavigation(APP_URL), false);
  assert.equal(isAllowedRequest(`${APP_URL}`), true);
  assert.equal(isAllowedRequest('https://cdn.example/lib.js'), false);
  assert.equal(isAllowedRequest('http://127.0.0.1:8080/'), false);
  assert.equal(isAllowedRequest('ws://127.0.0.1:8080/api'), false);
});

/** An ipcMain stand-in that keeps the handlers so the test can invoke them as Electron would. */
class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => Promise<Outcome>>();
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<Outcome>): void {
    assert.ok(!this.handlers.has(channel), `second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  invoke(channel: string, senderUrl: string | null, ...args: unknown[]): Promise<Outcome> {
    const handler = this.handlers.get(channel);
    assert.ok(handler, `no handler for ${channel}`);
    return handler({ senderFrame: senderUrl === null ? null : { url: senderUrl } }, ...args);
  }
}

/** Handlers that answer with their method name and arguments, so that the routing can be checked. */
function echoHandlers(): ApiHandlers {
  const handlers = {} as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of API_METHODS) handlers[method] = async (...args) => ({ method, args });
  handlers.getDocument = async (...args) => {
    if (args[0] === 'missing') throw new ApiError('NOT_FOUND', 'No document with id "missing".');
    return { method: 'getDocument', args };
  };
  return handlers as unknown as ApiHandlers;
}

test('registerIpc wires every API method to its handler, refuses foreign senders, and unregisters', async () => {
  const ipc = new FakeIpcMain();
  const unregister = registerIpc(ipc, echoHandlers(), APP_URL);
  assert.deepEqual([...ipc.handlers.keys()].sort(), API_METHODS.map((m) => ipcChannel(m)).sort());

  for (const method of API_METHODS) {
    const outcome = await ipc.invoke(ipcChannel(method), APP_URL, 'a', 1);
    assert.deepEqual(outcome, { ok: true, value: { method, args: ['a', 1] } });
  }
  assert.deepEqual(await ipc.invoke(ipcChannel('getDocument'), APP_URL, 'missing'), {
    ok: false,
    error: { code: 'NOT_FOUND', message: 'No document with id "missing".' },
  });
  for (const sender of ['https://evil.example/', null]) {
    const refused = await ipc.invoke(ipcChannel('listDocuments'), sender);
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.error.code, 'FORBIDDEN');
  }
  unregister();
  assert.equal(ipc.handlers.size, 0);
});

test('pushEvents sends bus events to the window until unsubscribed or destroyed', () => {
  const bus = createEventBus();
  const sent: Array<[string, unknown]> = [];
  let destroyed = false;
  const off = pushEvents(bus, { send: (channel, payload) => sent.push([channel, payload]), isDestroyed: () => destroyed });
  const event: CompletionEvent = { requestId: 'r', type: 'cancelled' };
  bus.emit('completion', event);
  bus.emit('engineStatus', { state: 'ready', backend: 'wasm', backendReason: '', modelName: 'm', error: null });
  assert.deepEqual(sent.map(([channel]) => channel), [ipcChannel('completion'), ipcChannel('engineStatus')]);
  assert.deepEqual(sent[0]![1], event);
  destroyed = true;
  bus.emit('completion', event);
  assert.equal(sent.length, 2, 'nothing is sent to a destroyed window');
  destroyed = false;
  off();
  bus.emit('completion', event);
  assert.equal(sent.length, 2);
});

/** ipcRenderer stand-in connected straight to a FakeIpcMain, as Electron would connect them. */
function connectedRenderer(ipc: FakeIpcMain, senderUrl: string) {
  const listeners = new Map<string, Set<(event: unknown, payload: unknown) => void>>();
  const renderer: IpcRendererLike = {
    invoke: (channel, ...args) => ipc.invoke(channel, senderUrl, ...args),
    on(channel, listener) {
      if (!listeners.has(channel)) listeners.set(channel, new Set());
      listeners.get(channel)!.add(listener);
    },
    removeListener(channel, listener) {
      listeners.get(channel)?.delete(listener);
    },
  };
  const send = (channel: string, payload: unknown) => listeners.get(channel)?.forEach((l) => l({ sender: 'secret' }, payload));
  return { renderer, send };
}

test('the preload API round-trips through registerIpc: values, errors with codes, events', async () => {
  const ipc = new FakeIpcMain();
  registerIpc(ipc, echoHandlers(), APP_URL);
  const { renderer, send } = connectedRenderer(ipc, APP_URL);
  const api: InklingApi = createInklingApi(renderer);

  assert.deepEqual(await api.listRevisions('doc-1'), { method: 'listRevisions', args: ['doc-1'] });
  await assert.rejects(api.getDocument('missing'), (err: Error & { code?: string }) => {
    assert.equal(err.message, 'No document with id "missing".');
    assert.equal(err.code, 'NOT_FOUND');
    return true;
  });

  const received: unknown[] = [];
  const off = api.onCompletion((event) => received.push(event));
  send(ipcChannel('completion'), { requestId: 'r', type: 'cancelled' });
  off();
  send(ipcChannel('completion'), { requestId: 'r2', type: 'cancelled' });
  assert.deepEqual(received, [{ requestId: 'r', type: 'cancelled' }], 'payload only, and nothing after off()');

  const foreign = createInklingApi(connectedRenderer(ipc, 'https://evil.example/').renderer);
  await assert.rejects(foreign.listDocuments(), /may only be called by the Inkling page/);
});

test('the bundled preload is one CommonJS script that requires only electron and exposes one object', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-preload-'));
  try {
    const file = await buildPreload(path.join(dir, 'preload.cjs'));
    const code = readFileSync(file, 'utf8');
    const exposed: Array<[string, unknown]> = [];
    const required: string[] = [];
    const fakeElectron = {
      contextBridge: { exposeInMainWorld: (key: string, value: unknown) => exposed.push([key, value]) },
      ipcRenderer: { invoke: async () => ({ ok: true, value: null }), on() {}, removeListener() {} },
    };
    // What a sandboxed preload gets: a `require` that knows `electron`, and no Node module system.
    const sandboxRequire = (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`);
      return fakeElectron;
    };
    const module = { exports: {} };
    vm.runInNewContext(code, { require: sandboxRequire, module, exports: module.exports });

    assert.deepEqual(required, ['electron']);
    assert.equal(exposed.length, 1);
    assert.equal(exposed[0]![0], 'inkling');
    const api = exposed[0]![1] as Record<string, unknown>;
    assert.deepEqual(Object.keys(api).sort(), [...API_METHODS, 'onCompletion', 'onEngineStatus', 'onFinetune', 'onAssist', 'onModels'].sort());
    for (const value of Object.values(api)) assert.equal(typeof value, 'function');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('main.ts on a fake Electron: secure window, locked-down contents and session, working API, clean quit', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-fake-electron-'));
  const reportFile = path.join(dir, 'report.json');
  const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, FAKE_ELECTRON_REPORT: reportFile };
    delete env.INKLING_RENDERER_DIR;
    const result = spawnSync(
      process.execPath,
      ['--import', './test/app/fixtures/fake-electron-register.mjs', 'main/electron/entry.mjs', '--data', path.join(dir, 'data'), '--model', path.join(dir, 'none'), '--some-chromium-switch'],
      { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    const report = JSON.parse(readFileSync(reportFile, 'utf8'));

    assert.equal(report.name, 'Inkling');
    assert.equal(report.paths.userData, path.join(dir, 'data'));
    assert.equal(report.sandboxEnabledBeforeReady, true);
    assert.equal(report.windows.length, 1);
    const prefs = report.windows[0].webPreferences;
    assert.deepEqual(
      [prefs.contextIsolation, prefs.sandbox, prefs.nodeIntegration, prefs.webSecurity],
      [true, true, false, true],
    );
    assert.match(prefs.preload, /dist[\\/]main[\\/]electron[\\/]preload\.cjs$/);
    assert.equal(report.loaded.length, 1);
    assert.match(report.loaded[0], /dist[\\/]renderer[\\/]index\.html$/);

    assert.deepEqual([...report.ipcChannels].sort(), API_METHODS.map((m) => ipcChannel(m)).sort());
    assert.equal(report.navigationPrevented, true);
    assert.equal(report.redirectPrevented, true);
    assert.equal(report.webviewPrevented, true);
    assert.deepEqual(report.windowOpen, { action: 'deny' });
    const requests = Object.entries(report.requests as Record<string, { cancel: boolean }>);
    assert.deepEqual(requests.map(([url, r]) => [url.split(':')[0], r.cancel]), [['file', false], ['https', true], ['ws', true]]);
    assert.match(report.csp[0], /default-src 'none'/);
    assert.equal(report.permissionGranted, false);
    assert.equal(report.permissionCheck, false);

    assert.equal(report.invokes.createDocument.ok, true);
    assert.equal(report.invokes.createDocument.value.title, 'From the fake window');
    assert.equal(report.invokes.listDocuments.value.length, 1);
    assert.equal(report.invokes.foreign.error.code, 'FORBIDDEN');
    assert.equal(report.invokes.noFrame.error.code, 'FORBIDDEN');
    assert.equal(report.invokes.complete.ok, true);
    // Without a model the completion ends in an error event, pushed to the window.
    const pushed = report.sent.find((s: { channel: string }) => s.channel === ipcChannel('completion'));
    assert.equal(pushed?.payload.error.code, 'NO_MODEL');

    // The import dialog: modal to the calling window, folders and weights files; a foreign page gets no dialog.
    assert.deepEqual(report.invokes.pickFolder, { ok: true, value: '/picked/gpt2-folder' });
    assert.deepEqual(report.invokes.pickCancelled, { ok: true, value: null });
    assert.equal(report.invokes.pickForeign.error.code, 'FORBIDDEN');
    assert.equal(report.dialogs.length, 2, 'no dialog for the foreign sender');
    assert.deepEqual(report.dialogs.map((d: { parentIndex: number }) => d.parentIndex), [0, 0]);
    assert.deepEqual(report.dialogs[0].options.properties, ['openDirectory', 'openFile']);
    assert.deepEqual(report.dialogs[0].options.filters[0].extensions, ['safetensors']);
    assert.deepEqual(report.dialogs[1].options.properties, ['openFile']);

    assert.equal(report.quitClosedApp, true, 'quitting waits for the store and engine to close');
    assert.equal(report.exitCode, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
