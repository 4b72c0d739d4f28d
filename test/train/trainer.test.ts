// The training loop end to end on tiny models: it learns, it resumes exactly, it obeys pause/cancel, it
// stops early on the best weights, and it leaks no tensors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { MemoryCheckpointSink } from '../../worker/train/checkpoint.js';
import { TrainingControl } from '../../worker/train/control.js';
import { buildDataset, type TrainingText } from '../../worker/train/data.js';
import { evaluateLoss } from '../../worker/train/evaluate.js';
import { datasetOptions, resolveTrainingOptions, type TrainingOptions } from '../../worker/train/options.js';
import { runTraining, type TrainingEvent, type TrainingResult } from '../../worker/train/trainer.js';
import type { Tokenizer } from '../../worker/tokenizer/types.js';
import { byteTokenizer, loadTiny, maxAbsDiff, randomModel, tinyByteConfig, useWasm, type TestModel } from './helpers.js';

const FOX = 'the quick brown fox jumps over the lazy dog. '.repeat(40);

let bytes: TestModel;
before(async () => {
  await useWasm();
  bytes = randomModel(tinyByteConfig(), 1);
});
after(() => bytes.dispose());

function prepare(model: TestModel, texts: TrainingText[], tokenizer: Tokenizer, options: TrainingOptions) {
  const resolved = resolveTrainingOptions(options, model.config);
  const dataset = buildDataset(texts, tokenizer, datasetOptions(resolved));
  return { config: model.config, params: model.params, dataset, options: resolved };
}

async function weightsOf(result: TrainingResult, name: string): Promise<Float32Array> {
  return (await result.weights.tensors.get(name)!.data()) as Float32Array;
}

test('a tiny model trained from scratch on repetitive text reaches a far lower held-out loss', async () => {
  const run = prepare(bytes, [{ name: 'fox', text: FOX }], byteTokenizer(), {
    method: 'full',
    fromScratch: true,
    epochs: 3,
    batchSize: 4,
    gradAccumSteps: 1,
    blockSize: 32,
    learningRate: 1e-2,
    dropout: 0,
  });
  const result = await runTraining(run);
  result.weights.dispose();
  assert.equal(result.status, 'completed');
  assert.equal(result.step, result.totalSteps);
  assert.ok(result.initialHeldOutLoss! > 5, `a random byte model starts near ln(257): ${result.initialHeldOutLoss}`);
  assert.ok(result.finalHeldOutLoss! < 0.4 * result.initialHeldOutLoss!, `${result.initialHeldOutLoss} → ${result.finalHeldOutLoss}`);
});

test('LoRA on the tiny fixture: step 0 is the base model, and the held-out loss of a style text goes down', async () => {
  const tiny = await loadTiny();
  try {
    const bodies = [
      'the rain has not stopped since Tuesday, and the garden is a lake',
      'the hens are sulking, the roses are drowning, and I am reading by the stove',
      'the post is late again, and the village talks of nothing but the bridge',
      'the rain has stopped at last, and the garden smells of wet earth and mint',
      'the vicar came to tea, and the cat sat on his hat',
      'the roses are up again, and the hens are laying',
      'the bridge is mended, and the post came twice',
      'the garden is dry, and I am writing by the window',
    ];
    const letters = bodies.map((body, i) => ({ name: `letter ${i}`, text: `Dearest Margaret, ${body}. Yours ever, Jane.` }));
    const run = prepare(tiny, letters, gpt2Tokenizer(), {
      method: 'lora',
      lora: { targets: ['attn.c_attn', 'mlp.c_fc'] },
      epochs: 4,
      batchSize: 2,
      gradAccumSteps: 1,
      blockSize: 32,
      learningRate: 3e-2,
      heldOutFraction: 0.25,
      earlyStopPatience: null,
    });
    assert.equal(run.dataset.split, 'documents');
    const base = await evaluateLoss(tiny.params, tiny.config, run.dataset);
    const result = await runTraining(run);
    result.weights.dispose();
    assert.equal(result.initialHeldOutLoss, base, 'with B = 0 the adapted model is exactly the base model');
    // The fixture's small random embeddings cap how far any logit can move (about 0.3 nats here); this drop
    // is deterministic, far above float noise, and needs the adapters to learn the letters' shared words.
    assert.ok(result.finalHeldOutLoss! < result.initialHeldOutLoss! - 0.15, `${result.initialHeldOutLoss} → ${result.finalHeldOutLoss}`);
  } finally {
    tiny.dispose();
  }
});

