// Texts → token streams → blocks, the held-out split, the per-epoch order, and the plan's numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSchedule, buildDataset, makeBatch, type DatasetOptions } from '../../worker/train/data.js';
import { planTraining, resolveTrainingOptions } from '../../worker/train/options.js';
import { byteTokenizer, tinyByteConfig } from './helpers.js';

const tokenizer = byteTokenizer();
const EOS = 256;
const options = (o: Partial<DatasetOptions> = {}): DatasetOptions => ({ blockSize: 8, stride: 8, heldOutFraction: 0.1, maxHeldOutTokens: 1e6, seed: 1, ...o });

test('one document: end-of-text appended, the tail held out, blocks cover the rest', () => {
  const text = 'abcdefghij'.repeat(10); // 100 bytes + end-of-text
  const d = buildDataset([{ name: 'only', text }], tokenizer, options());
  assert.equal(d.split, 'tail');
  assert.equal(d.train.length + d.heldOut.length, 101);
  assert.equal(d.heldOut.length, 10);
  assert.equal(d.heldOut[d.heldOut.length - 1], EOS);
  assert.deepEqual([...d.train.slice(0, 3)], [97, 98, 99]);
  // 91 training tokens: blocks of 9 every 8 tokens, plus one flush with the end.
  assert.deepEqual(d.trainBlocks.map((b) => b.start), [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 82]);
  assert.ok(d.trainBlocks.every((b) => b.length === 9 && b.start + 9 <= d.train.length));
  // Held-out windows score every token after the first exactly once.
  assert.equal(d.heldOutBlocks.reduce((n, b) => n + b.length - 1, 0), d.heldOut.length - 1);
});

test('several documents: whole documents are held out, chosen by the seed', () => {
  const docs = Array.from({ length: 10 }, (_, i) => ({ name: `doc${i}`, text: `document ${i} `.repeat(5) }));
  const a = buildDataset(docs, tokenizer, options({ seed: 1 }));
  const b = buildDataset(docs, tokenizer, options({ seed: 1 }));
  assert.equal(a.split, 'documents');
  assert.equal(a.heldOutDocuments.length, 1);
  assert.deepEqual(a.heldOutDocuments, b.heldOutDocuments, 'same seed, same split');
  assert.equal(a.fingerprint, b.fingerprint);
  assert.ok(docs.some((_, seed) => buildDataset(docs, tokenizer, options({ seed: seed + 2 })).heldOutDocuments[0] !== a.heldOutDocuments[0]), 'the seed picks');
  assert.ok(!a.trainDocuments.includes(a.heldOutDocuments[0]));
  assert.equal(a.trainDocuments.length + a.heldOutDocuments.length, 10);
});

test('documents too big to hold out one whole fall back to the tail', () => {
  const docs = [{ name: 'big', text: 'x'.repeat(500) }, { name: 'other', text: 'y'.repeat(480) }];
  const d = buildDataset(docs, tokenizer, options());
  assert.equal(d.split, 'tail');
  assert.deepEqual(d.heldOutDocuments, ['other']);
});

test('stride below the block size overlaps blocks; a short text shrinks the block; no held-out on request', () => {
  const text = 'abcdefghij'.repeat(4);
  const overlapped = buildDataset([{ name: 't', text }], tokenizer, options({ stride: 4, heldOutFraction: 0 }));
  assert.equal(overlapped.split, 'none');
  assert.equal(overlapped.heldOutBlocks.length, 0);
  assert.deepEqual(overlapped.trainBlocks.slice(0, 3).map((b) => b.start), [0, 4, 8]);
  const short = buildDataset([{ name: 't', text: 'hello' }], tokenizer, options({ blockSize: 64, heldOutFraction: 0 }));
  assert.equal(short.blockSize, 5);
  assert.deepEqual(short.trainBlocks, [{ start: 0, length: 6 }]);
  assert.throws(() => buildDataset([{ name: 'e', text: '' }], tokenizer, options()), /no text to train on/);
});

test('held-out evaluation is capped, evenly', () => {
  const d = buildDataset([{ name: 't', text: 'z'.repeat(2000) }], tokenizer, options({ heldOutFraction: 0.5, maxHeldOutTokens: 80 }));
  assert.equal(d.heldOutBlocks.length, 10);
  assert.ok(d.heldOutTokensSkipped > 0);
  assert.ok(d.heldOutBlocks[9].start > d.heldOut.length / 2, 'spread over the whole held-out text');
});

