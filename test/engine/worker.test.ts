/**
 * The worker protocol without the host: raw messages to the real worker thread, so that what the host hides
 * (the worker's own 'cancelled' replies, how many tokens a cancelled job generated) can be checked.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startEngineWorker } from '../../main/engine/host.js';
import type { CompleteMessage, HostToWorker, WorkerToHost } from '../../worker/protocol.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelDir = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');

const cancelBelow = new Int32Array(new SharedArrayBuffer(4));
let worker: Worker;
const received: WorkerToHost[] = [];
let seq = 0;

function send(message: HostToWorker): void {
  worker.postMessage(message);
}

/** Resolves with the first message (from now on) that matches. */
function next<T extends WorkerToHost>(match: (m: WorkerToHost) => m is T): Promise<T>;
function next(match: (m: WorkerToHost) => boolean): Promise<WorkerToHost>;
function next(match: (m: WorkerToHost) => boolean): Promise<WorkerToHost> {
  return new Promise((resolve) => {
    const listener = (m: WorkerToHost) => {
      if (!match(m)) return;
      worker.off('message', listener);
      resolve(m);
    };
    worker.on('message', listener);
  });
}

const endOf = (id: string) => (m: WorkerToHost) =>
  (m.type === 'done' || m.type === 'cancelled' || m.type === 'error') && 'id' in m && m.id === id;

function complete(id: string, prefix: string, options: CompleteMessage['options'] = {}): void {
  send({ type: 'complete', id, seq: ++seq, prefix, numAlternatives: 1, options: { maxNewTokens: 6, ...options } });
}

before(async () => {
  worker = startEngineWorker({ cancelBelow: cancelBelow.buffer as SharedArrayBuffer, env: { ...process.env, INKLING_ENGINE_DEBUG: '1' } });
  worker.on('message', (m: WorkerToHost) => received.push(m));
  const ready = next((m) => m.type === 'status' && m.state !== 'loading');
  send({ type: 'init', modelDir, backend: 'wasm' });
  const status = await ready;
  assert.ok(status.type === 'status' && status.state === 'ready', JSON.stringify(status));
  assert.equal(received[0].type, 'status');
  assert.equal((received[0] as { state: string }).state, 'loading');
});

after(() => worker.terminate());

test('a completion streams deltas, then done with timings', async () => {
  const end = next(endOf('a'));
  complete('a', 'Hello, my dog is', { maxNewTokens: 8 });
  const done = await end;
  assert.equal(done.type, 'done');
  if (done.type !== 'done') return;
  const deltas = received.filter((m) => m.type === 'delta' && m.id === 'a');
  assert.ok(deltas.length > 0);
  assert.equal(deltas.map((m) => (m.type === 'delta' ? m.text : '')).join(''), done.alternatives[0]);
  assert.equal(done.promptTokens, 5);
  for (const value of Object.values(done.timings)) assert.ok(value >= 0);
});

test('a prefill-only request runs the prompt into the cache and generates nothing; the suggestion after it reuses the prompt', async () => {
  const prefix = 'The old lighthouse keeper climbed the stairs every evening, and';
  const warmEnd = next(endOf('warm'));
  complete('warm', prefix, { prefillOnly: true, reusePrefix: false });
  const warm = await warmEnd;
  assert.equal(warm.type, 'done');
  if (warm.type !== 'done') return;
  assert.deepEqual(warm.alternatives, []);
  assert.equal(received.filter((m) => m.type === 'delta' && m.id === 'warm').length, 0);
  assert.ok(warm.promptTokens > 10);
  assert.equal(warm.reusedTokens, 0);

  const end = next(endOf('after-warm'));
  complete('after-warm', prefix);
  const done = await end;
  assert.equal(done.type, 'done');
  if (done.type !== 'done') return;
  // Only the last token runs again (its logits choose the first new token).
  assert.equal(done.promptTokens, warm.promptTokens);
  assert.equal(done.reusedTokens, warm.promptTokens - 1);
  assert.ok(done.alternatives[0].length > 0);
});