/** Options with dropout on, so that resuming must also restore the random state. */
const RESUMABLE: Record<'full' | 'lora', TrainingOptions> = {
  full: { method: 'full', epochs: 2, batchSize: 2, gradAccumSteps: 2, blockSize: 16, learningRate: 5e-3, dropout: 0.1, evalEvery: 2, checkpointEvery: 3, earlyStopPatience: null, seed: 7 },
  lora: { method: 'lora', lora: { rank: 4, dropout: 0.1 }, epochs: 2, batchSize: 2, gradAccumSteps: 2, blockSize: 16, learningRate: 1e-2, evalEvery: 2, checkpointEvery: 3, earlyStopPatience: 2, seed: 7 },
};

for (const method of ['full', 'lora'] as const) {
  test(`${method}: a run killed after its last checkpoint and resumed ends exactly where an uninterrupted run ends`, async () => {
    const text = [{ name: 'fox', text: FOX.slice(0, 700) }];
    const straight = await runTraining({ ...prepare(bytes, text, byteTokenizer(), RESUMABLE[method]), sink: new MemoryCheckpointSink() });
    assert.ok(straight.totalSteps >= 8, `enough steps to kill the run between checkpoints (${straight.totalSteps})`);

    const sink = new MemoryCheckpointSink();
    const crash = new Error('simulated crash');
    await assert.rejects(
      runTraining({
        ...prepare(bytes, text, byteTokenizer(), RESUMABLE[method]),
        sink,
        onEvent: (e) => {
          if (e.type === 'progress' && e.step === 5) throw crash;
        },
      }),
      crash,
    );
    const latest = await sink.loadLatest();
    assert.equal(latest?.meta.step, 3, 'the last checkpoint before the crash');

    const events: TrainingEvent[] = [];
    const resumed = await runTraining({ ...prepare(bytes, text, byteTokenizer(), RESUMABLE[method]), sink, resume: true, onEvent: (e) => events.push(e) });
    assert.equal(resumed.resumedFromStep, 3);
    const firstStep = events.find((e): e is Extract<TrainingEvent, { type: 'progress' }> => e.type === 'progress');
    assert.equal(firstStep?.step, 4, 'the steps lost in the crash are redone');
    assert.equal(resumed.step, straight.step);
    assert.equal(resumed.status, straight.status);
    assert.ok(Math.abs(resumed.finalTrainLoss! - straight.finalTrainLoss!) < 1e-6, `${resumed.finalTrainLoss} vs ${straight.finalTrainLoss}`);
    assert.ok(Math.abs(resumed.finalHeldOutLoss! - straight.finalHeldOutLoss!) < 1e-6);
    const name = method === 'full' ? 'h.1.mlp.c_fc.weight' : 'h.1.attn.c_attn.lora_b';
    const [a, b] = [await weightsOf(straight, name), await weightsOf(resumed, name)];
    assert.ok(maxAbsDiff(a, b) < 1e-6, `${name} differs by ${maxAbsDiff(a, b)}`);
    assert.ok(a.some((v) => v !== 0));
    assert.deepEqual(
      resumed.history.map((h) => h.trainLoss?.toFixed(5)),
      straight.history.map((h) => h.trainLoss?.toFixed(5)),
    );
    straight.weights.dispose();
    resumed.weights.dispose();
  });
}

