import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FinetunePlan, FinetuneRun } from '../../main/ipc/contract.js';
import {
  DEFAULT_FORM,
  formatDuration,
  lossChart,
  MAX_FILE_BYTES,
  perplexityText,
  planSummary,
  progressOf,
  readPickedFiles,
  settingsFromForm,
  upsertRun,
} from '../../renderer/src/lib/finetune.js';

test('the settings form: blanks keep the defaults, bad numbers are named', () => {
  assert.deepEqual(settingsFromForm(DEFAULT_FORM), { settings: { method: 'lora' }, error: null });
  assert.deepEqual(settingsFromForm({ ...DEFAULT_FORM, epochs: '2', maxSteps: ' 8 ', learningRate: '1e-3', loraRank: '4' }), {
    settings: { method: 'lora', epochs: 2, maxSteps: 8, learningRate: 1e-3, loraRank: 4 },
    error: null,
  });
  assert.deepEqual(settingsFromForm({ ...DEFAULT_FORM, method: 'full', loraRank: 'x' }), { settings: { method: 'full' }, error: null }, 'rank is ignored for full');
  assert.match(settingsFromForm({ ...DEFAULT_FORM, epochs: '1.5' }).error ?? '', /Epochs must be a whole number/);
  assert.match(settingsFromForm({ ...DEFAULT_FORM, learningRate: '-1' }).error ?? '', /Learning rate/);
});

test('picked files: non-text, too large and binary files are named, and the large one is never read', async () => {
  let readLarge = false;
  const file = (name: string, text: string, size = text.length) => ({ name, size, text: async () => text });
  const { files, errors } = await readPickedFiles([
    file('notes.md', '# Notes\nText.'),
    file('photo.png', 'PNG'),
    { name: 'huge.txt', size: MAX_FILE_BYTES + 1, text: async () => ((readLarge = true), '') },
    file('fake.txt', 'a\u0000b'),
  ]);
  assert.deepEqual(files, [{ name: 'notes.md', text: '# Notes\nText.' }]);
  assert.equal(errors.length, 3);
  assert.match(errors[0]!, /photo\.png.*not a \.txt or \.md/);
  assert.match(errors[1]!, /huge\.txt.*too large/);
  assert.match(errors[2]!, /fake\.txt.*not a text file/);
  assert.equal(readLarge, false);
});

const plan: FinetunePlan = { documents: 2, trainTokens: 12345, heldOutTokens: 1000, totalSteps: 30, tokensPerStep: 1024, tokensToTrain: 30000, trainableParameters: 5, tokensPerSecond: null, estimatedMs: null };

test('the plan says when the time is not known, and estimates it once the speed is', () => {
  const unknown = planSummary(plan);
  assert.match(unknown.tokens, /12,345 tokens/);
  assert.equal(unknown.steps, '30 training steps');
  assert.match(unknown.time, /not known yet/);
  assert.match(planSummary({ ...plan, tokensPerSecond: 100, estimatedMs: 300_000 }).time, /About 5 min 00 s \(at 100 tokens\/s/);
  assert.equal(formatDuration(59_400), '59 s');
  assert.equal(formatDuration(3_720_000), '1 h 02 min');
});

const run: FinetuneRun = {
  id: 'r', name: 'n', modelName: 'm', method: 'lora', state: 'running', settings: { method: 'lora' }, step: 3, totalSteps: 12, points: [],
  perplexityBefore: null, perplexityAfter: null, tokensPerSecond: 50, etaMs: 90_000, createdAt: 1, updatedAt: 1, finishedAt: null, error: null, styleId: null,
};

test('progress: fraction and ETA while running; the end states say what happened', () => {
  assert.deepEqual(progressOf(run), { fraction: 0.25, label: 'Training — step 3 of 12, about 1 min 30 s left' });
  assert.equal(progressOf({ ...run, etaMs: null }).label, 'Training — step 3 of 12');
  assert.equal(progressOf({ ...run, state: 'done', step: 12 }).fraction, 1);
  assert.equal(progressOf({ ...run, state: 'failed', error: { code: 'X', message: 'boom' } }).label, 'Failed — boom');
  assert.equal(perplexityText(null), '—');
  assert.equal(perplexityText(12.345), '12.35');
});

test('runs are replaced by id and kept newest first', () => {
  const a = { ...run, id: 'a', createdAt: 1 };
  const b = { ...run, id: 'b', createdAt: 2 };
  assert.deepEqual(upsertRun([a], b).map((r) => r.id), ['b', 'a']);
  assert.deepEqual(upsertRun([b, a], { ...a, step: 9 }).map((r) => [r.id, r.step]), [['b', 3], ['a', 9]]);
});

test('the loss chart scales both curves into the box; no points, no paths', () => {
  const chart = lossChart([{ step: 0, heldOutLoss: 4 }, { step: 1, trainLoss: 3 }, { step: 2, trainLoss: 2, heldOutLoss: 2.5 }], 108, 58, 4);
  assert.equal(chart.yMin, 2);
  assert.equal(chart.yMax, 4);
  assert.equal(chart.train, 'M54.0,29.0 L104.0,54.0');
  assert.equal(chart.heldOut, 'M4.0,4.0 L104.0,41.5');
  assert.deepEqual(lossChart([], 100, 50), { train: '', heldOut: '', yMin: 0, yMax: 0, xMax: 1 });
  const flat = lossChart([{ step: 1, trainLoss: 2 }, { step: 2, trainLoss: 2 }], 100, 50, 0);
  assert.equal(flat.train, 'M50.0,25.0 L100.0,25.0');
});
