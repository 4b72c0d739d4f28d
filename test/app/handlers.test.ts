import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApiHandlers, CompletionEvent, CompletionRequest, EngineStatus } from '../../main/ipc/contract.js';
import { API_METHODS } from '../../main/ipc/contract.js';
import { dispatch } from '../../main/ipc/dispatch.js';
import { createEventBus } from '../../main/ipc/events.js';
import { createApiHandlers, type ApiEngine } from '../../main/ipc/handlers.js';
import { LIMITS } from '../../main/ipc/validate.js';
import { openStore, type OpenedStore } from '../../main/store/index.js';

/** Records what reaches the engine and answers like the engine host (delta, then done). */
class FakeEngine implements ApiEngine {
  requests: CompletionRequest[] = [];
  cancelled: string[] = [];
  complete(request: CompletionRequest, onEvent: (event: CompletionEvent) => void): void {
    this.requests.push(request);
    onEvent({ requestId: request.requestId, type: 'delta', alternative: 0, text: ' world' });
    // The host's `done` has more fields than the contract's; the handlers must pass the contract's only.
    onEvent({
      requestId: request.requestId,
      type: 'done',
      alternatives: [' world'],
      latencyMs: 5,
      reusedTokens: 2,
      promptTokens: 3,
      timings: { queueMs: 0 },
    } as CompletionEvent);
  }
  cancel(requestId: string): void {
    this.cancelled.push(requestId);
  }
  status(): EngineStatus {
    return { state: 'ready', backend: 'wasm', backendReason: 'test', modelName: 'fake', error: null };
  }
}

let dir: string;
let store: OpenedStore;
let engine: FakeEngine;
let events: CompletionEvent[];
let api: ApiHandlers;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-handlers-'));
  store = openStore(dir);
  engine = new FakeEngine();
  const bus = createEventBus();
  events = [];
  bus.on('completion', (event) => events.push(event));
  api = createApiHandlers({ store, engine, events: bus });
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The AppError an invocation ends with, as a transport would report it. */
async function failure(method: keyof ApiHandlers, ...args: unknown[]) {
  const outcome = await dispatch(api, method, args);
  assert.equal(outcome.ok, false, `${method} should have failed`);
  return (outcome as { ok: false; error: { code: string; message: string } }).error;
}

test('documents: create, save, list, search, trash and restore go through to the store', async () => {
  const doc = await api.createDocument('Letters');
  assert.equal(doc.title, 'Letters');
  const saved = await api.saveDocument(doc.id, { body: 'Dear friend, the harvest was good.' });
  assert.equal(saved.id, doc.id);
  assert.equal((await api.getDocument(doc.id))?.body, 'Dear friend, the harvest was good.');
  assert.deepEqual((await api.listDocuments('harvest')).map((d) => d.id), [doc.id]);
  assert.deepEqual(await api.listDocuments('nothing like this'), []);

  await api.deleteDocument(doc.id);
  assert.equal(await api.getDocument(doc.id), null);
  assert.equal((await api.restoreDocument(doc.id)).id, doc.id);
  assert.equal((await api.listDocuments()).length, 1);
});

test('revisions: listed and restored by id', async () => {
  const doc = await api.createDocument();
  const first = 'a'.repeat(200);
  await api.saveDocument(doc.id, { body: first });
  // Replacing the whole text at once is a big change: the store keeps the old text as a revision.
  await api.saveDocument(doc.id, { body: 'b'.repeat(200) });
  const revisions = await api.listRevisions(doc.id);
  const kept = revisions.find((r) => r.length === first.length);
  assert.ok(kept, 'the replaced text was kept as a revision');
  assert.equal((await api.restoreRevision(doc.id, kept.id)).body, first);
  const error = await failure('restoreRevision', doc.id, 0);
  assert.equal(error.code, 'INVALID_INPUT');
  assert.match(error.message, /revisionId/);
});

test('settings: a valid patch is saved; bad values, unknown and prototype keys are refused', async () => {
  const updated = await api.updateSettings({ suggestionDelayMs: 250, decoding: { topK: 20 } });
  assert.equal(updated.suggestionDelayMs, 250);
  assert.equal(updated.decoding.topK, 20);
  assert.equal((await api.getSettings()).decoding.topK, 20);

  assert.equal((await failure('updateSettings', { decoding: { temperature: 'hot' } })).code, 'INVALID_INPUT');
  assert.equal((await failure('updateSettings', { suggestionDelay: 3 })).code, 'INVALID_INPUT');
  assert.equal((await failure('updateSettings', JSON.parse('{"hasOwnProperty": 1}'))).code, 'INVALID_INPUT');
  assert.equal((await failure('updateSettings', { decoding: { constructor: 1 } })).code, 'INVALID_INPUT');
  assert.equal((await failure('updateSettings', null)).code, 'INVALID_INPUT');
  assert.equal((await api.getSettings()).suggestionDelayMs, 250, 'a refused patch changes nothing');
});

