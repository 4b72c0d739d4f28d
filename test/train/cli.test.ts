// `inkling finetune` on the tiny fixture: trains a few steps, writes checkpoints and a loadable model,
// stops on a signal with a checkpoint, and resumes.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { finetuneCommand, type FinetuneIo } from '../../main/cli/finetune.js';
import { loadModel } from '../../worker/model/load.js';
import { tempDir, tinyGpt2, useWasm } from './helpers.js';

before(useWasm);

function dataDir(): string {
  const dir = tempDir('finetune-data');
  mkdirSync(path.join(dir, 'notes'));
  writeFileSync(path.join(dir, 'a.txt'), 'The lighthouse keeper wrote every evening. The sea was grey and the gulls were loud.\n'.repeat(6));
  writeFileSync(path.join(dir, 'notes', 'b.md'), '# Log\n\nThe lamp was lit at dusk. The keeper counted the ships and wrote their names.\n'.repeat(6));
  writeFileSync(path.join(dir, 'c.txt'), 'Fog again today. The keeper wound the clock and wrote to his sister in town.\n'.repeat(6));
  writeFileSync(path.join(dir, 'ignored.png'), 'not text');
  return dir;
}

/** Runs the command in-process, collecting what it prints. */
async function run(args: string[], onLine?: (line: string, io: { abort: () => void }) => void) {
  const lines: string[] = [];
  const errors: string[] = [];
  const aborter = new AbortController();
  const io: FinetuneIo = {
    stdout: {
      write: (text: string) => {
        for (const line of text.split('\n').filter(Boolean)) {
          lines.push(line);
          onLine?.(line, { abort: () => aborter.abort() });
        }
      },
    },
    stderr: { write: (text: string) => errors.push(text) },
    signal: aborter.signal,
  };
  const code = await finetuneCommand(args, io);
  return { code, lines, errors };
}

const SMALL = ['--block-size', '16', '--batch-size', '2', '--grad-accum', '1', '--eval-every', '2', '--checkpoint-every', '2', '--lr', '1e-2'];

test('trains a few steps with JSON progress, writes checkpoints and a model loadModel loads', async () => {
  const out = tempDir('finetune-out');
  const before = tf.memory().numTensors;
  const { code, lines, errors } = await run(['--model', tinyGpt2, '--data', dataDir(), '--out', out, '--max-steps', '4', '--json', ...SMALL]);
  assert.equal(code, 0, errors.join(''));
  const events = lines.map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
  const plan = events[0];
  assert.equal(plan.event, 'plan');
  assert.equal(plan.documents, 3, 'the .txt and .md files, not the .png');
  assert.equal(plan.totalSteps, 4);
  const progress = events.filter((e) => e.event === 'progress');
  assert.deepEqual(progress.map((e) => e.step), [1, 2, 3, 4]);
  for (const key of ['trainLoss', 'learningRate', 'tokensPerSecond', 'elapsedMs', 'etaMs', 'epoch']) assert.equal(typeof progress[0][key], 'number', key);
  assert.ok(events.some((e) => e.event === 'evaluation' && e.step === 0));
  const done = events[events.length - 1];
  assert.equal(done.event, 'done');
  assert.equal(done.status, 'completed');
  assert.ok((done.heldOutPerplexityAfter as number) < (done.heldOutPerplexityBefore as number));

  assert.ok(readdirSync(path.join(out, 'checkpoints')).includes('step-000004'));
  const model = await loadModel(path.join(out, 'model'));
  assert.equal(model.config.nEmbd, 32);
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('a stopped run resumes with --resume; a run is not overwritten without it', async () => {
  const out = tempDir('finetune-resume');
  const data = dataDir();
  const args = ['--model', tinyGpt2, '--data', data, '--out', out, '--max-steps', '6', ...SMALL];
  const stopped = await run(args, (line, io) => line.startsWith('step 3/') && io.abort());
  assert.equal(stopped.code, 130);
  assert.match(stopped.lines.join('\n'), /cancelled at step 3\/6; add --resume/);
  assert.ok(!existsSync(path.join(out, 'model')));

  const refused = await run(args);
  assert.equal(refused.code, 2);
  assert.match(refused.errors.join(''), /add --resume/);

  const resumed = await run([...args, '--resume', '--epochs', '9']);
  assert.equal(resumed.code, 0, resumed.errors.join(''));
  assert.match(resumed.errors.join(''), /ignoring epochs/);
  assert.match(resumed.lines.join('\n'), /resuming from step 3/);
  assert.ok(resumed.lines.some((l) => l.startsWith('step 4/6 ')), resumed.lines.join('\n'));
  assert.match(resumed.lines[resumed.lines.length - 1], /^done \(completed\) after 6\/6 steps; held-out perplexity [\d.]+ → [\d.]+; model written to /);
  assert.ok(existsSync(path.join(out, 'model', 'model.safetensors')));
});

test('usage errors exit 2 with a message naming the problem', async () => {
  const missing = await run(['--data', 'x']);
  assert.equal(missing.code, 2);
  assert.match(missing.errors.join(''), /--model/);
  const nothing = await run(['--model', tinyGpt2, '--data', dataDir(), '--out', tempDir('empty'), '--resume']);
  assert.equal(nothing.code, 2);
  assert.match(nothing.errors.join(''), /nothing to resume/);
  const badMethod = await run(['--model', tinyGpt2, '--data', dataDir(), '--method', 'qlora']);
  assert.equal(badMethod.code, 2);
  const badTarget = await run(['--model', tinyGpt2, '--data', dataDir(), '--targets', 'c_zz']);
  assert.equal(badTarget.code, 2);
  assert.match(badTarget.errors.join(''), /unknown LoRA target "c_zz"/);
});

test('full training from scratch (random weights of the model\'s shape) prints text progress and exports', async () => {
  const out = tempDir('finetune-scratch');
  const before = tf.memory().numTensors;
  const { code, lines, errors } = await run(['--model', tinyGpt2, '--data', dataDir(), '--out', out, '--method', 'full', '--from-scratch', '--max-steps', '2', ...SMALL]);
  assert.equal(code, 0, errors.join(''));
  assert.match(lines.join('\n'), /plan: full, 3 document\(s\)/);
  assert.ok(lines.some((l) => /^step 2\/2 epoch 1\/\d+ loss [\d.]+ lr [\d.e+-]+ held-out [\d.]+ \(ppl [\d.]+\) [\d.]+ tok\/s elapsed \d+s eta \d+s$/.test(l)), lines.join('\n'));
  const model = await loadModel(path.join(out, 'model'));
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});
