/**
 * The security decisions of the Electron shell as plain functions over injected parts, so that they can be
 * tested without Electron (whose binary cannot run in CI). main.ts only plugs real Electron objects in.
 */
import type { BrowserWindowConstructorOptions } from 'electron';
import { API_METHODS, ipcChannel, type ApiEventName, type ApiHandlers, type ApiMethodName } from '../ipc/contract.js';
import { dispatch } from '../ipc/dispatch.js';
import { settle, type Outcome } from '../ipc/errors.js';
import type { ApiEventBus } from '../ipc/events.js';

export interface WindowPaths {
  /** The bundled, CommonJS preload (a sandboxed preload cannot load ES modules or other files). */
  preload: string;
  icon?: string;
}

export function windowOptions(paths: WindowPaths): BrowserWindowConstructorOptions {
  return {
    title: 'Inkling',
    width: 1100,
    height: 780,
    minWidth: 480,
    minHeight: 360,
    // Shown on 'ready-to-show' so the window never flashes blank.
    show: false,
    ...(paths.icon ? { icon: paths.icon } : {}),
    webPreferences: {
      preload: paths.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: true,
    },
  };
}

/**
 * Only our own page may call the API: a file:// URL with exactly the path of the renderer's index.html
 * (query and fragment ignored). Anything else — another file, a remote page that got loaded somehow, an
 * iframe's about:blank — is refused.
 */
export function isAllowedSender(url: string | null | undefined, appUrl: string): boolean {
  if (!url) return false;
  let sender: URL;
  let app: URL;
  try {
    sender = new URL(url);
    app = new URL(appUrl);
  } catch {
    return false;
  }
  return sender.protocol === 'file:' && app.protocol === 'file:' && sender.host === app.host && sender.pathname === app.pathname;
}

/** The renderer never navigates: it is one page. Every navigation attempt is refused. */
export function isAllowedNavigation(_url: string): boolean {
  return false;
}

/** Schemes the renderer may load from: its own files (and devtools). Everything from the network is blocked. */
export function isAllowedRequest(url: string): boolean {
  try {
    const protocol = new URL(url).protocol;
    return protocol === 'file:' || protocol === 'devtools:' || protocol === 'data:';
  } catch {
    return false;
  }
}

/** The slice of `Electron.IpcMainInvokeEvent` the sender check needs. */
export interface InvokeEventLike {
  senderFrame: { url: string } | null;
}

export interface IpcMainLike<E extends InvokeEventLike = InvokeEventLike> {
  handle(channel: string, listener: (event: E, ...args: unknown[]) => Promise<Outcome>): void;
  removeHandler(channel: string): void;
}

/**
 * API methods the shell answers itself because they need the calling window (a native dialog is modal to
 * it). They get the IPC event and the renderer's arguments unchecked, after the same sender check as the rest.
 */
export type WindowHandlers<E> = Partial<Record<ApiMethodName, (event: E, ...args: unknown[]) => Promise<unknown>>>;

/**
 * One `ipcMain.handle` per API method. Replies are `Outcome` data rather than thrown errors because Electron
 * reduces a thrown error to a message string; the preload turns a failed outcome back into an Error.
 * Returns a function that removes the handlers.
 */
export function registerIpc<E extends InvokeEventLike>(
  ipcMain: IpcMainLike<E>,
  handlers: ApiHandlers,
  appUrl: string,
  windowHandlers: WindowHandlers<E> = {},
): () => void {
  for (const method of API_METHODS) {
    const own = windowHandlers[method];
    ipcMain.handle(ipcChannel(method), async (event, ...args) => {
      if (!isAllowedSender(event.senderFrame?.url, appUrl)) {
        return { ok: false, error: { code: 'FORBIDDEN', message: `${method} may only be called by the Inkling page` } };
      }
      return own ? settle(() => own(event, ...args)) : dispatch(handlers, method, args);
    });
  }
  return () => API_METHODS.forEach((method) => ipcMain.removeHandler(ipcChannel(method)));
}

export interface WebContentsLike {
  send(channel: string, payload: unknown): void;
  isDestroyed(): boolean;
}

const PUSHED_EVENTS: readonly ApiEventName[] = ['completion', 'engineStatus', 'finetune', 'assist', 'models'];

/** Forwards every API event to one window; returns the unsubscribe function (call it when the window closes). */
export function pushEvents(events: Pick<ApiEventBus, 'on'>, contents: WebContentsLike): () => void {
  const offs = PUSHED_EVENTS.map((event) =>
    events.on(event, (payload) => {
      if (!contents.isDestroyed()) contents.send(ipcChannel(event), payload);
    }),
  );
  return () => offs.forEach((off) => off());
}
