// Fine-tuning in the store: runs and their curves, checkpoints as checksummed blobs, styles, and a run
// killed with the app that resumes from SQLite and ends where an uninterrupted run ends.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { openStore, StoreCheckpointSink, StoreError } from '../../main/store/index.js';
import type { CheckpointMeta, TrainingCheckpoint } from '../../worker/train/checkpoint.js';
import { datasetOptions, resolveTrainingOptions, type TrainingOptions } from '../../worker/train/options.js';
import { buildDataset } from '../../worker/train/data.js';
import { runTraining } from '../../worker/train/trainer.js';
import { byteTokenizer, randomModel, tinyByteConfig, useWasm, type TestModel } from '../train/helpers.js';
import { manualClock, tempDataDir } from './helpers.js';

function checkpoint(step: number, reason: CheckpointMeta['reason'] = 'periodic'): TrainingCheckpoint {
  const meta = { format: 1, step, reason, rngState: 4000000000 + step, options: { lora: { rank: 2 } }, history: [{ step, trainLoss: 1 / 3 }] } as unknown as CheckpointMeta;
  const tensors = new Map([
    ['param/h.0.attn.c_attn.lora_a', { shape: [2, 3], data: Float32Array.from([1e-30, -0, Math.PI, -2.5, 3e38, step]) }],
    ['adam_m/h.0.attn.c_attn.lora_a', { shape: [2, 3], data: new Float32Array(6).fill(1e-12) }],
  ]);
  return { meta, tensors };
}

const newRun = { name: 'My letters', modelName: 'tiny', settings: { method: 'lora' as const }, texts: [{ name: 'a.txt', text: 'hello' }], totalSteps: 10 };

test('a run records its state, curve and perplexities; interrupted runs come back paused', () => {
  const clock = manualClock();
  const dir = tempDataDir();
  let store = openStore(dir, { now: clock.now });
  const run = store.finetune.createRun(newRun);
  assert.equal(run.state, 'queued');
  assert.deepEqual(store.finetune.runTexts(run.id), [{ name: 'a.txt', text: 'hello' }]);
  clock.advance(1000);
  store.finetune.updateRun(run.id, { state: 'running', points: [{ step: 0, heldOutLoss: 3 }], perplexityBefore: Math.exp(3) });
  store.finetune.updateRun(run.id, { step: 1, points: [{ step: 1, trainLoss: 2.5 }] });
  const updated = store.finetune.updateRun(run.id, { step: 2, points: [{ step: 2, trainLoss: 2 }, { step: 1, heldOutLoss: 2.8 }], tokensPerSecond: 123 });
  assert.deepEqual(updated.points, [{ step: 0, heldOutLoss: 3 }, { step: 1, trainLoss: 2.5, heldOutLoss: 2.8 }, { step: 2, trainLoss: 2 }]);
  assert.equal(updated.updatedAt, run.createdAt + 1000);
  assert.equal(store.finetune.measuredSpeed('tiny', 'lora'), 123);
  assert.equal(store.finetune.measuredSpeed('tiny', 'full'), null);
  assert.throws(() => store.finetune.updateRun(run.id, { state: 'bogus' as 'done' }), StoreError);
  store.close();

  // The app was killed while the run was running: after the restart it is offered as paused.
  store = openStore(dir, { now: clock.now });
  const [offered] = store.finetune.pauseInterrupted();
  assert.equal(offered?.id, run.id);
  assert.equal(offered?.state, 'paused');
  assert.equal(store.finetune.getRun(run.id)?.step, 2);
  store.close();
});

