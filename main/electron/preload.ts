/**
 * The sandboxed preload: exposes exactly one object, `window.inkling`, an `InklingApi`.
 *
 * A sandboxed preload runs as a single CommonJS script that may only `require('electron')` (and a few
 * polyfilled modules), so this file is not loaded from source: `main/electron/build.mjs` bundles it with
 * its imports (the contract, the bridge) into dist/main/electron/preload.cjs, format cjs, `electron` external.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { createInklingApi } from './bridge.js';

contextBridge.exposeInMainWorld('inkling', createInklingApi(ipcRenderer));
