// The native import dialog: the Electron side with injected fakes (dialog, ipcMain, windows), the preload
// round trip, and browser mode, where the same call reports NOT_AVAILABLE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import type { OpenDialogOptions } from 'electron';
import { API_METHODS, ipcChannel, type ApiHandlers } from '../../main/ipc/contract.js';
import type { Outcome } from '../../main/ipc/errors.js';
import { createApiHandlers } from '../../main/ipc/handlers.js';
import { createEventBus } from '../../main/ipc/events.js';
import { createInklingApi, type IpcRendererLike } from '../../main/electron/bridge.js';
import { createImportSourcePicker, importDialogOptions, type DialogLike } from '../../main/electron/dialogs.js';
import { registerIpc, type IpcMainLike } from '../../main/electron/policy.js';
import { createModelHandlers, noImportDialog } from '../../main/ipc/model-handlers.js';

const APP_URL = pathToFileURL('/opt/Inkling/dist/renderer/index.html').href;

interface FakeWindow {
  title: string;
}
interface FakeEvent {
  senderFrame: { url: string } | null;
  sender: { id: number };
}

/** Records each dialog with its parent; answers from a queue of results (default: cancelled). */
class FakeDialog implements DialogLike<FakeWindow> {
  readonly calls: Array<{ parent: FakeWindow | null; options: OpenDialogOptions }> = [];
  readonly answers: Array<{ canceled: boolean; filePaths: string[] }> = [];
  /** When set, the dialog stays open until `close()`. */
  hold = false;
  private release: (() => void) | null = null;

  showOpenDialog(...args: [FakeWindow, OpenDialogOptions] | [OpenDialogOptions]): Promise<{ canceled: boolean; filePaths: string[] }> {
    const [parent, options] = args.length === 2 ? args : [null, args[0]];
    this.calls.push({ parent, options });
    const answer = this.answers.shift() ?? { canceled: true, filePaths: [] };
    if (!this.hold) return Promise.resolve(answer);
    return new Promise((resolve) => (this.release = () => resolve(answer)));
  }
  close(): void {
    this.release?.();
  }
}

/** Two windows; events name their sender by webContents id, as `BrowserWindow.fromWebContents` resolves them. */
const windows = new Map<number, FakeWindow>([
  [1, { title: 'main window' }],
  [2, { title: 'second window' }],
]);
const windowOf = (event: FakeEvent) => windows.get(event.sender.id) ?? null;
const event = (senderId: number, url: string | null = APP_URL): FakeEvent => ({ senderFrame: url === null ? null : { url }, sender: { id: senderId } });

test('the dialog offers folders and .safetensors files, or one of them when asked', () => {
  assert.deepEqual(importDialogOptions(undefined).properties, ['openDirectory', 'openFile']);
  assert.deepEqual(importDialogOptions(undefined).filters, [{ name: 'GPT-2 weights (.safetensors)', extensions: ['safetensors'] }]);
  assert.deepEqual(importDialogOptions('folder').properties, ['openDirectory']);
  assert.equal(importDialogOptions('folder').filters, undefined);
  assert.deepEqual(importDialogOptions('file').properties, ['openFile']);
  assert.deepEqual(importDialogOptions('file').filters?.[0]?.extensions, ['safetensors']);
});

test('the picker opens the dialog over the calling window and resolves with the path, or null when cancelled', async () => {
  const dialog = new FakeDialog();
  const pick = createImportSourcePicker<FakeEvent, FakeWindow>({ dialog, windowOf });
  dialog.answers.push({ canceled: false, filePaths: ['/home/me/gpt2'] });
  assert.equal(await pick(event(2)), '/home/me/gpt2');
  assert.equal(dialog.calls[0]!.parent, windows.get(2), 'parented to the sender, not to another window');
  assert.deepEqual(dialog.calls[0]!.options.properties, ['openDirectory', 'openFile']);

  assert.equal(await pick(event(1), 'file'), null, 'cancelled');
  assert.equal(dialog.calls[1]!.parent, windows.get(1));
  assert.deepEqual(dialog.calls[1]!.options.properties, ['openFile']);
  // A null kind is what JSON makes of an omitted one.
  dialog.answers.push({ canceled: false, filePaths: [] });
  assert.equal(await pick(event(1), null), null, 'no path chosen is a cancel');

  // The window closed meanwhile: the dialog still opens, without a parent.
  dialog.answers.push({ canceled: false, filePaths: ['/m/model.safetensors'] });
  assert.equal(await pick(event(99), 'file'), '/m/model.safetensors');
  assert.equal(dialog.calls[3]!.parent, null);
});