test('pause holds the run between steps; cancel stops it with a checkpoint it resumes from', async () => {
  const text = [{ name: 'fox', text: FOX.slice(0, 500) }];
  const options: TrainingOptions = { method: 'full', epochs: 2, batchSize: 2, gradAccumSteps: 1, blockSize: 16, learningRate: 5e-3, dropout: 0, evalEvery: 100, seed: 3 };
  const straight = await runTraining(prepare(bytes, text, byteTokenizer(), options));

  const control = new TrainingControl();
  const sink = new MemoryCheckpointSink();
  const events: string[] = [];
  let resumedAt = 0;
  const cancelled = await runTraining({
    ...prepare(bytes, text, byteTokenizer(), options),
    sink,
    control,
    onEvent: (e) => {
      events.push(e.type === 'progress' ? `step ${e.step}` : e.type);
      if (e.type === 'progress' && e.step === 2) {
        control.pause();
        setTimeout(() => {
          resumedAt = e.step;
          control.resume();
        }, 30);
      }
      if (e.type === 'progress' && e.step === 4) control.cancel();
    },
  });
  assert.deepEqual(events.slice(events.indexOf('step 2'), events.indexOf('step 2') + 4), ['step 2', 'paused', 'resumed', 'step 3']);
  assert.equal(resumedAt, 2);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal(cancelled.step, 4);
  const checkpoint = await sink.loadLatest();
  assert.equal(checkpoint?.meta.reason, 'cancelled');
  assert.equal(checkpoint?.meta.step, 4);

  const finished = await runTraining({ ...prepare(bytes, text, byteTokenizer(), options), sink, resume: true });
  assert.equal(finished.status, 'completed');
  assert.ok(Math.abs(finished.finalTrainLoss! - straight.finalTrainLoss!) < 1e-6);
  for (const r of [straight, cancelled, finished]) r.weights.dispose();

  const aborter = new AbortController();
  const aborted = await runTraining({
    ...prepare(bytes, text, byteTokenizer(), options),
    signal: aborter.signal,
    onEvent: (e) => e.type === 'progress' && e.step === 1 && aborter.abort(),
  });
  assert.equal(aborted.status, 'cancelled');
  assert.equal(aborted.step, 1);
  aborted.weights.dispose();
});

test('no tensor leaks: the same tensor count at every step, and the starting count after the run', async () => {
  const start = tf.memory().numTensors;
  const counts: number[] = [];
  const run = prepare(bytes, [{ name: 'fox', text: FOX.slice(0, 400) }], byteTokenizer(), {
    method: 'lora',
    epochs: 2,
    batchSize: 2,
    gradAccumSteps: 2,
    blockSize: 16,
    evalEvery: 2,
    earlyStopPatience: 5,
  });
  const result = await runTraining({ ...run, sink: new MemoryCheckpointSink(), onEvent: (e) => e.type === 'progress' && counts.push(tf.memory().numTensors) });
  assert.ok(counts.length >= 4);
  // Evaluations may replace the kept best weights, never add to them.
  assert.ok(counts.every((c) => c === counts[0]), `tensor counts per step: ${counts.join(' ')}`);
  result.weights.dispose();
  assert.equal(tf.memory().numTensors, start);
});

test('early stopping stops when the held-out loss stops improving and returns the best weights', async () => {
  // Letters in no order: the model first learns their frequencies (held-out loss falls), then memorises
  // the training sequence, which does not generalise (held-out loss rises).
  let state = 12345;
  const letters = Array.from({ length: 900 }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return 'abcdefghij'[(state >>> 16) % 10];
  }).join('');
  const run = prepare(bytes, [{ name: 'noise', text: letters }], byteTokenizer(), {
    method: 'full',
    epochs: 40,
    batchSize: 8,
    gradAccumSteps: 1,
    blockSize: 32,
    learningRate: 2e-2,
    warmupSteps: 1,
    dropout: 0,
    heldOutFraction: 0.2,
    evalEvery: 5,
    earlyStopPatience: 2,
  });
  const evaluations: number[] = [];
  const result = await runTraining({ ...run, onEvent: (e) => e.type === 'evaluation' && evaluations.push(e.heldOutLoss) });
  assert.equal(result.status, 'early-stopped');
  assert.ok(result.step < result.totalSteps);
  assert.equal(result.finalHeldOutLoss, result.bestHeldOutLoss);
  assert.ok(evaluations.slice(-2).every((l) => l > result.bestHeldOutLoss!), `${evaluations.join(' ')}`);
  const again = await result.weights.withModelParams(run.params, (params) => evaluateLoss(params, run.config, run.dataset));
  assert.ok(Math.abs((again as number) - result.bestHeldOutLoss!) < 1e-6, 'the returned weights are the best ones');
  result.weights.dispose();
});