test('a newer request stops a prefill-only job between its passes; the passes it ran are kept', async () => {
  const words = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen'.split(' ');
  const prefix = Array.from({ length: 4 }, () => words.join(' ')).join(', ');
  const warmEnd = next(endOf('warm-long'));
  // 8 tokens a pass with 60 ms between passes: the whole window (~50 tokens) would take 5-6 passes, ~0.35 s.
  complete('warm-long', prefix, { prefillOnly: true, reusePrefix: false, debugPrefillChunkTokens: 8, debugStepDelayMs: 60 });
  await new Promise((resolve) => setTimeout(resolve, 150));
  const newerEnd = next(endOf('after-stop'));
  const stoppedAt = performance.now();
  Atomics.store(cancelBelow, 0, seq + 1);
  complete('after-stop', prefix);
  const warm = await warmEnd;
  assert.equal(warm.type, 'cancelled');
  assert.ok(performance.now() - stoppedAt < 300, 'stopped at the next pass, not after the whole prompt');
  const done = await newerEnd;
  assert.ok(done.type === 'done', JSON.stringify(done));
  assert.ok(done.promptTokens >= 40, `${done.promptTokens} prompt tokens`);
  // What the stopped job ran, whole passes of 8 from the start, is what the newer one did not run again.
  const { reusedTokens } = done;
  assert.ok(reusedTokens >= 8 && reusedTokens < done.promptTokens - 1 && reusedTokens % 8 === 0, `reused ${reusedTokens}`);
});

test('a newer request stops the running generation early, and then runs', async () => {
  const maxNewTokens = 40;
  const firstEnd = next(endOf('long'));
  const secondEnd = next(endOf('newer'));
  const firstDelta = next((m) => m.type === 'delta' && m.id === 'long');
  complete('long', 'Once upon a time', { maxNewTokens, eosTokenId: null, debugStepDelayMs: 15 });
  await firstDelta;
  // What the host does: raise the shared mark, then send the newer request.
  Atomics.store(cancelBelow, 0, seq + 1);
  complete('newer', 'Once upon a time there');
  const cancelled = await firstEnd;
  assert.equal(cancelled.type, 'cancelled');
  if (cancelled.type === 'cancelled') {
    assert.ok(cancelled.generatedTokens < maxNewTokens, `stopped after ${cancelled.generatedTokens} of ${maxNewTokens} tokens`);
  }
  assert.equal((await secondEnd).type, 'done');
  // Jobs run one at a time: nothing of the newer one arrived before the older one ended.
  const order = received.filter((m) => 'id' in m && (m.id === 'long' || m.id === 'newer')).map((m) => (m as { id: string }).id);
  assert.deepEqual(order.slice(order.lastIndexOf('long') + 1).every((id) => id === 'newer'), true);
  assert.ok(order.indexOf('newer') > order.lastIndexOf('long'));
});

test('a cancel message stops the running job; requests still waiting are answered without running', async () => {
  const ids = ['w1', 'w2', 'w3', 'w4'];
  const ends = ids.map((id) => next(endOf(id)));
  for (const id of ids) complete(id, `text ${id}`, { maxNewTokens: 20, debugStepDelayMs: 5 });
  const results = await Promise.all(ends);
  assert.deepEqual(results.map((r) => r.type), ['cancelled', 'cancelled', 'cancelled', 'done']);
  // w2 and w3 were replaced while they waited: they never generated a token.
  for (const r of results.slice(1, 3)) assert.equal(r.type === 'cancelled' && r.generatedTokens, 0);

  const end = next(endOf('c'));
  const delta = next((m) => m.type === 'delta' && m.id === 'c');
  complete('c', 'To be cancelled', { maxNewTokens: 40, eosTokenId: null, debugStepDelayMs: 15 });
  await delta;
  send({ type: 'cancel', id: 'c' });
  const cancelled = await end;
  assert.equal(cancelled.type, 'cancelled');
  assert.ok(cancelled.type === 'cancelled' && cancelled.generatedTokens < 40);
});

test('memory reports the tensors the worker holds', async () => {
  const reply = next((m) => m.type === 'memory');
  send({ type: 'memory', id: 'm1' });
  const memory = await reply;
  assert.ok(memory.type === 'memory' && memory.id === 'm1' && memory.numTensors > 0 && memory.numBytes > 0);
});

test('an unknown message is answered with INVALID_MESSAGE', async () => {
  const reply = next((m) => m.type === 'error');
  worker.postMessage({ type: 'launch-rockets' });
  const error = await reply;
  assert.ok(error.type === 'error' && error.error.code === 'INVALID_MESSAGE');
});

test('debug-crash is refused without INKLING_ENGINE_DEBUG=1', async () => {
  const env = { ...process.env };
  delete env.INKLING_ENGINE_DEBUG;
  const plain = startEngineWorker({ cancelBelow: new SharedArrayBuffer(4), env });
  try {
    const reply = new Promise<WorkerToHost>((resolve) => plain.once('message', resolve));
    plain.postMessage({ type: 'debug-crash', mode: 'exit' } satisfies HostToWorker);
    const error = await reply;
    assert.ok(error.type === 'error' && error.error.code === 'INVALID_MESSAGE', JSON.stringify(error));
  } finally {
    await plain.terminate();
  }
});
