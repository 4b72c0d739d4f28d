// The assist handlers: templates CRUD through the store, template runs validated (size caps, unknown
// fields, unknown templates) and streamed as `assist` events, tone classification from the settings.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import type { ApiHandlers, AssistEvent, CompletionEvent, CompletionRequest, EngineStatus } from '../../main/ipc/contract.js';
import { dispatch } from '../../main/ipc/dispatch.js';
import { createEventBus } from '../../main/ipc/events.js';
import { ASSIST_LIMITS } from '../../main/ipc/assist-handlers.js';
import { createApiHandlers, type ApiEngine } from '../../main/ipc/handlers.js';
import type { EngineAssistRequest, EngineClassifyRequest } from '../../main/engine/host.js';
import { openStore, type OpenedStore } from '../../main/store/index.js';
import type { ZeroShotResult } from '../../worker/classify/zero-shot.js';

/** Answers like the engine host: an assist streams two deltas and ends; classification is canned. */
class FakeEngine implements ApiEngine {
  assists: EngineAssistRequest[] = [];
  cancelled: string[] = [];
  classified: EngineClassifyRequest[] = [];
  complete(_request: CompletionRequest, _onEvent: (event: CompletionEvent) => void): void {}
  cancel(): void {}
  status(): EngineStatus {
    return { state: 'ready', backend: 'wasm', backendReason: 'test', modelName: 'fake', error: null };
  }
  assist(request: EngineAssistRequest, onEvent: (event: AssistEvent) => void): void {
    this.assists.push(request);
    onEvent({ requestId: request.requestId, type: 'delta', text: 'Bon' });
    onEvent({ requestId: request.requestId, type: 'delta', text: 'jour' });
    onEvent({ requestId: request.requestId, type: 'done', output: 'Bonjour', finishReason: 'stop' });
  }
  cancelAssist(requestId: string): void {
    this.cancelled.push(requestId);
  }
  async classify(request: EngineClassifyRequest): Promise<ZeroShotResult> {
    this.classified.push(request);
    return {
      text: request.text,
      label: request.labels[1]!,
      uncalibratedLabel: request.labels[0]!,
      scores: request.labels.map((label, i) => ({ label, logProb: -1 - i, probability: i === 0 ? 0.6 : 0.4 / (request.labels.length - 1), calibratedProbability: i === 1 ? 0.7 : 0.3 / (request.labels.length - 1) })),
    };
  }
}

let dir: string;
let store: OpenedStore;
let engine: FakeEngine;
let events: AssistEvent[];
let api: ApiHandlers;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-assist-'));
  store = openStore(dir);
  engine = new FakeEngine();
  const bus = createEventBus();
  events = [];
  bus.on('assist', (event) => events.push(event));
  api = createApiHandlers({ store, engine, events: bus, templates: store.templates });
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function failure(method: keyof ApiHandlers, ...args: unknown[]) {
  const outcome = await dispatch(api, method, args);
  assert.equal(outcome.ok, false, `${method} should have failed`);
  return (outcome as { ok: false; error: { code: string; message: string } }).error;
}

test('templates: listed with the built-in ones, saved, reset and deleted; bad ones refused', async () => {
  const builtins = await api.listTemplates();
  assert.ok(builtins.some((t) => t.id === 'translate-en-fr' && /GPT-2/.test(t.note ?? '')));
  const mine = await api.saveTemplate({ name: 'Shout', kind: 'rewrite', prompt: 'Quiet: {text}\nLoud:', stop: ['\n'] });
  assert.equal((await api.listTemplates()).length, builtins.length + 1);
  // The whole Template object, as the panel holds it, is accepted back.
  const renamed = await api.saveTemplate({ ...mine, name: 'Shout louder' });
  assert.equal(renamed.name, 'Shout louder');
  await api.deleteTemplate(mine.id);
  assert.equal((await api.listTemplates()).length, builtins.length);

  await api.saveTemplate({ ...builtins.find((t) => t.id === 'formal')!, prompt: 'Formal please: {text}\n=>' });
  assert.equal((await api.resetTemplate('formal')).modified, false);

  assert.equal((await failure('saveTemplate', { name: 'x', kind: 'rewrite', prompt: 'no slot', stop: [] })).code, 'INVALID_INPUT');
  assert.equal((await failure('saveTemplate', { name: 'x', kind: 'poem', prompt: '{text}', stop: [] })).code, 'INVALID_INPUT');
  assert.equal((await failure('saveTemplate', { name: 'x', kind: 'rewrite', prompt: '{text}', stop: [], evil: 1 })).code, 'INVALID_INPUT');
  assert.equal((await failure('deleteTemplate', 'formal')).code, 'INVALID_INPUT');
});

