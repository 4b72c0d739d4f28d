// The folder checkpoint store: exact round trip, newest first, old ones pruned, half-written ones ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { FileCheckpointSink, type CheckpointMeta, type TrainingCheckpoint } from '../../worker/train/checkpoint.js';
import { tempDir } from './helpers.js';

function checkpoint(step: number): TrainingCheckpoint {
  const meta = { format: 1, step, reason: 'periodic', rngState: 4000000000 + step, history: [{ step, trainLoss: 1 / 3 }] } as unknown as CheckpointMeta;
  const tensors = new Map([
    ['param/h.0.attn.c_attn.lora_a', { shape: [2, 3], data: Float32Array.from([1e-30, -0, Math.PI, -2.5, 3e38, step]) }],
    ['adam_v/h.0.attn.c_attn.lora_a', { shape: [2, 3], data: new Float32Array(6).fill(1e-12) }],
  ]);
  return { meta, tensors };
}

test('checkpoints round-trip exactly; the newest complete one is loaded; only the newest two are kept', async () => {
  const dir = path.join(tempDir('checkpoints'), 'run');
  const sink = new FileCheckpointSink(dir, 2);
  assert.equal(await sink.loadLatest(), null);
  for (const step of [3, 6, 9]) await sink.save(checkpoint(step));
  assert.deepEqual(readdirSync(dir).sort(), ['step-000006', 'step-000009']);

  // A crash mid-write leaves a partial folder; a folder without its state is not a checkpoint.
  mkdirSync(path.join(dir, '.step-000012.partial'));
  mkdirSync(path.join(dir, 'step-000015'));
  const latest = await sink.loadLatest();
  assert.equal(latest?.meta.step, 9);
  assert.equal(latest?.meta.rngState, 4000000009);
  assert.deepEqual(latest?.meta.history, [{ step: 9, trainLoss: 1 / 3 }]);
  const original = checkpoint(9).tensors;
  assert.deepEqual([...latest!.tensors.keys()], [...original.keys()]);
  for (const [name, t] of original) {
    assert.deepEqual(latest!.tensors.get(name)!.shape, t.shape);
    assert.deepEqual(latest!.tensors.get(name)!.data, t.data, name);
  }
});

test('saving the same step again replaces it', async () => {
  const sink = new FileCheckpointSink(path.join(tempDir('checkpoints'), 'run'));
  await sink.save(checkpoint(4));
  const final = checkpoint(4);
  final.meta.reason = 'final';
  await sink.save(final);
  assert.equal((await sink.loadLatest())?.meta.reason, 'final');
});
