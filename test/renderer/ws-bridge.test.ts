import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { CompletionEvent, EngineStatus, WireMessage, WireRequest } from '../../main/ipc/contract.js';
import { ApiCallError, createWsApi, type SocketFactory, type WsApi } from '../../renderer/src/lib/ws-bridge.js';

type Handler = (request: WireRequest, reply: (message: WireMessage) => void) => void;

/** A WebSocket server speaking the wire protocol, with a handler per test. */
async function startServer(handler: Handler) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const sockets = new Set<WebSocket>();
  let current = handler;
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (data) => {
      const request = JSON.parse(String(data)) as WireRequest;
      current(request, (message) => ws.send(JSON.stringify(message)));
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/api?token=secret`,
    sockets,
    setHandler(next: Handler) {
      current = next;
    },
    broadcast(message: WireMessage) {
      for (const ws of sockets) ws.send(JSON.stringify(message));
    },
    dropAll() {
      for (const ws of sockets) ws.terminate();
    },
    close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}

function connect(url: string, options: { connectTimeoutMs?: number } = {}): WsApi {
  return createWsApi(url, { WebSocket: WebSocket as unknown as SocketFactory, minRetryMs: 20, maxRetryMs: 50, ...options });
}

const waitFor = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
};

test('calls go out as invoke messages and resolve with the result; calls made before open wait', async (t) => {
  const seen: WireRequest[] = [];
  const server = await startServer((request, reply) => {
    seen.push(request);
    reply({ kind: 'result', id: request.id, ok: true, value: [{ id: 'd1', title: `found ${String(request.args[0])}` }] });
  });
  const api = connect(server.url);
  t.after(async () => {
    api.close();
    await server.close();
  });
  const docs = await api.listDocuments('cats');
  assert.deepEqual(docs, [{ id: 'd1', title: 'found cats' }]);
  assert.equal(seen[0]!.kind, 'invoke');
  assert.equal(seen[0]!.method, 'listDocuments');
  assert.deepEqual(seen[0]!.args, ['cats']);
  await api.saveDocument('d1', { body: 'x' });
  assert.deepEqual(seen[1]!.args, ['d1', { body: 'x' }]);
  assert.notEqual(seen[0]!.id, seen[1]!.id);
});

test('a server error rejects with its message and code', async (t) => {
  const server = await startServer((request, reply) =>
    reply({ kind: 'result', id: request.id, ok: false, error: { code: 'NOT_FOUND', message: 'no document "zz"' } }),
  );
  const api = connect(server.url);
  t.after(async () => {
    api.close();
    await server.close();
  });
  await assert.rejects(api.getDocument('zz'), (err: unknown) => {
    assert.ok(err instanceof ApiCallError);
    assert.equal(err.message, 'no document "zz"');
    assert.equal(err.code, 'NOT_FOUND');
    return true;
  });
});

test('events reach their listeners until unsubscribed', async (t) => {
  const server = await startServer((request, reply) => reply({ kind: 'result', id: request.id, ok: true, value: undefined }));
  const api = connect(server.url);
  t.after(async () => {
    api.close();
    await server.close();
  });
  const completions: CompletionEvent[] = [];
  const statuses: EngineStatus[] = [];
  const stop = api.onCompletion((e) => completions.push(e));
  api.onEngineStatus((s) => statuses.push(s));
  await api.getSettings(); // connected
  server.broadcast({ kind: 'event', event: 'completion', payload: { requestId: 'r1', type: 'delta', alternative: 0, text: ' hi' } });
  server.broadcast({ kind: 'event', event: 'engineStatus', payload: { state: 'ready', backend: 'wasm' } });
  await waitFor(() => completions.length === 1 && statuses.length === 1, 'both events');
  assert.equal(completions[0]!.type, 'delta');
  assert.equal(statuses[0]!.backend, 'wasm');
  stop();
  server.broadcast({ kind: 'event', event: 'completion', payload: { requestId: 'r1', type: 'cancelled' } });
  await api.getSettings();
  assert.equal(completions.length, 1);
});

test('a dropped connection fails unanswered calls and live completions clearly, then reconnects', async (t) => {
  const server = await startServer(() => {}); // never answers
  const api = connect(server.url);
  t.after(async () => {
    api.close();
    await server.close();
  });
  const states: string[] = [];
  api.onConnectionChange((s) => states.push(s));
  const completions: CompletionEvent[] = [];
  api.onCompletion((e) => completions.push(e));

  const unanswered = api.listDocuments();
  const started = api.complete({ requestId: 'r9', documentId: 'd', prefix: 'Hi' });
  await waitFor(() => server.sockets.size === 1, 'a connection');
  await new Promise((resolve) => setTimeout(resolve, 30));
  server.dropAll();
  await assert.rejects(unanswered, /connection to the Inkling server was lost before "listDocuments" was answered/);
  await assert.rejects(started, /lost before "complete"/);

  // It comes back by itself, and works again.
  server.setHandler((request, reply) => reply({ kind: 'result', id: request.id, ok: true, value: [] }));
  await waitFor(() => api.connectionState === 'open', 'reconnection');
  assert.deepEqual(await api.listDocuments(), []);
  assert.ok(states.includes('closed') && states.at(-1) === 'open', `states: ${states.join(',')}`);
  assert.equal(completions.length, 0, 'a complete() that never started emits no event');
});

test('a completion running when the connection drops ends with an error event', async (t) => {
  const server = await startServer((request, reply) => reply({ kind: 'result', id: request.id, ok: true, value: undefined }));
  const api = connect(server.url);
  t.after(async () => {
    api.close();
    await server.close();
  });
  const completions: CompletionEvent[] = [];
  api.onCompletion((e) => completions.push(e));
  await api.complete({ requestId: 'r1', documentId: 'd', prefix: 'Hi' });
  server.dropAll();
  await waitFor(() => completions.length === 1, 'the error event');
  const event = completions[0]!;
  assert.equal(event.type, 'error');
  assert.equal(event.requestId, 'r1');
  assert.match(event.type === 'error' ? event.error.message : '', /connection .* lost/);
});

test('with no server, a call fails after the connect timeout, naming the address without the token', async () => {
  const server = await startServer(() => {});
  const url = server.url;
  await server.close();
  const api = connect(url, { connectTimeoutMs: 100 });
  try {
    await assert.rejects(api.getSettings(), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /Cannot reach the Inkling server at ws:\/\/127\.0\.0\.1:\d+\/api\?token=…: no connection after 0\.1 s \("getSettings" not sent\)/);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  } finally {
    api.close();
  }
  await assert.rejects(api.getSettings(), /closed/);
});
