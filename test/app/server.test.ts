import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import type { CompletionEvent, CompletionRequest, EngineStatus, WireMessage, WireRequest } from '../../main/ipc/contract.js';
import { createEventBus } from '../../main/ipc/events.js';
import { createApiHandlers, type ApiEngine } from '../../main/ipc/handlers.js';
import { LIMITS } from '../../main/ipc/validate.js';
import { startServer, type RunningServer } from '../../main/server/server.js';
import { openStore, type OpenedStore } from '../../main/store/index.js';

const READY: EngineStatus = { state: 'ready', backend: 'wasm', backendReason: 'test', modelName: 'fake', error: null };

const fakeEngine: ApiEngine = {
  complete(request: CompletionRequest, onEvent: (event: CompletionEvent) => void) {
    // Asynchronous, as the worker is: the reply to `complete` comes before its events.
    setTimeout(() => {
      onEvent({ requestId: request.requestId, type: 'delta', alternative: 0, text: ' there' });
      onEvent({ requestId: request.requestId, type: 'done', alternatives: [' there'], latencyMs: 1, reusedTokens: 0 });
    }, 5);
  },
  cancel() {},
  status: () => READY,
};

let tmp: string;
let staticDir: string;
let store: OpenedStore;
let server: RunningServer;
const bus = createEventBus();

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'inkling-server-'));
  staticDir = path.join(tmp, 'renderer');
  mkdirSync(path.join(staticDir, 'assets'), { recursive: true });
  writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Inkling</title>');
  writeFileSync(path.join(staticDir, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(path.join(staticDir, 'assets', 'style.css'), 'body{}');
  writeFileSync(path.join(staticDir, 'engine.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
  writeFileSync(path.join(tmp, 'secret.txt'), 'TOP SECRET');
  symlinkSync(path.join(tmp, 'secret.txt'), path.join(staticDir, 'link.txt'));

  store = openStore(path.join(tmp, 'data'));
  const handlers = createApiHandlers({ store, engine: fakeEngine, events: bus });
  server = await startServer({ handlers, events: bus, port: 0, staticDir });
});

after(async () => {
  await server.close();
  store.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw request: the path goes on the wire exactly as given (no URL normalization by the client). */
function request(rawPath: string, options: { method?: string; host?: string; port?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: options.port ?? server.port,
        path: rawPath,
        method: options.method ?? 'GET',
        headers: { host: options.host ?? `127.0.0.1:${server.port}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function apiUrl(token: string | null = server.token): string {
  return `ws://127.0.0.1:${server.port}/api${token === null ? '' : `?token=${encodeURIComponent(token)}`}`;
}
const ownOrigin = () => `http://127.0.0.1:${server.port}`;

/** Opens a WebSocket; resolves with it once open, or with the HTTP status the upgrade was refused with. */
function connect(url: string, origin?: string): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, origin === undefined ? {} : { origin });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode!);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Sends invokes and collects every message, so that tests can wait for a reply or for pushed events. */
class Client {
  readonly messages: WireMessage[] = [];
  private waiters: Array<() => void> = [];
  private nextId = 1;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()) as WireMessage);
      this.waiters.forEach((wake) => wake());
    });
  }
  async until<T extends WireMessage>(match: (m: WireMessage) => m is T): Promise<T> {
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
  async invoke(method: string, ...args: unknown[]): Promise<Extract<WireMessage, { kind: 'result' }>> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ kind: 'invoke', id, method, args } as WireRequest));
    return this.until((m): m is Extract<WireMessage, { kind: 'result' }> => m.kind === 'result' && m.id === id);
  }
}

test('the server listens on 127.0.0.1 only and prints a URL with the token', async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{20,}$/);
  assert.ok(server.url.includes(server.token));
  // Not on the IPv6 loopback, nor on any other address of this machine.
  const others = Object.values(os.networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal)
    .map((i) => i!.address);
  for (const address of ['::1', ...others]) {
    const refused = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: address, port: server.port, path: '/', timeout: 2000 }, (res) => {
        res.resume();
        resolve(false);
      });
      req.on('error', () => resolve(true));
      req.on('timeout', () => {
        req.destroy();
        resolve(true);
      });
    });
    assert.ok(refused, `the server must not answer on ${address}`);
  }
});

test('the page needs the token; it comes with the security headers and no caching', async () => {
  assert.equal((await request('/')).status, 401);
  assert.equal((await request('/?token=wrong')).status, 403);
  const page = await request(`/?token=${server.token}`);
  assert.equal(page.status, 200);
  assert.equal(page.body, '<!doctype html><title>Inkling</title>');
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(page.headers['cache-control'], 'no-store');
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.equal(page.headers['referrer-policy'], 'no-referrer');
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${server.port}`));
  assert.match(csp, /frame-ancestors 'none'/);
});

test('assets are served with their MIME types', async () => {
  const js = await request('/assets/index-abc123.js');
  assert.equal(js.status, 200);
  assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.match(String(js.headers['cache-control']), /immutable/);
  assert.equal((await request('/assets/style.css')).headers['content-type'], 'text/css; charset=utf-8');
  const wasm = await request('/engine.wasm');
  assert.equal(wasm.headers['content-type'], 'application/wasm');
  assert.equal(wasm.headers['cache-control'], 'no-cache');
  assert.equal((await request('/missing.js')).status, 404);
});

test('no path leaves the served folder', async () => {
  const attempts = [
    '/../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/assets%2f..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/%00/../secret.txt',
    '/link.txt',
    '/%E0%A4%A',
    `/${'../'.repeat(10)}etc/passwd`,
  ];
  for (const attempt of attempts) {
    const reply = await request(attempt);
    assert.ok([400, 404].includes(reply.status), `${attempt} answered ${reply.status}`);
    assert.doesNotMatch(reply.body, /TOP SECRET|root:/, attempt);
  }
});

test('requests for another Host or with other methods are refused', async () => {
  assert.equal((await request(`/?token=${server.token}`, { host: 'evil.example:80' })).status, 403);
  assert.equal((await request('/assets/style.css', { method: 'POST' })).status, 405);
  assert.equal((await request('/api')).status, 426);
});

test('the WebSocket needs the right token and this server as Origin', async () => {
  assert.equal(await connect(apiUrl(null), ownOrigin()), 401);
  assert.equal(await connect(apiUrl('wrong-token'), ownOrigin()), 403);
  assert.equal(await connect(apiUrl(), 'http://evil.example'), 403);
  assert.equal(await connect(apiUrl(), `http://127.0.0.1:${server.port + 1}`), 403);
  assert.equal(await connect(apiUrl()), 403, 'no Origin at all');
  assert.equal(await connect(`ws://127.0.0.1:${server.port}/other?token=${server.token}`, ownOrigin()), 404);
  const ws = await connect(apiUrl(), ownOrigin());
  assert.ok(ws instanceof WebSocket);
  ws.close();
});