test('batches: inputs and targets shifted by one, row after row', () => {
  const stream = Int32Array.from([10, 11, 12, 13, 14, 15, 16]);
  const batch = makeBatch(stream, [{ start: 0, length: 4 }, { start: 3, length: 4 }]);
  assert.deepEqual([...batch.inputs], [10, 11, 12, 13, 14, 15]);
  assert.deepEqual([...batch.targets], [11, 12, 13, 14, 15, 16]);
});

test('each epoch visits every block once, in an order that depends on the seed and the epoch', () => {
  const schedule = new BatchSchedule(23, 3, 2, 9);
  assert.equal(schedule.microBatchesPerEpoch, 8);
  assert.equal(schedule.stepsPerEpoch, 4);
  const epoch = (e: number) => Array.from({ length: 4 }, (_, s) => schedule.step(e, s)).flat(2);
  assert.deepEqual([...epoch(0)].sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  assert.notDeepEqual(epoch(0), epoch(1));
  const again = new BatchSchedule(23, 3, 2, 9);
  assert.deepEqual(Array.from({ length: 4 }, (_, s) => again.step(1, s)).flat(2), epoch(1), 'a fresh schedule (a resumed run) agrees');
  assert.deepEqual(schedule.step(0, 3).map((m) => m.length), [3, 2], 'the last step takes what is left');
});

test('planTraining tells tokens, blocks, steps per epoch and total steps before training', () => {
  const config = tinyByteConfig();
  const resolved = resolveTrainingOptions({ method: 'lora', epochs: 3, blockSize: 8, batchSize: 2, gradAccumSteps: 2 }, config);
  const d = buildDataset([{ name: 'only', text: 'abcdefghij'.repeat(10) }], tokenizer, options());
  const plan = planTraining(d, resolved, config);
  assert.equal(plan.trainTokens, 91);
  assert.equal(plan.heldOutTokens, 10);
  assert.equal(plan.trainBlocks, 12);
  assert.equal(plan.stepsPerEpoch, 3); // 12 blocks / 2 per batch = 6 micro-batches / 2 per step
  assert.equal(plan.totalSteps, 9);
  assert.equal(plan.tokensPerStep, 32);
  assert.equal(plan.warmupSteps, 1);
  assert.equal(plan.tokensToTrain, 3 * 12 * 8);
  assert.equal(plan.evalEvery, 1, 'about ten evaluations per run: every step of a 9-step run');
  assert.equal(plan.evaluations, 10, 'one before the first step, one after each');
  assert.equal(plan.trainableParameters, 2 * 8 * (32 + 96), 'rank 8 adapters on c_attn of 2 layers');
  const capped = planTraining(d, resolveTrainingOptions({ method: 'lora', epochs: 3, blockSize: 8, batchSize: 2, gradAccumSteps: 2, maxSteps: 4 }, config), config);
  assert.equal(capped.totalSteps, 4);
});

test('options are checked, with messages naming the option', () => {
  const config = tinyByteConfig();
  assert.throws(() => resolveTrainingOptions({ blockSize: 64 }, config), /blockSize 64 is longer than the model's context of 32/);
  assert.throws(() => resolveTrainingOptions({ learningRate: -1 }, config), /learningRate/);
  assert.throws(() => resolveTrainingOptions({ method: 'lora', fromScratch: true }, config), /from scratch needs method "full"/);
  assert.throws(() => resolveTrainingOptions({ lora: { rank: 0 } }, config), /rank/);
  const lora = resolveTrainingOptions({}, config);
  assert.deepEqual(lora.lora, { rank: 8, alpha: 16, dropout: 0.05, targets: ['attn.c_attn'] });
  assert.equal(lora.learningRate, 3e-4);
  assert.equal(resolveTrainingOptions({ method: 'full' }, config).learningRate, 5e-5);
  assert.equal(resolveTrainingOptions({ method: 'full', fromScratch: true }, config).learningRate, 1e-3);
  for (const options of [lora, resolveTrainingOptions({ method: 'full', maxSteps: 9, warmupSteps: 2, maxGradNorm: null }, config)]) {
    assert.deepEqual(resolveTrainingOptions(options, config), options, 'resolving is idempotent (a checkpoint stores resolved options)');
  }
});
