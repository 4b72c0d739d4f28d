// scripts/train-default.ts end to end with a tiny shape on four small books: tokenizer, training stopped at a
// checkpoint and resumed, export, held-out evaluation and the model card — into a temp folder.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { trainDefault } from '../../scripts/train-default.js';
import { loadModel } from '../../worker/model/load.js';
import { SafetensorsReader } from '../../worker/model/safetensors.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { sharedDir, tempDir, useWasm } from '../train/helpers.js';

before(useWasm);

const BOOKS = ['carroll-alice-in-wonderland', 'dickens-a-christmas-carol', 'irving-legend-of-sleepy-hollow', 'swift-a-modest-proposal'];

test('the default-model pipeline trains, stops, resumes and exports a loadable model with a card', async () => {
  const root = tempDir('train-default');
  const corpus = path.join(root, 'corpus');
  mkdirSync(corpus);
  for (const b of BOOKS) copyFileSync(path.join(sharedDir, 'corpus', `${b}.txt.gz`), path.join(corpus, `${b}.txt.gz`));
  const work = path.join(root, 'work');
  const out = path.join(root, 'default-model');
  const args = [
    '--corpus', corpus, '--work', work, '--out', out, '--held-out', 'swift-a-modest-proposal',
    '--vocab-size', '512', '--layers', '1', '--embd', '32', '--heads', '2', '--context', '32',
    '--max-steps', '20', '--batch-size', '2', '--grad-accum', '1', '--eval-every', '10', '--checkpoint-every', '5',
    '--eval-tokens', '256', '--card-eval-bytes', '3000', '--backend', 'wasm',
  ];

  // First session: stopped right after its first checkpoint, as a killed process would be.
  const aborter = new AbortController();
  const lines: string[] = [];
  const first = await trainDefault(args, {
    log: (l) => {
      lines.push(l);
      if (l.startsWith('checkpoint at step')) aborter.abort();
    },
    signal: aborter.signal,
  });
  assert.equal(first, 130, lines.join('\n'));
  assert.ok(!existsSync(out));
  assert.ok(existsSync(path.join(work, 'tokenizer', 'vocab.json')));
  await assert.rejects(trainDefault(args, { log: () => {} }), /already holds a run/);

  await assert.rejects(trainDefault([...args, '--new-length', '16'], { log: () => {} }), /--new-length changes a run being resumed/);
  await assert.rejects(trainDefault([...args, '--resume', '--new-length', '3'], { log: () => {} }), /at step 5 already/);

  // Second session: resumed, and shortened to 16 steps (the schedule decays over the new length).
  const before = tf.memory().numTensors;
  const resumed: string[] = [];
  assert.equal(await trainDefault([...args, '--resume', '--new-length', '16'], { log: (l) => resumed.push(l) }), 0, resumed.join('\n'));
  assert.ok(resumed.some((l) => l.startsWith('tokenizer: cached')), resumed.join('\n'));
  assert.ok(resumed.some((l) => /^resumed from step [1-9]/.test(l)), resumed.join('\n'));
  assert.ok(resumed.some((l) => l.startsWith('step 16/16')), resumed.join('\n'));
  assert.equal(tf.memory().numTensors, before);

  assert.deepEqual(readdirSync(out).sort(), ['MODEL_CARD.md', 'config.json', 'merges.txt', 'model.safetensors', 'vocab.json']);
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.vocab_size, 512);
  assert.equal(config.n_positions, 32);
  assert.equal(config.eos_token_id, 511);
  const tokenizer = await loadTokenizer(out);
  assert.equal(tokenizer.vocabSize, 512);
  assert.equal(tokenizer.eosTokenId, 511);
  const reader = SafetensorsReader.open(path.join(out, 'model.safetensors'));
  const dtype = reader.info('wte.weight').dtype;
  reader.close();
  assert.ok(dtype === 'F16' || dtype === 'F32');
  const model = await loadModel(out);
  model.dispose();

  const card = readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8');
  assert.match(card, /1 layers, width 32, 2 heads/);
  assert.match(card, /16 optimizer steps/);
  assert.match(card, /planned for 20 steps and changed to 16 at step 5/);
  assert.match(card, /--max-steps 20 [^\n]*\n# stopped \(Ctrl-C\) at step 5, then:\nnpm run train:default -- --resume --new-length 16 /);
  assert.match(card, /swift-a-modest-proposal \| [\d,]+ \| \d+\.\d{4} \| [\d.]+ \| \d+\.\d{4} \|/);
  const bpb = Number(/\*\*all\*\*.*\*\*(\d+\.\d+)\*\*/.exec(card)?.[1]);
  // A byte-level model that learned nothing scores 8 bits per byte; 20 tiny steps must already beat random.
  assert.ok(bpb > 0 && bpb < 8, `bits per byte ${bpb}`);
  assert.match(card, /It was a dark and stormy night, and/);
  assert.match(card, /Held out, never trained on.*swift-a-modest-proposal/);
});