test('the picker refuses a bad kind without a dialog, and a second dialog while one is open', async () => {
  const dialog = new FakeDialog();
  const pick = createImportSourcePicker<FakeEvent, FakeWindow>({ dialog, windowOf });
  for (const bad of ['anything', 42, { kind: 'file' }]) {
    await assert.rejects(pick(event(1), bad), (err: Error & { code?: string }) => err.code === 'INVALID_INPUT' && /"folder" or "file"/.test(err.message));
  }
  assert.equal(dialog.calls.length, 0);

  dialog.hold = true;
  dialog.answers.push({ canceled: false, filePaths: ['/first'] });
  const first = pick(event(1));
  await assert.rejects(pick(event(1)), (err: Error & { code?: string }) => err.code === 'BUSY');
  dialog.close();
  assert.equal(await first, '/first');
  dialog.hold = false;
  assert.equal(await pick(event(1)), null, 'free again once the first dialog closed');
  assert.equal(dialog.calls.length, 2);
});

/** ipcMain stand-in keeping the handlers, invoked as Electron would with a full event. */
class FakeIpcMain implements IpcMainLike<FakeEvent> {
  readonly handlers = new Map<string, (event: FakeEvent, ...args: unknown[]) => Promise<Outcome>>();
  handle(channel: string, listener: (event: FakeEvent, ...args: unknown[]) => Promise<Outcome>): void {
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  invoke(channel: string, event: FakeEvent, ...args: unknown[]): Promise<Outcome> {
    return this.handlers.get(channel)!(event, ...args);
  }
}

/** The shared handlers, each refusing to be called: the window handler must answer instead. */
function untouchableHandlers(): ApiHandlers {
  const handlers = {} as Record<string, () => Promise<never>>;
  for (const method of API_METHODS) handlers[method] = () => Promise.reject(new Error(`shared handler ${method} was called`));
  return handlers as unknown as ApiHandlers;
}

test('registerIpc: pickImportSource goes to the window handler, after the same sender check, and through the preload', async () => {
  const ipc = new FakeIpcMain();
  const dialog = new FakeDialog();
  registerIpc(ipc, untouchableHandlers(), APP_URL, { pickImportSource: createImportSourcePicker<FakeEvent, FakeWindow>({ dialog, windowOf }) });
  assert.ok(ipc.handlers.has(ipcChannel('pickImportSource')));

  for (const foreign of [event(1, 'https://evil.example/'), event(1, null)]) {
    const refused = await ipc.invoke(ipcChannel('pickImportSource'), foreign);
    assert.equal(!refused.ok && refused.error.code, 'FORBIDDEN');
  }
  assert.equal(dialog.calls.length, 0, 'a foreign page never gets a dialog');

  const renderer: IpcRendererLike = {
    invoke: (channel, ...args) => ipc.invoke(channel, event(1), ...args),
    on() {},
    removeListener() {},
  };
  const api = createInklingApi(renderer);
  dialog.answers.push({ canceled: false, filePaths: ['/models/gpt2'] });
  assert.equal(await api.pickImportSource(), '/models/gpt2');
  assert.equal(await api.pickImportSource('folder'), null);
  await assert.rejects(api.pickImportSource('nonsense' as 'file'), (err: Error & { code?: string }) => err.code === 'INVALID_INPUT');
  assert.equal(dialog.calls.length, 2);
  assert.equal(dialog.calls[0]!.parent, windows.get(1));
  // Other methods still reach the shared handlers.
  await assert.rejects(api.listModels(), /shared handler listModels was called/);
});

test('browser mode: the same call reports NOT_AVAILABLE, with and without a model manager', async () => {
  await assert.rejects(noImportDialog(), (err: Error & { code?: string }) => err.code === 'NOT_AVAILABLE' && /type or paste the path/.test(err.message));
  const models = createModelHandlers({ registry: {} as never, modelsDir: '/nowhere', bundledDir: null, emit() {}, switchModel: async () => {}, activeId: () => null });
  await assert.rejects(models.pickImportSource(), (err: Error & { code?: string }) => err.code === 'NOT_AVAILABLE');
  const engine = { complete() {}, cancel() {}, status: () => ({ state: 'ready' as const, backend: '', backendReason: '', modelName: '', error: null }) };
  const handlers = createApiHandlers({ store: {} as never, engine, events: createEventBus() });
  await assert.rejects(handlers.pickImportSource(), (err: Error & { code?: string }) => err.code === 'NOT_AVAILABLE');
});
