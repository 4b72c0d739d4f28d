/**
 * Training in the engine worker, through EngineHost and the real worker thread on the tiny fixture: plans,
 * progress events, checkpoints handed to the host, suggestions served while a run trains, cancel, styles
 * switched on and off for suggestions, and export.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EngineHost, type EngineCompletionEvent, type TrainingListener } from '../../main/engine/host.js';
import type { AppError } from '../../main/ipc/contract.js';
import type { StyleWeightsMessage } from '../../worker/protocol.js';
import { MemoryCheckpointSink } from '../../worker/train/checkpoint.js';
import type { TrainingOptions } from '../../worker/train/options.js';
import type { TrainingEvent } from '../../worker/train/trainer.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelDir = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');
const TEXT = [{ name: 'letters.txt', text: 'Dear Marigold, the lighthouse keeper waved at the ships again today. '.repeat(30) }];
const OPTIONS: TrainingOptions = { method: 'lora', epochs: 1, maxSteps: 6, blockSize: 32, batchSize: 2, gradAccumSteps: 1, evalEvery: 3, earlyStopPatience: null, seed: 3 };

let host: EngineHost;
before(async () => {
  host = new EngineHost();
  const status = await host.start(modelDir, { backend: 'wasm' });
  assert.equal(status.state, 'ready', JSON.stringify(status));
});
after(() => host.stop());

function suggest(requestId: string, prefix: string): Promise<EngineCompletionEvent> {
  return new Promise((resolve) => {
    host.complete({ requestId, documentId: 'd', prefix, decoding: { maxNewTokens: 5, doSample: false } }, (event) => {
      if (event.type !== 'delta') resolve(event);
    });
  });
}

interface Recorded {
  events: TrainingEvent[];
  sink: MemoryCheckpointSink;
  ended: Promise<{ finished?: Extract<TrainingEvent, { type: 'finished' }>; error?: AppError }>;
  listener: TrainingListener;
}

function recorder(onEvent?: (event: TrainingEvent) => void): Recorded {
  const events: TrainingEvent[] = [];
  const sink = new MemoryCheckpointSink();
  let end!: (value: { finished?: Extract<TrainingEvent, { type: 'finished' }>; error?: AppError }) => void;
  const ended = new Promise<{ finished?: Extract<TrainingEvent, { type: 'finished' }>; error?: AppError }>((resolve) => (end = resolve));
  const listener: TrainingListener = {
    onEvent(event) {
      events.push(event);
      onEvent?.(event);
      if (event.type === 'finished') end({ finished: event });
    },
    onCheckpoint: (checkpoint) => sink.save(checkpoint),
    onError: (error) => end({ error }),
  };
  return { events, sink, ended, listener };
}

test('a plan counts tokens and steps; text that cannot train is refused with a clear message', async () => {
  const { plan, options } = await host.planTraining(TEXT, OPTIONS);
  assert.equal(plan.method, 'lora');
  assert.ok(plan.trainTokens > 300, String(plan.trainTokens));
  assert.equal(plan.totalSteps, 6);
  assert.equal(options.blockSize, 32);
  await assert.rejects(host.planTraining([{ name: 'empty.txt', text: '' }], OPTIONS), /no text to train on/);
});

test('a run reports progress, hands its checkpoints to the host, serves suggestions meanwhile, and leaks nothing', async () => {
  await suggest('warm', 'The keeper'); // the session keeps one prompt's cache: hold it before counting
  const before = await host.memory();
  const served: EngineCompletionEvent[] = [];
  let servedBeforeEnd = false;
  let asked = false;
  const run = recorder((event) => {
    // A suggestion requested in the middle of the run is answered before the run ends.
    if (event.type === 'progress' && event.step === 2 && !asked) {
      asked = true;
      void suggest('mid', 'The lighthouse').then((e) => {
        served.push(e);
        servedBeforeEnd = !run.events.some((x) => x.type === 'finished');
      });
    }
  });
  host.startTraining('run-1', TEXT, OPTIONS, null, run.listener);
  const { finished, error } = await run.ended;
  assert.equal(error, undefined, JSON.stringify(error));
  assert.equal(finished?.status, 'completed');
  assert.equal(finished?.step, 6);
  const progress = run.events.filter((e) => e.type === 'progress');
  assert.deepEqual(progress.map((e) => e.step), [1, 2, 3, 4, 5, 6]);
  assert.ok(run.events.some((e) => e.type === 'evaluation'));
  assert.equal(served.length, 1, 'the suggestion was answered while the run trained');
  assert.equal(served[0]!.type, 'done');
  assert.ok(servedBeforeEnd, 'the suggestion did not wait for the run to end');
  const finishedAt = run.events.findIndex((e) => e.type === 'finished');
  assert.ok(finishedAt > 0);
  const latest = await run.sink.loadLatest();
  assert.equal(latest?.meta.reason, 'final');
  assert.ok([...latest!.tensors.keys()].some((k) => k.startsWith('param/h.0.attn.c_attn.lora_b')));
  const afterRun = await host.memory();
  assert.equal(afterRun.numTensors, before.numTensors, 'no tensor leaked across the run');
});

test('cancel stops a run with a checkpoint it can resume from', async () => {
  const run = recorder((event) => {
    if (event.type === 'progress' && event.step === 2) host.cancelTraining('run-2');
  });
  host.startTraining('run-2', TEXT, { ...OPTIONS, maxSteps: 40 }, null, run.listener);
  const { finished } = await run.ended;
  assert.equal(finished?.status, 'cancelled');
  assert.ok(finished!.step < 40);
  const latest = await run.sink.loadLatest();
  assert.equal(latest?.meta.reason, 'cancelled');

  const resumed = recorder();
  host.startTraining('run-2', TEXT, latest!.meta.options, latest, resumed.listener);
  const end = await resumed.ended;
  assert.equal(end.finished?.status, 'completed');
  const started = resumed.events.find((e) => e.type === 'started');
  assert.equal(started?.type === 'started' ? started.resumedFromStep : null, latest!.meta.step);
});

/** An adapter strong enough to change greedy suggestions: B far from zero. */
function loudAdapter(): StyleWeightsMessage {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (let layer = 0; layer < 2; layer++) {
    tensors.set(`h.${layer}.attn.c_attn.lora_a`, { shape: [32, 2], data: Float32Array.from({ length: 64 }, (_, i) => Math.sin(i + layer)) });
    tensors.set(`h.${layer}.attn.c_attn.lora_b`, { shape: [2, 96], data: Float32Array.from({ length: 192 }, (_, i) => 3 * Math.cos(i * 1.7 + layer)) });
  }
  return { method: 'lora', lora: { rank: 2, alpha: 2, dropout: 0, targets: ['attn.c_attn'] }, tensors };
}

