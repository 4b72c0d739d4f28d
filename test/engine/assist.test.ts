/**
 * The assist lane of the engine worker, end to end (EngineHost → worker thread → tiny fixture model):
 * a template run streams and ends at its stop string, a cancelled or superseded run ends 'cancelled',
 * completions run while an assist streams, and tone classification answers calibrated probabilities.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AssistEvent } from '../../main/ipc/contract.js';
import { EngineHost, type EngineAssistRequest, type EngineCompletionEvent } from '../../main/engine/host.js';
import type { PromptTemplate } from '../../worker/rewrite/templates.js';

process.env.INKLING_ENGINE_DEBUG = '1';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelDir = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');

const template: PromptTemplate = { id: 't', name: 'T', kind: 'rewrite', prompt: 'Plain: {text}\nFancy:', stop: [] };

let host: EngineHost;
before(async () => {
  host = new EngineHost();
  const status = await host.start(modelDir, { backend: 'wasm' });
  assert.equal(status.state, 'ready', JSON.stringify(status.error));
});
after(() => host.stop());

function assist(request: Partial<EngineAssistRequest> & { requestId: string }): Promise<AssistEvent[]> {
  const events: AssistEvent[] = [];
  return new Promise((resolve) => {
    host.assist({ template, text: 'the cat sat', options: { maxNewTokens: 12, doSample: false, eosTokenId: null }, ...request }, (event) => {
      events.push(event);
      if (event.type !== 'delta') resolve(events);
    });
  });
}

const streamed = (events: AssistEvent[]) => events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');
const last = (events: AssistEvent[]) => events.at(-1)!;

test('a template run streams its output, and ends at its stop string', async () => {
  const free = await assist({ requestId: 'free' });
  const end = last(free);
  assert.equal(end.type, 'done', JSON.stringify(end));
  if (end.type !== 'done') return;
  assert.equal(end.finishReason, 'length');
  assert.ok(end.output.length > 4, `the random model says something: ${JSON.stringify(end.output)}`);
  assert.ok(free.filter((e) => e.type === 'delta').length > 1, 'the output arrives in pieces');
  assert.equal(streamed(free).trim(), end.output);

  // Greedy decoding repeats itself: a stop string taken from the middle of that output must cut it there.
  const cut = Math.floor(end.output.length / 2);
  const stop = end.output.slice(cut, cut + 2);
  const expected = end.output.slice(0, end.output.indexOf(stop)).trim();
  const stopped = await assist({ requestId: 'stopped', template: { ...template, stop: [stop] } });
  const stoppedEnd = last(stopped);
  assert.equal(stoppedEnd.type, 'done');
  if (stoppedEnd.type !== 'done') return;
  assert.equal(stoppedEnd.finishReason, 'stop');
  assert.equal(stoppedEnd.output, expected);
  assert.ok(!streamed(stopped).includes(stop), 'the stop string is never streamed');
});

test('an assist is cancelled, and a newer one supersedes it; completions run meanwhile', async () => {
  const slow = { maxNewTokens: 20, doSample: false, eosTokenId: null, debugStepDelayMs: 40 };
  const events: AssistEvent[] = [];
  const cancelled = new Promise<void>((resolve) => {
    host.assist({ requestId: 'a', template, text: 'one two', options: slow }, (event) => {
      events.push(event);
      if (event.type === 'delta' && events.length === 1) host.cancelAssist('a');
      if (event.type !== 'delta') resolve();
    });
  });
  await cancelled;
  assert.equal(last(events).type, 'cancelled');

  const first = assist({ requestId: 'first', options: slow });
  // A completion neither cancels the assist nor waits for it to finish.
  const completion = new Promise<EngineCompletionEvent>((resolve) => {
    host.complete({ requestId: 'c', documentId: 'd', prefix: 'Hello there', decoding: { maxNewTokens: 3, doSample: false } }, (event) => {
      if (event.type !== 'delta') resolve(event);
    });
  });
  assert.equal((await completion).type, 'done');
  const second = assist({ requestId: 'second' });
  assert.equal(last(await first).type, 'cancelled', 'latest wins within the assist lane');
  assert.equal(last(await second).type, 'done');
});

test('tone classification answers probabilities over the labels, calibrated on request', async () => {
  const labels = ['formal', 'casual', 'neutral'];
  const raw = await host.classify({ text: 'hey, wanna grab lunch?', labels, template: 'Text: {text}\nTone:', calibrate: false });
  const calibrated = await host.classify({ text: 'hey, wanna grab lunch?', labels, template: 'Text: {text}\nTone:', calibrate: true });
  for (const result of [raw, calibrated]) {
    assert.deepEqual(result.scores.map((s) => s.label), labels);
    const sum = result.scores.reduce((a, s) => a + s.calibratedProbability, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `probabilities sum to 1, got ${sum}`);
  }
  assert.deepEqual(raw.scores.map((s) => s.calibratedProbability), raw.scores.map((s) => s.probability));
  assert.notDeepEqual(calibrated.scores.map((s) => s.calibratedProbability), calibrated.scores.map((s) => s.probability));
  await assert.rejects(host.classify({ text: 'x', labels: ['only'], template: '{text}', calibrate: true }), /two labels/);
  const memory = await host.memory();
  assert.ok(memory.numTensors >= 0);
});

test('a reload of the model during an assist cancels it, and assists work on the new model', async () => {
  const events: AssistEvent[] = [];
  const ended = new Promise<void>((resolve) => {
    host.assist({ requestId: 'long', template, text: 'one two', options: { maxNewTokens: 20, doSample: false, eosTokenId: null, debugStepDelayMs: 40 } }, (event) => {
      events.push(event);
      if (event.type !== 'delta') resolve();
    });
  });
  // Once it streams, reload; and ask for another assist at once, while the reload is under way.
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (events.length > 0) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
  const reloaded = host.start(modelDir, { backend: 'wasm' });
  const after = assist({ requestId: 'after-reload' });
  await ended;
  assert.equal(last(events).type, 'cancelled');
  assert.equal((await reloaded).state, 'ready');
  assert.equal(last(await after).type, 'done');
});