test('ids, types and sizes from the renderer are checked before the store sees them', async () => {
  for (const bad of [undefined, 42, '', '../../etc', 'x'.repeat(200), { id: 'a' }]) {
    assert.equal((await failure('getDocument', bad)).code, 'INVALID_INPUT', `id ${String(bad)}`);
  }
  const doc = await api.createDocument();
  assert.equal((await failure('saveDocument', doc.id, 'body text')).code, 'INVALID_INPUT');
  assert.equal((await failure('saveDocument', doc.id, { body: 7 })).code, 'INVALID_INPUT');
  assert.equal((await failure('saveDocument', doc.id, { body: 'x', owner: 'me' })).code, 'INVALID_INPUT');
  const huge = await failure('saveDocument', doc.id, { body: 'a'.repeat(LIMITS.bodyChars + 1) });
  assert.equal(huge.code, 'TOO_LARGE');
  assert.match(huge.message, /too long/);
  assert.equal((await failure('createDocument', 'T'.repeat(LIMITS.titleChars + 1))).code, 'TOO_LARGE');
});

test('store errors keep their code across the boundary', async () => {
  const error = await failure('saveDocument', '00000000-0000-0000-0000-000000000000', { body: 'x' });
  assert.equal(error.code, 'NOT_FOUND');
  const unknown = await failure('nonsense' as keyof ApiHandlers);
  assert.equal(unknown.code, 'UNKNOWN_METHOD');
});

test('complete: saved decoding settings are applied, events are forwarded in the contract shape', async () => {
  await api.updateSettings({ decoding: { temperature: 0.5, maxNewTokens: 7 }, stopAtSentenceEnd: false });
  await api.complete({ requestId: 'r1', documentId: 'doc-1', prefix: 'Hello', decoding: { topK: 5 } });

  const sent = engine.requests[0]!;
  assert.equal(sent.prefix, 'Hello');
  assert.equal(sent.numAlternatives, 1);
  assert.equal(sent.stopAtSentenceEnd, false);
  assert.equal(sent.decoding?.temperature, 0.5);
  assert.equal(sent.decoding?.maxNewTokens, 7);
  assert.equal(sent.decoding?.topK, 5, 'the request overrides the saved setting');

  assert.deepEqual(events, [
    { requestId: 'r1', type: 'delta', alternative: 0, text: ' world' },
    { requestId: 'r1', type: 'done', alternatives: [' world'], latencyMs: 5, reusedTokens: 2 },
  ]);
});

test('complete: a prefill-only request reaches the engine as one, with the saved settings (its prompt window depends on them)', async () => {
  await api.updateSettings({ decoding: { maxNewTokens: 9 } });
  await api.complete({ requestId: 'warm', documentId: 'doc-1', prefix: 'Hello', prefillOnly: true });
  const sent = engine.requests[0]!;
  assert.equal(sent.prefillOnly, true);
  assert.equal(sent.decoding?.maxNewTokens, 9);
  await api.complete({ requestId: 'plain', documentId: 'doc-1', prefix: 'Hello' });
  assert.equal(engine.requests[1]!.prefillOnly, undefined);
});

test('complete: a huge paste reaches the engine as the tail of the text, not whole', async () => {
  const book = '😀'.repeat(3_000_000) + 'The end';
  await api.complete({ requestId: 'big', documentId: 'doc-1', prefix: book });
  const prefix = engine.requests[0]!.prefix;
  assert.ok(prefix.length <= LIMITS.prefixChars);
  assert.ok(prefix.endsWith('The end'));
  // Cut on a character boundary: no lone surrogate at the start.
  assert.doesNotMatch(prefix, /^[\uDC00-\uDFFF]/);
  assert.equal(prefix, book.slice(-prefix.length));
});

test('complete: malformed requests are refused without reaching the engine', async () => {
  const base = { requestId: 'r', documentId: 'd', prefix: 'x' };
  const bad: unknown[] = [
    null,
    { ...base, prefix: 12 },
    { ...base, requestId: '' },
    { ...base, numAlternatives: 0 },
    { ...base, decoding: { temperature: -1 } },
    { ...base, decoding: { speed: 3 } },
    { ...base, extra: true },
    { ...base, prefillOnly: 'yes' },
  ];
  for (const request of bad) assert.equal((await failure('complete', request)).code, 'INVALID_INPUT', JSON.stringify(request));
  assert.equal(engine.requests.length, 0);
});

test('cancelCompletion and getEngineStatus reach the engine', async () => {
  await api.cancelCompletion('r7');
  assert.deepEqual(engine.cancelled, ['r7']);
  assert.equal((await api.getEngineStatus()).state, 'ready');
  assert.equal((await failure('cancelCompletion', 7)).code, 'INVALID_INPUT');
});

test('every contract method is implemented', () => {
  for (const method of API_METHODS) assert.equal(typeof api[method], 'function', method);
});