test('runTemplate streams assist events; the template and a capped selection reach the engine', async () => {
  await api.runTemplate({ requestId: 'r1', templateId: 'translate-en-fr', text: 'Hello' });
  assert.deepEqual(events.map((e) => e.type), ['delta', 'delta', 'done']);
  const sent = engine.assists[0]!;
  assert.equal(sent.template.id, 'translate-en-fr');
  assert.deepEqual(sent.template.stop, ['\n', 'English:']);
  assert.equal(sent.options?.maxNewTokens, 64, 'the built-in template\'s own length');
  assert.equal(sent.options?.doSample, false);

  await api.runTemplate({ requestId: 'r2', templateId: 'continue', text: 'Once upon a time', decoding: { maxNewTokens: 5 } });
  const cont = engine.assists[1]!;
  assert.equal(cont.template.prompt, '{text}');
  assert.equal(cont.keepLeadingSpace, true);
  assert.equal(cont.options?.maxNewTokens, 5);

  assert.equal((await failure('runTemplate', { requestId: 'r3', templateId: 'formal', text: 'x'.repeat(ASSIST_LIMITS.selectionChars + 1) })).code, 'TOO_LARGE');
  assert.equal((await failure('runTemplate', { requestId: 'r3', templateId: 'formal', text: '   ' })).code, 'INVALID_INPUT');
  assert.equal((await failure('runTemplate', { requestId: 'r3', templateId: 'nope', text: 'hi' })).code, 'NOT_FOUND');
  assert.equal((await failure('runTemplate', { requestId: 'r3', templateId: 'formal', text: 'hi', extra: true })).code, 'INVALID_INPUT');
  assert.equal((await failure('runTemplate', { requestId: 'r3', templateId: 'formal', text: 'hi', decoding: { topP: 7 } })).code, 'INVALID_INPUT');
  assert.equal(engine.assists.length, 2, 'nothing invalid reached the engine');

  await api.cancelAssist('r2');
  assert.deepEqual(engine.cancelled, ['r2']);
});

test('classifyTone scores the settings\' labels with their template and calibration', async () => {
  await api.updateSettings({ toneLabels: ['angry', 'calm', 'sad'], toneCalibrate: false });
  const result = await api.classifyTone('I am fine.');
  assert.deepEqual(engine.classified[0], { text: 'I am fine.', labels: ['angry', 'calm', 'sad'], template: 'Text: {text}\nTone:', calibrate: false });
  assert.equal(result.label, 'calm');
  assert.equal(result.calibrated, false);
  assert.deepEqual(result.scores.map((s) => s.label), ['angry', 'calm', 'sad']);
  assert.equal(result.scores[1]!.probability, 0.7);
  assert.equal(result.scores[0]!.uncalibratedProbability, 0.6);
  assert.equal((await failure('classifyTone', 42)).code, 'INVALID_INPUT');
});

test('without an assist-capable engine the methods say why', async () => {
  const bus = createEventBus();
  const bare = createApiHandlers({
    store,
    engine: { complete() {}, cancel() {}, status: () => ({ state: 'error', backend: '', backendReason: '', modelName: '', error: { code: 'NO_MODEL', message: 'no model folder' } }) },
    events: bus,
    templates: store.templates,
  });
  const outcome = await dispatch(bare, 'classifyTone', ['hello']);
  assert.equal(outcome.ok, false);
  assert.match((outcome as { ok: false; error: { message: string } }).error.message, /no model folder/);
});
