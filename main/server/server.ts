/**
 * Browser mode: the renderer served over HTTP and the API over one WebSocket, both on 127.0.0.1 only.
 * The same `ApiHandlers` and event bus as the Electron shell; only the transport differs.
 *
 * Who may talk to it: a random token is required on the page URL and on the WebSocket upgrade, the Origin
 * of the upgrade must be this server's own, and the Host header must name this server (that last check
 * stops DNS-rebinding pages from reaching it under another name).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { ApiEventName, ApiHandlers, WireMessage } from '../ipc/contract.js';
import { dispatch } from '../ipc/dispatch.js';
import { appRoot } from '../paths.js';
import type { ApiEventBus } from '../ipc/events.js';
import { cacheControl, contentType, lookupStatic, securityHeaders } from './static.js';

export const HOST = '127.0.0.1';
export const API_PATH = '/api';
// From the app root, not from this file: compiled, this file sits one folder deeper (dist/main/server).
export const DEFAULT_STATIC_DIR = path.join(appRoot(), 'dist', 'renderer');

/** Larger than the biggest document the handlers accept once JSON-escaped; `ws` closes the socket beyond it. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const PUSHED_EVENTS: readonly ApiEventName[] = ['completion', 'engineStatus', 'finetune', 'assist', 'models'];

export interface ServerOptions {
  handlers: ApiHandlers;
  events: Pick<ApiEventBus, 'on'>;
  /** 0 (the default) lets the system pick a free port. */
  port?: number;
  /** The built renderer; defaults to dist/renderer of this checkout. */
  staticDir?: string;
  /** Normally random; tests may fix it. */
  token?: string;
}

export interface RunningServer {
  /** The page to open, token included. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

function sameToken(given: string | null, expected: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function rendererIsBuilt(staticDir: string): boolean {
  return existsSync(path.join(staticDir, 'index.html'));
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const token = options.token ?? newToken();
  const staticDir = path.resolve(options.staticDir ?? DEFAULT_STATIC_DIR);
  let port = 0;
  const hosts = () => [`${HOST}:${port}`, `localhost:${port}`];
  const origins = () => hosts().map((h) => `http://${h}`);

  function plain(res: http.ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, {
      ...securityHeaders(hosts().map((h) => `ws://${h}`)),
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
      ...extra,
    });
    res.end(text + '\n');
  }

  async function serveHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!hosts().includes(req.headers.host ?? '')) return plain(res, 403, 'unexpected Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    if (url.pathname === API_PATH) return plain(res, 426, 'the API is a WebSocket', { Upgrade: 'websocket' });

    const isPage = url.pathname === '/' || url.pathname === '/index.html';
    if (isPage) {
      const given = url.searchParams.get('token');
      if (given === null) return plain(res, 401, 'open the full URL the server printed: it carries ?token=…');
      if (!sameToken(given, token)) return plain(res, 403, 'wrong token: open the URL the server printed most recently');
      if (!rendererIsBuilt(staticDir)) {
        return plain(res, 503, `the renderer is not built (no ${path.join(staticDir, 'index.html')}): run \`npm run build:renderer\``);
      }
    }

    const found = await lookupStatic(staticDir, url.pathname);
    if (found.kind === 'bad-request') return plain(res, 400, `bad path: ${found.reason}`);
    if (found.kind === 'not-found') return plain(res, 404, 'not found');
    res.writeHead(200, {
      ...securityHeaders(hosts().map((h) => `ws://${h}`)),
      'Content-Type': contentType(found.file),
      'Content-Length': String(found.size),
      'Cache-Control': cacheControl(url.pathname),
    });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(found.file)
      .on('error', () => res.destroy())
      .pipe(res);
  }

  const server = http.createServer((req, res) => {
    serveHttp(req, res).catch((err: unknown) => {
      console.error('inkling: request failed:', err);
      if (!res.headersSent) plain(res, 500, 'internal error');
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });

  function refuse(socket: Duplex, status: 400 | 401 | 403 | 404, reason: string): void {
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason) + 1}\r\n\r\n${reason}\n`);
  }

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    if (url.pathname !== API_PATH) return refuse(socket, 404, 'not found');
    if (!hosts().includes(req.headers.host ?? '')) return refuse(socket, 403, 'unexpected Host header');
    const given = url.searchParams.get('token');
    if (given === null) return refuse(socket, 401, 'missing token');
    if (!sameToken(given, token)) return refuse(socket, 403, 'wrong token');
    if (!origins().includes(req.headers.origin ?? '')) return refuse(socket, 403, 'foreign or missing Origin');
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    const send = (message: WireMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    const unsubscribe = PUSHED_EVENTS.map((event) =>
      options.events.on(event, (payload) => send({ kind: 'event', event, payload })),
    );
    ws.on('close', () => unsubscribe.forEach((off) => off()));
    ws.on('error', () => ws.terminate());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const request = isBinary ? null : parseRequest(data.toString());
      // Without a request id there is no one to answer: such a peer is not our renderer.
      if (request === null) return ws.close(1008, 'expected a JSON invoke message');
      void dispatch(options.handlers, request.method, request.args).then((outcome) => {
        try {
          send({ kind: 'result', id: request.id, ...outcome });
        } catch (err) {
          send({ kind: 'result', id: request.id, ok: false, error: { code: 'INTERNAL', message: `reply could not be sent: ${String(err)}` } });
        }
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${options.port} on ${HOST} is already in use; pass --port 0 for a free one`) : err);
    };
    server.once('error', onError);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', onError);
      resolve();
    });
  });
  port = (server.address() as { port: number }).port;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    port,
    token,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** `{ kind: 'invoke', id, method, args }` with a safe-integer id, or null; method and args are checked by `dispatch`. */
function parseRequest(text: string): { id: number; method: unknown; args: unknown } | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { kind, id, method, args } = value as Record<string, unknown>;
  if (kind !== 'invoke' || typeof id !== 'number' || !Number.isSafeInteger(id)) return null;
  return { id, method, args };
}