async function text(event: Promise<EngineCompletionEvent>): Promise<string> {
  const e = await event;
  assert.equal(e.type, 'done', JSON.stringify(e));
  return e.type === 'done' ? e.alternatives[0]! : '';
}

test('a style switched on changes suggestions; switched off, they are the base model\'s again', async () => {
  const base = await text(suggest('b1', 'Once upon a time there'));
  await host.setStyle('style-1', loudAdapter());
  const styled = await text(suggest('s1', 'Once upon a time there'));
  assert.notEqual(styled, base);
  await host.setStyle(null, null);
  assert.equal(await text(suggest('b2', 'Once upon a time there')), base);
});

test('a style exports as a Hugging Face folder', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'inkling-export-'));
  try {
    const out = await host.exportStyle(path.join(dir, 'style'), loudAdapter());
    assert.equal(out, path.join(dir, 'style'));
    for (const file of ['config.json', 'model.safetensors']) assert.ok(existsSync(path.join(out, file)), file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run that cannot fit the WebAssembly backend is refused before it starts, naming the way out', async () => {
  const { checkTrainingFits } = await import('../../worker/training-job.js');
  const gpt2Small = 124e6;
  const small = { nLayer: 12, nEmbd: 768 };
  const gpt2Large = 774e6;
  const large = { nLayer: 36, nEmbd: 1280 };
  const block = (batchSize: number) => ({ batchSize, blockSize: 128 });
  // What bench/train.ts measured on wasm: LoRA with one 128-token block fits; two blocks, or full, do not.
  assert.doesNotThrow(() => checkTrainingFits(gpt2Small, { method: 'lora', trainableParameters: 3e5, ...block(1) }, 'wasm', small));
  assert.throws(
    () => checkTrainingFits(gpt2Small, { method: 'lora', trainableParameters: 3e5, ...block(2) }, 'wasm', small),
    /one block per micro-batch/,
  );
  assert.throws(() => checkTrainingFits(gpt2Small, { method: 'full', trainableParameters: gpt2Small, ...block(1) }, 'wasm', small), /choose LoRA/);
  assert.throws(() => checkTrainingFits(gpt2Large, { method: 'full', trainableParameters: gpt2Large, ...block(1) }, 'wasm', large), /choose LoRA/);
  assert.throws(() => checkTrainingFits(gpt2Large, { method: 'lora', trainableParameters: 1e6, ...block(1) }, 'wasm', large), /smaller model/);
  assert.doesNotThrow(() => checkTrainingFits(gpt2Large, { method: 'full', trainableParameters: gpt2Large, ...block(4) }, 'tensorflow', large));
  // A small model trains fully on wasm.
  assert.doesNotThrow(() => checkTrainingFits(16e6, { method: 'full', trainableParameters: 16e6, ...block(4) }, 'wasm', { nLayer: 4, nEmbd: 256 }));
});