test('checkpoints round-trip exactly through SQLite; only the newest two are kept; damage is detected', async () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  const run = store.finetune.createRun(newRun);
  const sink = new StoreCheckpointSink(store.finetune, run.id);
  assert.equal(await sink.loadLatest(), null);
  for (const step of [3, 6, 9]) await sink.save(checkpoint(step));
  const latest = await sink.loadLatest();
  assert.equal(latest?.meta.step, 9);
  assert.equal(latest?.meta.rngState, 4000000009);
  for (const [name, t] of checkpoint(9).tensors) {
    assert.deepEqual(latest!.tensors.get(name)!.shape, t.shape);
    assert.deepEqual(latest!.tensors.get(name)!.data, t.data, name);
  }
  assert.equal(store.models.list().filter((m) => m.kind === 'checkpoint').length, 2);

  // Flip a byte of the newest checkpoint's tensors: the one before it is used instead.
  const db = new Sqlite(store.path);
  db.prepare(
    `UPDATE model_file_chunks SET data = zeroblob(length(data)) WHERE file_id =
      (SELECT f.id FROM model_files f JOIN finetune_checkpoints c ON c.model_id = f.model_id
       WHERE c.step = 9 AND f.name = 'tensors.safetensors')`,
  ).run();
  db.close();
  assert.equal((await sink.loadLatest())?.meta.step, 6);

  // A style keeps the trained tensors only; deleting the run leaves the style.
  const style = await store.finetune.createStyle(run.id, checkpoint(6, 'final'));
  assert.equal(store.finetune.getRun(run.id)?.styleId, style.id);
  const weights = store.finetune.styleWeights(style.id);
  assert.deepEqual([...weights.tensors.keys()], ['h.0.attn.c_attn.lora_a']);
  assert.deepEqual(weights.lora, { rank: 2 });
  assert.equal(store.finetune.renameStyle(style.id, '  Letters ').name, 'Letters');
  assert.deepEqual(store.finetune.setActiveStyle(style.id).map((s) => s.active), [true]);
  assert.deepEqual(store.finetune.setActiveStyle(null).map((s) => s.active), [false]);
  assert.equal(await store.finetune.deleteRun(run.id), true);
  assert.equal(store.finetune.getStyle(style.id)?.runId, null);
  assert.equal(store.models.list().filter((m) => m.kind === 'checkpoint').length, 1, 'the run\'s checkpoints went with it');
  assert.equal(await store.finetune.deleteStyle(style.id), true);
  assert.equal(store.models.list().length, 0);
  assert.throws(() => store.finetune.styleWeights(style.id), (e: unknown) => e instanceof StoreError && e.code === 'NOT_FOUND');
  store.close();
});

let bytes: TestModel;
before(async () => {
  await useWasm();
  bytes = randomModel(tinyByteConfig(), 1);
});
after(() => bytes?.dispose());

const FOX = 'the quick brown fox jumps over the lazy dog. '.repeat(16);
const OPTIONS: TrainingOptions = {
  method: 'lora', lora: { rank: 4, dropout: 0.1 }, epochs: 2, batchSize: 2, gradAccumSteps: 2, blockSize: 16,
  learningRate: 1e-2, evalEvery: 2, checkpointEvery: 3, earlyStopPatience: null, seed: 7,
};

function prepare() {
  const options = resolveTrainingOptions(OPTIONS, bytes.config);
  const dataset = buildDataset([{ name: 'fox', text: FOX }], byteTokenizer(), datasetOptions(options));
  return { config: bytes.config, params: bytes.params, dataset, options };
}

test('a run killed with the app resumes from the store and ends where an uninterrupted run ends', async () => {
  const straight = await runTraining(prepare());
  try {
    const dir = tempDataDir();
    let store = openStore(dir);
    const run = store.finetune.createRun(newRun);
    const crash = new Error('simulated kill');
    await assert.rejects(
      runTraining({
        ...prepare(),
        sink: new StoreCheckpointSink(store.finetune, run.id),
        onEvent: (e) => {
          if (e.type === 'progress' && e.step === 5) throw crash;
        },
      }),
      crash,
    );
    store.close();

    store = openStore(dir);
    const resumed = await runTraining({ ...prepare(), sink: new StoreCheckpointSink(store.finetune, run.id), resume: true });
    try {
      assert.equal(resumed.resumedFromStep, 3);
      assert.equal(resumed.step, straight.step);
      assert.ok(Math.abs(resumed.finalTrainLoss! - straight.finalTrainLoss!) < 1e-6, `${resumed.finalTrainLoss} vs ${straight.finalTrainLoss}`);
      assert.ok(Math.abs(resumed.finalHeldOutLoss! - straight.finalHeldOutLoss!) < 1e-6);
    } finally {
      resumed.weights.dispose();
      store.close();
    }
  } finally {
    straight.weights.dispose();
  }
});