test('invoke round trip: results and errors as wire messages', async () => {
  const ws = (await connect(apiUrl(), ownOrigin())) as WebSocket;
  const client = new Client(ws);
  try {
    const created = await client.invoke('createDocument', 'Over the wire');
    assert.equal(created.ok, true);
    const doc = (created as { value: { id: string; title: string } }).value;
    assert.equal(doc.title, 'Over the wire');
    await client.invoke('saveDocument', doc.id, { body: 'sent through ws' });
    const fetched = await client.invoke('getDocument', doc.id);
    assert.equal((fetched as { value: { body: string } }).value.body, 'sent through ws');

    const bad = await client.invoke('getDocument', 42);
    assert.deepEqual(bad.ok ? null : bad.error.code, 'INVALID_INPUT');
    const unknown = await client.invoke('dropDatabase');
    assert.deepEqual(unknown.ok ? null : unknown.error.code, 'UNKNOWN_METHOD');
    const noArgs = await new Promise<WireMessage>((resolve) => {
      ws.once('message', (data) => resolve(JSON.parse(data.toString())));
      ws.send(JSON.stringify({ kind: 'invoke', id: 99, method: 'listDocuments', args: 'x' }));
    });
    assert.deepEqual(noArgs, { kind: 'result', id: 99, ok: false, error: { code: 'INVALID_INPUT', message: 'arguments of listDocuments must be an array' } });
  } finally {
    ws.close();
  }
});

test('completion and engine status events are pushed to the socket', async () => {
  const ws = (await connect(apiUrl(), ownOrigin())) as WebSocket;
  const client = new Client(ws);
  try {
    const reply = await client.invoke('complete', { requestId: 'req-1', documentId: 'doc', prefix: 'Hello' });
    assert.equal(reply.ok, true);
    const done = await client.until(
      (m): m is Extract<WireMessage, { kind: 'event' }> =>
        m.kind === 'event' && m.event === 'completion' && (m.payload as CompletionEvent).type === 'done',
    );
    assert.deepEqual(done.payload, { requestId: 'req-1', type: 'done', alternatives: [' there'], latencyMs: 1, reusedTokens: 0 });
    const deltas = client.messages.filter((m) => m.kind === 'event' && (m.payload as CompletionEvent).type === 'delta');
    assert.equal(deltas.length, 1);

    bus.emit('engineStatus', { ...READY, state: 'loading' });
    const status = await client.until(
      (m): m is Extract<WireMessage, { kind: 'event' }> => m.kind === 'event' && m.event === 'engineStatus',
    );
    assert.equal((status.payload as EngineStatus).state, 'loading');
  } finally {
    ws.close();
  }
});

test('a paste beyond the size limit is refused as data; the connection and the server carry on', async () => {
  const ws = (await connect(apiUrl(), ownOrigin())) as WebSocket;
  const client = new Client(ws);
  try {
    const doc = (await client.invoke('createDocument')) as { value: { id: string } };
    const huge = await client.invoke('saveDocument', doc.value.id, { body: 'x'.repeat(LIMITS.bodyChars + 1) });
    assert.equal(huge.ok ? null : huge.error.code, 'TOO_LARGE');
    const paste = await client.invoke('complete', { requestId: 'big', documentId: doc.value.id, prefix: 'y'.repeat(LIMITS.bodyChars) });
    assert.equal(paste.ok, true, 'a huge prefix is cut to its end, not refused');
    assert.equal((await client.invoke('listDocuments')).ok, true);
  } finally {
    ws.close();
  }
});

test('a message that is not an invoke closes the socket with a policy error', async () => {
  const ws = (await connect(apiUrl(), ownOrigin())) as WebSocket;
  const code = await new Promise<number>((resolve) => {
    ws.once('close', (c) => resolve(c));
    ws.send('this is not json');
  });
  assert.equal(code, 1008);
});

test('a missing renderer build is explained on the page', async () => {
  const empty = mkdtempSync(path.join(os.tmpdir(), 'inkling-empty-'));
  const bare = await startServer({ handlers: createApiHandlers({ store, engine: fakeEngine, events: bus }), events: bus, staticDir: empty });
  try {
    const reply = await request(`/?token=${bare.token}`, { port: bare.port, host: `127.0.0.1:${bare.port}` });
    assert.equal(reply.status, 503);
    assert.match(reply.body, /npm run build:renderer/);
  } finally {
    await bare.close();
    rmSync(empty, { recursive: true, force: true });
  }
});
