/**
 * The Electron main process: one window on the built renderer (dist/renderer/index.html, file://), the API
 * over `ipcMain.handle`, events pushed with `webContents.send`. Every security decision lives in policy.ts
 * as a testable function; this file only connects them to Electron.
 *
 * Started through main/electron/entry.mjs (see there), with the preload bundled by main/electron/build.mjs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, session, type WebContents } from 'electron';
import { APP_NAME, createApp, parseAppArgs, resolveConfig, type App } from '../app.js';
import type { ApiHandlers } from '../ipc/contract.js';
import { appRoot, wasmDir } from '../paths.js';
import { contentSecurityPolicy } from '../server/static.js';
import { createImportSourcePicker } from './dialogs.js';
import { isAllowedNavigation, isAllowedRequest, pushEvents, registerIpc, windowOptions } from './policy.js';
import { createUpdateChecks, type UpdateChecks } from './updates.js';

const root = appRoot();
const rendererDir = process.env.INKLING_RENDERER_DIR || path.join(root, 'dist', 'renderer');
const indexHtml = path.join(rendererDir, 'index.html');
const appUrl = pathToFileURL(indexHtml).href;
const preload = path.join(root, 'dist', 'main', 'electron', 'preload.cjs');
// Linux takes the window icon from here (macOS and Windows from the app bundle / executable).
const linuxIcon = process.platform === 'linux' ? path.join(root, 'resources', 'icons', '512x512.png') : undefined;

if (app.isPackaged) {
  // The engine's wasm binaries are unpacked beside app.asar; worker/backend.ts reads this (WASM_DIR_ENV) in the
  // engine thread, which inherits this process's environment.
  process.env.INKLING_WASM_DIR ||= wasmDir();
}

// Everything that must happen before 'ready' runs here, at the top level: entry.mjs awaits this module, and
// Electron emits 'ready' only once the entry has finished loading.
const config = resolveConfig(parseAppArgs(process.argv.slice(app.isPackaged ? 1 : 2), { strict: false }));
app.setName(APP_NAME);
// One folder per user for everything: our database at the top, Chromium's own data under session/.
app.setPath('userData', config.dataDir);
app.setPath('sessionData', path.join(config.dataDir, 'session'));
app.enableSandbox();

/** Applied to every webContents ever created, not only our window: nothing may navigate or open windows. */
function lockDown(contents: WebContents): void {
  contents.on('will-navigate', (event, url) => {
    if (!isAllowedNavigation(url)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAllowedNavigation(url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

function secureSession(): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  // No remote content: every request that is not one of our files is cancelled.
  ses.webRequest.onBeforeRequest((details, callback) => callback({ cancel: !isAllowedRequest(details.url) }));
  // The same policy as browser mode. Chromium may not report headers for file://, so the renderer's
  // index.html carries the policy in a <meta> tag as well.
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({
      responseHeaders: {
        ...details.responseHeaders,
        'Content-Security-Policy': [contentSecurityPolicy()],
        'X-Content-Type-Options': ['nosniff'],
      },
    });
  });
}

/** The API with one addition: a settings change that turns update checks on or off takes effect at once. */
function followSettings(handlers: ApiHandlers, updates: UpdateChecks): ApiHandlers {
  return {
    ...handlers,
    async updateSettings(patch) {
      const settings = await handlers.updateSettings(patch);
      updates.apply(settings);
      return settings;
    },
  };
}

function openWindow(inkling: App): BrowserWindow {
  const window = new BrowserWindow(windowOptions({ preload, icon: linuxIcon }));
  const stopPushing = pushEvents(inkling.events, window.webContents);
  window.on('closed', stopPushing);
  window.once('ready-to-show', () => window.show());
  void window.loadFile(indexHtml);
  return window;
}

async function run(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    // Two instances would share one database and load the model twice: focus the first instead.
    app.quit();
    return;
  }
  await app.whenReady();
  secureSession();

  const inkling = await createApp(config);
  const updates = createUpdateChecks({
    isPackaged: app.isPackaged,
    hasFeed: () => existsSync(path.join(process.resourcesPath, 'app-update.yml')),
    loadUpdater: async () => (await import('electron-updater')).default.autoUpdater,
    log: (message) => console.log(`inkling: ${message}`),
  });
  updates.apply(await inkling.handlers.getSettings());
  registerIpc(ipcMain, followSettings(inkling.handlers, updates), appUrl, {
    pickImportSource: createImportSourcePicker({ dialog, windowOf: (event) => BrowserWindow.fromWebContents(event.sender) }),
  });

  let window = openWindow(inkling);
  app.on('second-instance', () => {
    if (window.isDestroyed()) window = openWindow(inkling);
    if (window.isMinimized()) window.restore();
    window.focus();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) window = openWindow(inkling);
  });
  // The engine holds a model in memory: quit with the last window on every platform.
  app.on('window-all-closed', () => app.quit());

  let closing = false;
  app.on('before-quit', (event) => {
    if (closing) return;
    closing = true;
    event.preventDefault();
    updates.stop();
    inkling
      .close()
      .catch((err: unknown) => console.error('inkling: closing failed:', err))
      .finally(() => app.exit(0));
  });
}

app.on('web-contents-created', (_event, contents) => lockDown(contents));
run().catch((err: unknown) => {
  console.error('inkling: could not start:', err);
  app.exit(1);
});
