// The classify, score, rewrite and train-classifier commands, run in-process on the tiny fixture.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { classifyCommand } from '../../main/cli/classify.js';
import { rewriteCommand } from '../../main/cli/rewrite.js';
import { scoreCommand } from '../../main/cli/score.js';
import { trainClassifierCommand } from '../../main/cli/train-classifier.js';
import type { CliIo } from '../../main/cli/task-io.js';
import { tempDir, tinyGpt2, useWasm, writeSkewedModel } from '../classify/helpers.js';
import { topicTexts } from '../classify/synthetic.js';

before(useWasm);

async function run(command: (args: string[], io: CliIo) => Promise<number>, args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await command(args, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } });
  return { code, stdout, stderr };
}

test('score prints one log-probability per candidate, as JSON too', async () => {
  const text = await run(scoreCommand, ['--model', tinyGpt2, '--context', 'Hello, my dog is', '--candidates', ' cute| a good boy']);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[1], /^-\d+\.\d{4}\t" a good boy"$/);
  const json = await run(scoreCommand, ['--model', tinyGpt2, '--context', 'Hello, my dog is', '--candidates', ' cute| a good boy', '--json']);
  const out = JSON.parse(json.stdout);
  assert.equal(out.candidates[1].tokenLogProbs.length, 3);
  assert.equal(Number(lines[1].split('\t')[0]), Number(out.candidates[1].logProb.toFixed(4)));
});

test('classify: calibration on by default, --no-calibrate shows the prior; file input; bad usage exits 2', async () => {
  const dir = tempDir('cli-classify');
  const skewed = await writeSkewedModel(4633 /* " negative" */, 3967 /* " positive" */, 8);
  const file = path.join(dir, 'texts.jsonl');
  writeFileSync(file, ['I loved it.', 'The plot was dull.', 'I want my money back.'].map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const raw = await run(classifyCommand, ['--model', skewed, '--labels', 'positive,negative', '--file', file, '--no-calibrate', '--json']);
  assert.equal(raw.code, 0, raw.stderr);
  const rawResults = raw.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rawResults.map((r) => r.label), ['negative', 'negative', 'negative']);
  const calibrated = await run(classifyCommand, ['--model', skewed, '--labels', 'positive,negative', '--file', file, '--json']);
  const results = calibrated.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(results.some((r) => r.label === 'positive'), 'calibration changed a decision');
  assert.ok(results[0].prior[1] > 0.99);
  const plain = await run(classifyCommand, ['--model', tinyGpt2, '--labels', 'good,bad', '--template', 'Text: {text}\\nVerdict:', '--text', 'Fine.']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^(good|bad)\t0\.\d{3}\t"Fine\."\n$/);
  const bad = await run(classifyCommand, ['--model', tinyGpt2, '--labels', 'a,b']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'inkling classify: classify needs exactly one of --text X or --file F.jsonl\n');
  const noSlot = await run(classifyCommand, ['--model', tinyGpt2, '--labels', 'a,b', '--template', 'none', '--text', 'x']);
  assert.equal(noSlot.code, 2);
  assert.match(noSlot.stderr, /no \{text\} slot/);
});

test('train-classifier prints accuracy and a confusion matrix, and classify --classifier uses the result', async () => {
  const dir = tempDir('cli-train-classifier');
  const csv = path.join(dir, 'topics.csv');
  const rows = topicTexts({ cooking: 30, space: 20 }, 11).map((e) => `"${e.text.replace(/"/g, '""')}",${e.label}`);
  writeFileSync(csv, 'body,topic\n' + rows.join('\n') + '\n');
  const out = path.join(dir, 'clf');
  const args = ['--model', tinyGpt2, '--data', csv, '--text-field', 'body', '--label-field', 'topic', '--epochs', '40', '--lr', '3e-2', '--out', out];
  const text = await run(trainClassifierCommand, args);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /held-out accuracy \d+\.\d% on 10 texts \(always "cooking": 60\.0%\)/);
  assert.match(text.stdout, /confusion matrix/);
  assert.match(text.stdout, /^ +cooking +\d+ +\d+$/m);
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual(config.labels, ['cooking', 'space']);
  assert.equal(config.evaluation.count, 10);

  const json = await run(trainClassifierCommand, [...args.slice(0, -1), path.join(dir, 'clf2'), '--json', '--epochs', '2']);
  const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.event), ['plan', 'epoch', 'epoch', 'evaluation', 'done']);
  assert.equal(events[3].confusion.flat().reduce((a: number, b: number) => a + b, 0), 10);

  const used = await run(classifyCommand, ['--classifier', out, '--text', 'the rocket and the moon and a comet', '--json']);
  assert.equal(used.code, 0, used.stderr);
  assert.ok(['cooking', 'space'].includes(JSON.parse(used.stdout).label));
  const missing = await run(trainClassifierCommand, ['--model', tinyGpt2, '--data', path.join(dir, 'nope.txt')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /use a \.csv or \.jsonl file/);
});

test('rewrite runs a built-in template and a template file; its stop string ends the output', async () => {
  const newlines = await writeSkewedModel(198, null, 30);
  const json = await run(rewriteCommand, ['--model', newlines, '--template', 'translate-en-fr', '--text', 'Good morning.', '--json', '--max-new-tokens', '5']);
  assert.equal(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout);
  assert.equal(out.finishReason, 'stop');
  assert.equal(out.output, '');
  assert.match(out.note, /GPT-2/);
  const file = path.join(tempDir('cli-rewrite'), 'echo.txt');
  writeFileSync(file, 'Say: {text}\nAgain:');
  const plain = await run(rewriteCommand, ['--model', tinyGpt2, '--template', file, '--text', 'hello', '--max-new-tokens', '3']);
  assert.equal(plain.code, 0, plain.stderr);
  const unknown = await run(rewriteCommand, ['--model', tinyGpt2, '--template', 'klingon', '--text', 'x']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^inkling rewrite: "klingon" is neither a built-in template/);
});
