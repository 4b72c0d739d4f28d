/**
 * Where the renderer's `InklingApi` comes from: the Electron preload puts one on `window.inkling`; in
 * browser mode there is none and the page talks to the server that served it, over a WebSocket, with the
 * access token the server put in the page URL.
 */
import type { InklingApi } from '../../../main/ipc/contract.js';
import { createWsApi, type ConnectionState } from './ws-bridge.js';

export interface ConnectedApi {
  api: InklingApi;
  /** Browser mode only: the WebSocket's state, for the status bar. */
  onConnectionChange?(listener: (state: ConnectionState) => void): () => void;
}

export interface PageLocation {
  protocol: string;
  host: string;
  search: string;
}

/** The browser-mode API URL for a page served at `location`, or an error naming what is missing. */
export function apiSocketUrl(location: PageLocation): string {
  if (location.protocol !== 'http:' && location.protocol !== 'https:') {
    throw new Error(`Inkling's API is not available: the page was opened from ${location.protocol} outside the app`);
  }
  const token = new URLSearchParams(location.search).get('token');
  if (!token) throw new Error('This page needs its access token: open the full URL (with ?token=…) that `inkling web` printed');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api?token=${encodeURIComponent(token)}`;
}

export function connectApi(win: Window & { inkling?: InklingApi } = window): ConnectedApi {
  if (win.inkling) return { api: win.inkling };
  const ws = createWsApi(apiSocketUrl(win.location));
  return { api: ws, onConnectionChange: (listener) => ws.onConnectionChange(listener) };
}
